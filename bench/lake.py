"""Benchmark of the Delta lake: ingest rate, list+compare vs MLflow, optimize.

    python bench/lake.py [--runs 10000] [--keep DIR]

1. Writes real journals (``JournalWriter``) of ``--runs`` runs, 10 events each
   (100,000 events by default), and times ``DeltaSink.deliver`` on them in
   batches of 5,000 events (the delivery loop's batch size).
2. Loads the same runs (same run ids, params, metric histories) into an MLflow
   SQLite store and times listing all runs of the notebook and comparing ten of
   them: the lake (``nbtrack.lake.query``: only the columns each side needs, read
   straight from the tables' Parquet files) against ``mlflow.search_runs`` plus
   ``get_metric_history``. The MLflow side is bulk-loaded through MLflow's own
   SQLAlchemy models in one transaction (10,000 runs through the client API
   take about 6 minutes here); ``search_runs`` reads it like any other store.
3. Counts the lake's files before and after ``optimize``.
Ends with a one-line summary.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

EXPERIMENT = "notebooks/train.ipynb"
BATCH = 5000
SESSIONS = 10
COMPARED = 10


def write_journals(folder: Path, runs: int) -> tuple[list[Path], dict[str, str], list[dict]]:
    """Journals of ``runs`` runs over ``SESSIONS`` sessions; returns paths, key->id, run specs."""
    from nbtrack.journal import JournalWriter

    rng = random.Random(0)
    run_ids: dict[str, str] = {}
    specs: list[dict] = []
    writers = [JournalWriter(folder, f"bench-{s}") for s in range(SESSIONS)]
    for writer in writers:
        writer.append("session_start", pid=os.getpid(), host="bench", python="3", version="bench")
    base = time.time() - runs
    for i in range(runs):
        writer = writers[i % SESSIONS]
        key = f"key{i:05d}"
        run_ids[key] = uuid.uuid4().hex
        params = {"lr": rng.choice([0.1, 0.01, 0.001]), "depth": rng.randint(2, 9), "seed": i}
        losses = [rng.random() for _ in range(3)]
        specs.append({"id": run_ids[key], "params": params, "losses": losses, "start": base + i})
        writer.append("run_start", run=key, experiment=EXPERIMENT, notebook=None, name=None,
                      parent_run_id=None, tags={}, origin="papermill")
        writer.append("params", run=key, params={k: str(v) for k, v in params.items()},
                      values=params, source="parameters", cell_id="c1")
        for step, loss in enumerate(losses):
            writer.append("metric", run=key, key="val_loss", value=loss, step=step, cell_id="c3",
                          exec_count=3)
            writer.append("metric", run=key, key="acc", value=1 - loss, step=step, cell_id="c3",
                          exec_count=3)
        writer.append("cell", run=key, exec_count=3, cell_id="c3", source="fit()",
                      source_sha="x", start=base + i, duration_s=0.5, status="ok",
                      error_name=None, error_value=None)
        writer.append("run_end", run=key, status="FINISHED", notebook=None)
    for writer in writers:
        writer.append("session_end")
        writer.close()
    return [w.path for w in writers], run_ids, specs


def ingest(lake: str, journals: list[Path], run_ids: dict[str, str]) -> tuple[int, float]:
    from nbtrack.journal import read_events
    from nbtrack.sinks.delta import DeltaSink

    sink = DeltaSink(lake)
    batches = []
    for path in journals:
        events = [event for event, _ in read_events(path)]
        batches += [(path, events[i:i + BATCH]) for i in range(0, len(events), BATCH)]
    started = time.perf_counter()
    for path, batch in batches:
        sink.deliver(batch, journal_dir=path.parent, run_ids=run_ids)
    return sum(len(b) for _, b in batches), time.perf_counter() - started


def load_mlflow(uri: str, specs: list[dict]) -> str:
    """The same runs in an MLflow store, bulk-inserted with MLflow's own models."""
    from mlflow.store.tracking.dbmodels import models
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, str(Path(uri.removeprefix("sqlite:///")).parent / "artifacts"))
    experiment_id = store.create_experiment(EXPERIMENT)
    runs, params, metrics, latest, tags = [], [], [], [], []
    for spec in specs:
        rid, start = spec["id"], int(spec["start"] * 1000)
        runs.append({"run_uuid": rid, "name": rid[:8], "source_type": "NOTEBOOK",
                     "source_name": EXPERIMENT, "entry_point_name": "", "user_id": "bench",
                     "status": "FINISHED", "start_time": start, "end_time": start + 500,
                     "deleted_time": None, "source_version": "", "lifecycle_stage": "active",
                     "artifact_uri": f"/tmp/{rid}", "experiment_id": int(experiment_id)})
        params += [{"key": k, "value": str(v), "run_uuid": rid} for k, v in spec["params"].items()]
        tags.append({"key": "nbtrack.run_key", "value": rid, "run_uuid": rid})
        for step, loss in enumerate(spec["losses"]):
            for key, value in (("val_loss", loss), ("acc", 1 - loss)):
                row = {"key": key, "value": value, "timestamp": start + step, "step": step,
                       "is_nan": False, "run_uuid": rid}
                metrics.append(row)
                if step == len(spec["losses"]) - 1:
                    latest.append(dict(row))
    with store.ManagedSessionMaker() as session:
        for model, rows in ((models.SqlRun, runs), (models.SqlParam, params),
                            (models.SqlMetric, metrics), (models.SqlLatestMetric, latest),
                            (models.SqlTag, tags)):
            session.execute(model.__table__.insert(), rows)
    return experiment_id


