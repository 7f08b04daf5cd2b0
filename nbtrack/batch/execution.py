"""Executions whose MLflow runs exist before they start (Spark tasks, which may run elsewhere,
and re-runs): create the jobs, run them on the local executor or Spark with progress, then
record each run's final status where its kernel did not.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import env, tags
from nbtrack.batch.jobs import KILLED, Job, Outcome, kernel_env
from nbtrack.batch.parent_run import INTERRUPTED_DELIVERY_S, ParentJournal, close_parent, end_parent
from nbtrack.batch.plan import SweepPlan
from nbtrack.batch.progress import Progress, ProgressOption
from nbtrack.batch.store import Store, latest_attempts

if TYPE_CHECKING:
    from nbtrack.batch.executor import LocalExecutor
    from nbtrack.batch.protocol import WorkerEvent


def create_jobs(plan: SweepPlan, store: Store, todo: list[int], timeout: float | None) -> list[Job]:
    """One child run per execution, created before any kernel starts; superseded attempts marked."""
    previous = latest_attempts(store.sweep_runs(plan.sweep_id)[1]) if len(todo) else {}
    jobs = []
    for index in todo:
        output = str(plan.output(index))
        run_id = store.create_child(
            plan.experiment_id, parent_run_id=plan.parent_run_id, sweep_id=plan.sweep_id,
            index=index, params=plan.params(index), notebook=plan.notebook, output=output,
        )
        if index in previous:
            store.client.set_tag(previous[index].info.run_id, tags.SWEEP_SUPERSEDED_BY, run_id)
        jobs.append(Job(
            index=index, notebook=plan.notebook, output=output, params=plan.params(index),
            env=kernel_env(notebook=plan.notebook, output=output, run_id=run_id,
                           tracking_uri=plan.tracking_uri, project_root=plan.project_root,
                           parent_run_id=plan.parent_run_id, sweep_id=plan.sweep_id,
                           tags={tags.ORIGIN: "sweep"}),
            cwd=plan.cwd, kernel_name=plan.kernel_name,
            load_extension=plan.load_extension, timeout=timeout,
        ))
    return jobs


def run_created(plan: SweepPlan, store: Store, parent: ParentJournal, todo: list[int], *,
         timeout: float | None, executor: LocalExecutor | None, workers: int,
         progress: ProgressOption, spark: Any, delivery_timeout: float) -> None:
    run_ids: dict[int, str] = {}
    outcomes: dict[int, Outcome] = {}
    with Progress(len(todo), title=f"sweep {plan.sweep_id}", progress=progress,
                  run_ids=run_ids) as bar:
        try:
            jobs = create_jobs(plan, store, todo, timeout)
            run_ids.update({job.index: job.env[env.RUN_ID.name] for job in jobs})
            for outcome in execute(jobs, executor=executor, workers=workers, bar=bar,
                                   store=store, run_ids=run_ids, spark=spark):
                outcomes[outcome.index] = outcome
            bar.note("delivering")
            finalize(store, run_ids, outcomes, delivery_timeout)
        except BaseException:
            for index, run_id in run_ids.items():
                if index not in outcomes:
                    store.finalize(run_id, KILLED, "sweep interrupted")
            close_parent(plan, store, parent, KILLED, {},
                         timeout=min(delivery_timeout, INTERRUPTED_DELIVERY_S))
            raise
        bar.note("done")
    end_parent(plan, store, parent, timeout=delivery_timeout)


def execute(jobs: list[Job], *, executor: LocalExecutor | None, workers: int, bar: Progress,
            store: Store, run_ids: dict[int, str], spark: Any = None) -> list[Outcome]:
    """Run jobs on the local executor (or Spark when None), keeping progress and statuses current."""
    if executor is None:
        from nbtrack.batch.spark import SparkExecutor

        stop = threading.Event()
        watcher = threading.Thread(target=_watch_store, args=(store, run_ids, bar, stop),
                                   daemon=True)
        watcher.start()
        try:
            session, master = spark if isinstance(spark, tuple) else (spark, None)
            outcomes = SparkExecutor(workers=workers, spark=session, master=master).run(jobs)
        finally:
            stop.set()
            watcher.join(timeout=5)
        for outcome in outcomes:
            bar.finished(outcome.index, outcome.status, outcome.error)
        return outcomes

    def on_event(event: WorkerEvent) -> None:
        if event["event"] == "start":
            store.mark_running(run_ids[event["index"]])
        bar.follow(event)

    if executor.log_dir is None:
        executor.log_dir = Path(jobs[0].output).parent / "logs"
    return executor.run(jobs, on_event)


def _watch_store(store: Store, run_ids: dict[int, str], bar: Progress,
                 stop: threading.Event) -> None:
    """Spark tasks report nothing until the end: follow their runs in the store meanwhile."""
    from nbtrack.events import TERMINAL_STATUSES

    while not stop.wait(1.0):
        for index, run_id in run_ids.items():
            try:
                status = store.status(run_id)
            except Exception:
                continue
            if status in TERMINAL_STATUSES:
                bar.finished(index, status)


def finalize(store: Store, run_ids: dict[int, str], outcomes: dict[int, Outcome],
             delivery_timeout: float) -> None:
    """Wait for the kernels' own final statuses; record one only where none arrived."""
    waiting = [run_ids[i] for i, o in outcomes.items() if o.kernel_ended]
    store.wait_terminal(waiting, delivery_timeout)
    for index, outcome in outcomes.items():
        store.finalize(run_ids[index], outcome.status, outcome.error)
        store.client.set_tag(run_ids[index], tags.SWEEP_DURATION, f"{outcome.duration_s:.3f}")
