"""Real public notebooks, written by others, executed with and without nbtrack.

Each notebook listed in ``PUBLIC`` (sources and licenses in
``tests/public_notebooks/README.md``) is executed twice, by the papermill CLI
(or ``jupyter nbconvert --execute``), each time in a fresh git project: as
published, and with ``%load_ext nbtrack`` injected as a first cell. Then:

- nbtrack changes nothing the user sees: the same exit status, every code cell
  prints the same text and raises the same error (modulo addresses, uuids, run
  ids, log timestamps and timings; cells known to use an unseeded random
  generator only keep their output structure) and shows as many images;
- the notebook's own MLflow runs are the same in its own store with and without
  nbtrack, and nbtrack's run links exactly those (tag ``nbtrack.user_runs``);
- the run is tracked right: one run, FINISHED (FAILED for a notebook that fails
  as published), in the experiment named after the notebook; every image and
  every chart the output notebook shows is a figure artifact of the same
  execution count; the auto-detected params and metrics are exactly the
  expected ones (nothing invented); the lake's ``runs``, ``params`` and
  ``metrics`` rows say what MLflow says;
- a copy ending in ``raise ValueError("boom")`` leaves a FAILED run.

All executions run in parallel subprocesses in one module fixture, so the file
costs about as much as its slowest few notebooks.

The notebooks are not committed (third-party code): the tests look for each
file in ``tests/public_notebooks/``, then ``tests/public_notebooks/cache/``, then
``$NBTRACK_PUBLIC_NOTEBOOKS``, and skip the notebooks they cannot find.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from helpers import client_for, mlflow_server

HERE = Path(__file__).resolve().parent / "public_notebooks"
SEARCH = [HERE, HERE / "cache"]
DELIVERY_TIMEOUT = 60.0
EXECUTION_TIMEOUT = 900

# One module fixture runs every notebook (the slowest, micrograd's demo, takes minutes of CPU).
pytestmark = [pytest.mark.kernel, pytest.mark.timeout(3600)]


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
    #: the exception the notebook raises as published (it fails the same way with nbtrack)
    error: str | None = None
    #: "papermill" (its CLI) or "nbconvert" (``jupyter nbconvert --execute``)
    runner: str = "papermill"
    #: files the notebook reads, put beside it: path in the project -> file name next to the notebook
    files: dict[str, str] = field(default_factory=dict)
    #: environment the notebook is run with (the same with and without nbtrack)
    env: dict[str, str] = field(default_factory=dict)
    #: modules the notebook imports that nbtrack's test extra does not install
    requires: tuple[str, ...] = ()
    #: the notebook's own MLflow runs (in its own store)
    user_runs: int = 0
    #: the notebook's own MLflow metrics come from an unseeded generator: compare their names only
    random_user_metrics: bool = False
    #: the notebook logs to an MLflow tracking server on this localhost port (one is started for it)
    server_port: int | None = None
    #: the kernel to run it with, when its metadata names one that exists only on its author's machine
    kernel: str | None = None


PUBLIC = [
    Public(
        "13.Cross_Validation.ipynb",
        "d47afbd0776f2e688cdd6b1cacfb9cae0ba67f0b188db69ab9a4e3c6d29b93fa",
        volatile=(37,),  # ShuffleSplit without random_state
        metrics=frozenset({"mean_score"}),  # printed: `print('Mean score: %0.3f' % np.mean(scores))`
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
    Public(
        "demo.ipynb",
        "bd1b1a59bf07c3abf3ce6899aedd6c345594d19bf54d12257d8c5a5bca5c23ab",
        # micrograd orders a backward pass by sets of Values (ordered by id()): the loss's
        # last digits differ from one process to the next, with or without nbtrack
        volatile=(7,),
        # `total_loss, acc = loss()` before and inside the loop; its progress line
        # `step 0 loss 0.89..., accuracy 50.0%` gives printed `loss` and `accuracy` curves
        metrics=frozenset({"acc", "loss", "accuracy"}),
        requires=("micrograd", "sklearn"),
    ),
    Public(
        "makemore_part1_bigrams.ipynb",
        "db2f139409bad2966baac06581b6ca8ec9a03668df50dd073577fd98b3be0045",
        error="NameError",  # cell 18 uses `P`, defined further down in the lecture
        files={"names.txt": "names.txt"},
        requires=("torch",),
    ),
    Public(
        "04_training_linear_models.ipynb",
        "5ba43eaa7e15db787e210130b3e28e8e91fe24af635446af5f2fad00e9bc2b1c",
        error="AttributeError",  # `np.infty`, removed in NumPy 2
    ),
    Public(
        "05.04-Feature-Engineering.ipynb",
        "92131841553e91d293954ad6c5faf8c25826c325617fbb30d2467be9556030bb",
    ),
    Public(
        "1_1_iris_plants.ipynb",
        "55523f0a6da3ea5e7b2a3f83ee79b4439dc04642fb273f839c1859af48521b47",
        volatile=(7,),  # an unseeded RandomForestClassifier
        metrics=frozenset({"accuracy"}),
        error="MlflowException",  # mlflow.sklearn.log_model: skops refuses sklearn's Tree type
        requires=("seaborn",),
        user_runs=1,
        random_user_metrics=True,
    ),
    Public(
        "2_4_runs_nested_runs.ipynb",
        "c81281ed928d23c857d5c3c8abcff5836349373fa58e81a3d2c83ed5d6c926fd",
        files={"mlflow_for_ml_dev/src/utils/folder_operations.py": "folder_operations.py"},
        env={"MLFLOW_ALLOW_FILE_STORE": "true"},  # the notebook sets a ./mlruns file store
        failing_copy=True,
        user_runs=6,
    ),
    Public(
        "hello_world.ipynb",
        "e8466160c8ecc0262945317432441e5e8b7156dc3069f9aec59a333351cf3d8b",
        volatile=(3,),  # prints the current time
        server_port=5000,  # mlflow.set_tracking_uri("http://localhost:5000")
        kernel="python3",  # its metadata names the author's "mlflow-examples" kernel
        error="AttributeError",  # `run.info.run_uuid`, removed in MLflow 3: its run ends FAILED
        user_runs=1,
    ),
    Public(
        "Part 2 - Data Types, Graphical Marks, and Visual Encoding Channels.ipynb",
        "0727d1ebd6da6a0049db8ad4d612e29b0560912745bdd90ae93e8e6e2d975acc",
        error="URLError",  # a vega_datasets dataset that is downloaded
        requires=("vega_datasets",),
    ),
    Public(
        "02-Simple-Charts.ipynb",
        "9a1c074163bf70cc937fa44894dce57ea2e1ebfc10103eca085566af1d1c2fcb",
        runner="nbconvert",
        requires=("vega_datasets",),
    ),
    Public(
        "quickstart.ipynb",
        "3525a6558cb2c8120102001d25f2e2e02b714cb7b0342ee27e1719002efe71ed",
        error="UnsetValueError",  # `p.circle(x, y, size=7)`: Bokeh 3.4+ wants scatter()
    ),
    Public(
        "ml-roc-pr.ipynb",
        "6980325b9cc3d20b71ac2b06b2f6fc4d7134f4b826a1b79aaf9d897b2344fa56",
        runner="nbconvert",
        metrics=frozenset({"auc_score"}),
        failing_copy=True,
    ),
    Public(
        "ml-regression.ipynb",
        "3999e901b83b06328cb589e2c6ce6f508aa453c1a0241b217fe02a3e47c7b11d",
        volatile=(29,),  # the error lists a set of criteria, in an order that changes per process
        error="ValueError",  # GridSearchCV over criterion="mse"/"mae", removed in scikit-learn 1.2
        requires=("statsmodels",),
    ),
]

_VOLATILE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run id>"),
    (re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"), "<log time>"),
    (re.compile(r"\d+(\.\d+)?\s?(s|ms|µs|us|ns|sec|seconds)\b"), "<time>"),
]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".svg")
#: a chart as the notebook shows it: Vega-Lite (or altair's vega-embed page), plotly, Bokeh
CHART_TYPES = ("application/vnd.vegalite.", "application/vnd.plotly.", "application/vnd.bokehjs_exec.")
CHART_EXTENSIONS = (".vl.json", ".json", ".bokeh.json")


def locate(public: Public) -> Path | None:
    extra = os.environ.get("NBTRACK_PUBLIC_NOTEBOOKS")
    for folder in [*SEARCH, *([Path(extra)] if extra else [])]:
        path = folder / public.name
        if path.is_file() and all((folder / name).is_file() for name in public.files.values()):
            return path
    return None


def runnable(public: Public) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in public.requires)


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


def execute(notebook: Path, public: Public) -> Execution:
    if public.runner == "nbconvert":
        command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   str(notebook), "--output", "output.ipynb"]
    else:
        command = [*papermill_cli(), str(notebook), str(notebook.with_name("output.ipynb"))]
        command += ["--cwd", str(notebook.parent), "--no-progress-bar"]
        for key, value in public.params.items():
            command += ["-p", key, str(value)]
        command += ["-k", public.kernel] if public.kernel else []
    environment = {**os.environ, **public.env, "NBTRACK_DAEMON_IDLE": "5"}
    with tracking_server(notebook.parent, public.server_port):
        done = subprocess.run(
            command, cwd=notebook.parent, env=environment, capture_output=True, text=True,
            timeout=EXECUTION_TIMEOUT,
        )
    return Execution(notebook, done.returncode, done.stderr, time.monotonic())


@contextmanager
def tracking_server(project: Path, port: int | None) -> Iterator[None]:
    """An MLflow tracking server on localhost:``port`` keeping its runs in ``project/server``."""
    if port is None:
        yield
        return
    with mlflow_server(project / "server", port=port):
        yield


def copy_with(source: Path, folder: Path, first: str | None = None, last: str | None = None,
              files: dict[str, str] | None = None) -> Path:
    """The notebook in ``folder``, a new git project (same file name), with a code cell added first
    or last, and the files it reads beside it."""
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    nb = json.loads(source.read_text())
    if first is not None:
        nb["cells"].insert(0, _code_cell(first))
    if last is not None:
        nb["cells"].append(_code_cell(last))
    target = folder / source.name
    target.write_text(json.dumps(nb, indent=1))
    for path, name in (files or {}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes((source.parent / name).read_bytes())
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


def run_public(public: Public, source: Path, root: Path) -> Result:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", public.name)
    plain = execute(copy_with(source, root / "plain" / slug, files=public.files), public)
    tracked_nb = copy_with(source, root / "tracked" / slug, first="%load_ext nbtrack", files=public.files)
    tracked = execute(tracked_nb, public)
    run = wait_for_run(tracked_nb.parent, public.name)
    result = Result(public, plain, tracked, run, time.monotonic() - tracked.ended)
    if public.failing_copy:
        failing_nb = copy_with(source, root / "failing" / slug, first="%load_ext nbtrack",
                               last='raise ValueError("boom")', files=public.files)
        result.failing = execute(failing_nb, public)
        result.failing_run = wait_for_run(failing_nb.parent, public.name)
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    found = {public.name: locate(public) for public in PUBLIC}
    present = [(p, found[p.name]) for p in PUBLIC if found[p.name] is not None and runnable(p)]
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
        missing = [module for module in public.requires if importlib.util.find_spec(module) is None]
        pytest.skip(f"{public.name} needs {', '.join(missing)}" if missing
                    else f"{public.name} not found: see tests/public_notebooks/README.md")
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


def merged(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs as a notebook shows them: consecutive prints to one stream are one block of text
    (how the kernel cut it into messages depends on when it flushed)."""
    shown: list[dict[str, Any]] = []
    for output in outputs:
        previous = shown[-1] if shown else None
        if (output["output_type"] == "stream" and previous is not None
                and previous["output_type"] == "stream" and previous["name"] == output["name"]):
            shown[-1] = {**previous, "text": previous["text"] + output["text"]}
        else:
            shown.append(output)
    return shown


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


