"""Keeping the lake healthy and inspectable: optimize, show, sql; forgetting stray sessions.

Batched delivery still leaves one small file per table per batch; ``optimize``
bin-packs them into large files (a data-neutral commit, safe beside running
writers) and vacuums the files no version within the retention window needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NotFound, StoreUnavailable, UsageProblem
from nbtrack.lake import TABLES, table_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

#: Default vacuum retention: old files stay a week, so time travel within it keeps working.
DEFAULT_RETENTION_HOURS = 168


@dataclass
class TableInfo:
    name: str
    version: int
    files: int
    size_bytes: int
    rows: int
    modified: float | None  # unix time of the last commit


@dataclass
class OptimizeResult:
    name: str
    files_before: int
    files_after: int
    removed: int  # files compacted away
    added: int  # files written by compaction
    vacuumed: int  # files deleted from storage


def existing_tables(
    lake_uri: str, *, storage_options: dict[str, str] | None = None
) -> dict[str, DeltaTable]:
    """The lake's tables that exist; a clear error when there is no lake at all."""
    from deltalake import DeltaTable

    from nbtrack.lake.tables import open_table

    local = "://" not in lake_uri
    if local and not Path(lake_uri).is_dir():
        raise NotFound(f"no lake at {lake_uri} (nothing delivered yet, or a wrong --lake path)")
    found: dict[str, DeltaTable] = {}
    for name in TABLES:
        uri = table_uri(lake_uri, name)
        if local and not Path(uri).exists():
            continue
        if not local and not DeltaTable.is_deltatable(uri, storage_options=storage_options):
            continue
        found[name] = open_table(lake_uri, name, storage_options=storage_options)
    if not found:
        raise NotFound(f"no nbtrack tables under {lake_uri}")
    return found


def _files(dt: DeltaTable) -> tuple[int, int, int]:
    """(files, bytes, rows) of the table's current version."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # deltalake returns an arro3 table; read as a stream (pa.table() would import pandas)
    actions = pa.RecordBatchReader.from_stream(dt.get_add_actions(flatten=True)).read_all()
    if actions.num_rows == 0:
        return 0, 0, 0
    size = pc.sum(actions.column("size_bytes")).as_py() or 0
    rows = pc.sum(actions.column("num_records")).as_py() or 0
    return actions.num_rows, int(size), int(rows)


def show(lake_uri: str, *, storage_options: dict[str, str] | None = None) -> list[TableInfo]:
    """Version, file count, size and rows of every table."""
    infos = []
    for name, dt in existing_tables(lake_uri, storage_options=storage_options).items():
        files, size, rows = _files(dt)
        history = dt.history(1)
        stamp = history[0].get("timestamp") if history else None
        infos.append(TableInfo(name, dt.version(), files, size, rows,
                               stamp / 1000 if isinstance(stamp, (int, float)) else None))
    return infos


def optimize(
    lake_uri: str,
    *,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    vacuum: bool = True,
    storage_options: dict[str, str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[OptimizeResult]:
    """Compact every table's small files, then vacuum what the retention allows.

    ``progress(table, done, total)`` is called before each table and at the end.
    ``retention_hours=0`` deletes every unreferenced file now: readers of older
    versions (time travel) lose them.
    """
    from deltalake.exceptions import CommitFailedError

    if retention_hours < 0:
        raise UsageProblem(f"retention must be 0 hours or more, not {retention_hours}")
    tables = existing_tables(lake_uri, storage_options=storage_options)
    results: list[OptimizeResult] = []
    for index, (name, dt) in enumerate(tables.items()):
        if progress:
            progress(name, index, len(tables))
        before, _, _ = _files(dt)
        metrics: dict[str, Any] = {}
        for attempt in range(10):  # a writer committing meanwhile: retry on a fresh snapshot
            try:
                metrics = dt.optimize.compact()
                break
            except CommitFailedError:
                time.sleep(0.1 * (attempt + 1))
                dt.update_incremental()
        else:
            raise StoreUnavailable(f"could not compact {name!r}: writers kept committing; "
                                   "try again")
        vacuumed = 0
        if vacuum:
            vacuumed = len(dt.vacuum(retention_hours=retention_hours, dry_run=False,
                                     enforce_retention_duration=retention_hours > 0))
        dt.update_incremental()
        after, _, _ = _files(dt)
        results.append(OptimizeResult(
            name, before, after, int(metrics.get("numFilesRemoved", 0)),
            int(metrics.get("numFilesAdded", 0)), vacuumed,
        ))
    if progress:
        progress("", len(tables), len(tables))
    return results


def sql(
    lake_uri: str, query: str, *, storage_options: dict[str, str] | None = None
) -> pa.Table:
    """Answer SQL over the lake's tables (by name: ``events``, ``runs``, ``leaderboard``…).

    Runs in-process with deltalake's DataFusion engine; nothing is downloaded.
    """
    import pyarrow as pa
    from deltalake import QueryBuilder

    builder = QueryBuilder()
    for name, dt in existing_tables(lake_uri, storage_options=storage_options).items():
        builder.register(name, dt)
    try:
        reader = builder.execute(query)
        return plain_types(pa.table(reader.read_all()))
    except Exception as exc:  # DataFusion raises plain exceptions with multi-line text
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if "not found" in first.lower():
            raise NotFound(f"{first} (tables: {', '.join(TABLES)})") from exc
        if any(w in first.lower() for w in ("sql", "parse", "plan", "schema", "field")):
            raise UsageProblem(f"bad query: {first}") from exc
        raise StoreUnavailable(f"query failed: {first}") from exc


def plain_types(table: pa.Table) -> pa.Table:
    """DataFusion's view types (string_view, binary_view) cast to the plain ones every
    writer and pandas know."""
    import pyarrow as pa

    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    if not any(field.type in views for field in table.schema):
        return table
    return table.cast(pa.schema(
        [pa.field(f.name, views.get(f.type, f.type), f.nullable) for f in table.schema]
    ))


def forget_sessions(
    lake_uri: str, sessions: Iterable[str], *, storage_options: dict[str, str] | None = None
) -> int:
    """Delete the bronze events of journals that were removed before any run came of them
    (the kernels of a sweep stopped before their runs existed). Returns the rows deleted."""
    from deltalake.exceptions import CommitFailedError

    from nbtrack.lake.tables import open_table

    names = sorted(set(sessions))
    if not names:
        return 0
    try:
        dt = open_table(lake_uri, "events", storage_options=storage_options)
    except NotFound:
        return 0
    listed = ", ".join("'" + name.replace("'", "''") + "'" for name in names)
    for _ in range(10):  # a delivery may commit meanwhile: retry from the new version
        try:
            return int(dt.delete(f"session IN ({listed})").get("num_deleted_rows", 0))
        except CommitFailedError:
            dt.update_incremental()
    raise StoreUnavailable(f"cannot delete events of {len(names)} session(s) from {lake_uri}: "
                           "the table keeps changing")
