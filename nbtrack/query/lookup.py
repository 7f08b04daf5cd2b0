"""Finding a run by its id, or by the first characters of it, and an experiment by its name.

Tables show run ids shortened to 8 characters, so every surface (``nbtrack compare``,
``nbtrack rerun``, ``%nbtrack compare``, the server, ``nbtrack.compare``/``rerun``)
accepts any unique prefix through :func:`resolve_run_id`. An embedded SQLite store is
read directly (two indexed queries, no MLflow import), so a mistyped id fails in
milliseconds instead of after seconds of importing MLflow; any other store is asked
through MLflow's client.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack.errors import NotFound, UsageProblem

if TYPE_CHECKING:
    from mlflow.entities import Run

    from nbtrack.query.store import StoreRef

#: MLflow run ids are 32 hex digits (uuid4().hex).
RUN_ID_LENGTH = 32
_HEX = re.compile(r"[0-9a-f]+")
#: Candidates listed when a prefix is ambiguous.
_SHOWN = 5


def parse_run_id(text: str) -> str:
    """``text`` as a run id or prefix (hex, lower case); anything else is a typing mistake."""
    run_id = str(text).strip().lower()
    if not run_id:
        raise UsageProblem("empty run id: give a run id or its first characters "
                           "(see `nbtrack runs NOTEBOOK`)")
    if len(run_id) > RUN_ID_LENGTH or not _HEX.fullmatch(run_id):
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
        raise UsageProblem(f"{shown} is not a run id: run ids are hexadecimal, and their "
                           "first 8 characters are enough (see `nbtrack runs NOTEBOOK`)")
    return run_id


def resolve_run_id(ref: StoreRef, run_id: str) -> str:
    """The full id of run ``run_id``, or of the one run whose id starts with it.

    Raises ``UsageProblem`` for a malformed or ambiguous id (listing the candidates) and
    ``NotFound`` for an unknown one, or when the embedded store does not exist yet.
    """
    wanted = parse_run_id(run_id)
    if not ref.exists():
        raise NotFound(f"no run {wanted}: there is no nbtrack store at {ref.embedded_db} yet; "
                       "list runs with `nbtrack runs NOTEBOOK`")
    found = _sqlite_run_ids(ref.embedded_db, wanted) if ref.embedded_db else None
    if found is None:
        found = _mlflow_run_ids(ref, wanted)
    if wanted in found:
        return wanted
    if not found:
        raise NotFound(f"no run {wanted} in {ref.tracking_uri}; "
                       "list a notebook's runs with `nbtrack runs NOTEBOOK`")
    if len(found) > 1:
        shown = ", ".join(found[:_SHOWN]) + (" and more" if len(found) > _SHOWN else "")
        raise UsageProblem(f"run id {wanted} is ambiguous: {shown} start with it; "
                           "give more characters")
    return found[0]


def get_run(ref: StoreRef, run_id: str) -> Run:
    """The MLflow run of a full id or a unique prefix (see :func:`resolve_run_id`)."""
    return ref.client().get_run(resolve_run_id(ref, run_id))


def has_experiment(ref: StoreRef, names: Iterable[str]) -> str | None:
    """The first of ``names`` that is an experiment of the store, else None (no store: None)."""
    names = list(names)
    if not names or not ref.exists():
        return None
    db = ref.embedded_db
    if db is not None:
        rows = _sqlite_query(db, "SELECT name FROM experiments WHERE name IN "
                             f"({', '.join('?' * len(names))})", names)
        if rows is not None:
            present = {row[0] for row in rows}
            return next((n for n in names if n in present), None)
    client = ref.client()
    return next((n for n in names if client.get_experiment_by_name(n) is not None), None)


def _sqlite_run_ids(db: Path, prefix: str) -> list[str] | None:
    """Run ids starting with ``prefix`` (at most one more than listed); None when the file
    is not an MLflow store this query understands (MLflow then answers)."""
    rows = _sqlite_query(db, "SELECT run_uuid FROM runs WHERE run_uuid GLOB ? "
                         "ORDER BY start_time DESC LIMIT ?", [prefix + "*", _SHOWN + 1])
    return None if rows is None else [str(row[0]) for row in rows]


def _sqlite_query(db: Path, sql: str, args: Sequence[object]) -> list[tuple[object, ...]] | None:
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return None


def _mlflow_run_ids(ref: StoreRef, prefix: str) -> list[str]:
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    client = ref.client()
    if len(prefix) == RUN_ID_LENGTH:
        try:
            return [client.get_run(prefix).info.run_id]
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return []
            raise
    experiments: list[str] = []
    token = None
    while True:
        page = client.search_experiments(view_type=ViewType.ALL, page_token=token)
        experiments += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    if not experiments:
        return []
    runs = client.search_runs(experiments, f"attributes.run_id LIKE '{prefix}%'",
                              run_view_type=ViewType.ALL, max_results=_SHOWN + 1)
    return [run.info.run_id for run in runs]
