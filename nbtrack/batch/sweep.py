"""``nbtrack.sweep()``: execute a notebook over a grid (or random sample) of parameters.

Every input is checked before anything is written. With ``local`` workers the
executions then start at once, W at a time, while a thread opens the MLflow
store and creates the parent run, the plan and one child run per execution
(each kernel's delivery waits for its child's id in a file: see
:mod:`nbtrack.batch.run_creator`); a store that does not exist yet is created
first, before any kernel or delivery process can race for it. Spark tasks may
run on other machines, so there every run exists before the first task. A
failed execution is recorded and the rest go on; ``resume=SWEEP_ID`` runs only
what is missing or failed. The parent run's own life (params, counts, final
status) goes through a journal like a kernel's (:mod:`nbtrack.batch.parent_run`),
so it reaches the lake as well as MLflow.

A tracking server that does not answer stops a sweep before anything starts; one
that fails while the kernels start stops it too, and the kernels whose runs
were never created leave nothing behind (their journals and outputs are removed).

    nbtrack.sweep("train.ipynb", {"lr": [0.1, 0.01], "depth": [3, 5]}, workers=2)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbtrack import env, tags
from nbtrack.batch import grid
from nbtrack.batch import params as params_mod
from nbtrack.batch.jobs import FINISHED, KILLED, Job, Outcome
from nbtrack.batch.parent_run import ParentJournal, close_parent, end_parent, open_parent
from nbtrack.batch.plan import (
    PLAN_ARTIFACT_DIR,
    PLAN_FILE,
    SweepPlan,
    new_sweep_id,
    notebook_loads_nbtrack,
)
from nbtrack.batch.progress import Progress, ProgressOption
from nbtrack.batch.report import runs_frame, sort_runs
from nbtrack.batch.store import (
    DELIVERY_TIMEOUT_S,
    SWEEP_DURATION,
    SWEEP_ERROR,
    SWEEP_SUPERSEDED_BY,
    Store,
    check_reachable,
    latest_attempts,
)
from nbtrack.errors import NbtrackError, NotFound, StoreUnavailable, UsageProblem
from nbtrack.project import Project
from nbtrack.store import resolve

if TYPE_CHECKING:
    import pandas as pd

    from nbtrack.batch.executor import LocalExecutor

Backend = Literal["local", "spark"]
#: How long an interrupted sweep waits for its parent's KILLED to be delivered.
INTERRUPTED_DELIVERY_S = 10.0


def _default_warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def sweep(
    notebook: str | os.PathLike[str] | None,
    params: Mapping[str, Any] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
    random: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    timeout: float | None = None,
    backend: Backend = "local",
    resume: str | None = None,
    metric: str | None = None,
    maximize: bool | None = None,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: ProgressOption = None,
    tracking_uri: str | None = None,
    project: str | os.PathLike[str] | None = None,
    spark: Any = None,
    spark_master: str | None = None,
    warn: Callable[[str], None] | None = None,
    delivery_timeout: float = DELIVERY_TIMEOUT_S,
) -> pd.DataFrame:
    """Run every combination of ``params`` (name -> list of values; a non-list is fixed).

    Returns one row per combination (``index, run_id, status, error, duration_s,
    output, params.*, metrics.*``), sorted by ``metric`` when given (best first;
    ``maximize`` defaults from the name by :mod:`nbtrack.metric_direction`: losses and
    error rates such as ``val_loss`` or ``wer`` are minimized).
    ``df.attrs`` holds ``sweep_id`` and ``parent_run_id``. With ``backend="spark"``
    the executions run on ``spark`` (a SparkSession), else the active session, else
    one built for ``spark_master`` (``local[W]`` by default, ``sc://...`` for Spark Connect).
    """
    say = warn or _default_warn
    if workers < 1:
        raise UsageProblem(f"--workers must be at least 1, got {workers}")
    if timeout is not None and timeout <= 0:
        raise UsageProblem(f"--timeout must be positive, got {timeout}")
    if backend not in ("local", "spark"):
        raise UsageProblem(f"unknown backend {backend!r}: use 'local' or 'spark'")
    if resume and (params or file or random):
        raise UsageProblem("--resume re-uses the sweep's own parameters: drop -p/-f/--random")
    if not resume and notebook is None:
        raise UsageProblem("which notebook? give NOTEBOOK (or --resume SWEEP_ID)")
    from nbtrack.batch.executor import LocalExecutor

    executor = LocalExecutor(workers) if backend == "local" else None
    store: Store | None
    parent: ParentJournal | None
    try:
        if resume:
            plan, store, todo, parent = _prepare_resume(resume, notebook, project, tracking_uri,
                                                        say)
        else:
            plan, store, todo, parent = _prepare_new(
                Path(notebook or ""), params or {}, file=file, random=random, seed=seed,
                kernel_name=kernel_name, cwd=cwd, project=project, tracking_uri=tracking_uri,
                say=say, extra_tags={"nbtrack.sweep.backend": backend}, executor=executor,
                metric=metric, maximize=maximize,
            )
        if todo and executor is not None:
            store = _run_local(plan, store, todo, timeout=timeout, executor=executor,
                               progress=progress, delivery_timeout=delivery_timeout,
                               new_parent=None if resume else {"nbtrack.sweep.backend": backend},
                               parent=parent)
        elif todo:
            assert store is not None and parent is not None
            _run(plan, store, parent, todo, timeout=timeout, executor=executor, workers=workers,
                 progress=progress, spark=(spark, spark_master),
                 delivery_timeout=delivery_timeout)
        else:
            say(f"sweep {plan.sweep_id}: all {len(plan.combinations)} executions already finished")
    finally:
        if executor is not None:
            executor.close()
    assert store is not None
    if metric is None:  # a resumed sweep is ordered as it was first asked
        metric, maximize = plan.metric, plan.maximize
    frame = sort_runs(results(plan, store), metric, maximize)
    frame.attrs.update(sweep_id=plan.sweep_id, parent_run_id=plan.parent_run_id, metric=metric,
                       maximize=maximize)
    return frame


def _prepare_new(
    notebook: Path, params: Mapping[str, Any], *, file: str | os.PathLike[str] | None,
    random: int | None, seed: int | None, kernel_name: str | None,
    cwd: str | os.PathLike[str] | None, project: str | os.PathLike[str] | None,
    tracking_uri: str | None, say: Callable[[str], None], extra_tags: dict[str, str],
    executor: LocalExecutor | None, metric: str | None = None, maximize: bool | None = None,
) -> tuple[SweepPlan, Store | None, list[int], ParentJournal | None]:
    """Validate everything, then (Spark) write the parent run and plan. Nothing is written on
    bad input, nor when the tracking server does not answer.

    With local workers the runs are created later, while the kernels start (``None`` store and
    parent, unless a new SQLite store had to be created first).
    """
    notebook = notebook.expanduser().resolve()
    if not notebook.is_file():
        raise NotFound(f"notebook not found: {notebook}")
    declared = params_mod.inspect_parameters(notebook)
    axes = grid.as_axes(params)
    sets = None
    if file is not None:
        loaded = params_mod.load_params_file(file)
        axes = {**loaded.axes, **axes}
        sets = loaded.sets
    combinations = grid.expand(axes, sets)
    if random is not None:
        combinations, capped = grid.sample(combinations, random, seed)
        if capped:
            say(f"--random {random} exceeds the {len(combinations)} combinations: running all")
    params_mod.check_injectable(combinations, declared)
    combinations = [{k: params_mod.to_jsonable(v) for k, v in c.items()} for c in combinations]
    names = list(dict.fromkeys(name for combo in combinations for name in combo))
    params_mod.warn_about_names(notebook, names, declared, say)
    run_dir = Path(cwd).expanduser().resolve() if cwd else notebook.parent
    if not run_dir.is_dir():
        raise NotFound(f"working directory not found: {run_dir}")
    resolved = resolve(notebook, project=project, tracking_uri=tracking_uri)
    proj, uri = resolved.project, resolved.tracking_uri
    check_reachable(uri)
    sweep_id = new_sweep_id()
    if executor is not None:  # workers import papermill while we set up the store and runs
        executor.log_dir = proj.outputs_dir / sweep_id / "logs"
        executor.start(len(combinations))
    plan = SweepPlan(
        sweep_id=sweep_id, notebook=str(notebook), project_root=str(proj.root),
        tracking_uri=uri, experiment_id="", parent_run_id="",  # known once the parent exists
        combinations=combinations, cwd=str(run_dir), kernel_name=kernel_name,
        load_extension=not notebook_loads_nbtrack(notebook), metric=metric, maximize=maximize,
    )
    store = parent = None
    if executor is None or _store_missing(uri):
        store = Store.open(proj, uri)
    if executor is None:
        assert store is not None
        parent = open_parent(plan, store, extra_tags=extra_tags)
        plan.save()
        store.client.log_artifact(plan.parent_run_id, str(plan.output_dir / PLAN_FILE),
                                  PLAN_ARTIFACT_DIR)
    return plan, store, plan.indexes, parent


def _store_missing(uri: str) -> bool:
    """A SQLite store not created yet: the sweep creates it before any kernel starts."""
    return uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file()


def _prepare_resume(
    sweep_id: str, notebook: str | os.PathLike[str] | None,
    project: str | os.PathLike[str] | None, tracking_uri: str | None,
    say: Callable[[str], None],
) -> tuple[SweepPlan, Store, list[int], ParentJournal | None]:
    """The sweep's plan, the combinations whose newest attempt did not finish, and (when
    there are some) the parent run, RUNNING again, with this attempt's journal."""
    resolved = resolve(Path(notebook).resolve() if notebook else None, project=project, tracking_uri=tracking_uri)
    proj = resolved.project
    check_reachable(resolved.tracking_uri)
    try:
        store = Store.open(proj, tracking_uri, create=False)
    except NotFound as exc:
        raise NotFound(f"no sweep {sweep_id!r}: {exc}") from None
    parent, children = store.sweep_runs(sweep_id)
    local = proj.outputs_dir / sweep_id / PLAN_FILE
    if local.is_file():
        plan = SweepPlan.load(local)
    else:
        try:
            folder = store.client.download_artifacts(parent.info.run_id, PLAN_ARTIFACT_DIR)
        except Exception as exc:
            raise NotFound(f"sweep {sweep_id} has no plan (sweep/plan.json): {exc}") from None
        plan = SweepPlan.load(Path(folder) / PLAN_FILE)
        plan.project_root = str(proj.root)
    if notebook and Path(notebook).resolve() != Path(plan.notebook):
        say(f"sweep {sweep_id} was run on {plan.notebook}; resuming with that notebook")
    if not Path(plan.notebook).is_file():
        raise NotFound(f"notebook of sweep {sweep_id} not found: {plan.notebook}")
    latest = latest_attempts(children)
    todo = [i for i in plan.indexes if i not in latest or latest[i].info.status != FINISHED]
    if not todo:
        return plan, store, todo, None
    plan.parent_run_id = parent.info.run_id
    store.client.update_run(parent.info.run_id, status="RUNNING")
    return plan, store, todo, open_parent(plan, store, extra_tags=None)


