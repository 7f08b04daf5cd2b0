"""``nbtrack rerun RUN_ID [-p name=value ...]``: re-execute a run and report how its metrics moved.

Exit codes: 0 the re-run finished, 5 it failed (run and output notebook kept),
2 bad input, 3 unknown run or no notebook snapshot.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nbtrack.errors import ExecutionFailed


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rerun",
        help="re-execute a run's notebook snapshot with its params; report how metrics moved",
        description=(
            "Execute the notebook snapshot logged with RUN_ID (or the notebook as it is now, "
            "with --current) through papermill, with the run's parameters plus -p overrides. "
            "The new run is tagged nbtrack.rerun_of=RUN_ID; every metric is reported as "
            "equal, changed, missing or new."
        ),
    )
    parser.add_argument("run_id", metavar="RUN_ID",
                        help="the run, or the first characters of its id (8, as tables show them)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter (typed like papermill's -p; json:... for JSON)")
    parser.add_argument("--current", action="store_true",
                        help="run the notebook file as it is now instead of the run's snapshot")
    parser.add_argument("--pin-data", action="store_true",
                        help="read Delta inputs at the versions the original run recorded")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="limit for the execution")
    parser.add_argument("--kernel", dest="kernel_name", help="kernel name (default: the notebook's)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: the project's)")
    parser.add_argument("--project", help="project folder holding .nbtrack/ (default: here)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nbtrack.batch.params import parse_overrides
    from nbtrack.batch.report import render_report
    from nbtrack.batch.rerun import rerun
    from nbtrack.cli.execution import prepare

    err, warn = prepare("rerun")

    frame = rerun(
        args.run_id, parse_overrides(args.param), current=args.current, pin_data=args.pin_data,
        progress=not args.no_progress and sys.stderr.isatty(), tracking_uri=args.tracking_uri,
        project=args.project, timeout=args.timeout, kernel_name=args.kernel_name, warn=warn,
    )
    row = frame.iloc[0]
    out = Console()
    render_report(frame.attrs["report"], out, title=f"run {row['run_id']} vs {args.run_id}")
    out.print(f"re-run {row['run_id']}: {row['status']}"
              + (f" ({row['error']})" if row["error"] else "")
              + f"; output notebook {row['output']}", highlight=False, soft_wrap=True)
    return 0 if row["status"] == "FINISHED" else ExecutionFailed.exit_code
