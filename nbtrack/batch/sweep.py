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

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbtrack import tags
from nbtrack.batch import grid
from nbtrack.batch import params as params_mod
from nbtrack.batch.execution import run_created
from nbtrack.batch.jobs import FINISHED
from nbtrack.batch.local import run_local
from nbtrack.batch.parent_run import ParentJournal, open_parent
from nbtrack.batch.plan import (
    PLAN_ARTIFACT_DIR,
    PLAN_FILE,
    SweepPlan,
    new_sweep_id,
    notebook_loads_nbtrack,
)
from nbtrack.batch.progress import ProgressOption
from nbtrack.batch.report import runs_frame, sort_runs
from nbtrack.batch.store import DELIVERY_TIMEOUT_S, Store, check_reachable, latest_attempts
from nbtrack.errors import NbtrackError, NotFound, UsageProblem
from nbtrack.registry.register import check_name, register
from nbtrack.store import resolve

if TYPE_CHECKING:
    import pandas as pd

    from nbtrack.batch.executor import LocalExecutor

Backend = Literal["local", "spark"]


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
    register_best: str | None = None,
) -> pd.DataFrame:
    """Run every combination of ``params`` (name -> list of values; a non-list is fixed).

    Returns one row per combination (``index, run_id, status, error, duration_s,
    output, params.*, metrics.*``), sorted by ``metric`` when given (best first;
    ``maximize`` defaults from the name by :mod:`nbtrack.metric_direction`: losses and
    error rates such as ``val_loss`` or ``wer`` are minimized).
    ``df.attrs`` holds ``sweep_id`` and ``parent_run_id``. ``register_best="NAME"`` registers
    the model of the best finished execution by ``metric`` as a new version of ``NAME``
    (``df.attrs["registered"]``: its ``models:/NAME/VERSION``; when that fails the sweep's
    frame is still returned, ``df.attrs["register_error"]`` saying why). With ``backend="spark"``
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
    if register_best is not None:
        check_name(register_best)
        if not metric and not resume:
            raise UsageProblem("--register-best needs --metric: the metric that says which run is best")
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
                say=say, extra_tags={tags.SWEEP_BACKEND: backend}, executor=executor,
                metric=metric, maximize=maximize,
            )
        if todo and executor is not None:
            store = run_local(plan, store, todo, timeout=timeout, executor=executor,
                               progress=progress, delivery_timeout=delivery_timeout,
                               new_parent=None if resume else {tags.SWEEP_BACKEND: backend},
                               parent=parent)
        elif todo:
            assert store is not None and parent is not None
            run_created(plan, store, parent, todo, timeout=timeout, executor=executor, workers=workers,
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
    if register_best is not None:
        try:
            frame.attrs["registered"] = _register_best(frame, metric, register_best, store)
        except NbtrackError as exc:  # the sweep's results stand; the caller learns why nothing was registered
            frame.attrs["register_error"] = exc
            say(f"--register-best: {exc}")
    return frame


def _register_best(frame: pd.DataFrame, metric: str | None, name: str, store: Store) -> str:
    """Register the model of the first finished row (the frame is sorted best first)."""
    import math

    if not metric:
        raise UsageProblem("--register-best needs --metric: the metric that says which run is best")
    column = f"metrics.{metric.removeprefix('metrics.')}"
    best = next((row for row in frame.to_dict(orient="records") if row["status"] == FINISHED
                 and isinstance(row.get(column), float) and math.isfinite(row[column])), None)
    if best is None:
        raise NotFound(f"--register-best: no finished execution has a value of {metric}; nothing registered")
    try:
        done = register(best["run_id"], name, project=store.project, tracking_uri=store.tracking_uri)
    except UsageProblem as exc:
        raise UsageProblem(f"{exc} (register it with `nbtrack register {best['run_id'][:8]} --name "
                           f"{name} --model MODEL`)") from None
    return done.uri


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
                       error=run.data.tags.get(tags.SWEEP_ERROR))
            duration = run.data.tags.get(tags.SWEEP_DURATION)
            row["duration_s"] = float(duration) if duration else None
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()
                        if not k.startswith(tags.SYSTEM_METRICS)})  # what the run cost is not a result
        rows.append(row)
    return runs_frame(rows)

