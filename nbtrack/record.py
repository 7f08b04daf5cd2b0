"""What a notebook records into its run, called from its cells: metrics, params, figures and
models beyond what capture finds itself, the inputs it reads, and the run being recorded.

Each function is re-exported by :mod:`nbtrack` (``nbtrack.log(...)``) and works once
``%load_ext nbtrack`` has started capture in the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from nbtrack.capture.runs import RunHandle


def log(step: int | None = None, **metrics: float) -> None:
    """Log metric values to the current run: ``nbtrack.log(loss=0.3, acc=0.9, step=epoch)``.

    Parameters
    ----------
    step : int, optional
        The step of these values (an epoch, a batch); default: one more than the metric's last.
    **metrics : float
        Metric name = value, any number of them.
    """
    from nbtrack.capture.session import current_session

    current_session().log_metrics(metrics, step=step)


def log_params(params: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Log parameters to the current run; a changed value of an already logged key starts a
    new run.

    Parameters
    ----------
    params : dict, optional
        Parameter name -> value.
    **kwargs
        More parameters as name = value (they win over ``params``).
    """
    from nbtrack.capture.session import current_session

    current_session().log_params({**(params or {}), **kwargs}, source="api")


def log_figure(figure: Any, name: str | None = None) -> None:
    """Log a figure as an artifact of the current run.

    Parameters
    ----------
    figure : matplotlib Figure, plotly Figure, PIL Image, or bytes
        The figure, or raw PNG / SVG bytes.
    name : str, optional
        The artifact's file name (default: one made from the cell and the figure's number).
    """
    from nbtrack.capture.session import current_session

    current_session().log_figure(figure, name=name)


def log_model(model: Any, name: str | None = None) -> None:
    """Log a fitted model into the current run as an MLflow model. Models left in top-level
    variables at the run's end are logged without this call.

    Parameters
    ----------
    model : object
        A fitted scikit-learn, XGBoost, LightGBM, PyTorch or Keras model.
    name : str, optional
        The model's name in the run (default: the variable holding it).
    """
    from nbtrack.capture.session import current_session

    current_session().log_model(model, name=name)


def current_run() -> RunHandle | None:
    """The run being recorded now.

    Returns
    -------
    RunHandle or None
        Its key, its MLflow run id once delivered, and its params; None between runs.
    """
    from nbtrack.capture.session import current_session

    run: RunHandle | None = current_session().current_run()
    return run


def flush(timeout: float | None = None) -> bool:
    """Wait until everything captured so far is in the tracking store.

    Parameters
    ----------
    timeout : float, optional
        Seconds to wait at most (default: the configured flush timeout).

    Returns
    -------
    bool
        True when everything was delivered in time.
    """
    from nbtrack.capture.session import current_session

    return bool(current_session().flush(timeout))


def read_delta(uri: str | Path, version: int | None = None, *,
               columns: list[str] | None = None, storage_options: dict[str, str] | None = None,
               record: bool = True) -> pd.DataFrame:
    """Read a Delta table into pandas and record it as an input of the current run.

    Parameters
    ----------
    uri : str or Path
        The table's path or URI (``s3://...``, ``abfss://...``).
    version : int, optional
        The table version to read (default: the version a re-run pins, else the latest).
    columns : list of str, optional
        Only these columns.
    storage_options : dict, optional
        Credentials and options of the table's object store, as deltalake takes them.
    record : bool, default True
        Record the read (uri, version, schema hash, rows, column profile); False skips it.

    Returns
    -------
    pandas.DataFrame
        The table's rows.
    """
    from nbtrack.capture.lineage import read_delta as _read_delta

    return _read_delta(uri, version=version, columns=columns, storage_options=storage_options,
                       record=record)


def read_table(name: str, *, version: int | None = None, spark: Any = None, profile: bool = True,
               record: bool = True) -> Any:
    """Read a table through Spark and record it as an input of the current run.

    Parameters
    ----------
    name : str
        A catalog table (``catalog.schema.table``) or the path of a Delta table.
    version : int, optional
        The Delta version to read (default: the version a re-run pins, else the latest).
    spark : pyspark.sql.SparkSession, optional
        The session to read with (default: the active one).
    profile : bool, default True
        Compute the column profile recorded with the read (one aggregation on the cluster).
    record : bool, default True
        Record the read as an input; False skips it.

    Returns
    -------
    pyspark.sql.DataFrame
        The table, as Spark reads it.
    """
    from nbtrack.capture.lineage import read_table as _read_table

    return _read_table(name, version=version, spark=spark, profile=profile, record=record)
