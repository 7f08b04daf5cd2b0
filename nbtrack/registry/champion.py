"""Which run holds a registered model's alias (``champion``): where ``nbtrack retrain --register``
starts from.

An embedded SQLite store is read directly (one indexed join, no MLflow import), so a retrain
check that finds nothing to do stays well under a second; any other store, or a file this
query does not understand, is asked through MLflow's client.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from nbtrack.query.store import StoreRef
from nbtrack.registry.register import global_tracking_uri, mlflow_errors

CHAMPION = "champion"


@dataclass(frozen=True)
class AliasHolder:
    """The version an alias points at, and the run that version's model came from."""

    name: str
    alias: str
    version: int
    run_id: str | None


def alias_holder(ref: StoreRef, name: str, alias: str = CHAMPION) -> AliasHolder | None:
    """The version of ``name`` holding ``alias``; None when the model or the alias does not exist."""
    if not ref.exists():
        return None
    db = ref.embedded_db
    if db is not None:
        rows = _sqlite_holders(str(db), name, alias)
        if rows is not None and len(rows) <= 1:
            return AliasHolder(name, alias, int(rows[0][0]), rows[0][1] or None) if rows else None
    from mlflow.exceptions import MlflowException

    with mlflow_errors(), global_tracking_uri(ref.tracking_uri):
        try:
            version = ref.client().get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
                return None
            raise
    return AliasHolder(name, alias, int(version.version), version.run_id or None)


def _sqlite_holders(db: str, name: str, alias: str) -> list[tuple[object, ...]] | None:
    """``[(version, run_id)]`` of the alias in every workspace; None when the file cannot say."""
    sql = ("SELECT a.version, v.run_id FROM registered_model_aliases a LEFT JOIN model_versions v "
           "ON v.name = a.name AND v.version = a.version WHERE a.name = ? AND a.alias = ?")
    try:
        with sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql, [name, alias]).fetchall()
    except sqlite3.Error:
        return None
