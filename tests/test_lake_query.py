"""Listing and comparing runs straight from the lake, and the ``nbtrack lake`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

from deltalake import DeltaTable, write_deltalake  # noqa: E402

from nbtrack.cli.main import main  # noqa: E402
from nbtrack.journal import JournalWriter, read_events  # noqa: E402
from nbtrack.lake.profile import input_drift  # noqa: E402
from nbtrack.lake.query import compare_data, list_runs, run_inputs  # noqa: E402
from nbtrack.sinks.delta import DeltaSink  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_lake import write_run  # noqa: E402


@pytest.fixture
def lake(tmp_path: Path) -> str:
    """Three runs of train.ipynb (one still running) and one of another notebook."""
    uri = str(tmp_path / "lake")
    sink = DeltaSink(uri)
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        events = write_run(tmp_path / "j", f"s{i}", f"k{i}", params={"lr": lr, "depth": 3},
                           losses=(0.9, 0.5 - i / 10, 0.6), end=i != 2)
        sink.deliver(events, journal_dir=tmp_path, run_ids={f"k{i}": f"run{i}"})
    writer = JournalWriter(tmp_path / "j", "other")
    writer.append("run_start", run="o", experiment="other.ipynb", notebook=None, tags={})
    writer.append("input", run="o", table_uri="/data/t", version=3, schema_hash="abc", rows=10,
                  profile={"x": {"type": "double", "null_frac": 0.0, "mean": 1.0, "std": 1.0}})
    sink.deliver([e for e, _ in read_events(writer.path)], journal_dir=tmp_path, run_ids={})
    return uri


def test_list_runs_reads_one_notebooks_runs_newest_first(lake: str):
    frame = list_runs(lake, "train.ipynb")
    assert frame["run_id"].tolist() == ["run2", "run1", "run0"]
    assert frame["status"].tolist() == ["RUNNING", "FINISHED", "FINISHED"]
    assert frame["params.lr"].tolist() == ["0.001", "0.01", "0.1"]
    assert frame["metrics.val_loss"].tolist() == pytest.approx([0.6, 0.6, 0.6])
    assert frame["best.val_loss"].tolist() == pytest.approx([0.3, 0.4, 0.5])
    assert frame["sweep_id"].tolist() == ["sw1"] * 3
    assert frame["duration_s"].notna().tolist() == [False, True, True]
    assert str(frame["start_time"].dtype).startswith("datetime64")
    assert list_runs(lake, "train.ipynb", max_results=1)["run_id"].tolist() == ["run2"]
    assert list_runs(lake, "nobody.ipynb").empty


def test_list_runs_without_a_lake_says_fall_back(tmp_path: Path):
    assert list_runs(str(tmp_path / "none"), "train.ipynb") is None


def test_compare_data_has_params_curves_and_inputs(lake: str):
    data = compare_data(lake, ["run1", "run0"])
    assert data["runs"]["run_id"].tolist() == ["run1", "run0"]
    assert data["params"]["run0"] == {"lr": "0.1", "depth": "3"}
    assert data["histories"]["run1"]["val_loss"] == [(0, 0.9), (1, 0.4), (2, 0.6)]
    assert data["inputs"] == {"run1": [], "run0": []}
    assert compare_data(lake, ["run1", "not-delivered-yet"]) is None


def test_inputs_and_drift_from_the_lake(lake: str):
    found = run_inputs(lake, ["o"])
    assert [(r["table_uri"], r["version"], r["rows"]) for r in found["o"]] == [("/data/t", 3, 10)]
    assert input_drift(found["o"], found["o"]) == []
    moved = [dict(found["o"][0], profile={"x": dict(found["o"][0]["profile"]["x"], mean=2.0)})]
    [drift] = input_drift(found["o"], moved)
    assert [c.column for c in drift.columns] == ["x"]


def test_cli_show_sql_and_optimize(lake: str, capsys: pytest.CaptureFixture[str]):
    assert main(["lake", "--lake", lake, "show"]) == 0
    shown = capsys.readouterr().out
    assert "leaderboard" in shown and "metrics" in shown

    assert main(["lake", "--lake", lake, "sql", "--format", "json",
                 'SELECT run_id, "params.lr" AS lr, "best.val_loss" AS best FROM leaderboard '
                 "WHERE experiment = 'train.ipynb' ORDER BY best"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["lr"]) for r in rows] == [("run2", "0.001"), ("run1", "0.01"),
                                                     ("run0", "0.1")]
    assert main(["lake", "--lake", lake, "sql", "SELECT count(*) AS n FROM events"]) == 0
    assert capsys.readouterr().out.split()[-1] == str(pl.read_delta(f"{lake}/events").height)

    files_before = len(DeltaTable(f"{lake}/metrics").file_uris())
    assert files_before == 3
    rows_before = pl.read_delta(f"{lake}/metrics").sort("event_id")
    assert main(["lake", "--lake", lake, "optimize", "--retention-hours", "0"]) == 0
    out = capsys.readouterr()
    assert "total files" in out.out and "optimize" in out.err  # progress on stderr
    assert len(DeltaTable(f"{lake}/metrics").file_uris()) == 1
    assert pl.read_delta(f"{lake}/metrics").sort("event_id").equals(rows_before)
    parquet = list(Path(lake, "metrics").glob("*.parquet"))
    assert len(parquet) == 1  # vacuumed


def test_cli_errors_are_one_line_with_exit_codes(
    lake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["lake", "--lake", str(tmp_path / "missing"), "show"]) == 3
    assert "no lake at" in capsys.readouterr().err
    assert main(["lake", "--lake", lake, "sql", "SELECT nope FROM runs"]) == 2
    assert "bad query" in capsys.readouterr().err
    assert main(["lake", "--lake", lake, "sql", "SELECT * FROM nothere"]) == 3
    capsys.readouterr()
    log = Path(lake, "runs", "_delta_log", "00000000000000000000.json")
    log.write_text("garbage")
    assert main(["lake", "--lake", lake, "show"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("nbtrack lake: cannot read Delta table 'runs'") and "\n" not in err


def test_cli_help_for_every_action():
    for action in ("optimize", "sql", "show"):
        out = subprocess.run([sys.executable, "-m", "nbtrack", "lake", action, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage: nbtrack lake" in out.stdout


def test_time_travel_on_lake_tables_reproduces_earlier_rows(tmp_path: Path):
    uri = str(tmp_path / "lake")
    sink = DeltaSink(uri)
    first = write_run(tmp_path / "j", "s1", "k1", losses=(0.5,))
    sink.deliver(first, journal_dir=tmp_path, run_ids={})
    version = DeltaTable(f"{uri}/metrics").version()
    snapshot = pl.read_delta(f"{uri}/metrics")
    sink.deliver(write_run(tmp_path / "j", "s2", "k2", losses=(0.4, 0.3)), journal_dir=tmp_path,
                 run_ids={})
    assert pl.read_delta(f"{uri}/metrics").height == 6
    assert pl.read_delta(f"{uri}/metrics", version=version).equals(snapshot)
    write_deltalake(f"{uri}/metrics", snapshot.to_arrow(), mode="overwrite")  # someone's mistake
    assert pl.read_delta(f"{uri}/metrics", version=version).equals(snapshot)
