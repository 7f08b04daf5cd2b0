"""The explicit schema of every lake table, in one place.

Schemas evolve by adding columns only: a new column is appended here, and
writers add it to existing tables (``schema_mode="merge"``); nothing is ever
renamed, retyped or dropped, so every engine keeps reading old versions.
The gold ``leaderboard`` also grows one column per param (``params.<key>``)
and two per metric (``metrics.<key>`` = last value, ``best.<key>``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

#: Columns rows are keyed on: the upsert tables merge on them; Spark's writer inserts an append
#: table's rows once by them (by ``event_id`` for tables fed by the journal).
KEYS: dict[str, tuple[str, ...]] = {"runs": ("run_id",), "leaderboard": ("run_id",), "models": ("run_id", "name"),
                                    "retrains": ("retrain_id",)}

#: Tables written by merge (one row per key) rather than by append.
UPSERT_TABLES = ("runs", "leaderboard", "models")

# (name, type) per table; types are names resolved by _arrow_type.
_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "events": [
        ("event_id", "string"), ("session", "string"), ("seq", "int64"), ("t", "ts"),
        ("type", "string"), ("run_key", "string"), ("run_id", "string"),
        ("payload", "string"), ("ingested", "ts"),
    ],
    "runs": [
        ("run_id", "string"), ("run_key", "string"), ("experiment", "string"),
        ("notebook", "string"), ("name", "string"), ("status", "string"),
        ("start", "ts"), ("end", "ts"), ("parent_run_id", "string"), ("sweep_id", "string"),
        ("origin", "string"), ("git_commit", "string"), ("git_branch", "string"),
        ("user", "string"), ("session", "string"), ("tracking_uri", "string"),
        ("updated", "ts"), ("rerun_of", "string"),
        ("user_runs", "string"),  # JSON: the notebook's own MLflow runs (tag nbtrack.user_runs)
        ("models", "string"),  # JSON: the run's models [{name, flavor, size}] (tag nbtrack.models)
        ("retrain_of", "string"),  # a retrain's champion run (tag nbtrack.retrain_of)
        ("retrain_trigger", "string"),  # JSON: the inputs that moved (tag nbtrack.retrain.trigger)
    ],
    "params": [
        ("run_id", "string"), ("run_key", "string"), ("key", "string"), ("value", "string"),
        ("value_json", "string"), ("source", "string"), ("cell_id", "string"), ("t", "ts"),
        ("event_id", "string"),
    ],
    "metrics": [
        ("run_id", "string"), ("run_key", "string"), ("key", "string"), ("value", "float64"),
        ("step", "int64"), ("timestamp", "ts"), ("cell_id", "string"),
        ("exec_count", "int64"), ("event_id", "string"),
    ],
    "cells": [
        ("run_id", "string"), ("run_key", "string"), ("exec_count", "int64"),
        ("cell_id", "string"), ("source", "string"), ("source_sha", "string"),
        ("start", "ts"), ("duration_s", "float64"), ("status", "string"),
        ("error_name", "string"), ("error_value", "string"), ("event_id", "string"),
        ("cpu_s", "float64"), ("peak_memory_mb", "float64"),  # the kernel's CPU time and memory peak in the cell
    ],
    "artifacts": [
        ("run_id", "string"), ("run_key", "string"), ("path", "string"), ("kind", "string"),
        ("mime", "string"), ("cell_id", "string"), ("exec_count", "int64"), ("t", "ts"),
        ("event_id", "string"),
    ],
    # One row per model of a run (MLflow model runs:/<run_id>/<name>); the registered_* columns
    # hold its latest registration (``nbtrack register``), aliases comma-separated ("" when none).
    "models": [
        ("run_id", "string"), ("run_key", "string"), ("name", "string"), ("flavor", "string"),
        ("uri", "string"), ("size_bytes", "int64"), ("model_class", "string"), ("source", "string"),
        ("t", "ts"), ("event_id", "string"), ("registered_name", "string"),
        ("registered_version", "int64"), ("aliases", "string"), ("registered_at", "ts"),
    ],
    "inputs": [
        ("run_id", "string"), ("run_key", "string"), ("table_uri", "string"),
        ("version", "int64"), ("schema_hash", "string"), ("rows", "int64"),
        ("profile", "string"), ("t", "ts"), ("event_id", "string"),
    ],
    # One row per retrain (``nbtrack retrain`` when an input moved; an unchanged check writes
    # nothing): the champion and its challenger, the Delta versions each read ({table_uri:
    # version}, JSON), the inputs that moved (the tag nbtrack.retrain.trigger), both runs' values
    # of the metric, and whether the challenger was better and took the champion alias.
    "retrains": [
        ("retrain_id", "string"), ("t", "ts"), ("notebook", "string"), ("metric", "string"),
        ("champion", "string"), ("challenger", "string"), ("status", "string"),
        ("champion_inputs", "string"), ("challenger_inputs", "string"), ("trigger", "string"),
        ("champion_value", "float64"), ("challenger_value", "float64"),
        ("better", "bool"), ("promoted", "bool"), ("registered", "string"),
    ],
}

# The leaderboard starts as the runs' columns; params and metrics columns follow.
_COLUMNS["leaderboard"] = list(_COLUMNS["runs"])

PARAM_PREFIX = "params."
METRIC_PREFIX = "metrics."
BEST_PREFIX = "best."


def columns(table: str) -> list[str]:
    """The fixed column names of ``table`` (the leaderboard adds more as runs log)."""
    return [name for name, _ in _COLUMNS[table]]


def column_types(table: str) -> dict[str, str]:
    return dict(_COLUMNS[table])


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "ts": pa.timestamp("us", tz="UTC"),
    }[name]


def schema(table: str) -> pa.Schema:
    """The pyarrow schema a table is created with."""
    import pyarrow as pa

    return pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in _COLUMNS[table]])


def leaderboard_type(column: str) -> pa.DataType:
    """The type of a leaderboard column, including the dynamic params/metrics columns."""
    fixed = column_types("leaderboard")
    if column in fixed:
        return _arrow_type(fixed[column])
    if column.startswith(PARAM_PREFIX):
        return _arrow_type("string")
    return _arrow_type("float64")


_FORBIDDEN = str.maketrans({ch: "_" for ch in " ,;{}()\n\t=`"})


@lru_cache(maxsize=4096)
def safe_column(name: str) -> str:
    """A Delta-legal column name (no column mapping): forbidden characters become ``_``."""
    return name.translate(_FORBIDDEN)
