"""Experiments across runs, from a notebook, a script or a job: runs read back and compared,
notebooks executed again (sweeps, re-runs, retrains) and models registered.

Each function is re-exported by :mod:`nbtrack` (``nbtrack.sweep(...)``); none needs a kernel
with nbtrack loaded. Heavy dependencies (MLflow, pandas, papermill) are imported on call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from nbtrack.batch.progress import ProgressOption
    from nbtrack.batch.retrain import RetrainDecision
    from nbtrack.query.comparison import Comparison
    from nbtrack.store import ProjectLike


def runs(notebook: str | os.PathLike[str] | None = None, *, project: ProjectLike | None = None,
         tracking_uri: str | None = None, max_results: int = 1000) -> pd.DataFrame:
    """The runs of a notebook, newest first.

    Parameters
    ----------
    notebook : str or PathLike, optional
        The notebook (default: the one this kernel runs).
    project : str or PathLike, optional
        The project folder holding ``.nbtrack/`` (default: the notebook's git root).
    tracking_uri : str, optional
        The MLflow store to read (default: the project's).
    max_results : int, default 1000
        The newest runs to return at most.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time``,
        ``duration_s``, ``params.*``, ``metrics.*`` and more; empty (with those columns) for
        a notebook never run with nbtrack.
    """
    from nbtrack.query.runs import list_runs

    return list_runs(notebook, project=project, tracking_uri=tracking_uri, max_results=max_results)


def compare(*run_ids: str, project: ProjectLike | None = None,
            tracking_uri: str | None = None) -> Comparison:
    """Compare runs side by side: params that differ, metrics (last and best), curves,
    figures, changed cells and input data.

    Parameters
    ----------
    *run_ids : str
        The runs, by MLflow run id or a unique prefix of one (8 characters, as tables show);
        at least one. Order is kept, duplicates dropped.
    project : str or PathLike, optional
        The project folder holding ``.nbtrack/`` (default: the current folder's git root).
    tracking_uri : str, optional
        The MLflow store to read (default: the project's).

    Returns
    -------
    Comparison
        Renders as HTML in a notebook; ``to_pandas()`` gives one table and ``to_dict()`` the
        JSON the JupyterLab panel reads.
    """
    from nbtrack.query.compare import compare as _compare

    return _compare(list(run_ids), project=project, tracking_uri=tracking_uri)


def sweep(
    notebook: str | os.PathLike[str] | None,
    params: Mapping[str, Any] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
    random: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    timeout: float | None = None,
    backend: Literal["local", "spark"] = "local",
    resume: str | None = None,
    metric: str | None = None,
    maximize: bool | None = None,
    register_best: str | None = None,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: ProgressOption = None,
    project: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    spark: Any = None,
    spark_master: str | None = None,
    delivery_timeout: float = 45.0,
) -> pd.DataFrame:
    """Execute a notebook over a grid (or a random sample) of parameters, with papermill: one
    MLflow child run per execution under one parent run. A failed execution is recorded and
    the others go on.

    Parameters
    ----------
    notebook : str or PathLike
        The notebook; it needs a cell tagged ``parameters``. None only with ``resume``.
    params : mapping, optional
        Parameter name -> list of values (the grid's axes); a value that is not a list is
        fixed for every execution.
    file : str or PathLike, optional
        A YAML (or JSON) file of parameters: axes ``{name: [values]}`` or a list of parameter
        sets; combined with ``params``.
    random : int, optional
        Execute this many combinations drawn at random instead of the whole grid.
    seed : int, optional
        Seed of ``random`` (the same seed draws the same combinations).
    workers : int, default 1
        Executions at once (kernels on this machine, or Spark tasks).
    timeout : float, optional
        Seconds per execution; a later one is interrupted and FAILED.
    backend : {"local", "spark"}, default "local"
        Worker processes on this machine, or one Spark task per execution.
    resume : str, optional
        A sweep id: execute only that sweep's missing or failed executions, with its own
        parameters (give no ``params``, ``file`` or ``random`` then).
    metric : str, optional
        Sort the result by this metric, best first.
    maximize : bool, optional
        Whether a higher ``metric`` is better (default: lower for names like ``loss``,
        ``error`` or ``wer``, higher otherwise).
    register_best : str, optional
        Register the model of the best finished execution by ``metric`` as a new version of
        this registered model (needs ``metric``).
    kernel_name : str, optional
        The kernel to execute with (default: the notebook's).
    cwd : str or PathLike, optional
        The kernels' working directory (default: the notebook's folder).
    progress : bool or callable, optional
        True for a progress bar on stderr; a callable receives each
        :class:`~nbtrack.batch.protocol.ProgressEvent`.
    project : str or PathLike, optional
        The project folder holding ``.nbtrack/`` (default: the notebook's git root).
    tracking_uri : str, optional
        The MLflow store (default: the project's).
    spark : pyspark.sql.SparkSession, optional
        With ``backend="spark"``: the session (default: the active one, else one for
        ``spark_master``).
    spark_master : str, optional
        With ``backend="spark"`` and no session: ``local[W]`` (default), ``spark://...``, or
        ``sc://...`` for Spark Connect.
    delivery_timeout : float, default 45
        Seconds to wait, after the executions, for the kernels' runs to reach the store.

    Returns
    -------
    pandas.DataFrame
        One row per execution: ``index``, ``run_id``, ``status``, ``error``, ``duration_s``,
        ``output`` (the executed notebook), ``params.*``, ``metrics.*``; sorted by ``metric``
        when given. ``attrs`` holds ``sweep_id`` and ``parent_run_id`` (and with
        ``register_best``, ``registered`` or ``register_error``).
    """
    from nbtrack.batch.sweep import sweep as _sweep

    return _sweep(
        notebook, params or {}, file=file, random=random, seed=seed, workers=workers,
        timeout=timeout, backend=backend, resume=resume, metric=metric, maximize=maximize,
        register_best=register_best, kernel_name=kernel_name, cwd=cwd, progress=progress,
        project=project, tracking_uri=tracking_uri, spark=spark, spark_master=spark_master,
        delivery_timeout=delivery_timeout,
    )


def register(run_id: str, name: str, *, model: str | None = None, alias: str | None = None,
             force: bool = False, project: ProjectLike | None = None,
             tracking_uri: str | None = None, wait: float = 60.0) -> str:
    """Register a run's model in MLflow's Model Registry as a new version of ``name``.

    Parameters
    ----------
    run_id : str
        The run, by MLflow run id or a unique prefix of one.
    name : str
        The registered model (created when new).
    model : str, optional
        Which of the run's models (its variable name), needed when the run has several.
    alias : str, optional
        Point this alias (e.g. ``champion``) at the new version.
    force : bool, default False
        Add to a registered model that holds another notebook's models.
    project : str or PathLike, optional
        The project folder holding ``.nbtrack/`` (default: the current folder's git root).
    tracking_uri : str, optional
        The MLflow store (default: the project's).
    wait : float, default 60
        Seconds to wait for a model the run captured but the delivery has not logged yet.

    Returns
    -------
    str
        The version's URI, ``models:/NAME/VERSION`` (what ``mlflow.pyfunc.load_model`` and
        ``nbtrack serve`` take); the existing version when it already holds this model.
    """
    from nbtrack.registry.register import register as _register

    return _register(run_id, name, model=model, alias=alias, force=force, project=project,
                     tracking_uri=tracking_uri, wait=wait).uri


def rerun(
    run_id: str,
    params: Mapping[str, Any] | None = None,
    *,
    current: bool = False,
    pin_data: bool = False,
    timeout: float | None = None,
    kernel_name: str | None = None,
    progress: ProgressOption = None,
    project: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    backend: Literal["local", "spark"] = "local",
    spark: Any = None,
    spark_master: str | None = None,
    delivery_timeout: float = 45.0,
) -> pd.DataFrame:
    """Re-execute a run's notebook with its parameters (plus overrides) into a new run, and
    report how every metric moved.

    Parameters
    ----------
    run_id : str
        The run, by MLflow run id or a unique prefix of one.
    params : mapping, optional
        Parameter name -> value overriding the run's own.
    current : bool, default False
        Execute the notebook file as it is now instead of the run's snapshot.
    pin_data : bool, default False
        Read Delta inputs (``nbtrack.read_delta``) at the versions the run recorded.
    timeout : float, optional
        Seconds for the execution; a later one is interrupted and FAILED.
    kernel_name : str, optional
        The kernel to execute with (default: the notebook's).
    progress : bool or callable, optional
        True for a progress bar on stderr; a callable receives each
        :class:`~nbtrack.batch.protocol.ProgressEvent`.
    project : str or PathLike, optional
        The project folder holding ``.nbtrack/`` (default: the current folder's git root).
    tracking_uri : str, optional
        The MLflow store (default: the project's).
    backend : {"local", "spark"}, default "local"
        A kernel on this machine, or a Spark task.
    spark : pyspark.sql.SparkSession, optional
        With ``backend="spark"``: the session (default: the active one, else one for
        ``spark_master``).
    spark_master : str, optional
        With ``backend="spark"`` and no session: as for :func:`sweep`.
    delivery_timeout : float, default 45
        Seconds to wait, after the execution, for its run to reach the store.

    Returns
    -------
    pandas.DataFrame
        One row: ``run_id`` (the new run), ``rerun_of``, ``status``, ``error``,
        ``duration_s``, ``output``, ``params.*`` (as injected) and ``metrics.*``.
        ``attrs["report"]`` is the reproducibility report: one row per metric with its
        ``original``, ``rerun`` and ``delta`` values and a ``verdict``.
    """
    from nbtrack.batch.rerun import rerun as _rerun

    return _rerun(
        run_id, params, current=current, pin_data=pin_data, timeout=timeout,
        kernel_name=kernel_name, progress=progress, project=project, tracking_uri=tracking_uri,
        backend=backend, spark=spark, spark_master=spark_master,
        delivery_timeout=delivery_timeout,
    )


def retrain(
    notebook: str | os.PathLike[str],
    metric: str,
    *,
    register: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    kernel_name: str | None = None,
    progress: ProgressOption = None,
    project: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    backend: Literal["local", "spark"] = "local",
    spark: Any = None,
    spark_master: str | None = None,
) -> RetrainDecision:
    """Re-execute a notebook when a Delta table its champion read has a newer version, compare
    both runs on one metric, and with ``register`` promote a better model.

    The champion is the run holding the ``champion`` alias of the registered model ``register``,
    else the notebook's latest finished run. When no table it read (``nbtrack.read_delta``) has
    moved, nothing is created. Each retrain is a row of the lake's ``retrains`` table.

    Parameters
    ----------
    notebook : str or PathLike
        The notebook's path.
    metric : str
        The metric that decides (lower is better for losses and errors); the champion must have
        logged it.
    register : str, optional
        A registered model: its ``champion`` alias names the champion; the challenger's model
        becomes a version of it and takes the alias only when it is better.
    params : mapping, optional
        Parameter name -> value overriding the champion's own in the challenger.
    timeout : float, optional
        Seconds for the execution; a later one is interrupted and FAILED.
    kernel_name : str, optional
        The kernel to execute with (default: the notebook's).
    progress : bool or callable, optional
        As for :func:`rerun`.
    project : str or PathLike, optional
        The project folder holding ``.nbtrack/`` (default: the notebook's git root).
    tracking_uri : str, optional
        The MLflow store (default: the project's).
    backend : {"local", "spark"}, default "local"
        A kernel on this machine, or a Spark task.
    spark : pyspark.sql.SparkSession, optional
        The session executing the challenger (``backend="spark"``) and reading catalog tables'
        versions (default: the active one, else one for ``spark_master``).
    spark_master : str, optional
        As for :func:`sweep`.

    Returns
    -------
    nbtrack.batch.retrain.RetrainDecision
        ``outcome`` is ``"unchanged"``, ``"retrained"`` or ``"promoted"``; ``champion``,
        ``challenger``, their input versions (``{table: version}``) and values of the metric,
        ``better``, ``registered`` (``models:/NAME/VERSION``) and ``headline()``, the decision in
        one line.
    """
    from nbtrack.batch.retrain import retrain as _retrain

    return _retrain(
        notebook, metric, register=register, params=params, timeout=timeout, kernel_name=kernel_name,
        progress=progress, project=project, tracking_uri=tracking_uri, backend=backend, spark=spark,
        spark_master=spark_master,
    )
