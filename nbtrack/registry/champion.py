"""Which run is a notebook's champion: the run holding a registered model's alias (``champion``),
else the notebook's latest finished run. Where ``nbtrack retrain`` starts from.

An embedded SQLite store is read directly (indexed queries, no MLflow import), so a retrain
check that finds nothing to do stays well under a second; any other store, or a file these
queries do not understand, is asked through MLflow's client.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from nbtrack import tags
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
        rows = _sqlite(str(db), "SELECT a.version, v.run_id FROM registered_model_aliases a LEFT JOIN "
                       "model_versions v ON v.name = a.name AND v.version = a.version "
                       "WHERE a.name = ? AND a.alias = ?", [name, alias])
        if rows is not None and len(rows) <= 1:  # one per workspace: several, and MLflow decides
            return AliasHolder(name, alias, int(str(rows[0][0])), str(rows[0][1] or "") or None) if rows else None
    from mlflow.exceptions import MlflowException

    with mlflow_errors(), global_tracking_uri(ref.tracking_uri):
        try:
            version = ref.client().get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
                return None
            raise
    return AliasHolder(name, alias, int(version.version), version.run_id or None)


def latest_finished(ref: StoreRef, experiment: str) -> tuple[str | None, int]:
    """``(run id, number of runs)``: the newest FINISHED run of the experiment (a sweep's parent
    aside: it executed nothing), and how many active runs it has at all."""
    if not ref.exists():
        return None, 0
    db = ref.embedded_db
    if db is not None:
        rows = _sqlite(str(db), "SELECT r.run_uuid, r.status FROM runs r JOIN experiments e "
                       "ON e.experiment_id = r.experiment_id LEFT JOIN tags t ON t.run_uuid = r.run_uuid "
                       "AND t.key = ? WHERE e.name = ? AND r.lifecycle_stage = 'active' "
                       "AND (t.value IS NULL OR t.value != 'parent') ORDER BY r.start_time DESC",
                       [tags.SWEEP_ROLE, experiment])
        if rows is not None:
            finished = next((str(run) for run, status in rows if status == "FINISHED"), None)
            return finished, len(rows)
    client = ref.client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None, 0
    runs = [r for r in client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"],
                                          max_results=1000)
            if r.data.tags.get(tags.SWEEP_ROLE) != "parent"]
    finished = next((r.info.run_id for r in runs if r.info.status == "FINISHED"), None)
    return finished, len(runs)


def challengers(ref: StoreRef, champion: str) -> list[tuple[str, str]]:
    """``[(run id, status)]`` of the retrains that challenged ``champion``, newest first."""
    if not ref.exists():
        return []
    db = ref.embedded_db
    if db is not None:
        rows = _sqlite(str(db), "SELECT r.run_uuid, r.status FROM tags t JOIN runs r ON r.run_uuid = "
                       "t.run_uuid WHERE t.key = ? AND t.value = ? AND r.lifecycle_stage = 'active' "
                       "ORDER BY r.start_time DESC", [tags.RETRAIN_OF, champion])
        if rows is not None:
            return [(str(run), str(status)) for run, status in rows]
    client = ref.client()
    run = client.get_run(champion)
    found = client.search_runs([run.info.experiment_id], f"tags.`{tags.RETRAIN_OF}` = '{champion}'",
                               order_by=["attributes.start_time DESC"])
    return [(r.info.run_id, r.info.status) for r in found]


def _sqlite(db: str, sql: str, args: list[object]) -> list[tuple[object, ...]] | None:
    """The query's rows; None when the file cannot say (not a store these queries understand)."""
    try:
        with sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return None
