"""``nbtrack runs NOTEBOOK``: the runs of a notebook, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.cli import Subparsers
from nbtrack.cli.tables import add_output_arguments
from nbtrack.query.values import is_missing

if TYPE_CHECKING:
    from rich.console import Console

    from nbtrack.cli.tables import Column

DEFAULT_LIMIT = 20


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "runs",
        help="list a notebook's runs, newest first",
        description="List the tracked runs of NOTEBOOK, newest first: status, start, "
        "duration, the params that differ between them and their last metric values. In a "
        "terminal the table fits the window: run ids show their first 8 characters (which "
        "`nbtrack compare` and `nbtrack rerun` take), and a last line names what was left "
        "out. Piped or with --wide every column is printed in full.",
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="path of the notebook (.ipynb)")
    parser.add_argument(
        "--limit", "-n", type=int, default=DEFAULT_LIMIT, metavar="N",
        help=f"show at most N runs (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--metric", metavar="NAME", default=None,
        help="the metric to show first, its best value marked (default: the sweep's --metric, "
        "else the metrics named like acc, loss, f1, ...)",
    )
    parser.add_argument(
        "--columns", metavar="NAME,...", default=None,
        help="the params and metrics to show, e.g. --columns lr,val_acc (default: the params "
        "that differ between the runs, then the metrics, as many as fit)",
    )
    add_output_arguments(
        parser, json_help="print a JSON list of runs (params and metrics nested) instead of a table")
    add_store_arguments(parser)
    return parser


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri`` and ``--project``, the same on every reading command."""
    parser.add_argument(
        "--tracking-uri", metavar="URI", default=None,
        help="MLflow tracking URI to read (default: MLFLOW_TRACKING_URI, else "
        "<project>/.nbtrack/mlflow.db)",
    )
    parser.add_argument(
        "--project", metavar="DIR", default=None,
        help="project root holding .nbtrack/ (default: the git root of the notebook or of "
        "the current directory, else that folder)",
    )


def run(args: argparse.Namespace) -> int:
    from nbtrack.errors import UsageProblem
    from nbtrack.query.runs import run_records

    if args.limit < 1:
        raise UsageProblem(f"--limit must be at least 1, not {args.limit}")
    records = run_records(  # from the lake when it is current: no MLflow, no pandas
        args.notebook, project=args.project, tracking_uri=args.tracking_uri,
        max_results=args.limit + 1,  # one more tells whether there are more
    )
    more = len(records) > args.limit
    records = records[:args.limit]
    if args.json:
        print(json.dumps(records, indent=2, allow_nan=False))
        return 0
    if args.csv:
        from nbtrack.cli.tables import write_csv

        write_csv([flat_record(r) for r in records])
        return 0
    if not records:
        print(f"no runs yet for {args.notebook}, run it with %load_ext nbtrack")
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    chosen = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    check_names(records, args.metric, chosen)
    metric, maximize = (args.metric, None) if args.metric else _sweep_metric(args, records)
    print_runs(console, records, title=f"runs of {args.notebook}", metric=metric,
               maximize=maximize, columns=chosen, full=True if args.wide else None)
    if more:
        console.print(f"showing the newest {args.limit}; more with --limit N", style="dim")
    return 0


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """A run's JSON row with its params and metrics as ``params.<key>`` / ``metrics.<key>`` fields."""
    row = {k: v for k, v in record.items() if k not in ("params", "metrics")}
    row.update({f"params.{k}": v for k, v in record["params"].items()})
    row.update({f"metrics.{k}": v for k, v in record["metrics"].items()})
    return row


def _sweep_metric(args: argparse.Namespace,
                  records: list[dict[str, Any]]) -> tuple[str | None, bool | None]:
    """The ``--metric`` (and direction) of the newest sweep among the runs, from its plan."""
    sweep_id = next((r["sweep_id"] for r in records if r.get("sweep_id")), None)
    if not sweep_id:
        return None, None
    from pathlib import Path

    from nbtrack.batch.plan import recorded_metric
    from nbtrack.store import resolve

    notebook = args.notebook if Path(args.notebook).is_file() else None
    return recorded_metric(resolve(notebook, project=args.project).project.root, sweep_id)


