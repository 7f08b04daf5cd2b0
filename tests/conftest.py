"""Shared fixtures: a fresh project folder with its own store, a fresh IPython shell. The plain
helpers are in helpers.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import stop_daemons


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