def is_chart(output: dict[str, Any]) -> bool:
    """A chart that is no image: a Vega-Lite, plotly or Bokeh bundle, or altair's vega-embed page."""
    if output["output_type"] not in ("display_data", "execute_result") or is_image(output):
        return False
    data = output.get("data", {})
    return any(kind.startswith(CHART_TYPES) for kind in data) or "vegaEmbed(" in str(data.get("text/html", ""))


def per_execution(output_notebook: Path, kind: Any) -> Counter[int]:
    shown: Counter[int] = Counter()
    for cell in code_cells(output_notebook):
        shown[cell.execution_count] += sum(map(kind, cell.outputs))
    return +shown  # drop zero counts


def published_index(path: Path) -> list[int]:
    nb = json.loads(path.read_text())
    return [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]


@pytest.mark.parametrize("public", PUBLIC, ids=lambda p: p.name)
def test_nbtrack_changes_nothing_the_user_sees(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    if public.error is None:
        assert result.plain.returncode == 0, result.plain.stderr[-3000:]
        assert result.tracked.returncode == 0, result.tracked.stderr[-3000:]
    else:  # fails as published, and the same way with nbtrack
        assert result.plain.returncode != 0 and public.error in result.plain.stderr, result.plain.stderr[-3000:]
        assert result.tracked.returncode != 0 and public.error in result.tracked.stderr, result.tracked.stderr[-3000:]

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
        got = [compare(o) for o in merged(after.outputs)]
        expected = [compare(o) for o in merged(before.outputs)]
        if got != expected:
            problems.append(f"{where}: outputs differ\n  without: {expected}\n  with:    {got}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("public", PUBLIC, ids=lambda p: p.name)
def test_the_run_is_tracked_right(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    assert (result.tracked.returncode == 0) == (public.error is None), result.tracked.stderr[-3000:]
    run = result.tracked_run
    assert run is not None, f"no run of {public.name} reached the store"
    expected_status = "FINISHED" if public.error is None else "FAILED"
    assert run.info.status == expected_status, f"run {run.info.status} {result.delivery_s:.0f} s after"
    assert "nbtrack.out_of_order" not in run.data.tags  # executed top to bottom

    client = client_for(result.tracked.notebook.parent)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == public.name
    runs = client.search_runs([run.info.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]

    if not public.params:  # papermill -p values: see test_papermill_params_above_load_ext
        assert run.data.params == {}
    assert {k for k in run.data.metrics if not k.startswith("system/")} == set(public.metrics)

    names = [a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run.info.run_id, "figures")]
    for kind, extensions in ((is_image, IMAGE_EXTENSIONS), (is_chart, CHART_EXTENSIONS)):
        shown = per_execution(result.tracked.output, kind)
        logged = Counter(int(name.split("-", 1)[0]) for name in names if name.lower().endswith(extensions))
        assert logged == shown, (
            f"{public.name}: {kind.__name__[3:]}s shown per execution count {dict(shown)}, "
            f"figure artifacts per execution count {dict(logged)}"
        )


def user_store(folder: Path, public: Public) -> tuple[str, list[dict[str, Any]]] | None:
    """The notebook's own MLflow runs in its own store (MLflow's default ./mlflow.db, ./mlruns, or
    the tracking server's database), and the tracking URI the notebook used."""
    from unittest import mock

    from mlflow.tracking import MlflowClient

    read = None
    if public.server_port is not None:
        uri, read = f"http://localhost:{public.server_port}", f"sqlite:///{folder / 'server' / 'mlflow.db'}"
    elif (folder / "mlflow.db").is_file():
        uri = f"sqlite:///{folder / 'mlflow.db'}"
    elif (folder / "mlruns").is_dir():
        uri = (folder / "mlruns").as_uri()
    else:
        return None
    runs = []
    with mock.patch.dict(os.environ, public.env):
        client = MlflowClient(read or uri)
        for experiment in sorted(client.search_experiments(), key=lambda e: e.name):
            for run in client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]):
                ids = {run.info.run_id: "<run>", run.data.tags.get("mlflow.parentRunId"): "<parent>"}
                runs.append({
                    "run_id": run.info.run_id,
                    "experiment": experiment.name, "name": run.info.run_name, "status": run.info.status,
                    "params": run.data.params,
                    "metrics": sorted(run.data.metrics) if public.random_user_metrics else run.data.metrics,
                    # tags naming run ids or this project's paths differ by nature
                    "tags": {k: ids.get(v, v) for k, v in run.data.tags.items()
                             if k not in ("mlflow.source.name", "mlflow.log-model.history")},
                    "artifacts": artifacts(client, run, folder / "server" / "artifacts"),
                })
    return uri, runs


def artifacts(client: Any, run: Any, served: Path) -> list[str]:
    """A run's top-level artifacts; those a tracking server keeps (mlflow-artifacts:) from its folder."""
    prefix = "mlflow-artifacts:/"
    if run.info.artifact_uri.startswith(prefix):
        folder = served / run.info.artifact_uri[len(prefix):]  # made by the first artifact logged
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
    return sorted(a.path for a in client.list_artifacts(run.info.run_id))


def without_ids(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in run.items() if k != "run_id"} for run in runs]


