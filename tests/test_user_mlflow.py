"""A notebook's own MLflow use stays exactly its own (real kernels through papermill).

Each notebook runs in fresh projects (no store yet, as a new user meets it):
once plain, and five times with ``%load_ext nbtrack`` (the race that crashed a
first run needs repeats). The runs the notebook's MLflow wrote, compared field
by field with the plain run's less ids, times and random names, must be the
same; nbtrack's run must exist in nbtrack's store, link the notebook's runs and
carry the notebook's status, in MLflow and in the lake alike.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import stop_daemons, wait_for, write_notebook

import nbtrack
from nbtrack.query.links import run_url

pytestmark = pytest.mark.kernel

REPEATS = 5

NOTEBOOKS: dict[str, list[Any]] = {
    # three runs, the first in the very cell that imports MLflow
    "three_runs": [
        ("alpha = 0.5", ["parameters"]),
        "import mlflow\nwith mlflow.start_run(run_name='first'):\n"
        "    mlflow.log_param('alpha', alpha)\n    mlflow.log_metric('rmse', 0.5)\nrmse = 0.5",
        "for i in (2, 3):\n    with mlflow.start_run(run_name=f'run-{i}'):\n"
        "        mlflow.log_params({'alpha': alpha, 'i': i})\n"
        "        for step in range(3):\n            mlflow.log_metric('rmse', 1 / (i + step), step=step)\n"
        "        rmse = 1 / (i + 2)\n        mlflow.set_tag('kind', 'loop')",
    ],
    # no start_run: MLflow opens a run itself and ends it at exit
    "implicit_run": [
        ("alpha = 0.1", ["parameters"]),
        "import mlflow\nmlflow.log_param('alpha', alpha)\nrmse, mae, r2 = 0.3, 0.2, 0.9\n"
        "mlflow.log_metrics({'rmse': rmse, 'mae': mae, 'r2': r2})",
        "mlflow.log_metric('rmse', 0.25, step=1)\nrmse = 0.25",
    ],
    # parent and child runs in two experiments
    "nested": [
        "import mlflow",
        "mlflow.set_experiment('exp-a')\nwith mlflow.start_run(run_name='parent-a'):\n"
        "    mlflow.log_param('level', 'parent')\n"
        "    with mlflow.start_run(run_name='child-a', nested=True):\n"
        "        mlflow.log_metric('loss', 0.4)\n"
        "mlflow.set_experiment('exp-b')\nwith mlflow.start_run(run_name='parent-b'):\n"
        "    with mlflow.start_run(run_name='child-b', nested=True):\n        mlflow.log_metric('loss', 0.3)",
    ],
    # fails after its own run ended
    "raises": [
        "import mlflow\nwith mlflow.start_run(run_name='done'):\n    mlflow.log_metric('acc', 0.8)\nacc = 0.8",
        "raise ValueError('data went missing')",
    ],
}


def make_project(folder: Path, name: str, tracked: bool) -> Path:
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    cells = (["%load_ext nbtrack"] if tracked else []) + NOTEBOOKS[name]
    write_notebook(folder / "nb.ipynb", cells)
    return folder


def papermill(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "NBTRACK_"))}
    env["NBTRACK_DAEMON_IDLE"] = "3"
    for _ in range(3):
        result = subprocess.run([sys.executable, "-m", "papermill", "nb.ipynb", "out.ipynb", "--log-level", "ERROR"],
                                cwd=folder, env=env, capture_output=True, text=True, timeout=240)
        # Kernels started at once by separate processes can pick the same free port (jupyter_client
        # avoids that only within one process): such a kernel dies before it runs a cell. Start it again.
        if "Kernel died before replying to kernel_info" not in result.stderr:
            break
    return result


def _name(name: str) -> str:
    """MLflow names an unnamed run at random (``zealous-zebra-509``)."""
    return "<random>" if re.fullmatch(r"[a-z]+-[a-z]+-\d+", name or "") else name


def user_store(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The notebook's own runs (MLflow 3's default store, ./mlflow.db), less ids, times and random names."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    found: dict[str, list[dict[str, Any]]] = {}
    for experiment in client.search_experiments():
        runs = client.search_runs([experiment.experiment_id])
        names = {r.info.run_id: _name(r.info.run_name) for r in runs}
        rows = []
        for run in runs:
            tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.parentRunId"}
            tags["mlflow.runName"] = _name(tags.get("mlflow.runName", ""))
            rows.append({
                "name": names[run.info.run_id], "status": run.info.status, "stage": run.info.lifecycle_stage,
                "params": run.data.params, "tags": tags,
                "parent": names.get(run.data.tags.get("mlflow.parentRunId", "")),
                "metrics": {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
                            for k in run.data.metrics},
                "artifacts": run.info.artifact_uri.replace(str(folder), "<project>")
                .replace(run.info.run_id, "<run>").replace(experiment.experiment_id, "<exp>"),
            })
        found[experiment.name] = sorted(rows, key=lambda r: r["name"])
    return found


def user_run_ids(folder: Path) -> set[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    return {r.info.run_id for e in client.search_experiments() for r in client.search_runs([e.experiment_id])}


def files_beside(folder: Path) -> set[str]:
    """What the notebook left in its folder (nbtrack's own .nbtrack/ aside)."""
    skip = {".git", ".nbtrack"}
    return {p.relative_to(folder).parts[0] for p in folder.iterdir() if p.name not in skip}


def nbtrack_run(folder: Path) -> Any:
    from nbtrack.store import open_client  # under nbtrack's creation lock: never races the delivery process

    client = open_client(f"sqlite:///{folder / '.nbtrack' / 'mlflow.db'}")

    def finished() -> Any:
        runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
        return runs if runs and all(r.info.status in ("FINISHED", "FAILED", "KILLED") for r in runs) else None

    runs = wait_for(finished, timeout=60)
    assert runs, f"nbtrack's run never ended in {folder}/.nbtrack/mlflow.db"
    (run,) = runs
    return run


def lake_row(folder: Path, run_id: str) -> dict[str, Any]:
    from deltalake import DeltaTable

    def row() -> dict[str, Any] | None:
        try:
            rows = DeltaTable(str(folder / ".nbtrack" / "lake" / "runs")).to_pyarrow_table().to_pylist()
        except Exception:  # noqa: BLE001 - not written yet
            return None
        found = [r for r in rows if r["run_id"] == run_id and r["status"] != "RUNNING"]
        return found[0] if found else None

    found = wait_for(row, timeout=30)
    assert found, f"no ended lake row for {run_id}"
    return found


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebooks_own_mlflow_runs_are_identical_with_and_without_nbtrack(tmp_path: Path, name: str) -> None:
    plain = make_project(tmp_path / "plain", name, False)
    folders = [plain] + [make_project(tmp_path / f"tracked-{i}", name, True) for i in range(REPEATS)]
    try:
        with ThreadPoolExecutor(max_workers=len(folders)) as pool:
            results = dict(zip(folders, pool.map(papermill, folders), strict=True))
        expected_failure = name == "raises"
        for folder in folders:
            result = results[folder]
            assert (result.returncode != 0) == expected_failure, result.stderr[-3000:]
            assert "Online migration" not in result.stderr and "Traceback" not in result.stdout
            if expected_failure:
                assert "data went missing" in result.stderr
        expected = user_store(plain)
        assert expected, "the plain notebook logged no runs"
        for tracked in folders[1:]:
            # the notebook's runs: same runs, params, metric histories, tags, statuses and store
            assert user_store(tracked) == expected
            assert files_beside(tracked) == files_beside(plain)
            # nbtrack's run: its own store, linking every run the notebook made, with its status
            ours = nbtrack_run(tracked)
            status = "FAILED" if expected_failure else "FINISHED"
            assert ours.info.status == status
            linked = json.loads(ours.data.tags["nbtrack.user_runs"])
            assert {item["run_id"] for item in linked} == user_run_ids(tracked)
            assert {item.get("tracking_uri") for item in linked if "tracking_uri" in item} == {
                f"sqlite:///{tracked / 'mlflow.db'}"}
            row = lake_row(tracked, ours.info.run_id)
            assert row["status"] == status
            assert {item["run_id"] for item in json.loads(row["user_runs"])} == user_run_ids(tracked)
        # nbtrack compare shows them, with the command that opens their store
        shown = nbtrack.compare(ours.info.run_id, project=tracked)
        assert {item["run_id"] for item in shown.to_dict()["runs"][0]["user_runs"]} == user_run_ids(tracked)
        html = shown._repr_html_()
        assert "The notebook&#x27;s own MLflow runs" in html or "The notebook's own MLflow runs" in html
        assert f"mlflow ui --backend-store-uri sqlite:///{tracked / 'mlflow.db'}" in html
    finally:
        stop_daemons(tmp_path)


def test_links_point_into_the_mlflow_ui_of_a_tracking_server() -> None:
    assert run_url("http://mlflow.example:5000/", "7", "abc") == "http://mlflow.example:5000/#/experiments/7/runs/abc"
    assert run_url("sqlite:////work/mlflow.db", "7", "abc") is None  # opened with `mlflow ui`, no address
