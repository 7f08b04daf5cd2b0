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
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError, NotFound
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


#: A log folder unchanged for this long (ns) is taken as it was when last read.
_SETTLED_NS = 2_000_000_000
#: Open tables, with the state of their local log folder when last refreshed.
_OPEN: dict[tuple[str, str], tuple[Any, int | None]] = {}


def _table(lake_uri: str, table: str, storage_options: dict[str, str] | None) -> Any:
    """The table at its latest version; reopened handles are refreshed incrementally, and not
    at all while a local table's ``_delta_log`` folder is unchanged (every commit adds a file
    there): a refresh lists the log, a few milliseconds a table."""
    from nbtrack.lake.tables import open_table

    key = (lake_uri, table)
    dt, seen = _OPEN.get(key, (None, None))
    stamp = _log_stamp(lake_uri, table)
    if stamp is None and _local(lake_uri):
        _OPEN.pop(key, None)
        raise NotFound(f"no Delta table {table!r} in {lake_uri}")
    if dt is not None:
        # A log changed within the last seconds is refreshed anyway: file systems with coarse
        # modification times would not show a second commit in the same tick.
        if stamp is not None and stamp == seen and time.time_ns() - stamp > _SETTLED_NS:
            return dt
        try:
            dt.update_incremental()
            _OPEN[key] = (dt, stamp)
            return dt
        except Exception:  # noqa: BLE001 - vacuumed or rewritten log: open afresh
            _OPEN.pop(key, None)
    dt = open_table(lake_uri, table, storage_options=storage_options)
    if len(_OPEN) > 64:
        _OPEN.clear()
    _OPEN[key] = (dt, stamp)
    return dt


def _local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _log_stamp(lake_uri: str, table: str) -> int | None:
    """When a local table's log folder last changed (ns); None for a remote lake or no table."""
    if not _local(lake_uri):
        return None
    import os

    from nbtrack.lake import table_uri

    try:
        return os.stat(os.path.join(table_uri(lake_uri, table).removeprefix("file://"),
                                    "_delta_log")).st_mtime_ns
    except OSError:
        return None


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
    return _scans(lake_uri, [(table, columns, where)], storage_options)[0]


def _scans(
    lake_uri: str,
    requests: list[tuple[str, list[str] | None, Where | None]],
    storage_options: dict[str, str] | None,
) -> list[pa.Table | None]:
    """:func:`_scan` of several ``(table, columns, where)`` at once: every file of every table
    is read in one round, so the slowest file of one table does not hold up the next."""
    import pyarrow as pa

    from nbtrack.lake.maintenance import plain_types
    from nbtrack.lake.schemas import schema

    results: list[Any] = []
    for table, columns, where in requests:
        try:
            dt = _table(lake_uri, table, storage_options)
        except NbtrackError as exc:
            log.debug("lake fast path unavailable: %s", exc)
            results.append(None)
            continue
        if columns is not None:
            present = {field.name for field in dt.schema().fields}
            columns = [c for c in columns if c in present]
        if not _plain(dt):
            # Filter after the scan: files written by merges store string_view columns, and
            # pyarrow cannot push an ``isin`` on string down to them.
            data = plain_types(dt.to_pyarrow_dataset().to_table(columns=columns))
            results.append(data if where is None else data.filter(where(data)))
            continue
        reads = [_pool().submit(_read_file, uri, columns, where) for uri in dt.file_uris()]
        if not reads:
            empty = schema(table).empty_table()
            reads = [empty.select([c for c in columns if c in empty.column_names]) if columns else empty]
        results.append(reads)
    return [pa.concat_tables([part if isinstance(part, pa.Table) else part.result() for part in found],
                             promote_options="permissive") if isinstance(found, list) else found
            for found in results]


def _plain(dt: Any) -> bool:
    """Can the table be read file by file (a local table with none of ``_NOT_PLAIN``, unpartitioned)?"""
    if not _local(dt.table_uri):
        return False
    features = set(dt.protocol().reader_features or ())
    return not features & _NOT_PLAIN and not dt.metadata().partition_columns


def _read_file(uri: str, columns: list[str] | None, where: Where | None) -> pa.Table:
    import pyarrow.parquet as pq

    from nbtrack.lake.maintenance import plain_types

    file = pq.ParquetFile(uri)
    names = set(file.schema_arrow.names)
    wanted = None if columns is None else [c for c in columns if c in names]
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
    tables: list[tuple[str, list[str] | None]],
    run_ids: list[str],
    storage_options: dict[str, str] | None,
) -> list[pa.Table | None]:
    """Rows of ``run_ids`` in each ``(table, columns)``, read at once."""
    import pyarrow.compute as pc

    ids = arrow_strings(run_ids)

    def wanted(rows: pa.Table) -> Any:
        return pc.is_in(rows.column("run_id"), value_set=ids)

    return _scans(lake_uri, [(table, columns, wanted) for table, columns in tables], storage_options)


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
    (dicts of ``list_runs``' fixed columns, ``start_time``/``end_time`` as UTC datetimes; no
    params or metrics columns) in ``run_ids`` order."""
    fixed = [_SOURCES.get(name, name) for name in BASE_COLUMNS if name != "duration_s"]
    found = _compare(lake_uri, run_ids, storage_options, board_columns=fixed)
    if found is None:
        return None
    board, data = found
    order = {run: i for i, run in enumerate(dict.fromkeys(run_ids))}
    rows = [{_RENAMES.get(k, k): v for k, v in row.items()} for row in plain_rows(board)]
    return {"runs": sorted(rows, key=lambda row: order[row["run_id"]]), **data}


def _compare(
    lake_uri: str, run_ids: Sequence[str], storage_options: dict[str, str] | None,
    board_columns: list[str] | None = None,
) -> tuple[pa.Table, dict[str, Any]] | None:
    """The runs' leaderboard rows (any order; ``board_columns`` or all) and their params,
    histories and inputs."""
    import pyarrow.compute as pc

    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return None
    board, rows, points, inputs = _of_runs(lake_uri, [
        ("leaderboard", board_columns), ("params", ["run_id", "key", "value", "t"]),
        ("metrics", ["run_id", "key", "step", "value", "timestamp"]), ("inputs", None),
    ], ids, storage_options)
    if board is None or set(board.column("run_id").to_pylist()) != set(ids):
        return None
    params: dict[str, dict[str, str]] = {run: {} for run in ids}
    if rows is not None:
        for row in sorted(plain_rows(rows, micros=True), key=lambda r: r["t"] or 0):
            params[row["run_id"]][row["key"]] = row["value"]
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {run: {} for run in ids}
    if points is not None:
        order = pc.sort_indices(points, [("timestamp", "ascending"), ("step", "ascending")])
        for row in plain_rows(points.take(order), micros=True):
            histories[row["run_id"]].setdefault(row["key"], []).append((row["step"], row["value"]))
    return board, {
        "params": params,
        "histories": histories,
        "inputs": _inputs(inputs, ids) or {run: [] for run in ids},
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
    return _inputs(_of_runs(lake_uri, [("inputs", None)], list(run_ids), storage_options)[0], run_ids)


def _inputs(data: pa.Table | None, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]] | None:
    """The rows of the ``inputs`` table as :func:`run_inputs` returns them."""
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
