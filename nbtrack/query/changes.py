"""A change token: a short text that differs whenever a store's runs may have changed.

The side panel asks for it every few seconds and reloads its list only when it moves, so
runs made elsewhere (a CLI sweep, another kernel, papermill) appear without a click, at
the cost of a few ``stat`` calls. For an embedded store the token is built from the SQLite
files (MLflow writes every run, param, metric and status there), the journal folder (a
kernel starting or ending) and the lake's run table log (the lake may lag MLflow by a
batch); for a tracking server, from its newest run start and end in the experiment.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbtrack.query.store import StoreRef


def change_token(ref: StoreRef, experiment: str | None = None) -> str:
    """A token that changes when runs of ``ref`` (of ``experiment`` on a server) may have."""
    db = ref.embedded_db
    if db is not None:
        paths = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal"),
                 ref.project.journal_dir]
        if ref.lake_uri and "://" not in ref.lake_uri:
            paths.append(Path(ref.lake_uri) / "runs" / "_delta_log")
        parts: list[Any] = [_stat(p) for p in paths]
    else:
        parts = _server_state(ref, experiment)
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def _server_state(ref: StoreRef, experiment: str | None) -> list[Any]:
    """The experiment's newest start and newest end: a run added, or one ending, moves them."""
    client = ref.client()
    found = client.get_experiment_by_name(experiment) if experiment else None
    if found is None:
        return [None]
    state: list[Any] = []
    for order in ("attributes.start_time DESC", "attributes.end_time DESC"):
        runs = client.search_runs([found.experiment_id], max_results=1, order_by=[order])
        state += [(r.info.run_id, r.info.status, r.info.end_time) for r in runs]
    return state
