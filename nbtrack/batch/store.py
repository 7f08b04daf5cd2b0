"""The MLflow side of re-runs: parent and child runs, their statuses, their metrics.

A sweep owns its runs. It creates the parent, then one child per execution
(status SCHEDULED until a worker starts it), and passes each child's id to
its kernel (``NBTRACK_RUN_ID``, or a file named by ``NBTRACK_RUN_ID_FILE``
when the runs are created while the kernels start), whose capture logs
params, metrics and the final status into it. The kernel's status wins: the
sweep sets a status only on a run still unfinished after delivery had its
chance (a kernel that died or was killed never reports one), so a run's end
is recorded exactly once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import env, tags
from nbtrack.errors import NotFound, StoreUnavailable
from nbtrack.events import TERMINAL_STATUSES
from nbtrack.project import Project
from nbtrack.store import get_or_create_experiment, open_client, resolve

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


#: How long to wait for the kernel's own final status to be delivered.
DELIVERY_TIMEOUT_S = 45.0
#: How long a tracking server gets to accept a connection before a sweep starts anything.
CONNECT_TIMEOUT_S = 5.0


def resolve_tracking_uri(project: Project, tracking_uri: str | None) -> str:
    """The store the kernels will log to (:func:`nbtrack.store.resolve`)."""
    return resolve(project=project, tracking_uri=tracking_uri).tracking_uri


def check_reachable(tracking_uri: str) -> None:
    """Raise StoreUnavailable when an HTTP tracking server does not accept connections.

    A sweep asks before it starts any kernel or writes anything: kernels started for
    a store that is down would leave journals of runs that can never exist.
    """
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return  # a local store, or one (databricks) only its client can reach
    if parts.scheme in getproxies() and not proxy_bypass(parts.hostname):
        return  # reached through a proxy: only MLflow's client can tell
    import socket

    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        hint = ("or unset MLFLOW_TRACKING_URI to use the project's embedded store"
                if env.MLFLOW_TRACKING_URI.get() == tracking_uri else "or choose another store")
        raise StoreUnavailable(f"cannot reach {tracking_uri} ({reason.lower()}); nothing was run. "
                               f"Start the tracking server, {hint}.") from None


@dataclass
class Store:
    """An open MLflow client plus the project it serves."""

    client: MlflowClient
    project: Project
    tracking_uri: str

    @classmethod
    def open(cls, project: Project, tracking_uri: str | None = None, *,
             create: bool = True) -> Store:
        """``create=False``: looking up existing runs must not leave an empty store behind."""
        uri = resolve_tracking_uri(project, tracking_uri)
        if uri.startswith("sqlite:///"):
            if not create and not Path(uri[len("sqlite:///"):]).is_file():
                raise NotFound(f"no nbtrack store at {uri[len('sqlite:///'):]}")
            project.ensure()
        return cls(open_client(uri), project, uri)

    def experiment_id(self, notebook: str | os.PathLike[str]) -> str:
        name = self.project.experiment_name(notebook)
        return get_or_create_experiment(self.client, name, self.project)

    # -- creating runs ---------------------------------------------------------------

    def create_parent(self, experiment_id: str, run_name: str, run_tags: Mapping[str, str]) -> str:
        """The parent run, so children can name it; its params and end come through its journal."""
        run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(run_tags))
        return str(run.info.run_id)

    def create_child(self, experiment_id: str, *, parent_run_id: str, sweep_id: str,
                     index: int, params: Mapping[str, Any], notebook: str, output: str,
                     status: str = "SCHEDULED") -> str:
        described = ", ".join(f"{k}={v!r}" for k, v in params.items())
        run = self.client.create_run(experiment_id, run_name=f"#{index} {described}"[:250], tags={
            tags.PARENT_RUN_ID: parent_run_id,
            tags.SWEEP_ID: sweep_id,
            tags.ORIGIN: "sweep",
            tags.NOTEBOOK: self.project.experiment_name(notebook),
            tags.PAPERMILL_INPUT: notebook,
            tags.PAPERMILL_OUTPUT: output,
            tags.SWEEP_ROLE: "child",
            tags.SWEEP_INDEX: str(index),
            tags.SWEEP_PARAMS: json.dumps(params)[:5000],
        })
        self.client.update_run(run.info.run_id, status=status)
        return str(run.info.run_id)

    # -- statuses --------------------------------------------------------------------

    def status(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).info.status)

    def mark_running(self, run_id: str) -> None:
        if self.status(run_id) == "SCHEDULED":
            self.client.update_run(run_id, status="RUNNING")

    def wait_terminal(self, run_ids: Iterable[str], timeout: float) -> dict[str, str]:
        """Poll until every run has a final status (the kernel's, once delivered) or timeout."""
        waiting = set(run_ids)
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while waiting:
            for run_id in list(waiting):
                statuses[run_id] = self.status(run_id)
                if statuses[run_id] in TERMINAL_STATUSES:
                    waiting.discard(run_id)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        return statuses

    def finalize(self, run_id: str, status: str, error: str | None) -> str:
        """Record how an execution ended unless the kernel already did; returns the final status."""
        current = self.status(run_id)
        if error:
            self.client.set_tag(run_id, tags.SWEEP_ERROR, error[:5000])
        if current in TERMINAL_STATUSES:
            return current
        self.client.set_terminated(run_id, status=status)
        return status

    # -- finding runs ----------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException as exc:
            raise NotFound(f"no run {run_id!r} in {self.tracking_uri}") from exc

    def sweep_runs(self, sweep_id: str) -> tuple[Run, list[Run]]:
        """The parent run of a sweep and all its children (every attempt), oldest first."""
        quoted = sweep_id.replace("'", "")
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        found = self._search(experiments, f"tags.`{tags.SWEEP_ID}` = '{quoted}'")
        parents = [r for r in found if r.data.tags.get(tags.SWEEP_ROLE) == "parent"]
        if not parents:
            raise NotFound(f"no sweep {sweep_id!r} in {self.tracking_uri}")
        children = [r for r in found if r.data.tags.get(tags.SWEEP_ROLE) == "child"]
        children.sort(key=lambda r: r.info.start_time or 0)
        return parents[0], children

    def _search(self, experiment_ids: list[str], filter_string: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(experiment_ids, filter_string, max_results=1000,
                                           page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def log_json(self, run_id: str, artifact_path: str, name: str, data: Any,
                 folder: Path) -> None:
        """Write ``data`` as ``folder/name`` and log that file as an artifact of the run."""
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / name
        file.write_text(json.dumps(data, indent=1))
        self.client.log_artifact(run_id, str(file), artifact_path)


def latest_attempts(children: Iterable[Run]) -> dict[int, Run]:
    """The newest child run of each combination index."""
    latest: dict[int, Run] = {}
    for run in children:
        raw = run.data.tags.get(tags.SWEEP_INDEX)
        if raw is None or not raw.isdigit():
            continue
        index = int(raw)
        if index not in latest or (run.info.start_time or 0) >= (latest[index].info.start_time or 0):
            latest[index] = run
    return latest
