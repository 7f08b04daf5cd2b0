"""nbtrack.runs / nbtrack.compare answered from the lake, with MLflow as the fallback.

Runs are written as journals and delivered by the real delivery loop, which
feeds the project's real MLflow store and its real Delta lake.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deltalake")
import pyarrow as pa  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from query_fixtures import (  # noqa: E402
    NOTEBOOK,
    _notebook_json,
    deliver_all,
    input_record,
    journal_run,
    journal_session,
)

from nbtrack.cli.main import main  # noqa: E402
from nbtrack.query.compare import compare  # noqa: E402
from nbtrack.query.runs import list_runs  # noqa: E402

TRAIN = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "city": ["a", "b", "a", "a"], "y": [0, 1, 0, 1]})
MOVED = pa.table({"x": [7.0, 8.0, 9.0, 9.5], "city": ["a", "b", "a", "a"], "y": [0, 1, 0, 1]})


@pytest.fixture
def delivered(project: Path) -> dict[str, str]:
    """Four runs of train.ipynb through the real delivery loop: MLflow ids by key.

    k1 and k2 read the same data, k3 read a shifted ``x``; k4 is still running.
    """
    (project / "notebooks").mkdir()
    (project / NOTEBOOK).write_text(_notebook_json())
    data = str(project / "data" / "train")
    writer = journal_session(project, "s1")
    journal_run(writer, project, "k1", params={"lr": 0.1, "depth": 3},
                metrics={"val_loss": [1.0, 0.5, 0.6], "acc": [0.5, float("nan")]},
                inputs=[input_record(data, TRAIN, 1)])
    journal_run(writer, project, "k2", params={"lr": 0.01}, name=None,
                metrics={"val_loss": [0.9, 0.4], "acc": [0.7, 0.8]},
                inputs=[input_record(data, TRAIN, 2)])
    journal_run(writer, project, "k3", params={"lr": 0.001},
                metrics={"val_loss": [0.8, float("inf")]}, inputs=[input_record(data, MOVED, 3)])
    journal_run(writer, project, "k4", params={"lr": 1.0}, metrics={"acc": [0.1]}, end=None)
    writer.close()
    deliverer = deliver_all(project)
    index = json.loads((project / ".nbtrack" / "journal" / "s1.runs.json").read_text())
    assert (project / ".nbtrack" / "lake" / "leaderboard").is_dir(), deliverer
    return {key: value["run_id"] for key, value in index.items()}


def _from_mlflow(project: Path, monkeypatch: pytest.MonkeyPatch, **kw):
    with monkeypatch.context() as patch:
        patch.setenv("NBTRACK_LAKE", "false")
        return list_runs(project / NOTEBOOK, **kw)


def test_listing_from_the_lake_equals_listing_from_mlflow(
    project: Path, delivered: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    import pandas as pd

    from nbtrack.query.lake import runs_from_lake
    from nbtrack.query.store import resolve_store

    ref = resolve_store(notebook=project / NOTEBOOK)
    lake = runs_from_lake(ref, ref.project.experiment_name(project / NOTEBOOK), 1000)
    mlflow = _from_mlflow(project, monkeypatch)
    assert lake is not None
    pd.testing.assert_frame_equal(lake, mlflow)
    status = dict(zip(lake["run_id"], lake["status"], strict=True))
    assert status == {delivered["k1"]: "FINISHED", delivered["k2"]: "FINISHED",
                      delivered["k3"]: "FINISHED", delivered["k4"]: "RUNNING"}
    assert lake["run_name"].notna().all()  # MLflow's invented name for the unnamed k2 too
    pd.testing.assert_frame_equal(list_runs(project / NOTEBOOK, max_results=2),
                                  _from_mlflow(project, monkeypatch, max_results=2))


def test_a_lake_behind_mlflow_is_not_read(
    project: Path, delivered: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    """MLflow has a run the lake has not got yet: the listing still shows it."""
    from nbtrack.delivery.deliverer import Deliverer
    from nbtrack.project import Project

    writer = journal_session(project, "s2")
    journal_run(writer, project, "k5", params={"lr": 5}, metrics={"acc": [0.9]})
    writer.close()
    deliverer = Deliverer(Project(project))
    deliverer.sinks = deliverer.sinks[:1]  # MLflow only, as between the two sinks of a batch
    deliverer.run_once()
    listed = list_runs(project / NOTEBOOK)
    assert len(listed) == 5 and listed.iloc[0]["params.lr"] == "5"
    deliver_all(project)
    assert len(list_runs(project / NOTEBOOK)) == 5


def test_compare_from_the_lake_reports_input_drift(project: Path, delivered: dict[str, str]):
    ids = delivered
    same = compare([ids["k1"], ids["k2"]])
    assert same.inputs["differ"] is False and same.inputs["drift"] == []
    assert [r["version"] for r in same.inputs["runs"][ids["k2"]]] == [2]
    assert same.histories["val_loss"][ids["k1"]] == [(0, 1.0), (1, 0.5), (2, 0.6)]
    moved = compare([ids["k1"], ids["k3"]])
    [drift] = moved.inputs["drift"]
    assert moved.inputs["differ"] is True
    assert [c["column"] for c in drift["columns"]] == ["x"]
    assert (drift["run_a"], drift["run_b"]) == (ids["k1"], ids["k3"])
    payload = moved.to_dict()
    assert payload["version"] == 2
    assert payload["inputs"]["differ"] is True
    json.dumps(payload, allow_nan=False)
    html = moved._repr_html_()
    assert "inputs differ" in html and "x" in html
    none = compare([ids["k4"], ids["k4"]]).to_dict()["inputs"]
    assert none == {"differ": False, "drift": [], "runs": {}}


def test_compare_from_mlflow_matches_the_lake(
    project: Path, delivered: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    ids = [delivered["k1"], delivered["k3"]]
    fast = compare(ids).to_dict()
    monkeypatch.setenv("NBTRACK_LAKE", "false")
    slow = compare(ids).to_dict()
    assert slow["inputs"] == {"differ": False, "drift": [], "runs": {}}  # lineage is lake-only
    for key in ("runs", "params", "metrics", "histories", "figures", "cells"):
        assert fast[key] == slow[key], key


def test_missing_or_corrupt_lake_falls_back_to_mlflow(
    project: Path, delivered: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    import shutil

    expected = _from_mlflow(project, monkeypatch)
    lake = project / ".nbtrack" / "lake"
    for log in lake.glob("*/_delta_log"):
        for entry in log.glob("*.json"):
            entry.write_text("{garbage")
    assert list_runs(project / NOTEBOOK)["run_id"].tolist() == expected["run_id"].tolist()
    found = compare([delivered["k1"], delivered["k3"]])
    assert found.inputs["differ"] is False and "val_loss" in found.histories
    shutil.rmtree(lake)
    assert list_runs(project / NOTEBOOK)["run_id"].tolist() == expected["run_id"].tolist()


def test_cli_compare_prints_the_drift(
    project: Path, delivered: dict[str, str], capsys: pytest.CaptureFixture[str]
):
    assert main(["compare", delivered["k1"], delivered["k3"]]) == 0
    out = capsys.readouterr().out
    assert "inputs differ: columns x" in out and "mean" in out
    assert main(["compare", delivered["k1"], delivered["k2"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]["differ"] is False
    assert main(["runs", str(project / NOTEBOOK)]) == 0
    assert delivered["k4"][:8] in capsys.readouterr().out


def test_a_relative_lake_path_is_the_same_lake_from_any_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    """Regression: with ``lake_path = "lake"``, batches delivered by the delivery process
    (cwd: the project) and by `nbtrack recover` run in a subfolder went to two lakes, and
    the project's lake lacked metrics and inputs while the cursor said all was delivered."""
    import nbtrack.delivery.deliverer as deliverer
    from nbtrack.project import Project

    (project / "pyproject.toml").write_text('[tool.nbtrack]\nlake_path = "lake"\n')
    (project / "notebooks").mkdir()
    (project / NOTEBOOK).write_text(_notebook_json())
    writer = journal_session(project, "s1", alive=False)
    journal_run(writer, project, "k1", params={"lr": 0.1}, metrics={"val_loss": [1.0, 0.5]},
                inputs=[input_record(str(project / "data"), TRAIN)], end=None)
    writer.close()
    with monkeypatch.context() as patch:
        patch.setattr(deliverer, "BATCH", 3)  # session_start, run_start, params
        first = deliverer.Deliverer(Project(project))
        first.run_once()
        first.close()
    monkeypatch.chdir(project / "notebooks")  # then `nbtrack recover` from a subfolder
    deliver_all(project)
    tables = {p.name for p in (project / "lake").iterdir()}
    assert {"metrics", "inputs", "params", "runs"} <= tables
    assert not (project / "notebooks" / "lake").exists()
    [run] = list_runs(project / NOTEBOOK)["status"]
    assert run == "KILLED"  # the recovered run_end reached the same lake


