"""nbtrack: notebooks as tracked, re-runnable experiments.

In a notebook::

    %load_ext nbtrack

and every cell execution, the ``parameters`` cell, metric-like variables and
every displayed figure are recorded into an MLflow run (and Delta tables).
Nothing runs at import: the extension starts when IPython loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbtrack.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from nbtrack.batch.retrain import RetrainDecision
    from nbtrack.capture.runs import RunHandle
    from nbtrack.query.comparison import Comparison

__all__ = [
    "__version__",
    "compare",
    "current_run",
    "flush",
    "load_ipython_extension",
    "log",
    "log_figure",
    "log_model",
    "log_params",
    "read_delta",
    "read_table",
    "register",
    "rerun",
    "retrain",
    "runs",
    "sweep",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbtrack``: start capturing this kernel's cells, and the ``%nbtrack`` magics."""
    from nbtrack.capture.extension import load
    from nbtrack.magics import register_magics

    session = load(ipython)
    if session is not None:
        register_magics(ipython, session)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbtrack``: end the run and remove every hook and magic nbtrack installed."""
    from nbtrack.capture.extension import unload
    from nbtrack.magics import unregister_magics

    unload(ipython)
    unregister_magics(ipython)


def log(step: int | None = None, **metrics: float) -> None:
    """Log metric values (``nbtrack.log(loss=0.3, acc=0.9, step=epoch)``) to the current run."""
    from nbtrack.capture.session import current_session

    current_session().log_metrics(metrics, step=step)


def log_params(params: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Log parameters; a changed value of an already logged key starts a new run."""
    from nbtrack.capture.session import current_session

    current_session().log_params({**(params or {}), **kwargs}, source="api")


def log_figure(figure: Any, name: str | None = None) -> None:
    """Log a matplotlib/plotly figure, a PIL image or raw PNG/SVG bytes as an artifact."""
    from nbtrack.capture.session import current_session

    current_session().log_figure(figure, name=name)


def log_model(model: Any, name: str | None = None) -> None:
    """Log a fitted model (scikit-learn, XGBoost, LightGBM, PyTorch, Keras) into the current run,
    as an MLflow model called ``name`` (default: the variable holding it). Models left in
    top-level variables at run end are logged without this call."""
    from nbtrack.capture.session import current_session

    current_session().log_model(model, name=name)


def current_run() -> RunHandle | None:
    """The run being recorded now (key, MLflow run id once delivered, params), or None."""
    from nbtrack.capture.session import current_session

    run: RunHandle | None = current_session().current_run()
    return run


def flush(timeout: float | None = None) -> bool:
    """Wait until everything captured so far is in the tracking store; True if it is."""
    from nbtrack.capture.session import current_session

    return bool(current_session().flush(timeout))


def runs(notebook: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """The runs of a notebook (default: this one) as a DataFrame, newest first."""
    from nbtrack.query.runs import list_runs

    return list_runs(notebook, **kwargs)


def compare(*run_ids: str, **kwargs: Any) -> Comparison:
    """Compare runs: params diff, metrics (last/best), curves, figures; renders as HTML."""
    from nbtrack.query.compare import compare as _compare

    return _compare(list(run_ids), **kwargs)


def read_delta(uri: str, version: int | None = None, **kwargs: Any) -> pd.DataFrame:
    """Read a Delta table as a DataFrame and record it (uri, version, schema, profile) as an input."""
    from nbtrack.capture.lineage import read_delta as _read_delta

    return _read_delta(uri, version=version, **kwargs)


def read_table(name: str, **kwargs: Any) -> Any:
    """Read a table through the live Spark session and record it as an input."""
    from nbtrack.capture.lineage import read_table as _read_table

    return _read_table(name, **kwargs)


def sweep(notebook: str, params: dict[str, list[Any]] | None = None, **kwargs: Any) -> pd.DataFrame:
    """Execute a notebook over a grid (or random sample) of parameters; one child run each."""
    from nbtrack.batch.sweep import sweep as _sweep

    return _sweep(notebook, params or {}, **kwargs)


def register(run_id: str, name: str, *, model: str | None = None, alias: str | None = None,
             **kwargs: Any) -> str:
    """Register a run's model in MLflow's Model Registry as ``name``; returns ``models:/NAME/VERSION``.

    ``model`` picks the run's model by name when it has several; ``alias`` (``champion``)
    points at the new version.
    """
    from nbtrack.registry.register import register as _register

    return _register(run_id, name, model=model, alias=alias, **kwargs).uri


def rerun(run_id: str, **kwargs: Any) -> pd.DataFrame:
    """Re-execute the notebook snapshot of a run with its params (plus overrides)."""
    from nbtrack.batch.rerun import rerun as _rerun

    return _rerun(run_id, **kwargs)


def retrain(notebook: str, metric: str, *, register: str | None = None, **kwargs: Any) -> RetrainDecision:
    """Re-execute ``notebook`` when a Delta table its champion read has a newer version, and compare
    both runs on ``metric``; with ``register`` (a registered model) the champion is the run holding
    its ``champion`` alias, and a better challenger takes it.

    The decision's ``outcome`` is ``unchanged`` (nothing created), ``retrained`` or ``promoted``;
    ``champion``, ``challenger``, their input versions and metric values are on it.
    """
    from nbtrack.batch.retrain import retrain as _retrain

    return _retrain(notebook, metric, register=register, **kwargs)
