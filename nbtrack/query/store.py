"""Which store a query reads: the live notebook session's, else the one resolver's answer.

Precedence: an explicit ``tracking_uri``; else the store of an explicit
``project`` folder; else the live notebook session's store (inside a kernel
with ``%load_ext nbtrack``); else :func:`nbtrack.store.resolve` for the notebook
(or the current directory). Reading never creates a store: a project without
``.nbtrack/mlflow.db`` simply has no runs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from nbtrack.store import ProjectLike, StoreRef, as_project, resolve

__all__ = ["ProjectLike", "StoreRef", "as_project", "resolve_store", "session_store"]


def session_store() -> tuple[str | None, StoreRef | None]:
    """The notebook path and store of the live capture session, if this is a kernel running one.

    Only a process that loaded the extension has imported the session module;
    checking ``sys.modules`` first means a query never starts a session itself.
    """
    module = sys.modules.get("nbtrack.capture.session")
    if module is None:
        return None, None
    try:
        session: Any = module.current_session()
    except Exception:  # a broken session must not break a query
        return None, None
    # Outside a loaded kernel current_session() is a stand-in whose attributes are
    # functions: only real values count, and nothing on it is ever called.
    notebook = getattr(session, "notebook", None)
    notebook = str(notebook) if isinstance(notebook, (str, os.PathLike)) and notebook else None
    store = getattr(session, "store", None)
    if not isinstance(store, StoreRef):
        return notebook, (resolve(notebook) if notebook else None)
    return notebook, store


def resolve_store(
    *,
    notebook: str | os.PathLike[str] | None = None,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    use_session: bool = True,
) -> StoreRef:
    """The store to read for ``notebook`` (or for the current directory when None).

    Inside a kernel running nbtrack, a notebook of the session's own project is
    read from the store the session writes to (``%nbtrack config tracking_uri=``).
    """
    if project is not None:
        return resolve(project=project, tracking_uri=tracking_uri)
    if use_session:
        _, ref = session_store()
        if ref is not None and (notebook is None or resolve(notebook).project == ref.project):
            if tracking_uri:
                return StoreRef(ref.project, tracking_uri, ref.lake_uri, ref.config)
            return ref
    return resolve(notebook, tracking_uri=tracking_uri)