def print_runs(console: Console, records: list[dict[str, Any]], *, title: str,
               metric: str | None = None, maximize: bool | None = None,
               columns: Sequence[str] | None = None, full: bool | None = None) -> None:
    """One line per run (short id, name, status, start, duration), then the params that differ
    between the runs and the metrics that matter, as many as the terminal holds; a last dim
    line names what was left out. ``full`` (default: not a terminal) prints every column whole.

    ``records`` are :func:`~nbtrack.query.runs.runs_records` rows; ``columns`` (``--columns``)
    names the params and metrics to show instead.
    """
    from nbtrack.cli.tables import print_footer, print_table

    full = not console.is_terminal if full is None else full
    params = list(dict.fromkeys(k for r in records for k in r["params"]))
    metrics = list(dict.fromkeys(k for r in records for k in r["metrics"]))
    metric = metric if metric in metrics else None
    equal: dict[str, str] = {}
    if columns is not None:
        keys = [c.removeprefix("params.").removeprefix("metrics.") for c in columns]
        shown_params = [k for k in keys if k in params]
        shown_metrics = [k for k in keys if k in metrics and k not in shown_params]
    else:
        if not full:
            equal = _equal_params(records, params)
        shown_params = [k for k in params if k not in equal]
        shown_metrics = ([metric] if metric else []) + [m for m in _by_importance(metrics)
                                                        if m != metric]
    table = _run_columns(records) + _model_columns(records, full)
    table += [_param_column(records, k, rank=2 if columns else 3) for k in shown_params]
    # The metric that matters most (--metric, the sweep's, else the first named like a metric)
    # comes before the params; the other metrics after them.
    table += [_metric_column(records, k, chosen=k == metric, maximize=maximize,
                             rank=2 if columns or i == 0 else 5 if _is_system(k) else 4)
              for i, k in enumerate(shown_metrics)]
    fitted = print_table(console, table, title=title, full=full,
                         row_styles=[_status_style(r["status"]) for r in records])
    # Columns that did not fit first (params that differ, then metrics), then the equal params.
    hidden_params = [c.name for c in fitted.hidden if c.name in params] + list(equal)
    hidden_metrics = [c.name for c in fitted.hidden if c.name in metrics]
    example = ",".join(hidden_params[:1] + hidden_metrics[:1])
    left_out = [c.name or c.header for c in fitted.hidden] + [f"{k}={v}" for k, v in equal.items()]
    if left_out:
        examples = [example, ",".join(hidden_metrics[:1] or hidden_params[:1]), "NAME,..."]
        print_footer(console, left_out, *(f"see --columns {e}, --wide, --json, --csv"
                                          for e in examples if e))
    elif fitted.shortened:
        print_footer(console, [], "values cut to fit: see them whole with --wide, --json or --csv")


def check_names(records: list[dict[str, Any]], metric: str | None,
                columns: Sequence[str] | None) -> None:
    """``--metric`` and ``--columns`` must name what the runs logged: say what they have instead."""
    from nbtrack.errors import UsageProblem

    params = list(dict.fromkeys(k for r in records for k in r["params"]))
    metrics = list(dict.fromkeys(k for r in records for k in r["metrics"]))
    if metric is not None and metric not in metrics:
        raise UsageProblem(f"--metric: no metric {metric!r} in these runs "
                           f"(they have {', '.join(metrics) or 'no metrics'})")
    for name in columns or []:
        key = name.removeprefix("params.").removeprefix("metrics.")
        if key not in params and key not in metrics:
            raise UsageProblem(f"--columns: no param or metric {name!r} in these runs "
                               f"(params: {', '.join(params) or 'none'}; "
                               f"metrics: {', '.join(metrics) or 'none'})")


def _equal_params(records: list[dict[str, Any]], params: list[str]) -> dict[str, str]:
    """Params with one value in every run (a sweep's parent, which holds value lists, aside)."""
    runs = [r for r in records if not (r.get("sweep_id") and not r.get("parent_run_id"))] or records
    equal = {}
    for key in params:
        values = {r["params"].get(key) for r in runs}
        if len(values) == 1 and None not in values:
            equal[key] = str(values.pop())
    return equal


