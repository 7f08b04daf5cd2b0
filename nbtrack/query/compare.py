"""Compare runs: params diff, metrics (last and best), curves, figures and changed cells.

``compare(["id1", "id2"])`` returns a :class:`~nbtrack.query.comparison.Comparison`
(the data and its shapes; this module gathers it). It renders itself as
HTML in a notebook, turns into one DataFrame with ``to_pandas()``, and into a
JSON-ready dict with ``to_dict()`` (the shape the JupyterLab server returns,
documented on that method). Runs may come from different notebooks.

Params, metric curves and input lineage come from the project's Delta lake when
it is current for every compared run (see :mod:`nbtrack.query.lake`), else from
MLflow; run details, figures and cells always come from MLflow and its artifacts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.errors import UsageProblem
from nbtrack.metric_direction import Direction
from nbtrack.metric_direction import direction as metric_direction
from nbtrack.query.artifacts import cell_indexes, diff_cells, group_figures, read_cells
from nbtrack.query.comparison import Comparison, RunSummary
from nbtrack.query.failures import run_failure
from nbtrack.query.inputs import compare_inputs
from nbtrack.query.links import user_runs
from nbtrack.query.local_store import read_client
from nbtrack.query.lookup import parse_run_id, resolve_run_id
from nbtrack.query.models import RunModel, run_models
from nbtrack.query.store import ProjectLike, resolve_store
from nbtrack.query.values import is_missing, metric_value

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


def compare(
    run_ids: list[str],
    *,
    tracking_uri: str | None = None,
    project: ProjectLike | None = None,
) -> Comparison:
    """Compare runs by MLflow run id or a unique prefix of one (order kept, duplicates dropped)."""
    from nbtrack.query.lake import compare_from_lake, inputs_from_lake

    wanted = compared_ids(run_ids)
    ref = resolve_store(project=project, tracking_uri=tracking_uri)
    ids = list(dict.fromkeys(resolve_run_id(ref, rid) for rid in wanted))
    client = read_client(ref)  # an embedded store is read without importing MLflow
    runs = [client.get_run(rid) for rid in ids]
    experiments = _experiment_names(client, runs)
    summaries = _summaries(runs, experiments)
    labels = {s.run_id: s.label for s in summaries}
    records = {run.info.run_id: read_cells(client, run) for run in runs}
    for summary, run in zip(summaries, runs, strict=True):
        summary.error = run_failure(client, run)
    lake = compare_from_lake(ref, ids)
    if lake is not None:
        _lake_times(summaries, lake.get("runs"))
        params = lake["params"]
        histories = _lake_histories(runs, lake["histories"])
        inputs = lake["inputs"]
    else:
        params = {run.info.run_id: dict(run.data.params) for run in runs}
        histories = _histories(client, runs)
        inputs = inputs_from_lake(ref, ids)
    metrics, directions, best_runs = _metrics(runs, histories)
    figures = group_figures(client, runs)
    indexes = cell_indexes(records)
    for group in figures:
        group.index = indexes.get(group.cell_id or "")
    return Comparison(
        runs=summaries,
        param_values=_params(ids, params),
        metric_values=metrics,
        directions=directions,
        best_runs=best_runs,
        histories=histories,
        figures=figures,
        cells=diff_cells(client, runs, labels, records),
        tracking_uri=ref.tracking_uri,
        inputs=compare_inputs(ids, inputs),
    )


def compared_ids(run_ids: list[str]) -> list[str]:
    """The ids a comparison needs: at least one (a single run shows its metrics, curves and
    figures alone), each well-formed. The one rule the API, the CLI and the magic share."""
    ids = [parse_run_id(r) for r in run_ids if str(r).strip()]
    if not ids:
        raise UsageProblem("give at least one run id to compare (see `nbtrack runs NOTEBOOK`)")
    return ids


def _experiment_names(client: MlflowClient, runs: list[Run]) -> dict[str, str]:
    names = {}
    for exp_id in {r.info.experiment_id for r in runs}:
        try:
            names[exp_id] = client.get_experiment(exp_id).name
        except Exception:  # a deleted or unreadable experiment still lets runs compare
            names[exp_id] = exp_id
    return names


def _summaries(runs: list[Run], experiments: dict[str, str]) -> list[RunSummary]:
    summaries = []
    for run in runs:
        info, run_tags = run.info, run.data.tags
        name = info.run_name or run_tags.get(tags.RUN_NAME, "") or info.run_id[:8]
        kept = {k: v for k, v in run_tags.items()
                if k.startswith("nbtrack.") or k in (tags.PARENT_RUN_ID, tags.RUN_NAME)}
        summaries.append(RunSummary(
            run_id=info.run_id, run_name=name, label=f"{name} ({info.run_id[:8]})",
            experiment_id=info.experiment_id,
            experiment_name=experiments.get(info.experiment_id, info.experiment_id),
            status=info.status, start_time=info.start_time, end_time=info.end_time,
            artifact_uri=info.artifact_uri, tags=kept, user_runs=user_runs(run_tags),
            models=[RunModel(**m, uri=f"runs:/{info.run_id}/{m['name']}")
                    for m in run_models(run_tags.get(tags.MODELS))],
        ))
    return summaries


def _lake_times(summaries: list[RunSummary], lake_rows: list[dict[str, Any]] | None) -> None:
    """Start and end as the lake has them (when the kernel began executing, not when a sweep
    created the run): the times the run list shows, so both report one duration."""
    if not lake_rows:
        return
    rows = {row["run_id"]: row for row in lake_rows}
    for summary in summaries:
        row = rows.get(summary.run_id)
        if row is None:
            continue
        start, end = _millis(row.get("start_time")), _millis(row.get("end_time"))
        if start is not None:
            summary.start_time = start
            summary.end_time = end if end is not None else summary.end_time


def _millis(value: Any) -> int | None:
    if is_missing(value) or not hasattr(value, "timestamp"):
        return None
    return int(value.timestamp() * 1000)


def _params(ids: list[str], params: dict[str, dict[str, str]]) -> dict[str, dict[str, str | None]]:
    keys = sorted({k for rid in ids for k in params.get(rid, {})})
    return {key: {rid: params.get(rid, {}).get(key) for rid in ids} for key in keys}


def _histories(client: MlflowClient, runs: list[Run]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for key in sorted({k for run in runs for k in run.data.metrics}):
        for run in runs:
            if key not in run.data.metrics:
                continue
            points = client.get_metric_history(run.info.run_id, key)
            ordered = sorted(points, key=lambda m: (m.step, m.timestamp))
            histories.setdefault(key, {})[run.info.run_id] = [
                (m.step, metric_value(m.value)) for m in ordered
            ]
    return histories


def _lake_histories(
    runs: list[Run], lake: dict[str, dict[str, list[tuple[int, float]]]]
) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """The lake's ``{run: {metric: points}}`` as ``_histories`` shapes it (ordered by step)."""
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for key in sorted({k for run in runs for k in run.data.metrics}):
        for run in runs:
            rid = run.info.run_id
            if key not in run.data.metrics:
                continue
            points = [(int(s), float(v)) for s, v in lake.get(rid, {}).get(key, []) if v is not None]
            histories.setdefault(key, {})[rid] = sorted(points, key=lambda p: p[0])
    return histories


