"""Writing the lake through a live Spark session (Databricks, a Spark Connect server).

Uses only the DataFrame API and Spark SQL (no RDDs, no SparkContext), so the
same code runs on Databricks, Spark 4 Connect and Sail. Tables go into
``catalog.schema`` (``<target>.<table>``) or, when the target is a path or URI,
into ``<target>/<table>`` as path-based Delta tables.

Exactly-once on Spark: every table is written with ``MERGE INTO`` (append
tables on ``event_id``, so a replay inserts nothing; ``runs``/``leaderboard`` on
``run_id`` with the same combine rules as the deltalake writer), and a small
ledger table ``nbtrack_txns`` records each stream's last delivered ``seq`` per
table so replays skip the work and never regress a run's status. A MERGE that
loses a race to another writer raises a concurrent-modification error, which is
reported as :class:`~nbtrack.lake.tables.CommitConflict` and retried by the sink.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nbtrack.errors import StoreUnavailable
from nbtrack.lake.rows import Row
from nbtrack.lake.schemas import KEYS, UPSERT_TABLES, schema
from nbtrack.lake.tables import CommitConflict, arrow_rows, merge_expression

if TYPE_CHECKING:
    import pyarrow as pa

LEDGER = "nbtrack_txns"
_CONFLICT_WORDS = ("concurrent", "conflict", "commit failed", "version already exists")


def active_session() -> Any:
    """The live Spark session, only if the user's process already imported pyspark."""
    if "pyspark" not in sys.modules:
        return None  # never import Spark ourselves just to look
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
    except Exception:  # noqa: BLE001 - a stopped or half-configured Spark
        session = None
    if session is None:  # Databricks defines ``spark`` in the notebook's namespace
        session = getattr(sys.modules.get("__main__"), "spark", None)
    return session if session is not None and hasattr(session, "sql") else None


def _is_path(target: str) -> bool:
    return "/" in target or "://" in target


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _spark_type(arrow_type: pa.DataType) -> Any:
    import pyarrow as pa
    from pyspark.sql import types as T

    if pa.types.is_timestamp(arrow_type):
        return T.TimestampType()
    if pa.types.is_integer(arrow_type):
        return T.LongType()
    if pa.types.is_floating(arrow_type):
        return T.DoubleType()
    if pa.types.is_boolean(arrow_type):
        return T.BooleanType()
    return T.StringType()


def _spark_schema(arrow_schema: pa.Schema) -> Any:
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, _spark_type(f.type), True) for f in arrow_schema])


