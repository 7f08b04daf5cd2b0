"""Opening, creating and committing to the lake's Delta tables with ``deltalake``.

Every commit carries Delta application transactions (one per journal stream,
version = the stream's last event ``seq``), so a replayed or racing batch is
detected by :meth:`DeltaWriter.transaction_versions` or by Delta's conflict
check, never written twice. Commit conflicts surface as :class:`CommitConflict`
for the caller to retry from a fresh snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NotFound, StoreUnavailable
from nbtrack.lake import table_uri
from nbtrack.lake.rows import Row
from nbtrack.lake.schemas import (
    BEST_PREFIX,
    KEYS,
    UPSERT_TABLES,
    leaderboard_type,
    schema,
)
from nbtrack.metric_direction import lower_is_better

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable


class CommitConflict(Exception):
    """A concurrent writer committed first; retry from a fresh snapshot."""


def _quote(column: str) -> str:
    return f"`{column}`"


def open_table(
    lake_uri: str,
    table: str,
    *,
    version: int | None = None,
    storage_options: dict[str, str] | None = None,
) -> DeltaTable:
    """A table for reading, or a clear error: missing lake/table, corrupt log."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    uri = table_uri(lake_uri, table)
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        raise NotFound(
            f"no Delta table {table!r} at {uri} (nothing delivered to the lake yet?)"
        ) from None
    except (DeltaError, OSError, ValueError) as exc:
        raise StoreUnavailable(_describe(f"cannot read Delta table {table!r}", uri, exc)) from exc


def _describe(what: str, uri: str, exc: BaseException | None) -> str:
    """One readable line: deltalake's messages carry multi-line Rust backtraces."""
    text = str(exc).strip() if exc is not None else ""
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"{what} at {uri}: {first}"


class DeltaWriter:
    """Writes rows into the lake's tables; creates a table on first use."""

    name = "deltalake"

    def __init__(self, lake_uri: str, *, storage_options: dict[str, str] | None = None) -> None:
        self.lake_uri = lake_uri
        self.storage_options = storage_options
        self._tables: dict[str, DeltaTable] = {}

    # -- tables ----------------------------------------------------------------------------

    def table(self, name: str, *, refresh: bool = True) -> DeltaTable:
        """The table at its latest version (created empty with its schema if absent)."""
        dt = self._tables.get(name)
        if dt is None:
            dt = self._open_or_create(name)
            self._tables[name] = dt
        elif refresh:
            try:
                dt.update_incremental()
            except Exception:  # a vacuumed or rewritten log: reopen from scratch
                dt = self._open_or_create(name)
                self._tables[name] = dt
        return dt

    def _open_or_create(self, name: str) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        uri = table_uri(self.lake_uri, name)
        problem: Exception | None = None
        for attempt in range(10):
            try:
                return DeltaTable(uri, storage_options=self.storage_options)
            except TableNotFoundError:
                pass
            except (DeltaError, OSError) as exc:  # a corrupt log: creating would not help
                message = _describe(f"cannot open Delta table {name!r}", uri, exc)
                raise StoreUnavailable(message) from exc
            try:
                return DeltaTable.create(
                    uri, schema(name), mode="ignore", storage_options=self.storage_options,
                    name=name, description=f"nbtrack {name}",
                )
            except (DeltaError, OSError) as exc:  # maybe another writer created it just now
                problem = exc
                time.sleep(0.05 * (attempt + 1))
        raise StoreUnavailable(_describe(f"cannot create Delta table {name!r}", uri, problem))

    def transaction_versions(self, name: str, app_ids: Iterable[str]) -> dict[str, int]:
        """Last committed version of each application transaction (0 when none)."""
        dt = self.table(name)
        return {app: dt.transaction_version(app) or 0 for app in app_ids}

    # -- commits ---------------------------------------------------------------------------

    def commit(self, name: str, rows: list[Row], txns: Mapping[str, int]) -> None:
        """Append (or, for ``runs``/``leaderboard``, merge) ``rows`` in one commit."""
        if not rows:
            return
        from deltalake import CommitProperties, Transaction
        from deltalake.exceptions import CommitFailedError, DeltaError

        props = CommitProperties(
            app_transactions=[Transaction(app, version) for app, version in txns.items()],
            max_commit_retries=20,
        )
        dt = self.table(name, refresh=False)
        try:
            if name in UPSERT_TABLES:
                self._merge(dt, name, rows, props)
            else:
                self._append(dt, name, rows, props)
        except CommitFailedError as exc:
            raise CommitConflict(str(exc)) from exc
        except (DeltaError, OSError) as exc:
            self._tables.pop(name, None)
            message = _describe(f"cannot write Delta table {name!r}", dt.table_uri, exc)
            raise StoreUnavailable(message) from exc

    def _append(self, dt: DeltaTable, name: str, rows: list[Row], props: Any) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        data = pa.Table.from_pylist(rows, schema=schema(name))
        write_deltalake(dt, data, mode="append", commit_properties=props)

    def _merge(self, dt: DeltaTable, name: str, rows: list[Row], props: Any) -> None:
        data = arrow_rows(name, rows)
        keys = KEYS[name]
        predicate = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in keys)
        existing = {field.name for field in dt.schema().fields}
        updates = {
            _quote(col): merge_expression(col, in_target=col in existing)
            for col in data.column_names if col not in keys
        }
        (
            dt.merge(
                data, predicate, source_alias="s", target_alias="t",
                merge_schema=True, commit_properties=props,  # a column added since the table was made
            )
            .when_matched_update(updates)
            .when_not_matched_insert_all()
            .execute()
        )


def merge_expression(column: str, *, in_target: bool = True) -> str:
    """How a batch's value combines with the stored one: best keeps the best, else newest."""
    s, t = f"s.{_quote(column)}", f"t.{_quote(column)}"
    if not in_target:  # a column this merge adds to the table
        return s
    if column.startswith(BEST_PREFIX):
        pick = "least" if lower_is_better(column[len(BEST_PREFIX):]) else "greatest"
        return f"{pick}({s}, {t})"
    return f"coalesce({s}, {t})"


def arrow_rows(name: str, rows: list[Row]) -> pa.Table:
    """Rows of an upsert table as Arrow: the fixed schema plus any dynamic columns seen."""
    import pyarrow as pa

    base = schema(name)
    fields = list(base)
    known = set(base.names)
    for row in rows:
        for col in row:
            if col not in known:
                known.add(col)
                fields.append(pa.field(col, leaderboard_type(col)))
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))
