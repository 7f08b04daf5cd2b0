"""Real public notebooks, written by others, executed with and without nbtrack.

Each notebook listed in ``PUBLIC`` (sources and licenses in
``tests/public_notebooks/README.md``) is executed by the papermill CLI twice:
as published, and with ``%load_ext nbtrack`` injected as a first cell. Then:

- nbtrack changes nothing the user sees: every code cell prints the same text
  (modulo addresses, uuids and timings; cells known to use an unseeded random
  generator only keep their output structure) and shows as many images;
- the run is tracked right: one run, FINISHED, in the experiment named after
  the notebook; every image the output notebook shows is a figure artifact of
  the same execution count; the auto-detected params and metrics are exactly
  the expected ones (nothing invented);
- a copy ending in ``raise ValueError("boom")`` leaves a FAILED run.

All executions run in parallel subprocesses in one module fixture, so the file
costs about as much as its slowest few notebooks.

The notebooks are not committed (third-party code): the tests look for each
file in ``tests/public_notebooks/``, then ``tests/public_notebooks/cache/``, then
``$NBTRACK_PUBLIC_NOTEBOOKS``, and skip the notebooks they cannot find.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

HERE = Path(__file__).resolve().parent / "public_notebooks"
SEARCH = [HERE, HERE / "cache"]
DELIVERY_TIMEOUT = 60.0
EXECUTION_TIMEOUT = 300

pytestmark = pytest.mark.kernel


@dataclass(frozen=True)
class Public:
    """One public notebook and what a correct tracking of it looks like."""

    name: str  # file name, also the experiment name (the notebook's project is its folder)
    sha256: str
    #: indices (in the published notebook) of code cells whose text differs run to run
    volatile: tuple[int, ...] = ()
    #: values passed with ``papermill -p`` (no parameters cell: papermill injects one on top)
    params: dict[str, Any] = field(default_factory=dict)
    #: exact set of metric keys nbtrack should auto-detect
    metrics: frozenset[str] = frozenset()
    #: also run a copy ending in a failing cell
    failing_copy: bool = False


PUBLIC = [
    Public(
        "13.Cross_Validation.ipynb",
        "d47afbd0776f2e688cdd6b1cacfb9cae0ba67f0b188db69ab9a4e3c6d29b93fa",
        volatile=(37,),  # ShuffleSplit without random_state
    ),
    Public(
        "Trapezoid Rule.ipynb",
        "cdb6691ef1b72257132fceb06af679d960185ee030443b575b5046aab58a3f66",
        params={"N": 5},
        metrics=frozenset({"error"}),  # `integral, error = quad(f, a, b)`
        failing_copy=True,
    ),
    Public(
        "Capturing Output.ipynb",
        "03292ece5f859b6c9eec277d29022bf0ab20efc7cd55f424149fdf986932bb0f",
    ),
    Public(
        "Custom Display Logic.ipynb",
        "edefdbf81e9f6d2e12a0700ed2c516364d307340ca7f1d0cbad61e5e12c1df18",
    ),
    Public(
        "Plotting in the Notebook.ipynb",
        "dd3dd63b3aeb80108458d9891bc87b607338e273544111ebaf0aa39c5cd4427f",
    ),
]

_VOLATILE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d+(\.\d+)?\s?(s|ms|µs|us|ns|sec|seconds)\b"), "<time>"),
]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".svg")


def locate(public: Public) -> Path | None:
    extra = os.environ.get("NBTRACK_PUBLIC_NOTEBOOKS")
    for folder in [*SEARCH, *([Path(extra)] if extra else [])]:
        path = folder / public.name
        if path.is_file():
            return path
    return None


@dataclass
class Execution:
    notebook: Path
    returncode: int
    stderr: str
    ended: float  # time.monotonic() when papermill returned

    @property
    def output(self) -> Path:
        return self.notebook.with_name("output.ipynb")


@dataclass
class Result:
    public: Public
    plain: Execution
    tracked: Execution
    tracked_run: Any  # mlflow Run or None
    delivery_s: float
    failing: Execution | None = None
    failing_run: Any = None


def papermill_cli() -> list[str]:
    script = Path(sys.executable).with_name("papermill")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "papermill"]


def execute(notebook: Path, params: dict[str, Any]) -> Execution:
    command = [*papermill_cli(), str(notebook), str(notebook.with_name("output.ipynb"))]
    command += ["--cwd", str(notebook.parent), "--no-progress-bar"]
    for key, value in params.items():
        command += ["-p", key, str(value)]
    environment = {**os.environ, "NBTRACK_DAEMON_IDLE": "5"}
    done = subprocess.run(
        command, cwd=notebook.parent, env=environment, capture_output=True, text=True,
        timeout=EXECUTION_TIMEOUT,
    )
    return Execution(notebook, done.returncode, done.stderr, time.monotonic())


def copy_with(source: Path, folder: Path, first: str | None = None, last: str | None = None) -> Path:
    """The notebook in ``folder`` (same file name), with a code cell added first or last."""
    folder.mkdir(parents=True)
    nb = json.loads(source.read_text())
    if first is not None:
        nb["cells"].insert(0, _code_cell(first))
    if last is not None:
        nb["cells"].append(_code_cell(last))
    target = folder / source.name
    target.write_text(json.dumps(nb, indent=1))
    return target


def _code_cell(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source}


def wait_for_run(folder: Path, experiment: str) -> Any:
    """The notebook's newest run once it has a terminal status (None if it never gets one)."""
    db = folder / ".nbtrack" / "mlflow.db"
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    latest = None
    while time.monotonic() < deadline:
        if db.is_file():
            client = client_for(folder)
            found = client.get_experiment_by_name(experiment)
            if found is not None:
                runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"])
                latest = runs[0] if runs else None
                if latest is not None and latest.info.status in ("FINISHED", "FAILED", "KILLED"):
                    return latest
        time.sleep(0.5)
    return latest


