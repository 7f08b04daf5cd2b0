"""Eight writer processes (a sweep's workers) appending to the same lake at once.

Processes are spawned, never forked: deltalake panics in a forked child after
the parent used it.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest

pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

from nbtrack.journal import read_events  # noqa: E402

WORKERS = 8


def _deliver_journals(lake: str, journals: list[str], batch: int) -> str:
    """Child process: deliver whole journals in batches; returns '' or the error."""
    try:
        from nbtrack.sinks.delta import DeltaSink

        sink = DeltaSink(lake)
        for path in journals:
            events = [event for event, _ in read_events(Path(path))]
            run_ids = {e["run"]: f"mlflow-{e['run']}" for e in events if e.get("run")}
            for start in range(0, len(events), batch):
                sink.deliver(events[start:start + batch], journal_dir=Path(path).parent,
                             run_ids=run_ids)
        return ""
    except BaseException as exc:  # report, don't hang the pool
        return f"{type(exc).__name__}: {exc}"


def test_eight_spawned_writers_and_racing_replays_write_every_row_once(tmp_path: Path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_lake import write_run

    journal_dir = tmp_path / "journal"
    expected_events = 0
    paths = []
    for i in range(WORKERS):
        events = write_run(journal_dir, f"s{i}", f"k{i}", params={"lr": i / 10, "worker": i},
                           losses=tuple(1 / (j + 1 + i) for j in range(6)))
        expected_events += len(events)
        paths.append(str(journal_dir / f"s{i}.jsonl"))
    lake = str(tmp_path / "lake")
    # Worker i delivers its own journal, then races worker i+1 on that one's journal.
    jobs = [(lake, [paths[i], paths[(i + 1) % WORKERS]], 7) for i in range(WORKERS)]

    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        results = pool.starmap(_deliver_journals, jobs, chunksize=1)

    assert results == [""] * WORKERS
    events = pl.read_delta(f"{lake}/events")
    assert events.height == expected_events
    assert events["event_id"].n_unique() == expected_events
    metrics = pl.read_delta(f"{lake}/metrics")
    assert metrics.height == WORKERS * 12
    assert metrics["event_id"].n_unique() == WORKERS * 12
    runs = pl.read_delta(f"{lake}/runs").sort("run_key")
    assert runs["run_id"].to_list() == [f"mlflow-k{i}" for i in range(WORKERS)]
    assert set(runs["status"]) == {"FINISHED"}
    board = pl.read_delta(f"{lake}/leaderboard").sort("run_key")
    assert board.height == WORKERS
    assert board["params.worker"].to_list() == [str(i) for i in range(WORKERS)]
    assert board["best.val_loss"].to_list() == pytest.approx([1 / (6 + i) for i in range(WORKERS)])
