"""A sweep in the Delta lake mirrors MLflow: the parent run is there with its status and
params, and every child points at it, as MLflow's ``mlflow.parentRunId`` does.

A real sweep (papermill kernels, the delivery process, MLflow), then the lake's
``runs`` and ``params`` tables read back with polars, compared field by field.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import client_for, wait_for

from nbtrack.batch.sweep import sweep

pytestmark = pytest.mark.kernel
pl = pytest.importorskip("polars")

NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"


def mlflow_runs(project: Path, sweep_id: str) -> dict[str, dict]:
    client = client_for(project)
    runs = [r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id], f"tags.`nbtrack.sweep_id` = '{sweep_id}'")]
    return {r.info.run_id: {"status": r.info.status, "parent_run_id": r.data.tags.get("mlflow.parentRunId"),
                            "sweep_id": sweep_id, "name": r.info.run_name} for r in runs}


def lake_runs(project: Path, wanted: dict[str, dict]) -> dict[str, dict] | None:
    """The lake's rows of those runs, once it has them all with MLflow's statuses."""
    try:
        table = pl.read_delta(str(project / ".nbtrack" / "lake" / "runs"))
    except Exception:
        return None
    rows = {r["run_id"]: {k: r[k] for k in ("status", "parent_run_id", "sweep_id", "name")}
            for r in table.filter(pl.col("run_id").is_in(list(wanted))).iter_rows(named=True)}
    same = set(rows) == set(wanted) and all(rows[i]["status"] == wanted[i]["status"] for i in wanted)
    return rows if same else None


def test_the_lake_has_the_sweeps_parent_and_children_as_mlflow_does(project):
    nb = project / "train.ipynb"
    nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
    marker = project / "fixed"
    frame = sweep(nb, {"x": [1, 2], "fail_x": 2, "fail_y": 1, "marker": str(marker)}, workers=2)
    sweep_id, parent_id = frame.attrs["sweep_id"], frame.attrs["parent_run_id"]
    assert sorted(frame["status"]) == ["FAILED", "FINISHED"]

    in_mlflow = mlflow_runs(project, sweep_id)
    assert len(in_mlflow) == 3 and in_mlflow[parent_id]["status"] == "FAILED"
    in_lake = wait_for(lambda: lake_runs(project, in_mlflow), timeout=60)
    assert in_lake == in_mlflow  # status, parent, sweep and name of every run, field by field
    assert in_lake[parent_id]["parent_run_id"] is None
    assert {r["parent_run_id"] for i, r in in_lake.items() if i != parent_id} == {parent_id}

    params = pl.read_delta(str(project / ".nbtrack" / "lake" / "params"))
    swept = {r["key"]: r["value"] for r in params.filter(pl.col("run_id") == parent_id).iter_rows(named=True)}
    assert swept == client_for(project).get_run(parent_id).data.params
    assert swept["x"] == "[1, 2]"

    marker.write_text("fixed")  # --resume runs the failed combination again: the parent finishes
    frame = sweep(None, resume=sweep_id, project=project)
    assert list(frame["status"]) == ["FINISHED", "FINISHED"]
    in_mlflow = mlflow_runs(project, sweep_id)
    assert len(in_mlflow) == 4 and in_mlflow[parent_id]["status"] == "FINISHED"
    assert wait_for(lambda: lake_runs(project, in_mlflow), timeout=60) == in_mlflow
