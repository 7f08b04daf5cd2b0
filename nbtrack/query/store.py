"""Which tracking store (and project) a query reads: one rule for the API, magics and CLI.

Precedence: an explicit ``tracking_uri``; else the store of an explicit
``project`` folder; else the live notebook session's store (inside a kernel
with ``%load_ext nbtrack``); else the project of the notebook (or of the
current directory). ``MLFLOW_TRACKING_URI`` overrides the embedded store, as it
does for capture. Reading never creates a store: a project without
``.nbtrack/mlflow.db`` simply has no runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NotFound
from nbtrack.project import Project, find_project_root
from nbtrack.sinks.mlflow_store import open_client, tracking_uri_for

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ProjectLike = Project | str | os.PathLike[str]


@dataclass(frozen=True)
class StoreRef:
    """A project and the tracking URI its runs are read from."""

    project: Project
    tracking_uri: str

    @property
    def embedded_db(self) -> Path | None:
        """The SQLite file of an embedded store, None for any other store."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri[len("sqlite:///"):])
        return None

    def exists(self) -> bool:
        """False only for an embedded store nobody has written yet."""
        db = self.embedded_db
        return db is None or db.is_file()

    def client(self) -> MlflowClient:
        return open_client(self.tracking_uri)


def as_project(project: ProjectLike) -> Project:
    """``--project DIR`` names the project root itself (no walking up to a git root)."""
    if isinstance(project, Project):
        return project
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise NotFound(f"no project folder at {project}")
    return Project(root)


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
    project = getattr(session, "project", None)
    if not isinstance(project, Project):
        if notebook is None:
            return None, None
        project = Project.for_notebook(notebook)
    configured = getattr(getattr(session, "config", None), "tracking_uri", "")
    uri = tracking_uri_for(project, configured if isinstance(configured, str) else "")
    return notebook, StoreRef(project, uri)


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
        proj = as_project(project)
        return StoreRef(proj, tracking_uri_for(proj, tracking_uri or ""))
    proj = Project(find_project_root(notebook if notebook else Path.cwd()))
    if use_session:
        _, ref = session_store()
        if ref is not None and (notebook is None or ref.project == proj):
            return StoreRef(ref.project, tracking_uri or ref.tracking_uri)
    return StoreRef(proj, tracking_uri_for(proj, tracking_uri or ""))