def _by_importance(metrics: list[str]) -> list[str]:
    """Metrics named with a metric word (val_acc, test_loss) first: those are what a run is for;
    then the rest of the results; what the run cost last, its memory peak first."""
    from nbtrack.config import DEFAULT_METRIC_WORDS
    from nbtrack.metric_direction import metric_words

    words = set(DEFAULT_METRIC_WORDS)
    return sorted(metrics, key=lambda m: (_is_system(m), m != tags.PEAK_MEMORY,
                                          not metric_words(m) & words))


def _is_system(metric: str) -> bool:
    return metric.startswith(tags.SYSTEM_METRICS)


def _run_columns(records: list[dict[str, Any]]) -> list[Column]:
    from nbtrack.cli.tables import Column, short_id

    starts = [_start(r.get("start_time")) for r in records]
    year = datetime.now(timezone.utc).year
    this_year = all(s is None or s.year == year for s in starts)
    ids = [r["run_id"] for r in records]
    return [
        Column("run id", ids, compact=[short_id(i) for i in ids], cut=False),
        Column("name", [r.get("run_name") or "" for r in records], rank=1),
        Column("status", [r["status"] for r in records], cut=False),
        Column("start (UTC)", [s.strftime("%Y-%m-%d %H:%M") if s else "" for s in starts],
               compact=[s.strftime("%m-%d %H:%M" if this_year else "%Y-%m-%d") if s else ""
                        for s in starts], rank=1, cut=False),
        Column("duration", [_duration(r.get("duration_s")) for r in records], rank=1,
               cut=False, justify="right"),
    ]


def _model_columns(records: list[dict[str, Any]], full: bool) -> list[Column]:
    """A ◆ badge on each run that logged a model (in a terminal, when the params that differ
    leave room for it); printed whole, the models' names."""
    from nbtrack.cli.tables import Column
    from nbtrack.query.models import model_names

    names = [model_names(r.get("models")) for r in records]
    if not any(names):
        return []
    if full:
        return [Column("model", [", ".join(n) for n in names], rank=4, name="model")]
    return [Column("◆", ["◆" if n else "" for n in names], rank=4, cut=False, name="model")]


def _param_column(records: list[dict[str, Any]], key: str, *, rank: int) -> Column:
    from nbtrack.cli.tables import Column

    return Column(key, [str(r["params"].get(key, "")) for r in records], rank=rank, name=key)


def _metric_column(records: list[dict[str, Any]], key: str, *, chosen: bool,
                   maximize: bool | None, rank: int) -> Column:
    """A metric's last values; the chosen metric's best value is marked ★ (lower is better for
    losses and errors, by the one metric-direction rule)."""
    from nbtrack.cli.tables import Column, number

    values = [r["metrics"].get(key) for r in records]
    best = best_rows(values, key, maximize) if chosen else set()
    mark = ["★ " if i in best else "" for i in range(len(values))]
    return Column(
        key, [m + number(v, full=True) for m, v in zip(mark, values, strict=True)],
        compact=[m + number(v) for m, v in zip(mark, values, strict=True)], rank=rank, cut=False,
        justify="right", style="bold" if chosen else "", name=key,
        styles=["bold green" if i in best else "" for i in range(len(values))],
    )


def best_rows(values: Sequence[Any], metric: str, maximize: bool | None = None) -> set[int]:
    """Rows holding the best finite value of ``metric`` (ties all win)."""
    import math

    from nbtrack.metric_direction import lower_is_better

    numbers = {}
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            numbers[i] = number
    if not numbers:
        return set()
    lower = lower_is_better(metric) if maximize is None else not maximize
    best = min(numbers.values()) if lower else max(numbers.values())
    return {i for i, v in numbers.items() if v == best}


def _start(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _duration(seconds: Any) -> str:
    if is_missing(seconds):
        return "running"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _status_style(status: str) -> str:
    return {"FAILED": "red", "KILLED": "red", "RUNNING": "cyan"}.get(status, "")
