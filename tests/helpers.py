"""Helpers shared by the tests (plain functions; the fixtures are in conftest.py): notebooks
written to disk, the project's MLflow store read safely, waiting for runs to end, a shell's
capture session, delivery processes stopped, a real MLflow tracking server.

Import them as ``from helpers import client_for, finished_runs, write_notebook``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat

#: A run's statuses once it has ended.
TERMINAL = ("FINISHED", "FAILED", "KILLED")

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
    """Every run of the project's store."""
    return runs_of(client_for(root))


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    """``predicate()``'s first true value, polled every ``interval`` s; its last value (false)
    when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)




def run_notebook_cells(shell: Any, nb: nbformat.NotebookNode, indices: list[int] | None = None) -> list[Any]:
    """Execute cells like JupyterLab does (with their cell ids); returns the results."""
    cells = nb.cells if indices is None else [nb.cells[i] for i in indices]
    return [shell.run_cell(cell.source, store_history=True, cell_id=cell.id) for cell in cells]


def session_of(shell: Any) -> Any:
    """The capture session nbtrack's extension runs in ``shell``."""
    from nbtrack.capture import extension

    return extension._installed[id(shell)].session


def runs_of(client: Any) -> list[Any]:
    """Every run of every experiment a client sees (newest first within an experiment)."""
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def finished_runs(store: Path | Any, n: int = 1, *, timeout: float = 30.0,
                  statuses: tuple[str, ...] = TERMINAL) -> list[Any]:
    """The runs whose status is one of ``statuses``, oldest first, once there are ``n`` of them.

    ``store`` is a project folder (its store is read as :func:`client_for` reads it) or an
    MLflow client. Fails the test, with every run's status, when ``timeout`` passes first.
    """
    def client() -> Any:
        return client_for(store) if isinstance(store, Path) else store

    def ready() -> list[Any]:
        ended = [r for r in runs_of(client()) if r.info.status in statuses]
        return ended if len(ended) >= n else []

    runs = wait_for(ready, timeout=timeout)
    assert runs, (f"fewer than {n} runs {'/'.join(statuses)} within {timeout:g} s: "
                  f"{[r.info.status for r in runs_of(client())]}")
    return sorted(runs, key=lambda r: r.info.start_time)


def free_port() -> int:
    """A TCP port of localhost that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mlflow_server(folder: Path, *, port: int | None = None,
                  env: dict[str, str] | None = None) -> Iterator[str]:
    """A real MLflow tracking server on localhost (``port``, else a free one) keeping its runs in
    ``folder`` (SQLite, artifacts proxied); yields its URI once it answers, stops it at exit."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts")]
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            assert server.poll() is None, (folder / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5):
                    return True
            except OSError:
                return False

        assert wait_for(answers, timeout=120, interval=0.5), (folder / "server.log").read_text()
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