def test_run_records_from_the_lake_equal_mlflow_records(
    project: Path, delivered: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    """`nbtrack runs` reads the lake with Arrow alone; its rows are the MLflow path's rows."""
    from nbtrack.query.runs import BASE_COLUMNS, run_records, runs_records

    for limit in (1000, 2):
        fast = run_records(project / NOTEBOOK, max_results=limit)
        assert fast == runs_records(_from_mlflow(project, monkeypatch, max_results=limit))
        assert json.dumps(fast, allow_nan=False) == json.dumps(
            runs_records(list_runs(project / NOTEBOOK, max_results=limit)), allow_nan=False)
    assert len(fast) == 2 and set(fast[0]) == {"params", "metrics", *BASE_COLUMNS}


def test_cli_runs_compare_and_lake_show_read_a_current_lake_without_mlflow_or_pandas(
    project: Path, delivered: dict[str, str], capsys: pytest.CaptureFixture[str]
):
    from test_cli_fail_fast import nbtrack

    code, err, imported = nbtrack(project, "runs", NOTEBOOK, "--json")
    assert code == 0 and imported == [], (err, imported)
    code, err, imported = nbtrack(project, "lake", "show")
    assert code == 0 and imported == [], (err, imported)
    code, err, imported = nbtrack(project, "compare", delivered["k1"][:8], delivered["k3"][:8])
    assert code == 0 and imported == [], (err, imported)
    done = subprocess.run([sys.executable, "-m", "nbtrack", "compare", delivered["k1"], delivered["k3"],
                           "--json"], cwd=project, capture_output=True, text=True, timeout=120)
    assert main(["compare", delivered["k1"], delivered["k3"], "--json"]) == 0  # this process has MLflow
    assert json.loads(done.stdout) == json.loads(capsys.readouterr().out)


def test_recover_with_nothing_to_deliver_says_so_without_opening_the_store(project: Path):
    from test_cli_fail_fast import nbtrack

    code, err, imported = nbtrack(project, "recover")
    assert code == 0 and imported == [], (err, imported)
    done = subprocess.run([sys.executable, "-m", "nbtrack", "recover"], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout == f"nothing to deliver: every journal of {project} is delivered\n"


@pytest.mark.parametrize("lake", ["true", "false"])
def test_compare_reading_the_store_file_equals_compare_through_mlflow(
    project: Path, delivered: dict[str, str], monkeypatch: pytest.MonkeyPatch, lake: str
):
    """An embedded store is read with sqlite3 (no MLflow import): the comparison is the one
    MLflow's client gives, params, last and best metrics, curves and all."""
    monkeypatch.setenv("NBTRACK_LAKE", lake)
    ids = [delivered["k1"], delivered["k3"], delivered["k4"]]
    direct = compare(ids).to_dict()
    monkeypatch.setattr("nbtrack.query.compare.read_client", lambda ref: ref.client())
    assert compare(ids).to_dict() == direct
    assert {"acc", "val_loss"} <= {m["key"] for m in direct["metrics"]}


def test_runs_of_a_notebook_never_run_answers_without_mlflow(project: Path):
    from helpers import write_notebook
    from test_cli_fail_fast import nbtrack

    write_notebook(project / "new.ipynb", ["x = 1"])
    code, err, imported = nbtrack(project, "runs", "new.ipynb")
    assert code == 0 and imported == [], (err, imported)
    done = subprocess.run([sys.executable, "-m", "nbtrack", "runs", "new.ipynb"], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout == "no runs yet for new.ipynb, run it with %load_ext nbtrack\n"
