"""Which project, tracking store and lake a process uses: one rule for every path.

Capture in a kernel, the delivery process, queries, the CLI, the server, sweeps
and re-runs all decide here, so a store configured once (``[tool.nbtrack]``,
``NBTRACK_*``, ``%nbtrack config``) is the store every one of them writes and reads.

- project: an explicit folder (``--project``); else the ``project_dir`` option
  (``NBTRACK_PROJECT_DIR``, ``[tool.nbtrack] project_dir``, relative to the folder
  holding that ``pyproject.toml``); else the notebook's git root, else its folder
  (the working directory when there is no notebook).
- tracking store: an explicit URI; else the ``tracking_uri`` option; else
  ``MLFLOW_TRACKING_URI``; else the embedded ``<project>/.nbtrack/mlflow.db``.
- lake: the ``lake_path`` option (relative to the project root); else
  ``<project>/.nbtrack/lake``.

Resolving creates nothing and imports no MLflow. :func:`open_client` opens a
store (MLflow imported then, never on a kernel's cell path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import env
from nbtrack.config import NbtrackConfig, project_config
from nbtrack.errors import NotFound, StoreUnavailable
from nbtrack.project import Project, find_project_root

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ProjectLike = Project | str | os.PathLike[str]

_UNSET = object()


@dataclass(frozen=True)
class StoreRef:
    """A project, the MLflow store its runs live in and the lake beside them."""

    project: Project
    tracking_uri: str
    lake_uri: str = ""
    config: NbtrackConfig | None = field(default=None, compare=False, repr=False)

    @property
    def embedded_db(self) -> Path | None:
        """The SQLite file of a SQLite store, None for any other store."""
        return sqlite_path(self.tracking_uri)

    def exists(self) -> bool:
        """False only for a SQLite store nobody has written yet."""
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


def resolve(
    notebook: str | os.PathLike[str] | None = None,
    *,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    config: NbtrackConfig | None = None,
    env_tracking_uri: str | None | object = _UNSET,
) -> StoreRef:
    """The store for ``notebook`` (or for the working directory when None).

    ``config`` is the caller's own options (a kernel's session, with its IPython
    config and ``%nbtrack config``); without it the project's ``pyproject.toml`` and
    ``NBTRACK_*`` are read. ``env_tracking_uri`` is ``MLFLOW_TRACKING_URI`` as the
    caller saw it (a kernel takes it once, at load, so a notebook that points its own
    MLflow elsewhere later does not move nbtrack's runs).
    """
    if project is not None:
        proj = as_project(project)
        config = config if config is not None else project_config(proj.root)
    else:
        base = find_project_root(_existing_or_cwd(notebook))
        config = config if config is not None else project_config(base)
        proj = Project(_configured_dir(config.project_dir, base) or base)
    from_env = env.MLFLOW_TRACKING_URI.get() if env_tracking_uri is _UNSET else env_tracking_uri
    uri = tracking_uri or config.tracking_uri or from_env or proj.default_tracking_uri
    return StoreRef(proj, str(uri), lake_uri(proj, config), config)


def lake_uri(project: Project, config: NbtrackConfig) -> str:
    """The configured lake path, else ``<project>/.nbtrack/lake``.

    A relative ``lake_path`` is relative to the project root, never to the current
    directory: the delivery process, a kernel delivering from a thread and
    ``nbtrack recover`` run in different folders but share one delivery cursor per
    journal, so each must write the same lake.
    """
    if not config.lake_path:
        return str(project.lake_dir)
    if "://" in config.lake_path:
        return config.lake_path
    return str((project.root / Path(config.lake_path).expanduser()).resolve())


def _existing_or_cwd(notebook: str | os.PathLike[str] | None) -> Path:
    if not notebook:
        return Path.cwd()
    path = Path(notebook).expanduser()
    # A workspace path (Databricks) names no folder here: its state stays in the working directory.
    return path if path.exists() or path.parent.is_dir() else Path.cwd()


def _configured_dir(value: str, base: Path) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


# -- opening a store (MLflow imported here, only when called) ---------------------------------

_clients: dict[str, MlflowClient] = {}


def quiet_mlflow_env() -> None:
    """Fail fast on an unreachable server: nbtrack retries itself, later, in the background."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    # Telemetry flushes at exit and waits on the network: seconds per process where there is none.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def open_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` for ``tracking_uri``; creates a new SQLite store safely.

    Two nbtrack processes creating the same new SQLite store race in MLflow's schema
    migration, so creation happens under a file lock beside the database.
    """
    client = _clients.get(tracking_uri)
    if client is not None:
        return client
    quiet_mlflow_env()
    from mlflow.tracking import MlflowClient

    db = sqlite_path(tracking_uri)
    try:
        if db is not None:
            from filelock import FileLock

            db.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(db) + ".lock", timeout=120):
                client = MlflowClient(tracking_uri)
                client.search_experiments(max_results=1)  # forces schema creation now
        else:
            client = MlflowClient(tracking_uri)
    except Exception as exc:
        raise StoreUnavailable(f"cannot open MLflow store {tracking_uri}: {exc}") from exc
    _clients[tracking_uri] = client
    return client


def get_or_create_experiment(client: MlflowClient, name: str, project: Project | None) -> str:
    """Experiment id for ``name``; new experiments of a SQLite store keep artifacts in the project."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    if project is not None and sqlite_path(client.tracking_uri or "") is not None:
        location = project.artifact_location(name)
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
