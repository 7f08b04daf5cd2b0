"""When the project's Delta lake answers a query instead of MLflow, and in which shape.

The lake mirrors MLflow: the delivery loop hands every batch to MLflow first,
then to the lake, so at any moment the lake is at most one batch behind. Rather
than merging two sources row by row, a query reads the lake only when it is
*current*, and that is decided from the journals alone (no MLflow call, which
is what makes the lake the fast path): every journal still being delivered must
have reached the lake as far as it reached MLflow (``<session>.delta.cursor``
at or past ``<session>.mlflow.cursor``; archived journals are fully delivered).
Otherwise (a batch in flight, the lake sink failing, the lake switched off)
MLflow answers. Any trouble reading the lake (missing, corrupt, ``deltalake``
not installed) also means MLflow answers; it never raises.

Known differences, by design: runs MLflow held before the lake was enabled, and
runs logged to MLflow without nbtrack, are only seen through MLflow; a run
deleted in MLflow stays in the lake.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.journal import list_journals
from nbtrack.journal.state import Cursor
from nbtrack.project import Project

if TYPE_CHECKING:
    import pandas as pd

    from nbtrack.store import StoreRef

log = logging.getLogger(__name__)

#: Sink names whose cursors are compared (``MlflowSink.name``, ``DeltaSink.name``).
MLFLOW_SINK, LAKE_SINK = "mlflow", "delta"


def project_lake(ref: StoreRef) -> str | None:
    """The store's lake URI when the lake is on and (for a local path) exists, else None."""
    try:
        from nbtrack.config import project_config

        config = ref.config or project_config(ref.project.root)
    except Exception as exc:  # noqa: BLE001 - a broken config must not break a query
        log.debug("lake not consulted: %s", exc)
        return None
    if not config.lake or config.spark_schema:  # a catalog lake is read through Spark
        return None
    uri = ref.lake_uri
    if "://" not in uri and not Path(uri).is_dir():
        return None
    return uri


def lake_is_current(project: Project) -> bool:
    """Has every journal reached the lake as far as it reached MLflow?"""
    for journal in list_journals(project.journal_dir):
        _, to_mlflow = Cursor(journal.folder, journal.session, MLFLOW_SINK).load()
        _, to_lake = Cursor(journal.folder, journal.session, LAKE_SINK).load()
        if to_lake < to_mlflow:
            return False
    return True


def runs_from_lake(ref: StoreRef, experiment: str, max_results: int) -> pd.DataFrame | None:
    """``list_runs``' frame read from the lake, or None when MLflow must answer.

    The frame has exactly the MLflow path's columns, order and types: times at
    MLflow's millisecond precision, missing params as NaN, no ``best.*`` columns.
    A lake without this notebook's runs also answers None: the runs may predate it.
    """
    lake = project_lake(ref)
    if lake is None or not lake_is_current(ref.project):
        return None
    try:
        from nbtrack.lake.query import list_runs

        frame = list_runs(lake, experiment, max_results=max_results,
                          tracking_uri=ref.tracking_uri)
    except Exception as exc:  # noqa: BLE001 - corrupt log, unreadable files: use MLflow
        log.debug("lake listing failed, reading MLflow: %s", exc)
        return None
    if frame is None or frame.empty:
        return None
    return as_mlflow_frame(frame)


def records_from_lake(ref: StoreRef, experiment: str, max_results: int) -> list[dict[str, Any]] | None:
    """``runs_records(list_runs(...))`` read from the lake with Arrow alone (no pandas, no MLflow):
    what ``nbtrack runs`` prints. None when MLflow must answer, as :func:`runs_from_lake`."""
    lake = project_lake(ref)
    if lake is None or not lake_is_current(ref.project):
        return None
    try:
        from nbtrack.lake.query import runs_table

        table = runs_table(lake, experiment, max_results=max_results,
                           tracking_uri=ref.tracking_uri, best=False)
    except Exception as exc:  # noqa: BLE001 - corrupt log, unreadable files: use MLflow
        log.debug("lake listing failed, reading MLflow: %s", exc)
        return None
    if table is None or table.num_rows == 0:
        return None
    from nbtrack.lake.reader import plain_rows

    return [_record(row) for row in plain_rows(table)]


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row as ``runs_records`` writes the MLflow path's row: times at MLflow's
    millisecond precision, tag columns "" when unset, params as text, NaN metrics left out."""
    from datetime import timedelta

    from nbtrack.lake.query import BASE_COLUMNS
    from nbtrack.lake.schemas import METRIC_PREFIX, PARAM_PREFIX
    from nbtrack.query.values import json_number

    times = {}
    for name, column in (("start_time", "start"), ("end_time", "end")):
        value = row.get(column)
        times[name] = None if value is None else value - timedelta(microseconds=value.microsecond % 1000)
    start, end = times["start_time"], times["end_time"]
    values = {
        "run_id": row["run_id"], "run_name": row.get("name"), "status": row.get("status"),
        "start_time": None if start is None else start.isoformat(),
        "end_time": None if end is None else end.isoformat(),
        "duration_s": (end - start).total_seconds() if start is not None and end is not None else None,
    }
    record: dict[str, Any] = {"params": {}, "metrics": {}}
    for column in BASE_COLUMNS:
        record[column] = values[column] if column in values else row.get(column) or ""
    for column in sorted(row):
        value = row[column]
        if column.startswith(PARAM_PREFIX) and value is not None:
            record["params"][column[len(PARAM_PREFIX):]] = str(value)
        elif column.startswith(METRIC_PREFIX) and value is not None and value == value:
            record["metrics"][column[len(METRIC_PREFIX):]] = json_number(value)
    return record


def as_mlflow_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A lake runs frame in the MLflow path's shape (see ``nbtrack.query.runs.runs_frame``)."""
    import numpy as np
    import pandas as pd

    from nbtrack.lake.schemas import BEST_PREFIX, PARAM_PREFIX

    frame = frame[[c for c in frame.columns if not str(c).startswith(BEST_PREFIX)]].copy()
    epoch = pd.Timestamp(0, tz="UTC")
    millis = {}
    for column in ("start_time", "end_time"):
        millis[column] = (frame[column] - epoch) // pd.Timedelta(1, "ms")
        frame[column] = pd.to_datetime(millis[column], unit="ms", utc=True)
    frame["duration_s"] = ((millis["end_time"] - millis["start_time"]) / 1000.0).astype(float)
    for column in frame.columns:
        if str(column).startswith(PARAM_PREFIX):
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), np.nan)
    return frame.reset_index(drop=True)


def compare_from_lake(ref: StoreRef, run_ids: list[str]) -> dict[str, Any] | None:
    """``nbtrack.lake.query.compare_rows`` for these runs when the lake is current, else None."""
    lake = project_lake(ref)
    if lake is None or not lake_is_current(ref.project):
        return None
    try:
        from nbtrack.lake.query import compare_rows

        return compare_rows(lake, run_ids)
    except Exception as exc:  # noqa: BLE001
        log.debug("lake comparison failed, reading MLflow: %s", exc)
        return None


def inputs_from_lake(ref: StoreRef, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The input records the lake has for these runs (lineage lives only there); {} without."""
    lake = project_lake(ref)
    if lake is None:
        return {}
    try:
        from nbtrack.lake.query import run_inputs

        return run_inputs(lake, run_ids) or {}
    except Exception as exc:  # noqa: BLE001
        log.debug("lake inputs unavailable: %s", exc)
        return {}
