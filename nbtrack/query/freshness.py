"""Are the tables a run read still at the versions it read? What ``nbtrack retrain`` checks.

A run's inputs are the Delta tables ``nbtrack.read_delta`` / ``read_table`` recorded with
their version: the lake's ``inputs`` table, else MLflow's dataset inputs. A table's current
version is read with ``deltalake`` for a path or URI (its log, no data), and through a
Spark session for a catalog table (``main.sales.orders``), which only Spark can resolve.

A table that is gone, older than the version the run read (deleted and written anew), or
whose recorded version can no longer be read (vacuumed or its log cleaned up) is an error:
a retrain would compare against a champion whose data nobody can read again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack.errors import NotFound, UsageProblem
from nbtrack.query.store import StoreRef


@dataclass(frozen=True)
class InputVersion:
    """One input table of a run: the version the run read and the table's version now."""

    table: str  # the table's URI, or a catalog table's name, as the run recorded it
    read: int
    current: int

    @property
    def moved(self) -> bool:
        return self.current != self.read


def is_catalog_table(table: str) -> bool:
    """``main.sales.orders`` rather than a path or URI (``read_table``'s own rule)."""
    return "/" not in table and "://" not in table


def table_label(table: str, root: Path | None = None) -> str:
    """How a table is named to a user: a path inside the project relative to it (``data/train``)."""
    if root is not None and not is_catalog_table(table) and "://" not in table:
        try:
            return Path(table).relative_to(root).as_posix()
        except ValueError:
            pass
    return table


def versions_text(versions: Mapping[str, int | None], root: Path | None = None) -> str:
    """``data/train v3, data/labels v7``."""
    return ", ".join(f"{table_label(t, root)} v{v}" for t, v in sorted(versions.items()))


def recorded_versions(ref: StoreRef, run_id: str) -> dict[str, int | None]:
    """``{table: version}`` of every input the run recorded (the highest version of a table it
    read more than once); the lake answers first, MLflow when the lake has none."""
    from nbtrack.query.lake import inputs_from_lake

    versions: dict[str, int | None] = {}
    for record in inputs_from_lake(ref, [run_id]).get(run_id, []):
        table, version = str(record["table_uri"]), record.get("version")
        before = versions.get(table)
        versions[table] = version if before is None else max(before, version or before)
    if versions:
        return versions
    db = ref.embedded_db
    if db is not None and db.is_file():
        found = _sqlite_input_versions(db, run_id)
        if found is not None:
            return dict(found)
    from nbtrack.query.inputs import mlflow_input_versions

    return dict(mlflow_input_versions(ref.client().get_run(run_id)))


def _sqlite_input_versions(db: Path, run_id: str) -> dict[str, int] | None:
    """MLflow's dataset inputs of source type ``delta`` read from the embedded store's file, as
    :func:`nbtrack.query.inputs.mlflow_input_versions` reads them (no MLflow import); None when
    the file cannot say."""
    import json
    import sqlite3

    sql = ("SELECT d.dataset_source FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id "
           "WHERE i.destination_type = 'RUN' AND i.destination_id = ? AND i.source_type = 'DATASET' "
           "AND d.dataset_source_type = 'delta'")
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10) as conn:
            rows = conn.execute(sql, [run_id]).fetchall()
    except sqlite3.Error:
        return None
    versions: dict[str, int] = {}
    for (text,) in rows:
        try:
            source = json.loads(text)
        except ValueError:
            continue
        if isinstance(source, dict) and source.get("path") and source.get("version") is not None:
            path, version = str(source["path"]), int(source["version"])
            versions[path] = max(version, versions.get(path, version))
    return versions


def current_versions(
    recorded: Mapping[str, int | None],
    *,
    run_id: str,
    root: Path | None = None,
    spark: Any = None,
    storage_options: dict[str, str] | None = None,
) -> list[InputVersion]:
    """Each recorded input with its version now, in table order; a clear error for a table that
    cannot be compared (see the module's docstring). ``spark`` (a session, or a callable giving
    one) reads catalog tables."""
    found = []
    for table, read in sorted(recorded.items()):
        label = f"{table_label(table, root)} (read by run {run_id[:8]} at v{read})"
        if read is None:
            raise UsageProblem(f"run {run_id[:8]} read {table_label(table, root)} without recording "
                               "its Delta version, so nothing tells whether it changed")
        if is_catalog_table(table):
            session = spark() if callable(spark) else spark
            current = _spark_version(session, table, read, label)
        else:
            current = _delta_version(table, read, label, run_id, storage_options)
        found.append(InputVersion(table, int(read), current))
    return found


def _delta_version(table: str, read: int, label: str, run_id: str,
                   storage_options: dict[str, str] | None) -> int:
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    try:
        current = DeltaTable(table, storage_options=storage_options).version()
    except TableNotFoundError:
        raise NotFound(f"input {label} is gone: no Delta table at {table}") from None
    except (DeltaError, OSError, ValueError) as exc:
        raise NotFound(f"input {label} cannot be opened: {_first_line(exc)}") from exc
    _check_not_recreated(current, read, label)
    if current != read and not _readable(table, read, storage_options):
        raise NotFound(f"input {label} no longer has v{read} (vacuumed or its log cleaned up): the "
                       "champion's data cannot be read again. Re-run the champion on today's data "
                       f"to make a new baseline: nbtrack rerun {run_id[:8]}")
    return int(current)


def _readable(table: str, version: int, storage_options: dict[str, str] | None) -> bool:
    """Can ``version`` still be loaded, and (for a local table) are all its data files there?"""
    from deltalake import DeltaTable

    try:
        old = DeltaTable(table, version=version, storage_options=storage_options)
        files = old.file_uris()
    except Exception:  # noqa: BLE001 - any failure to load that version means it is gone
        return False
    if "://" in table and not table.startswith("file://"):
        return True  # object stores: the log says the files exist; listing them would cost a call each
    return all(Path(uri.removeprefix("file://")).exists() for uri in files)


def _spark_version(spark: Any, table: str, read: int, label: str) -> int:
    from nbtrack.lake.spark import table_version

    if spark is None:
        raise UsageProblem(f"input {label} is a catalog table: its version is read through Spark; run "
                           "where a Spark session is live (a Databricks job), or with --backend spark "
                           "--spark-master URL")
    current = table_version(spark, table, is_path=False)
    if current is None:
        raise NotFound(f"input {label}: Spark cannot tell its current version (DESCRIBE HISTORY "
                       "failed: is it still a Delta table?)")
    _check_not_recreated(current, read, label)
    if current != read:
        try:
            spark.read.option("versionAsOf", read).table(table).columns  # noqa: B018 - resolves it
        except Exception as exc:  # noqa: BLE001
            raise NotFound(f"input {label} no longer has v{read} (vacuumed?): "
                           f"{_first_line(exc)}") from exc
    return int(current)


def _check_not_recreated(current: int, read: int, label: str) -> None:
    if current < read:
        raise NotFound(f"input {label} is at v{current} now, older than what the run read: the table "
                       "was deleted and written anew, so its versions cannot be compared")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
