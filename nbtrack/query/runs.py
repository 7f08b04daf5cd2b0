"""The runs of one notebook as a DataFrame: what ``nbtrack.runs()``, ``%nbtrack runs`` and
``nbtrack runs NOTEBOOK`` show.

One row per run, newest first. Columns: ``run_id, run_name, status, start_time,
end_time, duration_s, origin, sweep_id, parent_run_id, rerun_of, git_commit, models,
retrain_of, retrain_trigger`` (``models``: JSON of the run's models, tag ``nbtrack.models``;
``retrain_trigger``: JSON of the inputs whose new version started a retrain), then ``params.<key>``
(strings, as MLflow keeps them) and ``metrics.<key>`` (last logged value), each group
sorted by key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.errors import NotFound, UsageProblem
from nbtrack.query.lookup import has_experiment
from nbtrack.query.store import ProjectLike, StoreRef, resolve_store, session_store
from nbtrack.query.values import is_missing, json_number, json_safe, metric_value

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run

#: Fixed leading columns of ``list_runs``; tag-derived ones are empty strings when unset.
BASE_COLUMNS = [
    "run_id", "run_name", "status", "start_time", "end_time", "duration_s",
    "origin", "sweep_id", "parent_run_id", "rerun_of", "git_commit", "models",
    "retrain_of", "retrain_trigger",
]
_TAG_COLUMNS = {
    "origin": tags.ORIGIN,
    "sweep_id": tags.SWEEP_ID,
    "parent_run_id": tags.PARENT_RUN_ID,
    "rerun_of": tags.RERUN_OF,
    "git_commit": tags.GIT_COMMIT,
    "models": tags.MODELS,
    "retrain_of": tags.RETRAIN_OF,
    "retrain_trigger": tags.RETRAIN_TRIGGER,
}


def list_runs(
    notebook: str | os.PathLike[str] | None = None,
    *,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    max_results: int = 1000,
) -> pd.DataFrame:
    """Runs of ``notebook`` (default: the notebook of this kernel's session), newest first.

    Read from the project's Delta lake when it is current (one table scan),
    else from MLflow; both give the same frame (see :mod:`nbtrack.query.lake`).
    An existing notebook that was never run with nbtrack gives an empty frame
    (with the base columns), so callers can test ``df.empty``.
    """
    from nbtrack.query.lake import runs_from_lake

    if max_results < 1:
        raise UsageProblem(f"max_results must be at least 1, not {max_results}")
    ref, experiment = locate_experiment(notebook, project=project, tracking_uri=tracking_uri)
    from_lake = runs_from_lake(ref, experiment, max_results)
    if from_lake is not None:
        return from_lake
    if not ref.exists():
        return runs_frame([])
    client = ref.client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return runs_frame([])
    runs = client.search_runs(
        [found.experiment_id],
        max_results=max_results,
        order_by=["attributes.start_time DESC"],
    )
    return runs_frame(list(runs))


def run_records(
    notebook: str | os.PathLike[str],
    *,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    max_results: int = 1000,
) -> list[dict[str, Any]]:
    """:func:`runs_records` of :func:`list_runs`, read from a current lake without importing
    pandas or MLflow (``nbtrack runs`` answers in a fraction of a second), else from MLflow."""
    from nbtrack.query.lake import records_from_lake

    if max_results < 1:
        raise UsageProblem(f"max_results must be at least 1, not {max_results}")
    ref, experiment = locate_experiment(notebook, project=project, tracking_uri=tracking_uri)
    records = records_from_lake(ref, experiment, max_results)
    if records is not None:
        return records
    if ref.embedded_db is not None and has_experiment(ref, [experiment]) is None:
        return []  # the store's file says it: no such experiment, no runs (and no MLflow import)
    return runs_records(list_runs(notebook, project=project, tracking_uri=tracking_uri,
                                  max_results=max_results))


def locate_experiment(
    notebook: str | os.PathLike[str] | None,
    *,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
) -> tuple[StoreRef, str]:
    """The store and the experiment name holding a notebook's runs.

    A path that is not a file is still accepted when the store has an
    experiment of that name (a renamed notebook's history, a Databricks path).
    """
    if notebook is None:
        session_notebook, session_ref = session_store()
        if not session_notebook:
            raise UsageProblem(
                "which notebook? pass its path, e.g. nbtrack.runs('notebooks/train.ipynb') "
                "(only a kernel with %load_ext nbtrack knows its own notebook)"
            )
        notebook = session_notebook
        if session_ref is not None and project is None:
            uri = tracking_uri or session_ref.tracking_uri
            return StoreRef(session_ref.project, uri), session_ref.project.experiment_name(notebook)
    path = Path(notebook).expanduser()
    if path.is_file():
        ref = resolve_store(notebook=path, project=project, tracking_uri=tracking_uri)
        return ref, ref.project.experiment_name(path)
    ref = resolve_store(project=project, tracking_uri=tracking_uri, use_session=False)
    found = has_experiment(ref, _candidate_names(ref, notebook))
    if found is None:
        raise NotFound(f"no notebook at {notebook}")
    return ref, found


def _candidate_names(ref: StoreRef, notebook: str | os.PathLike[str]) -> list[str]:
    raw = Path(notebook).as_posix()
    names = [raw, ref.project.experiment_name(notebook)]
    return list(dict.fromkeys(names))


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """MLflow runs as the documented DataFrame (also used for sweeps' child runs)."""
    import pandas as pd

    rows = [_row(run) for run in runs]
    params = sorted({k for run in runs for k in run.data.params})
    metrics = sorted({k for run in runs for k in run.data.metrics})
    columns = (
        BASE_COLUMNS + [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
    )
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    frame["duration_s"] = frame["duration_s"].astype(float)
    for key in metrics:
        frame[f"metrics.{key}"] = frame[f"metrics.{key}"].astype(float)
    return frame


def runs_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A runs frame as JSON-ready rows (``nbtrack runs --json``, the server's run list).

    Each row has the frame's other columns (times as ISO-8601 strings or null), then
    ``params`` ``{key: str}`` and ``metrics`` ``{key: float | "nan" | "inf" | "-inf"}``
    holding what the run logged (a NaN metric is left out: in the frame it is
    indistinguishable from a metric the run never logged).
    """
    rows = []
    for record in frame.to_dict(orient="records"):
        row: dict[str, Any] = {"params": {}, "metrics": {}}
        for column, value in record.items():
            group, _, key = str(column).partition(".")
            if group in ("params", "metrics") and key:
                if not is_missing(value):
                    row[group][key] = str(value) if group == "params" else json_number(value)
            elif column == "duration_s":
                row[column] = None if is_missing(value) else float(value)
            else:
                row[str(column)] = json_safe(value)
        rows.append(row)
    return rows


def _row(run: Run) -> dict[str, Any]:
    info, data = run.info, run.data
    end = info.end_time
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "run_name": info.run_name or data.tags.get(tags.RUN_NAME, ""),
        "status": info.status,
        "start_time": info.start_time,
        "end_time": end,
        "duration_s": (end - info.start_time) / 1000.0 if end and info.start_time else None,
    }
    for column, tag in _TAG_COLUMNS.items():
        row[column] = data.tags.get(tag, "")
    for key, param in data.params.items():
        row[f"params.{key}"] = param
    for key, metric in data.metrics.items():
        row[f"metrics.{key}"] = metric_value(metric)
    return row
