"""Opening the MLflow tracking store nbtrack uses, shared by sinks, queries and the CLI.

MLflow is imported here and only when a function is called: never at import of
nbtrack, never on a kernel's cell path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import env
from nbtrack.errors import StoreUnavailable
from nbtrack.project import Project

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_clients: dict[str, MlflowClient] = {}


def tracking_uri_for(project: Project, configured: str = "") -> str:
    """The store a project's runs go to: configured > MLFLOW_TRACKING_URI > embedded SQLite."""
    if configured:
        return configured
    from_env = env.MLFLOW_TRACKING_URI.get()
    if from_env:
        return from_env
    return project.default_tracking_uri


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


def _quiet_mlflow_env() -> None:
    """Fail fast on an unreachable server: nbtrack retries itself, later, in the background."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    # Telemetry flushes at exit and waits on the network: seconds per process where there is none.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def open_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` for ``tracking_uri``; creates an embedded SQLite store safely.

    Two processes creating the same new SQLite store race in MLflow's schema
    migration, so creation happens under a file lock beside the database.
    """
    client = _clients.get(tracking_uri)
    if client is not None:
        return client
    _quiet_mlflow_env()
    from mlflow.tracking import MlflowClient

    db = _sqlite_path(tracking_uri)
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
    """Experiment id for ``name``; new experiments of the embedded store keep artifacts in the project."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    if project is not None and _sqlite_path(client.tracking_uri or "") is not None:
        location = project.artifact_location(name)
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