def _jobs(plan: SweepPlan, store: Store, todo: list[int], timeout: float | None) -> list[Job]:
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
            store.client.set_tag(previous[index].info.run_id, SWEEP_SUPERSEDED_BY, run_id)
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


def kernel_env(*, notebook: str, output: str, run_id: str | None = None,
               run_id_file: str | None = None, tracking_uri: str, project_root: str,
               parent_run_id: str | None = None, sweep_id: str | None = None,
               tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a kernel reads to know its run (see nbtrack.env) and to log into our store.

    ``run_id``, or ``run_id_file``: the run does not exist yet; its id will be written there.
    """
    variables = {
        env.NOTEBOOK.name: notebook,
        env.PAPERMILL_OUTPUT.name: output,
        "NBTRACK_TRACKING_URI": tracking_uri,
        "NBTRACK_PROJECT_DIR": project_root,
    }
    if run_id:
        variables[env.RUN_ID.name] = run_id
    elif run_id_file:
        variables[env.RUN_ID_FILE.name] = run_id_file
    if parent_run_id:
        variables[env.PARENT_RUN_ID.name] = parent_run_id
    if sweep_id:
        variables[env.SWEEP_ID.name] = sweep_id
    if tags:
        variables[env.RUN_TAGS.name] = json.dumps(dict(tags))
    return variables


def _run_local(plan: SweepPlan, store: Store | None, todo: list[int], *, timeout: float | None,
               executor: LocalExecutor, progress: ProgressOption, delivery_timeout: float,
               new_parent: dict[str, str] | None, parent: ParentJournal | None) -> Store:
    """Start the executions now; the runs are created meanwhile (RunCreator). Returns the store.

    ``new_parent``: the extra tags of the parent run to create; else ``parent`` exists.
    """
    from nbtrack.batch.orphans import forget_runless_kernels
    from nbtrack.batch.run_creator import RunCreator

    project = Project(Path(plan.project_root))
    attempt_start = time.time()
    _start_delivery(project)
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

    def on_event(event: dict[str, Any]) -> None:
        index = int(event["index"])
        kind = event.get("event")
        if kind == "start":
            creator.started(index)
            bar.started(index)
        elif kind == "cell":
            bar.cell(index, int(event["cell"]), int(event["cells"]))
        elif kind == "done":
            bar.finished(index, event["status"], event.get("error"))

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


def _start_delivery(project: Project) -> None:
    """Start the project's delivery process now: its MLflow import is paid while kernels start."""
    from nbtrack.config import project_config
    from nbtrack.delivery.launcher import daemon_alive, spawn_daemon

    config = project_config(project.root)
    if config.delivery == "thread" or os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return
    try:
        if not daemon_alive(project):
            spawn_daemon(project)
    except OSError:
        pass  # the first kernel starts it, as it would without a sweep


def _run(plan: SweepPlan, store: Store, parent: ParentJournal, todo: list[int], *,
         timeout: float | None, executor: LocalExecutor | None, workers: int,
         progress: ProgressOption, spark: Any, delivery_timeout: float) -> None:
    run_ids: dict[int, str] = {}
    outcomes: dict[int, Outcome] = {}
    with Progress(len(todo), title=f"sweep {plan.sweep_id}", progress=progress,
                  run_ids=run_ids) as bar:
        try:
            jobs = _jobs(plan, store, todo, timeout)
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

    def on_event(event: dict[str, Any]) -> None:
        index = int(event["index"])
        kind = event.get("event")
        if kind == "start":
            store.mark_running(run_ids[index])
            bar.started(index)
        elif kind == "cell":
            bar.cell(index, int(event["cell"]), int(event["cells"]))
        elif kind == "done":
            bar.finished(index, event["status"], event.get("error"))

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
        store.client.set_tag(run_ids[index], SWEEP_DURATION, f"{outcome.duration_s:.3f}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def results(plan: SweepPlan, store: Store) -> pd.DataFrame:
    """One row per combination: its newest attempt, swept params, final metric values."""
    latest = latest_attempts(store.sweep_runs(plan.sweep_id)[1])
    rows = []
    for index in plan.indexes:
        row: dict[str, Any] = {"index": index, "output": str(plan.output(index))}
        row.update({f"params.{k}": v for k, v in plan.params(index).items()})
        run = latest.get(index)
        if run is None:
            row.update(run_id=None, status="MISSING")
        else:
            info = run.info
            row.update(run_id=info.run_id, status=info.status,
                       error=run.data.tags.get(SWEEP_ERROR))
            duration = run.data.tags.get(SWEEP_DURATION)
            row["duration_s"] = float(duration) if duration else None
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        rows.append(row)
    return runs_frame(rows)

