"""A sweep's parent run as a journal of its own, so it reaches every sink like a kernel's run.

The sweep creates its parent run in MLflow itself (the children must name it
as their parent before any of them exists), then writes the parent's life here:
``run_start`` carrying that ``mlflow_run_id``, the swept values as ``params``,
then the counts (``tags``) and the final status (``run_end``). The project's
normal delivery takes it into MLflow and the Delta lake (``runs``, ``params``,
``leaderboard``), exactly as it takes the children from their kernels' journals.
A sweep process that dies leaves an open journal, and the run is recovered as
KILLED, like a killed kernel's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.batch.jobs import FAILED, FINISHED
from nbtrack.batch.store import latest_attempts
from nbtrack.journal import JournalWriter
from nbtrack.project import Project

if TYPE_CHECKING:
    from nbtrack.batch.plan import SweepPlan
    from nbtrack.batch.store import Store

log = logging.getLogger(__name__)

#: How long an interrupted sweep waits for its parent's KILLED to be delivered.
INTERRUPTED_DELIVERY_S = 10.0


def param_space(combinations: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every value each parameter takes in the sweep, in first-seen order."""
    space: dict[str, list[Any]] = {}
    for combo in combinations:
        for name, value in combo.items():
            if value not in space.setdefault(name, []):
                space[name].append(value)
    return space


class ParentJournal:
    """The journal of one sweep attempt's parent run (a new sweep, or a ``--resume``)."""

    def __init__(self, project: Project, *, run_id: str, tracking_uri: str, notebook: str,
                 name: str, run_tags: Mapping[str, str], params: Mapping[str, list[Any]]) -> None:
        from nbtrack.config import project_config
        from nbtrack.delivery.launcher import start_delivery

        config = project_config(project.root)
        self.session = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.key = uuid.uuid4().hex
        self.writer = JournalWriter(project.journal_dir, self.session)
        self.writer.append(
            "session_start", pid=os.getpid(), pid_started=_process_start_time(),
            host=socket.gethostname(), python=sys.version.split()[0], executable=sys.executable,
            cwd=os.getcwd(), version=_version(), delivery=config.delivery, tracking_uri=tracking_uri,
        )
        self.writer.append(
            "run_start", run=self.key, experiment=project.experiment_name(notebook),
            notebook=notebook, project=str(project.root), tracking_uri=tracking_uri, name=name,
            mlflow_run_id=run_id, parent_run_id=None, origin="sweep",
            tags={**run_tags, tags.RUN_KEY: self.key, tags.SESSION: self.session},
            papermill_input=None, papermill_output=None,
        )
        if params:
            self.writer.append(
                "params", run=self.key, source="sweep", cell_id=None,
                params={k: json.dumps(v)[:6000] for k, v in params.items()},
                values=dict(params),
            )
        self.delivery = start_delivery(project, self.session, config)

    def end(self, status: str, run_tags: Mapping[str, str], *, timeout: float) -> bool:
        """Record how the sweep ended; True once MLflow has it (else delivery keeps trying)."""
        if run_tags:
            self.writer.append("tags", run=self.key, tags=dict(run_tags))
        self.writer.append("run_end", run=self.key, status=status, notebook=None,
                           papermill_output=None, out_of_order=[])
        self.writer.append("session_end")
        self.writer.close()
        delivered = self.delivery.wait(self.writer.seq, timeout)
        self.delivery.stop(timeout=max(1.0, timeout / 4))
        return delivered


def _process_start_time() -> float | None:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - recovery then only checks the pid
        return None


def _version() -> str:
    from nbtrack.version import __version__

    return __version__


def open_parent(plan: SweepPlan, store: Store, *,
                extra_tags: Mapping[str, str] | None) -> ParentJournal:
    """Create the parent run of a new sweep (``extra_tags`` given), or take the existing one
    (``--resume``), and open the journal of this attempt."""
    name = f"sweep {plan.sweep_id}"
    run_tags = {
        tags.SWEEP_ID: plan.sweep_id,
        tags.ORIGIN: "sweep",
        tags.NOTEBOOK: store.project.experiment_name(plan.notebook),
        tags.SWEEP_ROLE: "parent",
        tags.SWEEP_SIZE: str(len(plan.combinations)),
        **(extra_tags or {}),
    }
    if extra_tags is not None:
        plan.experiment_id = store.experiment_id(plan.notebook)
        plan.parent_run_id = store.create_parent(plan.experiment_id, name, run_tags)
    return ParentJournal(Project(Path(plan.project_root)), run_id=plan.parent_run_id,
                         tracking_uri=plan.tracking_uri, notebook=plan.notebook, name=name,
                         run_tags=run_tags, params=param_space(plan.combinations))


def end_parent(plan: SweepPlan, store: Store, parent: ParentJournal | None, *,
               timeout: float) -> None:
    """FINISHED when every combination's newest attempt finished, else FAILED, with the counts."""
    assert parent is not None  # the runs exist, so the parent does
    latest = latest_attempts(store.sweep_runs(plan.sweep_id)[1])
    finished = sum(1 for r in latest.values() if r.info.status == FINISHED)
    failed = len(plan.combinations) - finished
    counts = {tags.SWEEP_FINISHED: str(finished), tags.SWEEP_FAILED: str(failed)}
    close_parent(plan, store, parent, FINISHED if not failed else FAILED, counts, timeout=timeout)


def close_parent(plan: SweepPlan, store: Store | None, parent: ParentJournal, status: str,
                 run_tags: dict[str, str], *, timeout: float) -> None:
    """The parent's end goes through its journal; when MLflow does not have it in time, the
    sweep records it there itself (as it does for a child whose kernel never reported), and
    the journal still brings it to the lake later."""
    if parent.end(status, run_tags, timeout=timeout) or store is None:
        return
    try:
        for key, value in run_tags.items():
            store.client.set_tag(plan.parent_run_id, key, value)
        store.client.set_terminated(plan.parent_run_id, status=status)
    except Exception:  # noqa: BLE001 - the store is down: the journal keeps the end for later
        log.warning("could not end the parent run %s now; its journal keeps the end",
                    plan.parent_run_id)
