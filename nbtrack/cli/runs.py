"""``nbtrack runs NOTEBOOK``: the runs of a notebook, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any

from nbtrack.query.values import is_missing

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_LIMIT = 20
#: Params the same in every listed run are hidden when more than this many columns would show.
MAX_PARAM_COLUMNS = 6


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "runs",
        help="list a notebook's runs, newest first",
        description="List the tracked runs of NOTEBOOK, newest first: status, start, "
        "duration, params and last metric values. Run ids are printed in full; "
        "`nbtrack compare` and `nbtrack rerun` take them or their first 8 characters.",
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="path of the notebook (.ipynb)")
    parser.add_argument(
        "--limit", "-n", type=int, default=DEFAULT_LIMIT, metavar="N",
        help=f"show at most N runs (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print a JSON list of runs (params and metrics nested) instead of a table",
    )
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
    from nbtrack.query.runs import list_runs, runs_records

    if args.limit < 1:
        raise UsageProblem(f"--limit must be at least 1, not {args.limit}")
    frame = list_runs(
        args.notebook, project=args.project, tracking_uri=args.tracking_uri,
        max_results=args.limit + 1,  # one more tells whether there are more
    )
    more = len(frame) > args.limit
    frame = frame.head(args.limit)
    if args.json:
        print(json.dumps(runs_records(frame), indent=2, allow_nan=False))
        return 0
    if frame.empty:
        print(f"no runs yet for {args.notebook}, run it with %load_ext nbtrack")
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    print_table(console, runs_table(frame, title=f"runs of {args.notebook}"))
    if more:
        console.print(f"showing the newest {args.limit}; more with --limit N", style="dim")
    return 0


def print_table(console: Any, table: Any) -> None:
    """Print a table; piped output gets the table's natural width instead of 80 columns."""
    if not console.is_terminal:
        from rich.measure import Measurement

        natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console.width = max(80, natural)
    console.print(table)


def runs_table(frame: pd.DataFrame, *, title: str) -> Any:
    """A rich Table of a runs frame; every value is plain text, never rich markup."""
    from rich.table import Table
    from rich.text import Text

    params = [c for c in frame.columns if c.startswith("params.")]
    hidden = 0
    if len(params) > MAX_PARAM_COLUMNS and len(frame) > 1:
        varying = [c for c in params if frame[c].astype(str).nunique(dropna=False) > 1]
        hidden = len(params) - len(varying)
        params = varying
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    caption = f"{hidden} params equal in every run not shown (--json has all)" if hidden else None
    table = Table(title=Text(title), caption=caption, show_lines=False)
    table.add_column("run id", no_wrap=True, min_width=len(frame["run_id"].iloc[0]))
    for name in ("name", "status", "start (UTC)", "duration"):
        table.add_column(name, overflow="fold")
    for column in params + metrics:
        table.add_column(Text(column.split(".", 1)[1]), overflow="fold",
                         justify="right" if column in metrics else "left")
    for _, row in frame.iterrows():
        start = row["start_time"]
        cells = [
            row["run_id"], row["run_name"], row["status"],
            "" if is_missing(start) else start.strftime("%Y-%m-%d %H:%M"),
            _duration(row["duration_s"]),
        ]
        cells += ["" if is_missing(row[c]) else str(row[c]) for c in params]
        cells += [_number(row[c]) for c in metrics]
        table.add_row(*(Text(str(c)) for c in cells), style=_status_style(row["status"]))
    return table


def _number(value: Any) -> str:
    if value is None:
        return ""
    value = float(value)
    return "" if math.isnan(value) else f"{value:.6g}"


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
