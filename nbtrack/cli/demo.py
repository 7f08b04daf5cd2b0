"""``nbtrack demo``: execute the quickstart notebook with nbtrack loaded and show its run.

The quickstart (a scikit-learn model on a bundled dataset, two figures) is
copied into a folder (``./nbtrack-demo`` unless ``--dir``), executed there with
papermill, and once its run is in the tracking store the command prints what
nbtrack recorded: params, metrics (last value), figures, and how to open the
store in ``mlflow ui`` or ``nbtrack runs``::

    nbtrack demo
    nbtrack demo --dir /tmp/try-nbtrack -p max_depth=3
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import env, tags
from nbtrack.cli import Subparsers
from nbtrack.errors import ExecutionFailed, NbtrackError, UsageProblem
from nbtrack.events import TERMINAL_STATUSES
from nbtrack.project import Project

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient
    from rich.console import Console

NOTEBOOK_NAME = "quickstart.ipynb"
OUTPUT_NAME = "quickstart.output.ipynb"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run the quickstart notebook with nbtrack and show its tracked run",
        description=(
            "Copy nbtrack's quickstart notebook (a scikit-learn model on a bundled dataset) "
            "into a folder, execute it with papermill and %load_ext nbtrack, wait until its "
            "run is in the tracking store, then print the run: params, metrics, figures."
        ),
    )
    parser.add_argument(
        "--dir", default="nbtrack-demo", metavar="DIR",
        help="folder to run the demo in (created if missing; default: ./nbtrack-demo). "
        "An existing quickstart.ipynb there is run as it is, so you can edit it and run again.",
    )
    parser.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=VALUE",
        help="override a value of the notebook's parameters cell (repeatable), "
        "e.g. -p max_depth=3 -p n_estimators=100",
    )
    parser.add_argument(
        "--kernel", default=None, metavar="NAME",
        help="Jupyter kernel to execute with (default: the notebook's, python3)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS",
        help="how long to wait for the run to reach the store after execution (default: 60)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    params = parse_params(args.param)
    if args.timeout <= 0:
        raise UsageProblem(f"--timeout must be positive, not {args.timeout}")
    folder = Path(args.dir).expanduser().resolve()
    copy = folder / NOTEBOOK_NAME
    if not copy.is_file() or copy.read_bytes() == shipped_notebook().read_bytes():
        check_demo_libraries()
    notebook = prepare_notebook(folder, console)
    output = folder / OUTPUT_NAME
    store = DemoStore.for_notebook(notebook)

    console.print(f"Executing [bold]{notebook}[/] with papermill (nbtrack loaded) …")
    started_ms = int(time.time() * 1000) - 1000
    clock = time.monotonic()
    failure = execute(notebook, output, params, kernel=args.kernel)
    executed = time.monotonic()
    console.print(
        f"{'Failed' if failure else 'Executed'} in {executed - clock:.0f} s; "
        "waiting for its run in the tracking store …"
    )
    try:
        run_ = store.wait_for_run(started_ms, timeout=args.timeout)
    except NbtrackError as exc:
        if failure is None:
            raise
        raise ExecutionFailed(f"the notebook failed: {failure} (see {output}); {exc}") from None
    console.print(f"Delivered {time.monotonic() - executed:.1f} s after the notebook ended.")
    show_run(console, store, run_, output)
    if failure is not None:
        raise ExecutionFailed(f"the notebook failed: {failure} (see {output})")
    return 0


def parse_params(raw: list[str]) -> dict[str, Any]:
    """``["max_depth=3", "name=abc"]`` -> ``{"max_depth": 3, "name": "abc"}``, typed as papermill does."""
    from nbtrack.batch.params import parse_overrides

    return parse_overrides(raw)


#: What the quickstart imports beyond nbtrack's own dependencies (module: distribution).
DEMO_LIBRARIES = {"sklearn": "scikit-learn", "matplotlib": "matplotlib"}


def check_demo_libraries() -> None:
    """The quickstart trains a scikit-learn model and draws matplotlib figures: say how to get
    them before executing anything (``pip install nbtrack`` brings neither)."""
    from importlib.util import find_spec

    missing = [name for module, name in DEMO_LIBRARIES.items() if find_spec(module) is None]
    if missing:
        raise NbtrackError(f"the quickstart notebook needs {' and '.join(missing)}, which "
                           "`pip install nbtrack` does not bring: pip install 'nbtrack[demo]'")


def shipped_notebook() -> Path:
    """The quickstart notebook shipped inside the package."""
    path = Path(str(resources.files("nbtrack") / "examples" / NOTEBOOK_NAME))
    if not path.is_file():
        raise NbtrackError(f"nbtrack's quickstart notebook is missing from the install ({path})")
    return path


def prepare_notebook(folder: Path, console: Console) -> Path:
    """``folder/quickstart.ipynb``: the user's copy if there is one, else a fresh copy."""
    if folder.exists() and not folder.is_dir():
        raise UsageProblem(f"--dir {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"cannot create {folder}: {exc.strerror or exc}") from None
    notebook = folder / NOTEBOOK_NAME
    if notebook.is_file():
        if notebook.read_bytes() != shipped_notebook().read_bytes():
            console.print(f"Running your edited copy {notebook} (delete it to start afresh).")
    else:
        shutil.copyfile(shipped_notebook(), notebook)
    return notebook


def execute(
    notebook: Path, output: Path, params: dict[str, Any], *, kernel: str | None
) -> str | None:
    """Run the notebook with papermill; the failing cell's error as text, None on success."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from nbtrack.batch.kernels import IpcKernelManager

    # A papermill kernel is not told its notebook's path: nbtrack's own executions say it here.
    overrides = {
        env.NOTEBOOK.name: str(notebook),
        env.PAPERMILL_OUTPUT.name: str(output),
    }
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=params,
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=sys.stderr.isatty(),
            kernel_manager_class=IpcKernelManager,  # no "running over TCP" warning
        )
    except PapermillExecutionError as exc:
        if exc.ename == "ModuleNotFoundError" and exc.evalue == "No module named 'nbtrack'":
            raise ExecutionFailed(
                f"the Jupyter kernel {kernel or 'python3'!r} runs a Python without nbtrack; "
                f"register this one with `{sys.executable} -m ipykernel install --user` "
                "or pick another with --kernel"
            ) from None
        return f"cell {exc.cell_index}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel missing, papermill refusing the notebook …
        raise ExecutionFailed(f"papermill could not execute {notebook}: {exc}") from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return None


@dataclass(frozen=True)
class DemoStore:
    """The tracking store and experiment the demo notebook's runs go to (same rule as capture)."""

    project: Project
    tracking_uri: str
    experiment: str

    @classmethod
    def for_notebook(cls, notebook: Path) -> DemoStore:
        from nbtrack.store import resolve

        store = resolve(notebook)
        return cls(store.project, store.tracking_uri, store.project.experiment_name(notebook))

    def client(self) -> MlflowClient:
        from nbtrack.store import open_client

        return open_client(self.tracking_uri)

    def wait_for_run(self, started_ms: int, *, timeout: float) -> Run:
        """The run that started after ``started_ms``, once it has a terminal status."""
        deadline = time.monotonic() + timeout
        latest: Run | None = None
        while True:
            latest = self._newest_run(started_ms)
            if latest is not None and latest.info.status in TERMINAL_STATUSES:
                return latest
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if latest is None:
            what = f"no run of experiment {self.experiment!r} reached {self.tracking_uri}"
        else:
            what = f"run {latest.info.run_id} is still {latest.info.status}"
        raise NbtrackError(
            f"{what} within {timeout:g} s of the notebook's end; its events are kept in "
            f"{self.project.journal_dir}: `nbtrack recover` delivers them "
            "(or wait longer with --timeout)"
        )

    def _newest_run(self, started_ms: int) -> Run | None:
        db = self.tracking_uri.removeprefix("sqlite:///")
        if db != self.tracking_uri and not Path(db).is_file():
            return None  # never create the store from here: capture does
        client = self.client()
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            return None
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"attributes.start_time >= {started_ms}",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None


def show_run(console: Console, store: DemoStore, run_: Run, output: Path) -> None:
    from rich.table import Table

    client = store.client()
    info, data = run_.info, run_.data
    status_style = "green" if info.status == "FINISHED" else "red"
    duration = (
        f"{(info.end_time - info.start_time) / 1000:.1f} s" if info.end_time else "—"
    )
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("experiment", store.experiment)
    summary.add_row("run id", info.run_id)
    summary.add_row("status", f"[{status_style}]{info.status}[/]")
    summary.add_row("duration", duration)
    summary.add_row("output notebook", str(output))
    console.print()
    console.print(summary)

    params = Table(title="Params", title_justify="left")
    params.add_column("name")
    params.add_column("value")
    for key in sorted(data.params):
        params.add_row(key, data.params[key])
    console.print(params)

    metrics = Table(title="Metrics", title_justify="left")
    metrics.add_column("name")
    metrics.add_column("last value", justify="right")
    metrics.add_column("steps", justify="right")
    system = Table(title="System: peak", title_justify="left")  # what the run cost, as compare shows it
    system.add_column("measure")
    system.add_column("peak", justify="right")
    for key in sorted(data.metrics):
        history = client.get_metric_history(info.run_id, key)
        if key.startswith(tags.SYSTEM_METRICS):
            system.add_row(key.removeprefix(tags.SYSTEM_METRICS), f"{max(m.value for m in history):.4g}")
        else:
            metrics.add_row(key, f"{data.metrics[key]:.4g}", str(len(history)))
    console.print(metrics)
    if system.row_count:
        console.print(system)

    root = local_artifact(info.artifact_uri, "")
    figures = Table(title="Figures", title_justify="left")
    figures.add_column("artifact")
    figures.add_column("size", justify="right")
    for path in figure_artifacts(client, info.run_id):
        file = Path(local_artifact(info.artifact_uri, path))
        size = f"{file.stat().st_size / 1024:.0f} KiB" if file.is_file() else ""
        figures.add_row(path, size)
    console.print(figures)
    console.print(f"in {root}", soft_wrap=True)

    console.print()
    uri = store.tracking_uri
    console.print("Open it:", soft_wrap=True)
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        console.print(f"  mlflow ui --backend-store-uri {shlex.quote(uri)}", soft_wrap=True)
    else:
        console.print(f"  the MLflow UI of {uri}", soft_wrap=True)
    notebook = shlex.quote(shown_path(output.parent / NOTEBOOK_NAME))
    console.print(f"  nbtrack runs {notebook}", soft_wrap=True)


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def figure_artifacts(client: MlflowClient, run_id: str) -> list[str]:
    """Artifact paths under ``figures/`` (recursively), sorted."""
    found: list[str] = []
    pending = ["figures"]
    while pending:
        for item in client.list_artifacts(run_id, pending.pop()):
            (pending if item.is_dir else found).append(item.path)
    return sorted(found)


def local_artifact(artifact_uri: str | None, path: str) -> str:
    """The file behind an artifact of a local store, else its URI."""
    if not artifact_uri:
        return path
    from nbtrack.query.artifacts import local_artifact_dir

    folder = local_artifact_dir(artifact_uri)
    if folder is not None:
        return str(folder / path) if path else str(folder)
    return f"{artifact_uri.rstrip('/')}/{path}"
