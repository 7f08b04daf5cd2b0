"""Listing and comparing runs from the lake: the fast path of ``nbtrack.runs``/``compare``.

MLflow's search reads every run's params, metrics and tags row by row from its
store; the gold ``leaderboard`` already has one row per run with params and
metrics pivoted, so listing a notebook's runs is one filtered scan of one table.
Every function returns ``None`` when the lake cannot answer (no lake, a table
missing, a run not delivered yet), and the caller falls back to MLflow.

The lake lags MLflow by at most one delivery batch (MLflow is delivered first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError
from nbtrack.lake.schemas import BEST_PREFIX, METRIC_PREFIX, PARAM_PREFIX

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

#: Columns of ``list_runs``: the same as ``nbtrack.query.runs.BASE_COLUMNS``.
BASE_COLUMNS = [
    "run_id", "run_name", "status", "start_time", "end_time", "duration_s",
    "origin", "sweep_id", "parent_run_id", "rerun_of", "git_commit",
]
_RENAMES = {"name": "run_name", "start": "start_time", "end": "end_time"}


def _scan(
    lake_uri: str,
    table: str,
    *,
    filter: Any = None,
    columns: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pa.Table | None:
    """A filtered read of one table, or None when the lake has no such table."""
    from nbtrack.lake.tables import open_table

    try:
        dt = open_table(lake_uri, table, storage_options=storage_options)
        return dt.to_pyarrow_dataset().to_table(filter=filter, columns=columns)
    except NbtrackError as exc:
        log.debug("lake fast path unavailable: %s", exc)
        return None


def list_runs(
    lake_uri: str,
    experiment: str,
    *,
    max_results: int = 1000,
    storage_options: dict[str, str] | None = None,
) -> pd.DataFrame | None:
    """Runs of ``experiment`` (a notebook's path relative to its project), newest first.

    Same shape as ``nbtrack.query.runs.runs_frame``: ``BASE_COLUMNS``, then
    ``params.<key>`` and ``metrics.<key>`` (last value) sorted by key, plus
    ``best.<key>`` (best value: min for losses/errors, else max). None when the
    lake has no leaderboard (fall back to MLflow).
    """
    import pyarrow.compute as pc

    data = _scan(lake_uri, "leaderboard", filter=pc.field("experiment") == experiment,
                 storage_options=storage_options)
    if data is None:
        return None
    frame = data.to_pandas()
    frame = frame.sort_values("start", ascending=False, na_position="last").head(max_results)
    return _runs_frame(frame)


def _runs_frame(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = frame.rename(columns=_RENAMES).reset_index(drop=True)
    frame["duration_s"] = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
    for column in BASE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in ("origin", "sweep_id", "parent_run_id", "rerun_of", "git_commit"):
        frame[column] = frame[column].fillna("")

    def dynamic(prefix: str) -> list[str]:
        present = [c for c in frame.columns if c.startswith(prefix) and frame[c].notna().any()]
        return sorted(present)

    columns = BASE_COLUMNS + dynamic(PARAM_PREFIX) + dynamic(METRIC_PREFIX) + dynamic(BEST_PREFIX)
    out = frame[columns].copy()
    for column in ("start_time", "end_time"):
        out[column] = pd.to_datetime(out[column], utc=True)
    return out


def compare_data(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Everything ``compare`` needs for ``run_ids`` in four scans, or None to fall back.

    Returns a dict of:

    - ``runs``: the runs' leaderboard rows (``list_runs`` shape), in ``run_ids`` order;
    - ``params``: ``{run_id: {key: value}}``;
    - ``histories``: ``{run_id: {metric: [(step, value), ...]}}`` in logging order;
    - ``inputs``: ``{run_id: [input records]}`` for :func:`nbtrack.lineage.input_drift`.

    None when any run is not in the lake yet.
    """
    import pyarrow.compute as pc

    ids = list(dict.fromkeys(run_ids))
    wanted = pc.field("run_id").isin(ids)
    board = _scan(lake_uri, "leaderboard", filter=wanted, storage_options=storage_options)
    if board is None or set(board.column("run_id").to_pylist()) != set(ids):
        return None
    frame = board.to_pandas().set_index("run_id", drop=False).loc[ids].reset_index(drop=True)
    params: dict[str, dict[str, str]] = {run: {} for run in ids}
    rows = _scan(lake_uri, "params", filter=wanted, columns=["run_id", "key", "value", "t"],
                 storage_options=storage_options)
    if rows is not None:
        for row in sorted(rows.to_pylist(), key=lambda r: r["t"] or 0):
            params[row["run_id"]][row["key"]] = row["value"]
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {run: {} for run in ids}
    points = _scan(lake_uri, "metrics", filter=wanted,
                   columns=["run_id", "key", "step", "value", "timestamp"],
                   storage_options=storage_options)
    if points is not None:
        order = pc.sort_indices(points, [("timestamp", "ascending"), ("step", "ascending")])
        for row in points.take(order).to_pylist():
            histories[row["run_id"]].setdefault(row["key"], []).append((row["step"], row["value"]))
    return {
        "runs": _runs_frame(frame),
        "params": params,
        "histories": histories,
        "inputs": run_inputs(lake_uri, ids, storage_options=storage_options) or {},
    }


def run_inputs(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]] | None:
    """``{run_id: [input records]}`` (profile decoded), oldest read first; None without a lake."""
    import pyarrow.compute as pc

    data = _scan(lake_uri, "inputs", filter=pc.field("run_id").isin(list(run_ids)),
                 storage_options=storage_options)
    if data is None:
        return None
    found: dict[str, list[dict[str, Any]]] = {run: [] for run in run_ids}
    for row in sorted(data.to_pylist(), key=lambda r: r["t"] or 0):
        try:
            row["profile"] = json.loads(row["profile"]) if row["profile"] else {}
        except ValueError:
            row["profile"] = {}
        found.setdefault(row["run_id"], []).append(row)
    return found
