"""Listing and comparing runs from the lake: the fast path of ``nbtrack.runs``/``compare``.

MLflow's search reads every run's params, metrics and tags row by row from its
store; the gold ``leaderboard`` already has one row per run with params and
metrics pivoted, so listing a notebook's runs is one filtered scan of one table.
Every function returns ``None`` when the lake cannot answer (no lake, a table
missing, a run not delivered yet), and the caller falls back to MLflow.

A local table is read straight from its current Parquet files (only the columns
asked for, a few files at a time): no query engine to plan (DataFusion costs tens
of milliseconds a query) and no ``pyarrow.dataset``, which imports pandas (a
quarter of a second in a fresh ``nbtrack`` process). Tables a plain file read
cannot honour (deletion vectors, column mapping, partitions) and remote lakes
are read through deltalake's dataset.

The lake lags MLflow by at most one delivery batch (MLflow is delivered first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
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
_SOURCES = {v: k for k, v in _RENAMES.items()}  # list column -> leaderboard column
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: A row filter: the rows of a table -> a boolean mask.
Where = Callable[["pa.Table"], Any]


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


#: Reader features a plain read of a table's Parquet files cannot honour.
_NOT_PLAIN = {"deletionVectors", "columnMapping"}
#: Files read at once (pyarrow releases the GIL while it decodes).
_READERS = 4
_POOL: Any = None


def _scan(
    lake_uri: str,
    table: str,
    *,
    where: Where | None = None,
    columns: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pa.Table | None:
    """The rows of one table for which ``where(rows)`` is true, with only ``columns`` (those
    the table has); None when the lake has no such table. (A mask, not an Arrow expression:
    filtering by expression loads ``pyarrow.dataset``, and pandas with it.)"""
    from nbtrack.lake.maintenance import plain_types

    try:
        dt = _table(lake_uri, table, storage_options)
    except NbtrackError as exc:
        log.debug("lake fast path unavailable: %s", exc)
        return None
    if columns is not None:
        present = {field.name for field in dt.schema().fields}
        columns = [c for c in columns if c in present]
    if not _plain(dt):
        # Filter after the scan: files written by merges store string_view columns, and
        # pyarrow cannot push an ``isin`` on string down to them.
        data = plain_types(dt.to_pyarrow_dataset().to_table(columns=columns))
        return data if where is None else data.filter(where(data))
    parts = list(_pool().map(lambda uri: _read_file(uri, columns, where), dt.file_uris()))
    if not parts:
        from nbtrack.lake.schemas import schema

        empty = schema(table).empty_table()
        return empty.select([c for c in columns if c in empty.column_names]) if columns else empty
    import pyarrow as pa

    return pa.concat_tables(parts, promote_options="permissive")


def _plain(dt: Any) -> bool:
    """Can the table be read file by file (a local table with none of ``_NOT_PLAIN``, unpartitioned)?"""
    if "://" in dt.table_uri and not dt.table_uri.startswith("file://"):
        return False
    features = set(dt.protocol().reader_features or ())
    return not features & _NOT_PLAIN and not dt.metadata().partition_columns


def _read_file(uri: str, columns: list[str] | None, where: Where | None) -> pa.Table:
    import pyarrow.parquet as pq

    from nbtrack.lake.maintenance import plain_types

    file = pq.ParquetFile(uri)
    wanted = None if columns is None else [c for c in columns if c in file.schema_arrow.names]
    data = plain_types(file.read(columns=wanted, use_threads=False))
    return data if where is None else data.filter(where(data))


def _pool() -> Any:
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(_READERS, thread_name_prefix="nbtrack-lake")
    return _POOL


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
    table = runs_table(lake_uri, experiment, max_results=max_results, tracking_uri=tracking_uri,
                       storage_options=storage_options)
    return None if table is None else _runs_arrow(table).to_pandas()


def runs_table(
    lake_uri: str,
    experiment: str,
    *,
    max_results: int = 1000,
    tracking_uri: str | None = None,
    best: bool = True,
    storage_options: dict[str, str] | None = None,
) -> pa.Table | None:
    """The leaderboard rows :func:`list_runs` lists, in its order, as Arrow (neither pandas nor
    any conversion of Python values, which would import pandas): ``run_id``, ``name``,
    ``status``, ``start``, ``end``, the tag columns, ``params.*``, ``metrics.*`` and, unless
    ``best=False``, ``best.*``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def wanted(rows: pa.Table) -> Any:  # a null (no experiment) drops the row
        mask = pc.equal(rows.column("experiment"), arrow_strings([experiment])[0])
        if tracking_uri and "tracking_uri" in rows.column_names:
            uri = rows.column("tracking_uri")
            mask = pc.and_(mask, pc.or_kleene(pc.is_null(uri),
                                              pc.equal(uri, arrow_strings([tracking_uri])[0])))
        return mask

    prefixes = (PARAM_PREFIX, METRIC_PREFIX) + ((BEST_PREFIX,) if best else ())
    try:
        dt = _table(lake_uri, "leaderboard", storage_options)
    except NbtrackError as exc:
        log.debug("lake fast path unavailable: %s", exc)
        return None
    dynamic = [f.name for f in dt.schema().fields if f.name.startswith(prefixes)]
    fixed = [_SOURCES.get(name, name) for name in BASE_COLUMNS if name != "duration_s"]
    data = _scan(lake_uri, "leaderboard", where=wanted, storage_options=storage_options,
                 columns=[*fixed, "experiment", "tracking_uri", *dynamic])
    if data is None:
        return None
    # MLflow's order: start (to the millisecond it keeps) newest first, ties by run id;
    # an unknown start last (nulls sort last either way).
    millis = pc.cast(pc.cast(data.column("start"), pa.timestamp("ms", tz="UTC"), safe=False),
                     pa.int64())
    keys = pa.table({"ms": millis, "run_id": data.column("run_id")})
    order = pc.sort_indices(keys, [("ms", "descending"), ("run_id", "ascending")])
    return data.take(order[:max_results])