def client_for(folder: Path) -> Any:
    """A client of the notebook's embedded store, opened under nbtrack's creation lock.

    A plain ``MlflowClient`` on a store the delivery process is creating races
    with its schema migration ("duplicate column name").
    """
    from nbtrack.store import open_client

    return open_client(f"sqlite:///{folder / '.nbtrack' / 'mlflow.db'}")


def run_public(public: Public, source: Path, root: Path) -> Result:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", public.name)
    plain = execute(copy_with(source, root / "plain" / slug), public.params)
    tracked_nb = copy_with(source, root / "tracked" / slug, first="%load_ext nbtrack")
    tracked = execute(tracked_nb, public.params)
    run = wait_for_run(tracked_nb.parent, public.name)
    result = Result(public, plain, tracked, run, time.monotonic() - tracked.ended)
    if public.failing_copy:
        failing_nb = copy_with(
            source, root / "failing" / slug, first="%load_ext nbtrack", last='raise ValueError("boom")'
        )
        result.failing = execute(failing_nb, public.params)
        result.failing_run = wait_for_run(failing_nb.parent, public.name)
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    found = {public.name: locate(public) for public in PUBLIC}
    present = [(p, found[p.name]) for p in PUBLIC if found[p.name] is not None]
    for public, path in present:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == public.sha256, f"{path} is not the version these tests expect (sha256)"
    root = tmp_path_factory.mktemp("public")
    workers = max(2, min(len(present), (os.cpu_count() or 2) + 1))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {p.name: pool.submit(run_public, p, path, root) for p, path in present}
            yield {name: future.result() for name, future in futures.items()}
    finally:
        stop_delivery_processes(root)


