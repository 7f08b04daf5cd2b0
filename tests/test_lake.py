"""The Delta sink writes standard Delta tables, exactly once, that other engines read."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

from deltalake import DeltaTable  # noqa: E402

from nbtrack.config import NbtrackConfig  # noqa: E402
from nbtrack.errors import NbtrackError, StoreUnavailable  # noqa: E402
from nbtrack.journal import JournalWriter, read_events  # noqa: E402
from nbtrack.project import Project  # noqa: E402
from nbtrack.sinks.delta import DeltaSink, make_sink  # noqa: E402


def write_run(
    journal_dir: Path,
    session: str,
    run: str,
    *,
    params: dict[str, object] | None = None,
    losses: tuple[float, ...] = (0.9, 0.5, 0.7),
    end: bool = True,
) -> list[dict]:
    """A real journal of one notebook session: one run, params, metrics, a cell, a figure."""
    writer = JournalWriter(journal_dir, session)
    writer.append("session_start", pid=1, host="h", python="3.11", version="0.1.0")
    writer.append(
        "run_start", run=run, experiment="train.ipynb", notebook=str(journal_dir / "train.ipynb"),
        name=None, mlflow_run_id=None, parent_run_id=None, tags={"nbtrack.sweep_id": "sw1"},
        origin="interactive",
    )
    params = params if params is not None else {"lr": 0.1, "depth": 3}
    writer.append(
        "params", run=run, params={k: str(v) for k, v in params.items()}, values=params,
        source="parameters", cell_id="c1",
    )
    for step, loss in enumerate(losses):
        writer.append("metric", run=run, key="val_loss", value=loss, step=step, cell_id="c2",
                      exec_count=2)
        writer.append("metric", run=run, key="acc", value=1 - loss, step=step, cell_id="c2",
                      exec_count=2)
    writer.append(
        "cell", run=run, exec_count=2, cell_id="c2", source="train()", source_sha="abc",
        start=time.time(), duration_s=0.25, status="ok", error_name=None, error_value=None,
    )
    writer.append("artifact", run=run, path="figures/2-c2-0.png", file="x.png", kind="figure",
                  mime="image/png", cell_id="c2", exec_count=2)
    if end:
        writer.append("run_end", run=run, status="FINISHED", notebook=None)
        writer.append("session_end")
    writer.close()
    return [event for event, _ in read_events(writer.path)]


def deliver(sink: DeltaSink, events: list[dict], journal_dir: Path, run_ids=None) -> None:
    sink.deliver(events, journal_dir=journal_dir, run_ids=run_ids or {})


def read(lake: Path, table: str) -> pl.DataFrame:
    return pl.read_delta(str(lake / table))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def test_tables_are_standard_delta_read_by_polars_and_pyarrow(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1")
    deliver(DeltaSink(str(lake)), events, tmp_path, {"k1": "mlflow-run-1"})

    # Polars (its own Delta reader) sees every table.
    bronze = read(lake, "events").sort("seq")
    assert bronze["event_id"].to_list() == [e["id"] for e in events]
    assert json.loads(bronze.filter(pl.col("type") == "metric")["payload"][0])["key"] == "val_loss"
    runs = read(lake, "runs")
    assert runs.select("run_id", "run_key", "experiment", "status", "sweep_id").rows() == [
        ("mlflow-run-1", "k1", "train.ipynb", "FINISHED", "sw1")
    ]
    params = read(lake, "params").sort("key")
    assert params.select("run_id", "key", "value").rows() == [
        ("mlflow-run-1", "depth", "3"), ("mlflow-run-1", "lr", "0.1")
    ]
    assert json.loads(params["value_json"][1]) == 0.1
    cells = read(lake, "cells")
    assert cells.select("exec_count", "cell_id", "status", "duration_s").rows() == [
        (2, "c2", "ok", 0.25)
    ]
    assert read(lake, "artifacts")["path"].to_list() == ["figures/2-c2-0.png"]

    # pyarrow's dataset reader over the table's Parquet files agrees row for row.
    metrics = DeltaTable(str(lake / "metrics"))
    table = ds.dataset(metrics.file_uris(), format="parquet").to_table()
    assert table.num_rows == 6
    assert sorted(table.column("value").to_pylist())[:3] == pytest.approx([0.1, 0.3, 0.5])
    assert set(table.column("run_id").to_pylist()) == {"mlflow-run-1"}


def test_leaderboard_pivots_params_and_keeps_last_and_best(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1", losses=(0.9, 0.5, 0.7))
    deliver(DeltaSink(str(lake)), events, tmp_path, {"k1": "r1"})

    board = read(lake, "leaderboard").to_dicts()
    assert len(board) == 1
    row = board[0]
    assert row["params.lr"] == "0.1" and row["params.depth"] == "3"
    assert row["metrics.val_loss"] == pytest.approx(0.7)  # last value
    assert row["best.val_loss"] == pytest.approx(0.5)  # loss: lower is better
    assert row["best.acc"] == pytest.approx(0.5)  # acc: higher is better
    assert row["status"] == "FINISHED"


def test_one_commit_per_table_per_batch(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1")
    deliver(DeltaSink(str(lake)), events, tmp_path)
    for table in ("events", "metrics", "runs", "leaderboard"):
        # version 0 creates the table, version 1 is the single commit of the batch.
        assert DeltaTable(str(lake / table)).version() == 1, table


def test_replayed_journal_adds_no_rows(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1")
    ids = {"k1": "r1"}
    deliver(DeltaSink(str(lake)), events[:5], tmp_path, ids)
    deliver(DeltaSink(str(lake)), events[:9], tmp_path, ids)  # overlaps the first batch
    deliver(DeltaSink(str(lake)), events, tmp_path, ids)
    before = {t: read(lake, t).height for t in ("events", "metrics", "params", "cells")}
    # A crash-recovered delivery replays the whole journal, in other batch sizes.
    sink = DeltaSink(str(lake))
    for start in range(0, len(events), 4):
        deliver(sink, events[start:start + 4], tmp_path, ids)
    deliver(sink, events, tmp_path, ids)

    after = {t: read(lake, t).height for t in before}
    assert after == before == {"events": len(events), "metrics": 6, "params": 2, "cells": 1}
    assert read(lake, "events")["event_id"].n_unique() == len(events)
    assert read(lake, "runs").height == 1
    assert read(lake, "leaderboard")["best.val_loss"].to_list() == [pytest.approx(0.5)]


def test_status_moves_forward_and_replay_never_regresses_it(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1")
    start_only = [e for e in events if e["type"] != "run_end"]
    sink = DeltaSink(str(lake))
    deliver(sink, start_only[:3], tmp_path)
    assert read(lake, "runs")["status"].to_list() == ["RUNNING"]
    deliver(sink, events, tmp_path)
    assert read(lake, "runs")["status"].to_list() == ["FINISHED"]
    deliver(DeltaSink(str(lake)), start_only[:3], tmp_path)  # a stale replay
    assert read(lake, "runs")["status"].to_list() == ["FINISHED"]
    assert read(lake, "runs")["end"].null_count() == 0


def test_two_racing_deliveries_write_each_row_once(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1", losses=tuple(i / 50 for i in range(40)))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            sink = DeltaSink(str(lake))
            for start in range(0, len(events), 15):
                deliver(sink, events[: start + 15], tmp_path, {"k1": "r1"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert read(lake, "events").height == len(events)
    assert read(lake, "metrics").height == 80
    assert read(lake, "metrics")["event_id"].n_unique() == 80


def test_new_params_add_columns_and_old_versions_still_read(tmp_path: Path, lake: Path):
    sink = DeltaSink(str(lake))
    deliver(sink, write_run(tmp_path / "j", "s1", "k1", params={"lr": 0.1}), tmp_path)
    version = DeltaTable(str(lake / "leaderboard")).version()
    deliver(sink, write_run(tmp_path / "j", "s2", "k2", params={"lr": 0.2, "dropout": 0.5}),
            tmp_path)

    board = read(lake, "leaderboard").sort("run_id")
    assert board["params.dropout"].to_list() == [None, "0.5"]
    old = pl.read_delta(str(lake / "leaderboard"), version=version)
    assert "params.dropout" not in old.columns and old.height == 1


def test_metric_names_with_spaces_become_legal_columns(tmp_path: Path, lake: Path):
    writer = JournalWriter(tmp_path / "j", "s1")
    writer.append("run_start", run="k1", experiment="e", notebook=None, tags={})
    writer.append("metric", run="k1", key="val loss (avg)", value=float("nan"), step=0)
    writer.append("metric", run="k1", key="val loss (avg)", value=0.4, step=1)
    writer.append("metric", run="k1", key="f1", value=float("inf"), step=0)
    events = [e for e, _ in read_events(writer.path)]
    deliver(DeltaSink(str(lake)), events, tmp_path)
    row = read(lake, "leaderboard").to_dicts()[0]
    assert row["metrics.val_loss__avg_"] == pytest.approx(0.4)
    assert row["best.val_loss__avg_"] == pytest.approx(0.4)  # NaN never wins "best"
    assert row["best.f1"] == float("inf")
    values = read(lake, "metrics").sort("step")["value"].to_list()
    assert any(v != v for v in values)  # NaN kept as such in silver


def test_corrupt_lake_is_a_clear_error(tmp_path: Path, lake: Path):
    events = write_run(tmp_path / "journal", "s1", "k1")
    deliver(DeltaSink(str(lake)), events[:4], tmp_path)
    log = lake / "events" / "_delta_log" / "00000000000000000001.json"
    log.write_text("this is not json {")
    with pytest.raises(StoreUnavailable, match="events.*not|events.*Json|cannot") as info:
        deliver(DeltaSink(str(lake)), events, tmp_path)
    assert "\n" not in str(info.value)


def test_lake_path_that_is_a_file_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "lake"
    blocker.write_text("not a folder")
    with pytest.raises(NbtrackError, match="cannot create Delta table"):
        deliver(DeltaSink(str(blocker)), write_run(tmp_path / "j", "s1", "k1"), tmp_path)


def test_make_sink_follows_config(tmp_path: Path):
    from nbtrack.store import resolve

    project = Project(tmp_path)
    config = NbtrackConfig()
    sink = make_sink(resolve(project=project, config=config))
    assert isinstance(sink, DeltaSink) and sink.lake_uri == str(project.lake_dir)
    config.lake_path = str(tmp_path / "elsewhere")
    assert make_sink(resolve(project=project, config=config)).lake_uri == str(tmp_path / "elsewhere")
    config.lake = False
    assert make_sink(resolve(project=project, config=config)) is None


def test_forget_sessions_deletes_only_their_bronze_events(tmp_path: Path, lake: Path):
    from nbtrack.lake.maintenance import forget_sessions

    sink = DeltaSink(str(lake))
    kept = write_run(tmp_path / "journal", "kept", "k1")
    stray = write_run(tmp_path / "journal", "stray", "k2")
    deliver(sink, kept, tmp_path, {"k1": "run1"})
    deliver(sink, stray[:1], tmp_path)  # only its session_start reached the lake
    assert read(lake, "events")["session"].unique().sort().to_list() == ["kept", "stray"]
    assert forget_sessions(str(lake), ["stray"]) == 1
    assert read(lake, "events")["session"].unique().to_list() == ["kept"]
    assert read(lake, "events").height == len(kept)
    assert forget_sessions(str(tmp_path / "no-lake"), ["stray"]) == 0
