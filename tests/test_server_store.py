"""Real tracked projects for the server, widget and browser tests (no tests of its own).

``make_project(root)`` writes what capture writes for a notebook with
``%load_ext nbtrack``: ``<root>/.nbtrack/mlflow.db``, an experiment named after
the notebook's path relative to the project, runs with params, stepped metrics,
a figure per run at ``figures/<exec>-<cell_id>-<n>.png`` and the cell records
``nbtrack/cells.json``. Runs are built with ``MlflowClient`` through the same
store helpers capture uses, so every layer reads a genuine store.

``make_papermill_project(root, lrs)`` makes fully real runs instead: papermill
executes a notebook that loads nbtrack (capture, delivery, snapshot and all),
which is what a re-run needs.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from helpers import stop_daemons  # noqa: F401 - re-exported for the server and browser tests

from nbtrack import tags
from nbtrack.project import Project
from nbtrack.store import get_or_create_experiment, open_client

NOTEBOOK = "notebooks/train.ipynb"
FIGURE_CELL = "c0ffee"
PARAMS_CELL = "p4r4m5"
XSS = "<img src=x onerror=alert(1)>"


@dataclass
class TrackedProject:
    root: Path
    notebook: str  # relative to root
    tracking_uri: str
    experiment_id: str
    run_ids: list[str] = field(default_factory=list)  # oldest first

    @property
    def notebook_path(self) -> Path:
        return self.root / self.notebook


def notebook_source() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("lr = 0.1\ndepth = 3", id=PARAMS_CELL)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nplt.plot([0, 1], [0, lr])\nplt.show()",
            id=FIGURE_CELL,
        ),
        nbformat.v4.new_code_cell("val_loss = 1 / (1 + 10 * lr)", id="m3tr1c"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@functools.cache
def png(slope: float, label: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([0, 1], [0, slope])
    ax.set_title(label)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


@functools.cache
def _empty_store() -> Path:
    """A migrated, empty MLflow SQLite store, created once per process and copied per project
    (MLflow's schema migration takes seconds; copying the result takes a millisecond)."""
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-empty-store-"))
    open_client(f"sqlite:///{folder / 'mlflow.db'}")
    return folder / "mlflow.db"


def make_project(
    root: Path,
    lrs: tuple[float, ...] = (0.1, 0.01, 0.001),
    *,
    extra_params: dict[str, str] | None = None,
    figures: bool = True,
    notebook: str = NOTEBOOK,
) -> TrackedProject:
    """A git project at ``root`` whose notebook has one finished run per learning rate."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    path = root / notebook
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        nbformat.write(notebook_source(), path)
    project = Project(root.resolve())
    project.ensure()
    if not project.mlflow_db.exists():
        shutil.copyfile(_empty_store(), project.mlflow_db)
    client = open_client(project.default_tracking_uri)
    name = project.experiment_name(path)
    experiment_id = get_or_create_experiment(client, name, project)
    tracked = TrackedProject(root, notebook, project.default_tracking_uri, experiment_id)
    start = int(time.time() * 1000) - 3_600_000
    for i, lr in enumerate(lrs):
        tracked.run_ids.append(
            log_run(client, experiment_id, notebook, lr, start + i * 60_000, i,
                    extra_params=extra_params, figure=figures)
        )
    return tracked


def log_run(
    client: Any,
    experiment_id: str,
    notebook: str,
    lr: float,
    start_ms: int,
    index: int,
    *,
    extra_params: dict[str, str] | None = None,
    figure: bool = True,
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    run = client.create_run(
        experiment_id, start_time=start_ms, run_name=f"run-{index}",
        tags={tags.NOTEBOOK: notebook, tags.ORIGIN: "interactive"},
    )
    run_id = run.info.run_id
    params = {"lr": str(lr), "depth": "3", **(extra_params or {})}
    val_loss = 1 / (1 + 10 * lr)
    metrics = [Metric("val_loss", val_loss * (1.5 - 0.25 * step), start_ms + step, step)
               for step in range(3)]
    metrics.append(Metric("accuracy", 1 - val_loss, start_ms, 0))
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(tags.CELLS, "3")],
    )
    artifacts = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    cells = [
        {"cell_id": PARAMS_CELL, "exec_count": 1, "index": 0, "source": f"lr = {lr}\ndepth = 3"},
        {"cell_id": FIGURE_CELL, "exec_count": 2, "index": 1,
         "source": "import matplotlib.pyplot as plt\nplt.plot([0, 1], [0, lr])\nplt.show()"},
    ]
    (artifacts / "nbtrack").mkdir(parents=True, exist_ok=True)
    (artifacts / "nbtrack" / "cells.json").write_text(json.dumps(cells))
    if figure:
        (artifacts / "figures").mkdir(parents=True, exist_ok=True)
        (artifacts / "figures" / f"2-{FIGURE_CELL}-0.png").write_bytes(png(lr, f"lr={lr}"))
    client.set_terminated(run_id, "FINISHED", end_time=start_ms + 5_000 + index * 1_000)
    return run_id


def add_runs(tracked: TrackedProject, count: int) -> None:
    """Many more runs quickly (no artifacts): for the bench's 1,000-run notebook."""
    from mlflow.entities import Metric, Param

    client = open_client(tracked.tracking_uri)
    start = int(time.time() * 1000) - 86_400_000
    for i in range(count):
        run = client.create_run(tracked.experiment_id, start_time=start + i * 1000,
                                run_name=f"bulk-{i}", tags={tags.NOTEBOOK: tracked.notebook})
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric("val_loss", 1 / (i + 2), start, 0), Metric("accuracy", i / count, start, 0)],
            params=[Param("lr", str(10 ** -(i % 4))), Param("depth", str(i % 7)),
                    Param("seed", str(i))],
        )
        client.set_terminated(rid, "FINISHED", end_time=start + i * 1000 + 500)
        tracked.run_ids.append(rid)