def arrow_strings(values: Sequence[str]) -> pa.Array:
    """Python strings as an Arrow array, built from their bytes: pyarrow's conversion of Python
    values imports pandas (a quarter of a second for a command that needs none of it)."""
    import struct

    import pyarrow as pa

    encoded = [value.encode() for value in values]
    offsets = [0]
    for item in encoded:
        offsets.append(offsets[-1] + len(item))
    return pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets)),
        pa.py_buffer(b"".join(encoded)))


def _runs_arrow(data: pa.Table) -> pa.Table:
    """Leaderboard rows in the ``list_runs`` shape, as Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def column(name: str) -> pa.ChunkedArray | pa.Array:
        source = _SOURCES.get(name, name)
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
    return pa.table(ordered)


def _of_runs(
    lake_uri: str,
    table: str,
    run_ids: list[str],
    columns: list[str] | None,
    storage_options: dict[str, str] | None,
) -> pa.Table | None:
    """Rows of ``run_ids`` in one table (only ``columns``)."""
    import pyarrow.compute as pc

    ids = arrow_strings(run_ids)
    return _scan(lake_uri, table, columns=columns, storage_options=storage_options,
                 where=lambda rows: pc.is_in(rows.column("run_id"), value_set=ids))


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
    found = _compare(lake_uri, run_ids, storage_options)
    if found is None:
        return None
    board, data = found
    order = {run: i for i, run in enumerate(dict.fromkeys(run_ids))}
    frame = _runs_arrow(board).to_pandas()
    frame = frame.iloc[sorted(range(len(frame)), key=lambda i: order[frame["run_id"].iat[i]])]
    return {"runs": frame.reset_index(drop=True), **data}


def compare_rows(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """:func:`compare_data` without pandas: ``runs`` is a list of the runs' leaderboard rows
    (dicts, ``start_time``/``end_time`` as UTC datetimes) in ``run_ids`` order."""
    found = _compare(lake_uri, run_ids, storage_options)
    if found is None:
        return None
    board, data = found
    order = {run: i for i, run in enumerate(dict.fromkeys(run_ids))}
    rows = [{_RENAMES.get(k, k): v for k, v in row.items()} for row in plain_rows(board)]
    return {"runs": sorted(rows, key=lambda row: order[row["run_id"]]), **data}


def _compare(
    lake_uri: str, run_ids: Sequence[str], storage_options: dict[str, str] | None
) -> tuple[pa.Table, dict[str, Any]] | None:
    """The runs' leaderboard rows (any order) and their params, histories and inputs."""
    import pyarrow.compute as pc

    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return None
    board = _of_runs(lake_uri, "leaderboard", ids, None, storage_options)
    if board is None or set(board.column("run_id").to_pylist()) != set(ids):
        return None
    params: dict[str, dict[str, str]] = {run: {} for run in ids}
    rows = _of_runs(lake_uri, "params", ids, ["run_id", "key", "value", "t"], storage_options)
    if rows is not None:
        for row in sorted(plain_rows(rows, micros=True), key=lambda r: r["t"] or 0):
            params[row["run_id"]][row["key"]] = row["value"]
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {run: {} for run in ids}
    points = _of_runs(lake_uri, "metrics", ids, ["run_id", "key", "step", "value", "timestamp"],
                      storage_options)
    if points is not None:
        order = pc.sort_indices(points, [("timestamp", "ascending"), ("step", "ascending")])
        for row in plain_rows(points.take(order), micros=True):
            histories[row["run_id"]].setdefault(row["key"], []).append((row["step"], row["value"]))
    return board, {
        "params": params,
        "histories": histories,
        "inputs": run_inputs(lake_uri, ids, storage_options=storage_options)
        or {run: [] for run in ids},
    }


def plain_rows(table: pa.Table, *, micros: bool = False) -> list[dict[str, Any]]:
    """``table.to_pylist()`` without pandas (pyarrow turns zoned timestamps into datetimes
    through it): timestamps become UTC datetimes here, or microseconds since the epoch."""
    import pyarrow as pa

    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    if not times:
        return table.to_pylist()
    as_us = [pa.field(f.name, pa.timestamp("us", tz="UTC")) if f.name in times else f
             for f in table.schema]
    as_int = [pa.field(f.name, pa.int64()) if f.name in times else f for f in table.schema]
    rows = table.cast(pa.schema(as_us), safe=False).cast(pa.schema(as_int)).to_pylist()
    if not micros:
        for row in rows:
            for name in times:
                if row[name] is not None:
                    row[name] = _EPOCH + timedelta(microseconds=row[name])
    return rows


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
    for row in sorted(plain_rows(data), key=lambda r: r["t"] or _EPOCH):
        try:
            row["profile"] = json.loads(row["profile"]) if row["profile"] else {}
        except ValueError:
            row["profile"] = {}
        found.setdefault(row["run_id"], []).append(row)
    return found
