"""Local sweeps: kernels start at once, W at a time, while a thread creates the MLflow runs.

Each kernel's delivery waits for its child run's id in a file (see
:mod:`nbtrack.batch.run_creator`). When the store fails while kernels start, the
kernels whose runs were never created leave nothing behind.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import env, tags
from nbtrack.batch.execution import finalize
from nbtrack.batch.jobs import KILLED, Job, Outcome, kernel_env
from nbtrack.batch.parent_run import INTERRUPTED_DELIVERY_S, ParentJournal, close_parent, end_parent
from nbtrack.batch.plan import SweepPlan
from nbtrack.batch.progress import Progress, ProgressOption
from nbtrack.batch.store import Store
from nbtrack.errors import NbtrackError, StoreUnavailable
from nbtrack.project import Project

if TYPE_CHECKING:
    from nbtrack.batch.executor import LocalExecutor
    from nbtrack.batch.protocol import WorkerEvent


def run_local(plan: SweepPlan, store: Store | None, todo: list[int], *, timeout: float | None,
               executor: LocalExecutor, progress: ProgressOption, delivery_timeout: float,
               new_parent: dict[str, str] | None, parent: ParentJournal | None) -> Store:
    """Start the executions now; the runs are created meanwhile (RunCreator). Returns the store.

    ``new_parent``: the extra tags of the parent run to create; else ``parent`` exists.
    """
    from nbtrack.batch.orphans import forget_runless_kernels
    from nbtrack.batch.run_creator import RunCreator

    project = Project(Path(plan.project_root))
    attempt_start = time.time()
    start_delivery(project)
    folder = plan.output_dir / "run-ids" / secrets.token_hex(4)  # one per attempt (--resume)
    id_files = {index: folder / str(index) for index in todo}
    jobs = [Job(
        index=index, notebook=plan.notebook, output=str(plan.output(index)),
        params=plan.params(index),
        env=kernel_env(notebook=plan.notebook, output=str(plan.output(index)),
                       run_id_file=str(id_files[index]), tracking_uri=plan.tracking_uri,
                       project_root=plan.project_root, sweep_id=plan.sweep_id,
                       tags={tags.ORIGIN: "sweep"}),
        cwd=plan.cwd, kernel_name=plan.kernel_name, load_extension=plan.load_extension,
        timeout=timeout,
    ) for index in todo]
    opened = store
    creator = RunCreator(
        plan, todo, id_files, new_parent=new_parent, parent=parent, on_error=executor.abort,
        open_store=lambda: opened or Store.open(project, plan.tracking_uri),
    ).start()
    outcomes: dict[int, Outcome] = {}

    def on_event(event: WorkerEvent) -> None:
        if event["event"] == "start":
            creator.started(event["index"])
        bar.follow(event)

    with Progress(len(jobs), title=f"sweep {plan.sweep_id}", progress=progress,
                  run_ids=creator.run_ids) as bar:
        try:
            if executor.log_dir is None:
                executor.log_dir = plan.output_dir / "logs"
            for outcome in executor.run(jobs, on_event):
                outcomes[outcome.index] = outcome
            store = creator.wait()
            bar.note("delivering")
            finalize(store, creator.run_ids, outcomes, delivery_timeout)
        except BaseException as exc:
            creator.join()
            executor.close()  # every kernel of this attempt has ended: judge their journals now
            forget_runless_kernels(project, since=attempt_start,
                                   id_files=id_files.values(), killed=executor.killed_kernels)
            if creator.parent is None and new_parent is not None:
                shutil.rmtree(plan.output_dir, ignore_errors=True)  # no run of this sweep exists
            if creator.store is not None:
                for index, run_id in creator.run_ids.items():
                    if index not in outcomes:
                        creator.store.finalize(run_id, KILLED, "sweep interrupted")
            if creator.parent is not None:
                close_parent(plan, creator.store, creator.parent, KILLED, {},
                             timeout=min(delivery_timeout, INTERRUPTED_DELIVERY_S))
            if exc is creator.error and not isinstance(exc, NbtrackError):
                what = "nothing was run" if creator.parent is None else "the sweep was stopped"
                raise StoreUnavailable(
                    f"cannot create the sweep's runs in {plan.tracking_uri}: {_first_line(exc)}; "
                    f"{what}") from exc
            raise
        bar.note("done")
    end_parent(plan, store, creator.parent, timeout=delivery_timeout)
    return store


def start_delivery(project: Project) -> None:
    """Start the project's delivery process now: its MLflow import is paid while kernels start."""
    from nbtrack.config import project_config
    from nbtrack.delivery.launcher import daemon_alive, spawn_daemon

    config = project_config(project.root)
    if config.delivery == "thread" or env.DATABRICKS_RUNTIME.get():
        return
    try:
        if not daemon_alive(project):
            spawn_daemon(project)
    except OSError:
        pass  # the first kernel starts it, as it would without a sweep


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
