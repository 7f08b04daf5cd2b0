"""Shared fixtures: a fresh project folder, a fresh IPython shell, notebooks, the store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

KERNEL_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def write_notebook(path: Path, cells: list[Any]) -> nbformat.NotebookNode:
    """Cells are sources, or ``(source, [tags])`` pairs. Returns the notebook (with cell ids)."""
    nb = nbformat.v4.new_notebook(metadata=KERNEL_METADATA)
    for cell in cells:
        source, cell_tags = (cell, []) if isinstance(cell, str) else cell
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": cell_tags} if cell_tags else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return nb


def stop_daemons(root: Path) -> None:
    """End delivery processes a test started (they would exit on their own after idling)."""
    for pid_file in root.rglob(".nbtrack/delivery.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def client_for(root: Path) -> Any:
    """A client of the project's store, made under nbtrack's creation lock: a test reading a store
    that a delivery process is creating must not race it in MLflow's schema migration."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    db = root / ".nbtrack" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db) + ".lock", timeout=120):
        client = MlflowClient(f"sqlite:///{db}")
        client.search_experiments(max_results=1)
    return client


def user_metrics(run: Any) -> dict[str, float]:
    """A run's metrics less the ``system/`` ones the delivery process samples (they vary run to run)."""
    return {k: v for k, v in run.data.metrics.items() if not k.startswith("system/")}


def all_runs(root: Path) -> list[Any]:
    client = client_for(root)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created by MLflow once per test session (its schema
    migration takes seconds); each project gets a copy, so every test has its own real store."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Any:
    root = tmp_path / "proj"
    (root / ".nbtrack").mkdir(parents=True)
    shutil.copy(empty_store, root / ".nbtrack" / "mlflow.db")
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # <project> is the git root
    monkeypatch.chdir(root)
    for name in list(os.environ):
        if name.startswith(("NBTRACK_", "MLFLOW_", "JPY_SESSION")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NBTRACK_DAEMON_IDLE", "3")
    yield root
    stop_daemons(tmp_path)


@pytest.fixture(autouse=True)
def _forget_mlflows_tracking_uri() -> Any:
    """``mlflow.set_tracking_uri`` in a test also sets MLFLOW_TRACKING_URI for the whole process;
    undo both so a later test resolves its own project's store."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    import sys

    if "mlflow" in sys.modules:
        from mlflow.tracking._tracking_service import utils

        if utils._tracking_uri is not None:
            utils.set_tracking_uri(None)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture
def shell(project: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh InteractiveShell with the inline matplotlib backend, delivering from a thread."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("NBTRACK_DELIVERY", "thread")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # capture may set it: restore "unset" afterwards
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()
    from matplotlib_inline.backend_inline import configure_inline_support

    # What ipykernel does in every new kernel process; reset the module's memory of an earlier shell.
    configure_inline_support.current_backend = "unset"
    configure_inline_support(sh, "inline")
    import matplotlib

    matplotlib.use("module://matplotlib_inline.backend_inline")  # even if an earlier test chose Agg
    yield sh
    import nbtrack
    from nbtrack.capture import extension

    if id(sh) in extension._installed:
        nbtrack.unload_ipython_extension(sh)
    InteractiveShell.clear_instance()


def run_notebook_cells(shell: Any, nb: nbformat.NotebookNode, indices: list[int] | None = None) -> list[Any]:
    """Execute cells like JupyterLab does (with their cell ids); returns the results."""
    cells = nb.cells if indices is None else [nb.cells[i] for i in indices]
    return [shell.run_cell(cell.source, store_history=True, cell_id=cell.id) for cell in cells]


def session_of(shell: Any) -> Any:
    from nbtrack.capture import extension

    return extension._installed[id(shell)].session
