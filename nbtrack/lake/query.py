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


_OPEN: dict[tuple[str, str], Any] = {}


def _table(lake_uri: str, table: str, storage_options: dict[str, str] | None) -> Any:
    """The table at its latest version; reopened handles are refreshed incrementally."""
    from nbtrack.lake.tables import open_table

    key = (lake_uri, table)
    dt = _OPEN.get(key)
    if dt is not None:
        try:
            dt.update_incremental()
            return dt
        except Exception:  # noqa: BLE001 - vacuumed or rewritten log: open afresh
            _OPEN.pop(key, None)
    dt = open_table(lake_uri, table, storage_options=storage_options)
    if len(_OPEN) > 64:
        _OPEN.clear()
    _OPEN[key] = dt
    return dt


def _scan(
    lake_uri: str,
    table: str,
    *,
    filter: Any = None,
    columns: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pa.Table | None:
    """A filtered read of one table, or None when the lake has no such table."""
    try:
        dt = _table(lake_uri, table, storage_options)
        # Filter after the scan: files written by merges store string_view columns, and
        # pyarrow cannot push an ``isin`` on string down to them.
        data = dt.to_pyarrow_dataset().to_table(columns=columns)
    except NbtrackError as exc:
        log.debug("lake fast path unavailable: %s", exc)
        return None
    return data if filter is None else data.filter(filter)


def list_runs(
    lake_uri: str,
    experiment: str,
    *,
    max_results: int = 1000,
    tracking_uri: str | None = None,
    storage_options: dict[str, str] | None = None,
) -> pd.DataFrame | None:
    """Runs of ``experiment`` (a notebook's path relative to its project), newest first.

    Same shape as ``nbtrack.query.runs.runs_frame``: ``BASE_COLUMNS``, then
    ``params.<key>`` and ``metrics.<key>`` (last value) sorted by key, plus
    ``best.<key>`` (best value: min for losses/errors, else max). None when the
    lake has no leaderboard (fall back to MLflow). With ``tracking_uri``, only runs
    logged to that MLflow store (or to an unknown one) are listed.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = pc.field("experiment") == experiment
    if tracking_uri:
        uri = pc.field("tracking_uri")
        wanted = wanted & (pc.is_null(uri) | (uri == tracking_uri))
    data = _scan(lake_uri, "leaderboard", filter=wanted, storage_options=storage_options)
    if data is None:
        return None
    # MLflow's order: start (to the millisecond it keeps) newest first, ties by run id.
    millis = pc.divide(pc.cast(data.column("start"), pa.int64()), 1000)
    keys = pa.table({"ms": pc.fill_null(millis, -(2**63)),  # unknown start last
                     "run_id": data.column("run_id")})
    order = pc.sort_indices(keys, [("ms", "descending"), ("run_id", "ascending")])
    return _runs_frame(data.take(order[:max_results]))


def _runs_frame(data: pa.Table) -> pd.DataFrame:
    """Leaderboard rows as the ``list_runs`` frame (built in Arrow, converted once)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def column(name: str) -> pa.ChunkedArray | pa.Array:
        source = {v: k for k, v in _RENAMES.items()}.get(name, name)
        if source in data.column_names:
            return data.column(source)
        kind = pa.timestamp("us", tz="UTC") if name.endswith("_time") else pa.string()
        return pa.nulls(data.num_rows, kind)

    columns: dict[str, Any] = {name: column(name) for name in BASE_COLUMNS if name != "duration_s"}
    elapsed = pc.subtract(pc.cast(columns["end_time"], pa.int64()),
                          pc.cast(columns["start_time"], pa.int64()))
    columns["duration_s"] = pc.divide(pc.cast(elapsed, pa.float64()), 1e6)
    for name in ("origin", "sweep_id", "parent_run_id", "rerun_of", "git_commit"):
        columns[name] = pc.fill_null(columns[name], "")
    ordered = {name: columns[name] for name in BASE_COLUMNS}
    for prefix in (PARAM_PREFIX, METRIC_PREFIX, BEST_PREFIX):
        for name in sorted(c for c in data.column_names if c.startswith(prefix)):
            if data.column(name).null_count < data.num_rows:
                ordered[name] = data.column(name)
    return pa.table(ordered).to_pandas()


def _of_runs(
    lake_uri: str,
    table: str,
    run_ids: list[str],
    columns: list[str] | None,
    storage_options: dict[str, str] | None,
) -> pa.Table | None:
    """Rows of ``run_ids`` in one table: DataFusion prunes files and row groups by stats."""
    import pyarrow as pa
    from deltalake import QueryBuilder

    from nbtrack.lake.maintenance import plain_types

    try:
        dt = _table(lake_uri, table, storage_options)
    except NbtrackError as exc:
        log.debug("lake fast path unavailable: %s", exc)
        return None
    if not run_ids:
        return plain_types(pa.table(dt.to_pyarrow_dataset().to_table(columns=columns).slice(0, 0)))
    wanted = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    ids = ", ".join("'" + run.replace("'", "''") + "'" for run in run_ids)
    reader = QueryBuilder().register(table, dt).execute(
        f'SELECT {wanted} FROM "{table}" WHERE run_id IN ({ids})'
    )
    return plain_types(pa.table(reader.read_all()))


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
    - ``inputs``: ``{run_id: [input records]}`` for :func:`nbtrack.capture.lineage.input_drift`.

    None when any run is not in the lake yet.
    """
    import pyarrow.compute as pc

    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return None
    board = _of_runs(lake_uri, "leaderboard", ids, None, storage_options)
    if board is None or set(board.column("run_id").to_pylist()) != set(ids):
        return None
    position = {run: i for i, run in enumerate(board.column("run_id").to_pylist())}
    board = board.take([position[run] for run in ids])
    params: dict[str, dict[str, str]] = {run: {} for run in ids}
    rows = _of_runs(lake_uri, "params", ids, ["run_id", "key", "value", "t"], storage_options)
    if rows is not None:
        for row in sorted(rows.to_pylist(), key=lambda r: r["t"] or 0):
            params[row["run_id"]][row["key"]] = row["value"]
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {run: {} for run in ids}
    points = _of_runs(lake_uri, "metrics", ids, ["run_id", "key", "step", "value", "timestamp"],
                      storage_options)
    if points is not None:
        order = pc.sort_indices(points, [("timestamp", "ascending"), ("step", "ascending")])
        for row in points.take(order).to_pylist():
            histories[row["run_id"]].setdefault(row["key"], []).append((row["step"], row["value"]))
    return {
        "runs": _runs_frame(board),
        "params": params,
        "histories": histories,
        "inputs": run_inputs(lake_uri, ids, storage_options=storage_options)
        or {run: [] for run in ids},
    }


def run_inputs(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]] | None:
    """``{run_id: [input records]}`` (profile decoded), oldest read first; None without a lake."""

    data = _of_runs(lake_uri, "inputs", list(run_ids), None, storage_options)
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
