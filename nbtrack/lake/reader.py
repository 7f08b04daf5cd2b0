"""Reading the lake's tables without pandas: the current Parquet files of a table, directly.

A local table is read straight from its current Parquet files (only the columns asked
for, a few files at a time): no query engine to plan (DataFusion costs tens of
milliseconds a query) and no ``pyarrow.dataset``, which imports pandas (a quarter of a
second in a fresh ``nbtrack`` process); nor does anything here convert Python values to
Arrow or zoned timestamps to datetimes through pyarrow, which import pandas too. Tables a
plain file read cannot honour (deletion vectors, column mapping, partitions) and remote
lakes are read through deltalake's dataset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: Times are read as microseconds since this instant (see plain_rows).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: A row filter: the rows of a table -> a boolean mask.
Where = Callable[["pa.Table"], Any]

#: A log folder unchanged for this long (ns) is taken as it was when last read.
_SETTLED_NS = 2_000_000_000
#: Open tables, with the state of their local log folder when last refreshed.
_OPEN: dict[tuple[str, str], tuple[Any, int | None]] = {}


def open_cached(lake_uri: str, table: str, storage_options: dict[str, str] | None) -> Any:
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


def scan(
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
    return scans(lake_uri, [(table, columns, where)], storage_options)[0]


def scans(
    lake_uri: str,
    requests: list[tuple[str, list[str] | None, Where | None]],
    storage_options: dict[str, str] | None,
) -> list[pa.Table | None]:
    """:func:`scan` of several ``(table, columns, where)`` at once: every file of every table
    is read in one round, so the slowest file of one table does not hold up the next."""
    import pyarrow as pa

    from nbtrack.lake.maintenance import plain_types
    from nbtrack.lake.schemas import schema

    results: list[Any] = []
    for table, columns, where in requests:
        try:
            dt = open_cached(lake_uri, table, storage_options)
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


def plain_rows(table: pa.Table, *, micros: bool = False) -> list[dict[str, Any]]:
    """``table.to_pylist()`` without pandas (pyarrow turns zoned timestamps into datetimes
    through it): timestamps become UTC datetimes here, or microseconds since the epoch."""
    import pyarrow as pa

    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    rows: list[dict[str, Any]]
    if not times:
        rows = table.to_pylist()
        return rows
    as_us = [pa.field(f.name, pa.timestamp("us", tz="UTC")) if f.name in times else f
             for f in table.schema]
    as_int = [pa.field(f.name, pa.int64()) if f.name in times else f for f in table.schema]
    rows = table.cast(pa.schema(as_us), safe=False).cast(pa.schema(as_int)).to_pylist()
    if not micros:
        for row in rows:
            for name in times:
                if row[name] is not None:
                    row[name] = EPOCH + timedelta(microseconds=row[name])
    return rows