# -- real runs: papermill executes a notebook that loads nbtrack ---------------------------

TRACKED_NOTEBOOK = "train.ipynb"


def quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "MLFLOW_", "JPY_"))}
    env["NBTRACK_DAEMON_IDLE"] = "5"
    return env


def tracked_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("lr = 0.1\nepochs = 3")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbtrack"),
        params,
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(3, 2))\n"
            "ax.plot([0, 1, 2], [0, lr, 2 * lr])\nax.set_title(f'lr={lr}')\nplt.show()"
        ),
        nbformat.v4.new_code_cell(
            "import nbtrack\nfor epoch in range(epochs):\n"
            "    nbtrack.log(val_loss=1 / (1 + 10 * lr * (epoch + 1)), step=epoch)\n"
            "accuracy = 1 - 1 / (1 + 10 * lr)"
        ),
    ]
    return nb


def finished_runs(root: Path) -> list[Any]:
    db = root / ".nbtrack" / "mlflow.db"
    if not db.exists():
        return []
    client = open_client(f"sqlite:///{db}")  # under the lock capture's delivery creates it with
    experiment = client.get_experiment_by_name(TRACKED_NOTEBOOK)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.info.status == "FINISHED"]


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")




def make_papermill_project(root: Path, lrs: list[float], env: dict[str, str] | None = None) -> None:
    """Real runs: papermill executes the notebook once per learning rate, in parallel."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    nbformat.write(tracked_notebook(), root / TRACKED_NOTEBOOK)
    out = root.parent / f"{root.name}-papermill"
    out.mkdir(exist_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "papermill", "--no-progress-bar", TRACKED_NOTEBOOK,
             str(out / f"run-{i}.ipynb"), "-p", "lr", str(lr)],
            cwd=root, env=env or quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i, lr in enumerate(lrs)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
    wait_for(lambda: len(finished_runs(root)) == len(lrs), 60, f"{len(lrs)} delivered runs")
