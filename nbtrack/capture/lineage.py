"""Data lineage: read a Delta table and record what the run read.

``nbtrack.read_delta(uri, version=None)`` returns a pandas DataFrame and records
an ``input`` event (table URI, Delta version, schema hash, row count and a
compact profile) for the current run: the MLflow sink logs it as a dataset
input, the Delta sink into the ``inputs`` table. ``nbtrack.read_table(name)``
does the same through the live Spark session (Databricks). Recording never
fails a read: without a loaded session the data is still returned.

A re-run pins the versions its original read: ``NBTRACK_INPUT_VERSIONS`` holds a
JSON object ``{table_uri: version}``, used when no explicit version is given.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.env import INPUT_VERSIONS
from nbtrack.errors import NotFound, StoreUnavailable
from nbtrack.lake.profile import schema_hash

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "INPUT_VERSIONS", "normalize_uri", "read_delta", "read_table", "record_input",
]


def normalize_uri(uri: str | Path) -> str:
    """Local paths become absolute (two runs reading ``data/x`` from different folders agree)."""
    text = str(uri)
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


def pinned_version(uri: str) -> int | None:
    """The version a re-run pins for ``uri`` (from ``NBTRACK_INPUT_VERSIONS``), if any."""
    raw = INPUT_VERSIONS.get()
    if not raw:
        return None
    try:
        pins = json.loads(raw)
        value = pins.get(uri, pins.get(normalize_uri(uri))) if isinstance(pins, dict) else None
        return None if value is None else int(value)
    except (ValueError, TypeError, AttributeError):
        log.warning("ignoring malformed %s", INPUT_VERSIONS.name)
        return None


def record_input(
    table_uri: str, *, version: int | None, schema_hash: str, rows: int, profile: dict[str, Any]
) -> None:
    """Record an ``input`` event for the current run; never raises."""
    try:
        from nbtrack.capture.session import current_session

        current_session().emit(
            "input", table_uri=table_uri, version=version, schema_hash=schema_hash, rows=rows,
            profile=profile,
        )
    except Exception as exc:  # noqa: BLE001 - lineage must never break the user's read
        log.warning("nbtrack: could not record input %s: %s", table_uri, exc)


def read_delta(
    uri: str | Path,
    version: int | None = None,
    *,
    columns: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
    record: bool = True,
) -> pd.DataFrame:
    """Read a Delta table (at ``version``, else the pinned or latest one) into pandas.

    Records the read as an input of the current run (``record=False`` skips it).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    table_uri = normalize_uri(uri)
    if version is None:
        version = pinned_version(table_uri)
    try:
        dt = DeltaTable(table_uri, version=version, storage_options=storage_options)
        data = dt.to_pyarrow_table(columns=columns)
    except TableNotFoundError:
        raise NotFound(f"no Delta table at {table_uri}") from None
    except (DeltaError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        at = f" version {version}" if version is not None else ""
        raise StoreUnavailable(f"cannot read Delta table {table_uri}{at}: {first}") from exc
    if record:
        from nbtrack.lake.profile import profile_table

        record_input(
            table_uri, version=dt.version(), schema_hash=schema_hash(data.schema),
            rows=data.num_rows, profile=profile_table(data),
        )
    frame: pd.DataFrame = data.to_pandas()
    return frame


def read_table(
    name: str,
    *,
    version: int | None = None,
    spark: Any = None,
    profile: bool = True,
    record: bool = True,
) -> Any:
    """Read a table through Spark (the live session by default) and record it as an input.

    ``name`` is a catalog table (``catalog.schema.table``) or a path to a Delta
    table. Returns the Spark DataFrame; its rows, schema hash and profile are
    computed in one aggregation on the cluster.
    """
    from nbtrack.lake.spark import active_session, spark_profile, table_version

    session = spark or active_session()
    if session is None:
        raise StoreUnavailable("nbtrack.read_table needs a live Spark session (none is active)")
    is_path = "/" in name or "://" in name
    table_uri = normalize_uri(name) if is_path else name
    if version is None:
        version = pinned_version(table_uri)
    reader = session.read
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.format("delta").load(table_uri) if is_path else reader.table(name)
    if record:
        rows, stats = spark_profile(df) if profile else (None, {})
        record_input(
            table_uri,
            version=version if version is not None else table_version(session, table_uri, is_path),
            schema_hash=_spark_schema_hash(df),
            rows=rows if rows is not None else -1,
            profile=stats,
        )
    return df


def _spark_schema_hash(df: Any) -> str:
    import hashlib

    text = ";".join(f"{f.name}:{f.dataType.simpleString()}:{f.nullable}" for f in df.schema.fields)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

