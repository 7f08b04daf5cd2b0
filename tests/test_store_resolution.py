"""One rule decides project and store for every process: a configured store is the one all read.

Real kernels through papermill write the runs; the real CLI, the query API, the
server's service and ``nbtrack recover`` read them back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import stop_daemons, wait_for, write_notebook

pytestmark = pytest.mark.kernel

CELLS = ["%load_ext nbtrack", ("lr = 0.1", ["parameters"]), "val_acc = 0.75"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "NBTRACK_"))}
    return {**env, "NBTRACK_DAEMON_IDLE": "3", **extra}


def papermill(folder: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "papermill", "nb.ipynb", "out.ipynb", "--log-level", "ERROR"],
                   cwd=folder, env=env, check=True, capture_output=True, timeout=240)


def cli(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbtrack.cli.main", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=240)


def finished_runs(uri: str) -> list:
    from nbtrack.store import open_client  # under nbtrack's creation lock: never races the delivery process

    client = open_client(uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return runs if runs and all(r.info.status == "FINISHED" for r in runs) else []


def test_a_store_configured_in_pyproject_is_written_and_read_by_every_path(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    store = tmp_path / "team-store" / "runs.db"
    store.parent.mkdir()
    (project / "pyproject.toml").write_text(f'[tool.nbtrack]\ntracking_uri = "sqlite:///{store}"\n')
    write_notebook(project / "nb.ipynb", CELLS)
    env = clean_env()
    try:
        papermill(project, env)
        (run,) = wait_for(lambda: finished_runs(f"sqlite:///{store}"), timeout=60)
        assert not (project / ".nbtrack" / "mlflow.db").exists()  # nothing in the embedded store
        # the CLI lists and compares it
        listed = cli(project, "runs", "nb.ipynb", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        assert [r["run_id"] for r in json.loads(listed.stdout)] == [run.info.run_id]
        compared = cli(project, "compare", run.info.run_id, "--json", env=env)
        assert compared.returncode == 0, compared.stderr
        assert json.loads(compared.stdout)["runs"][0]["run_id"] == run.info.run_id
        # the Python API and the server's service (what the panel asks)
        import nbtrack
        from nbtrack.server.service import NbtrackService

        assert list(nbtrack.runs(str(project / "nb.ipynb"))["run_id"]) == [run.info.run_id]
        service = NbtrackService(root_dir=str(project))
        assert [r["run_id"] for r in service.runs("nb.ipynb")["runs"]] == [run.info.run_id]
        # recover finds nothing left over and says where it looked
        recovered = cli(project, "recover", env=env)
        assert recovered.returncode == 0, recovered.stderr
    finally:
        stop_daemons(tmp_path)


def test_nbtrack_project_dir_is_honoured_at_load(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    write_notebook(work / "nb.ipynb", CELLS)
    state = tmp_path / "state"
    state.mkdir()
    env = clean_env(NBTRACK_PROJECT_DIR=str(state))
    try:
        papermill(work, env)
        runs = wait_for(lambda: finished_runs(f"sqlite:///{state / '.nbtrack' / 'mlflow.db'}"), timeout=60)
        assert len(runs) == 1 and runs[0].data.metrics["val_acc"] == 0.75
        assert list((state / ".nbtrack" / "journal").glob("**/*.jsonl"))  # the journal went there too
        assert not (work / ".nbtrack").exists()
        listed = cli(work, "runs", "nb.ipynb", "--json", env=env)
        assert [r["run_id"] for r in json.loads(listed.stdout)] == [runs[0].info.run_id]
    finally:
        stop_daemons(tmp_path)