@pytest.mark.parametrize("public", PUBLIC, ids=lambda p: p.name)
def test_the_notebooks_own_mlflow_runs_are_untouched_and_linked(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    plain = user_store(result.plain.notebook.parent, public)
    tracked = user_store(result.tracked.notebook.parent, public)
    if public.user_runs == 0:
        assert plain is None and tracked is None
        assert result.tracked_run is not None and "nbtrack.user_runs" not in result.tracked_run.data.tags
        return
    assert plain is not None and tracked is not None
    assert len(plain[1]) == public.user_runs
    assert without_ids(tracked[1]) == without_ids(plain[1])
    assert result.tracked_run is not None
    linked = json.loads(result.tracked_run.data.tags["nbtrack.user_runs"])
    assert [link["run_id"] for link in linked] == [run["run_id"] for run in tracked[1]]
    assert {link["tracking_uri"] for link in linked} == {tracked[0]}


def lake_rows(lake: Path, table: str, run_id: str) -> Any:
    """A run's rows of a lake table; none when the project never wrote that table."""
    from deltalake import DeltaTable

    from nbtrack.lake.schemas import schema

    if not (lake / table / "_delta_log").is_dir():
        return schema(table).empty_table().to_pandas()
    rows = DeltaTable(str(lake / table)).to_pandas()
    return rows[rows.run_id == run_id]


@pytest.mark.parametrize("public", PUBLIC, ids=lambda p: p.name)
def test_the_lake_says_what_mlflow_says(results: dict[str, Result], public: Public):
    result = result_for(results, public)
    run = result.tracked_run
    assert run is not None
    lake = result.tracked.notebook.parent / ".nbtrack" / "lake"
    client = client_for(result.tracked.notebook.parent)
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:  # the Delta sink may finish a moment after MLflow's
        row = lake_rows(lake, "runs", run.info.run_id)
        if (len(row) == 1 and row.status.iloc[0] == run.info.status) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(row) == 1 and row.status.iloc[0] == run.info.status, row.to_dict("records")
    assert row.experiment.iloc[0] == public.name
    assert (row.user_runs.iloc[0] or None) == run.data.tags.get("nbtrack.user_runs")
    params = lake_rows(lake, "params", run.info.run_id)
    assert dict(zip(params.key, params.value, strict=True)) == run.data.params
    metrics = lake_rows(lake, "metrics", run.info.run_id).sort_values(["key", "step"])
    in_lake = {key: list(zip(rows.step, rows.value, strict=True)) for key, rows in metrics.groupby("key")}
    in_mlflow = {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
                 for key in run.data.metrics}
    assert in_lake == in_mlflow


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