def _metrics(
    runs: list[Run], histories: dict[str, dict[str, list[tuple[int, float]]]]
) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, Direction],
           dict[str, dict[str, list[str]]]]:
    keys = sorted({k for run in runs for k in run.data.metrics})
    directions = {key: metric_direction(key) for key in keys}
    values: dict[str, dict[str, tuple[float, float]]] = {}
    best_runs: dict[str, dict[str, list[str]]] = {}
    for key in keys:
        per_run: dict[str, tuple[float, float]] = {}
        for run in runs:
            rid = run.info.run_id
            if key not in run.data.metrics:
                continue
            points = [v for _, v in histories.get(key, {}).get(rid, [])]
            per_run[rid] = (float(metric_value(run.data.metrics[key])), _best(points, directions[key]))
        values[key] = per_run
        best_runs[key] = {
            stat: _winners({run.info.run_id: per_run.get(run.info.run_id, (math.nan, math.nan))[i]
                            for run in runs}, directions[key])
            for i, stat in enumerate(("last", "best"))
        }
    return values, directions, best_runs


def _best(values: list[float], direction: Direction) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return min(finite) if direction == "min" else max(finite)


def _winners(values: dict[str, float], direction: Direction) -> list[str]:
    """Run ids holding the best value; none when under two runs compare or all are tied.

    NaN and infinities never win: they mean a diverged run, not a good one.
    """
    present = {rid: v for rid, v in values.items() if not is_missing(v) and math.isfinite(v)}
    if len(present) < 2:
        return []
    target = min(present.values()) if direction == "min" else max(present.values())
    winners = [rid for rid, v in present.items() if v == target]
    return [] if len(winners) == len(present) else winners