def best_of(fn: Callable[[], None], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="nbtrack-bench-lake-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    try:
        return run(work, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, runs: int) -> int:
    from nbtrack.lake.maintenance import optimize, show
    from nbtrack.lake.query import compare_data, list_runs

    lake = str(work / "lake")
    journals, run_ids, specs = write_journals(work / "journal", runs)
    events, seconds = ingest(lake, journals, run_ids)
    rows = sum(info.rows for info in show(lake))
    print(f"ingest: {events:,} events in {seconds:.1f} s = {events / seconds:,.0f} events/s "
          f"({rows:,} rows over 8 tables = {rows / seconds:,.0f} rows/s)")

    uri = f"sqlite:///{work / 'mlflow.db'}"
    started = time.perf_counter()
    experiment_id = load_mlflow(uri, specs)
    print(f"mlflow: {runs:,} runs loaded in {time.perf_counter() - started:.1f} s")

    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    chosen = [spec["id"] for spec in random.Random(1).sample(specs, COMPARED)]

    def lake_side() -> None:
        frame = list_runs(lake, EXPERIMENT, max_results=runs)
        assert len(frame) == runs, len(frame)
        data = compare_data(lake, chosen)
        assert data is not None and len(data["histories"][chosen[0]]["val_loss"]) == 3

    def mlflow_side() -> None:
        frame = mlflow.search_runs([experiment_id], max_results=runs)
        assert len(frame) == runs, len(frame)
        for run_id in chosen:
            client.get_run(run_id)
            for key in ("val_loss", "acc"):
                client.get_metric_history(run_id, key)

    lake_side()  # warm both (imports, OS cache)
    mlflow_side()
    lake_s, mlflow_s = best_of(lake_side), best_of(mlflow_side)
    print(f"list {runs:,} runs + compare {COMPARED}: lake {lake_s * 1000:.0f} ms, "
          f"mlflow.search_runs {mlflow_s * 1000:.0f} ms ({mlflow_s / lake_s:.1f}x)")

    before = sum(info.files for info in show(lake))
    optimize(lake, retention_hours=0)
    after = sum(info.files for info in show(lake))
    on_disk = sum(1 for _ in Path(lake).rglob("*.parquet"))
    print(f"optimize: {before} files -> {after} files ({on_disk} parquet files on disk)")

    ok = lake_s < 0.1 and mlflow_s / lake_s >= 100
    one, five, _ = os.getloadavg()
    print(f"SUMMARY ingest {events / seconds:,.0f} events/s | list+compare {runs:,} runs: lake "
          f"{lake_s * 1000:.0f} ms vs mlflow {mlflow_s * 1000:.0f} ms = {mlflow_s / lake_s:.1f}x | "
          f"files {before} -> {after} | load average {one:.1f}/{five:.1f} on {os.cpu_count()} cores | "
          f"goal (<100 ms, >=100x) {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