class SparkWriter:
    """Writes rows into ``<target>.<table>`` (or ``<target>/<table>``) through Spark."""

    name = "spark"

    def __init__(self, spark: Any, target: str) -> None:
        self.spark = spark
        self.target = target.rstrip("/")
        self._columns: dict[str, set[str]] = {}
        self._done: dict[tuple[str, str], int] = {}

    # -- naming and tables ------------------------------------------------------------------

    def ref(self, table: str) -> str:
        """How SQL names a table: ``delta.`path``` or ``catalog.schema.table``."""
        if _is_path(self.target):
            return f"delta.{_q(self.target + '/' + table)}"
        return ".".join(_q(part) for part in f"{self.target}.{table}".split("."))

    def _write(self, df: Any, table: str, *, merge_schema: bool = False) -> None:
        writer = df.write.format("delta").mode("append")
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if _is_path(self.target):
            writer.save(f"{self.target}/{table}")
        else:
            writer.saveAsTable(f"{self.target}.{table}")

    def _exists(self, table: str) -> set[str] | None:
        try:
            return set(self.spark.sql(f"SELECT * FROM {self.ref(table)} LIMIT 0").columns)
        except Exception:  # noqa: BLE001 - Spark's "not found" differs per engine
            return None

    def ensure(self, table: str, arrow_schema: pa.Schema) -> None:
        """Create ``table`` or add the columns it lacks (append of no rows, mergeSchema)."""
        known = self._columns.get(table)
        if known is None:
            known = self._exists(table)
        missing = [f for f in arrow_schema if known is None or f.name not in known]
        if missing:
            import pyarrow as pa

            wanted = arrow_schema if known is None else pa.schema(missing)
            try:
                empty = self.spark.createDataFrame([], _spark_schema(wanted))
                self._write(empty, table, merge_schema=known is not None)
            except Exception as exc:  # noqa: BLE001
                raise StoreUnavailable(f"cannot create {self.ref(table)} through Spark: "
                                       f"{_first_line(exc)}") from exc
            known = (known or set()) | set(wanted.names)
        self._columns[table] = known or set()

    def _frame(self, data: pa.Table) -> Any:
        try:
            return self.spark.createDataFrame(data)  # Spark >= 4 takes Arrow directly
        except Exception:  # noqa: BLE001 - older Spark: rows keep nulls as nulls
            rows = [tuple(r.values()) for r in data.to_pylist()]
            return self.spark.createDataFrame(rows, _spark_schema(data.schema))

    # -- the sink's writer interface --------------------------------------------------------

    def transaction_versions(self, name: str, app_ids: Iterable[str]) -> dict[str, int]:
        apps = list(app_ids)
        if any((name, app) not in self._done for app in apps):
            self._load_ledger(name)
        return {app: self._done.get((name, app), 0) for app in apps}

    def _load_ledger(self, name: str) -> None:
        self.ensure(LEDGER, _ledger_schema())
        rows = self.spark.sql(
            f"SELECT app_id, max(version) AS version FROM {self.ref(LEDGER)} "
            f"WHERE table_name = '{name}' GROUP BY app_id"
        ).collect()
        for row in rows:
            self._done[(name, row["app_id"])] = int(row["version"])

    def commit(self, name: str, rows: list[Row], txns: Mapping[str, int]) -> None:
        if not rows:
            return
        import pyarrow as pa

        data = arrow_rows(name, rows) if name in UPSERT_TABLES else pa.Table.from_pylist(
            rows, schema=schema(name)
        )
        self.ensure(name, data.schema)
        view = f"nbtrack_batch_{name}"
        try:
            self._frame(data).createOrReplaceTempView(view)
            self.spark.sql(self._merge_sql(name, view, data.column_names)).collect()
        except Exception as exc:  # noqa: BLE001
            self._done = {k: v for k, v in self._done.items() if k[0] != name}
            if any(word in str(exc).lower() for word in _CONFLICT_WORDS):
                raise CommitConflict(_first_line(exc)) from exc
            raise StoreUnavailable(f"cannot write {self.ref(name)} through Spark: "
                                   f"{_first_line(exc)}") from exc
        self._record(name, txns)

    def _merge_sql(self, name: str, view: str, columns: list[str]) -> str:
        keys = KEYS.get(name, ("event_id",))
        on = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in keys)
        cols = ", ".join(_q(c) for c in columns)
        values = ", ".join(f"s.{_q(c)}" for c in columns)
        sql = f"MERGE INTO {self.ref(name)} AS t USING {view} AS s ON {on} "
        if name in UPSERT_TABLES:
            sets = ", ".join(
                f"{_q(c)} = {merge_expression(c)}" for c in columns if c not in keys
            )
            sql += f"WHEN MATCHED THEN UPDATE SET {sets} "
        return sql + f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"

    def _record(self, name: str, txns: Mapping[str, int]) -> None:
        import time

        import pyarrow as pa

        now = int(time.time() * 1_000_000)
        ledger = pa.Table.from_pylist(
            [{"table_name": name, "app_id": app, "version": v, "t": now} for app, v in txns.items()],
            schema=_ledger_schema(),
        )
        self._write(self._frame(ledger), LEDGER)
        for app, version in txns.items():
            self._done[(name, app)] = max(version, self._done.get((name, app), 0))


def _ledger_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("table_name", pa.string()), ("app_id", pa.string()), ("version", pa.int64()),
        ("t", pa.timestamp("us", tz="UTC")),
    ])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- lineage helpers for nbtrack.read_table -----------------------------------------------------

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "boolean")


def spark_profile(df: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    """Rows and a per-column profile in one aggregation (no data leaves the cluster)."""
    from pyspark.sql import functions as F

    fields = df.schema.fields[:200]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for i, f in enumerate(fields):
        col = F.col(_q(f.name))
        kind = f.dataType.simpleString()
        aggs.append(F.count(col).alias(f"n{i}"))
        if kind in _NUMERIC or kind.startswith("decimal"):
            num = col.cast("double")
            aggs += [F.avg(num).alias(f"m{i}"), F.stddev_samp(num).alias(f"s{i}"),
                     F.min(num).alias(f"lo{i}"), F.max(num).alias(f"hi{i}")]
        else:
            aggs.append(F.approx_count_distinct(col).alias(f"d{i}"))
    stats = df.agg(*aggs).collect()[0].asDict()
    rows = int(stats["__rows"])
    profile: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(fields):
        entry: dict[str, Any] = {
            "type": f.dataType.simpleString(),
            "null_frac": round(1 - stats[f"n{i}"] / rows, 6) if rows else 0.0,
        }
        if f"m{i}" in stats:
            entry.update(mean=stats[f"m{i}"], std=stats[f"s{i}"], min=stats[f"lo{i}"],
                         max=stats[f"hi{i}"])
        else:
            entry["distinct"] = stats[f"d{i}"]
        profile[f.name] = entry
    return rows, profile


def table_version(spark: Any, table: str, is_path: bool) -> int | None:
    """The Delta version Spark reads now (``DESCRIBE HISTORY``; deltalake for local paths)."""
    ref = f"delta.{_q(table)}" if is_path else table
    try:
        return int(spark.sql(f"DESCRIBE HISTORY {ref} LIMIT 1").collect()[0]["version"])
    except Exception:  # noqa: BLE001 - engines without DESCRIBE HISTORY (e.g. Sail)
        pass
    if is_path:
        try:
            from deltalake import DeltaTable

            return DeltaTable(table).version()
        except Exception:  # noqa: BLE001
            return None
    return None