def stop_delivery_processes(root: Path) -> None:
    """End the delivery processes these executions started (they would exit when idle)."""
    for pid_file in root.rglob(".nbtrack/delivery.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def result_for(results: dict[str, Result], public: Public) -> Result:
    if public.name not in results:
        pytest.skip(f"{public.name} not found: see tests/public_notebooks/README.md")
    return results[public.name]


def normalize(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def describe(output: dict[str, Any]) -> tuple[Any, ...]:
    kind = output["output_type"]
    if kind == "stream":
        return (kind, output["name"], normalize(output["text"]))
    if kind == "error":
        return (kind, output["ename"], normalize(output["evalue"]))
    data = output.get("data", {})
    return (kind, tuple(sorted(data)), normalize(str(data.get("text/plain", ""))))


def shape(output: dict[str, Any]) -> tuple[Any, ...]:
    kind = output["output_type"]
    if kind == "stream":
        return (kind, output["name"])
    return (kind, tuple(sorted(output.get("data", {}))))


def code_cells(path: Path) -> list[Any]:
    nb = nbformat.read(path, as_version=4)
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def is_image(output: dict[str, Any]) -> bool:
    return output["output_type"] in ("display_data", "execute_result") and any(
        kind in output.get("data", {}) for kind in IMAGE_TYPES
    )


def published_index(path: Path) -> list[int]:
    nb = json.loads(path.read_text())
    return [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]


@pytest.mark.parametrize("public", PUBLIC, ids=lambda p: p.name)
def test_nbtrack_changes_nothing_the_user_sees(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    assert result.plain.returncode == 0, result.plain.stderr[-3000:]
    assert result.tracked.returncode == 0, result.tracked.stderr[-3000:]

    plain = code_cells(result.plain.output)
    tracked = code_cells(result.tracked.output)
    # papermill puts its injected-parameters cell on top, even above our %load_ext cell
    load = next(cell for cell in tracked if cell.source == "%load_ext nbtrack")
    tracked.remove(load)
    assert not [o for o in load.outputs if o["output_type"] == "error"], load.outputs
    assert len(plain) == len(tracked)
    indices = published_index(result.plain.notebook)
    # papermill's injected-parameters cell (no parameters cell in these notebooks) comes first
    offset = len(plain) - len(indices)
    problems = []
    for position, (before, after) in enumerate(zip(plain, tracked, strict=True)):
        index = indices[position - offset] if position >= offset else "injected"
        where = f"{public.name} cell {index} ({before.source[:40]!r})"
        images = (sum(map(is_image, before.outputs)), sum(map(is_image, after.outputs)))
        if images[0] != images[1]:
            problems.append(f"{where}: {images[0]} images without nbtrack, {images[1]} with")
        compare = shape if index in public.volatile else describe
        got, expected = [compare(o) for o in after.outputs], [compare(o) for o in before.outputs]
        if got != expected:
            problems.append(f"{where}: outputs differ\n  without: {expected}\n  with:    {got}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("public", PUBLIC, ids=lambda p: p.name)
def test_the_run_is_tracked_right(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    assert result.tracked.returncode == 0, result.tracked.stderr[-3000:]
    run = result.tracked_run
    assert run is not None, f"no run of {public.name} reached the store"
    assert run.info.status == "FINISHED", f"run still {run.info.status} {result.delivery_s:.0f} s after"

    client = client_for(result.tracked.notebook.parent)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == public.name
    runs = client.search_runs([run.info.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]

    if not public.params:  # papermill -p values: see test_papermill_params_above_load_ext
        assert run.data.params == {}
    assert set(run.data.metrics) == set(public.metrics)

    shown: Counter[int] = Counter()
    for cell in code_cells(result.tracked.output):
        shown[cell.execution_count] += sum(map(is_image, cell.outputs))
    logged: Counter[int] = Counter()
    for artifact in client.list_artifacts(run.info.run_id, "figures"):
        name = artifact.path.rsplit("/", 1)[-1]
        if name.lower().endswith(IMAGE_EXTENSIONS):
            logged[int(name.split("-", 1)[0])] += 1
    shown, logged = +shown, +logged  # drop zero counts
    assert logged == shown, (
        f"{public.name}: images shown per execution count {dict(shown)}, "
        f"figure artifacts per execution count {dict(logged)}"
    )


@pytest.mark.parametrize("public", [p for p in PUBLIC if p.params], ids=lambda p: p.name)
def test_papermill_params_above_load_ext_are_logged(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    assert result.tracked_run is not None
    expected = {key: str(value) for key, value in public.params.items()}
    assert result.tracked_run.data.params == expected
    if result.failing_run is not None:
        assert result.failing_run.data.params == expected


def test_trapezoid_error_is_the_value_the_notebook_printed(results: dict[str, Result]):
    public = next(p for p in PUBLIC if p.name == "Trapezoid Rule.ipynb")
    result = result_for(results, public)
    assert result.tracked_run is not None
    printed = "".join(
        o.get("text", "") for cell in code_cells(result.tracked.output) for o in cell.outputs
    )
    match = re.search(r"The integral is: \S+ \+/- (\S+)", printed)
    assert match, printed
    assert result.tracked_run.data.metrics["error"] == pytest.approx(float(match[1]), rel=1e-9)


@pytest.mark.parametrize("public", [p for p in PUBLIC if p.failing_copy], ids=lambda p: p.name)
def test_a_failing_copy_leaves_a_failed_run(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    assert result.failing is not None
    assert result.failing.returncode != 0
    assert "boom" in result.failing.stderr
    run = result.failing_run
    assert run is not None, f"no run of the failing {public.name} reached the store"
    assert run.info.status == "FAILED"


def test_every_public_notebook_is_attributed():
    readme = (HERE / "README.md").read_text()
    for public in PUBLIC:
        assert public.name in readme and public.sha256 in readme, public.name
