"""``nbtrack rerun RUN_ID [-p name=value ...]``: re-execute a run and report how its metrics moved.

Exit codes: 0 the re-run finished, 5 it failed (run and output notebook kept),
2 bad input, 3 unknown run or no notebook snapshot.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from nbtrack.batch.report import CHANGED, EQUAL, MISSING, NEW
from nbtrack.cli import Subparsers
from nbtrack.cli.tables import add_output_arguments
from nbtrack.errors import ExecutionFailed

if TYPE_CHECKING:
    from rich.console import Console

_VERDICT_STYLES = {EQUAL: "green", CHANGED: "yellow", MISSING: "red", NEW: "cyan"}


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
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
    add_output_arguments(parser, json_help="print the new run and how every metric moved as JSON "
                         "instead of the report; the summary line goes to stderr")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nbtrack.batch.params import parse_overrides
    from nbtrack.batch.rerun import rerun
    from nbtrack.cli.execution import prepare

    err, warn = prepare("rerun")

    frame = rerun(
        args.run_id, parse_overrides(args.param), current=args.current, pin_data=args.pin_data,
        progress=not args.no_progress and sys.stderr.isatty(), tracking_uri=args.tracking_uri,
        project=args.project, timeout=args.timeout, kernel_name=args.kernel_name, warn=warn,
    )
    row = frame.iloc[0]
    report = frame.attrs["report"].to_dict(orient="records")
    out = Console(highlight=False)
    if args.json:
        from nbtrack.cli.tables import nested_record
        from nbtrack.query.values import frame_records, json_safe

        data = {**nested_record(frame_records(frame)[0]), "report": json_safe(report)}
        print(json.dumps(data, indent=2, allow_nan=False))
    elif args.csv:
        from nbtrack.cli.tables import write_csv

        write_csv(report, ["metric", "original", "rerun", "delta", "verdict"])
    else:
        full = True if args.wide else not out.is_terminal
        ids = (row["run_id"], args.run_id) if full else (row["run_id"][:8], args.run_id[:8])
        print_report(out, report, title="run {} vs {}".format(*ids), full=full)
    summary = (f"re-run {row['run_id']}: {row['status']}"
               + (f" ({row['error']})" if row["error"] else "")
               + f"; output notebook {row['output']}")
    if args.json or args.csv:
        err.print(summary, soft_wrap=True, highlight=False)
    else:  # one line for a script; wrapped at spaces in a terminal
        out.print(summary, soft_wrap=not out.is_terminal)
    return 0 if row["status"] == "FINISHED" else ExecutionFailed.exit_code


def print_report(console: Console, report: list[dict[str, Any]], *, title: str,
                 full: bool | None = None) -> None:
    """How every metric moved: original, re-run and delta values, and a verdict (equal bit for
    bit, changed, missing from the re-run, new in it), then the verdicts counted."""
    from nbtrack.cli.tables import Column, number, print_footer, print_table

    def values(key: str, hide: tuple[str, ...], *, whole: bool) -> list[str]:
        # None becomes NaN in a float column: the verdict says which side was not logged.
        return ["" if r["verdict"] in hide else number(r[key], full=whole) for r in report]

    deltas = [("+" if not full and r["delta"] is not None and r["delta"] > 0 else "") + text
              for r, text in zip(report, values("delta", (NEW, MISSING), whole=False), strict=True)]

    verdicts = [r["verdict"] for r in report]
    table = [
        Column("metric", [r["metric"] for r in report], min_width=12),
        Column("original", values("original", (NEW,), whole=True),
               compact=values("original", (NEW,), whole=False), rank=1, cut=False,
               justify="right"),
        Column("rerun", values("rerun", (MISSING,), whole=True),
               compact=values("rerun", (MISSING,), whole=False), cut=False, justify="right"),
        Column("delta", values("delta", (NEW, MISSING), whole=True),
               compact=deltas, rank=1, cut=False,
               justify="right"),
        Column("verdict", verdicts, cut=False, styles=[_VERDICT_STYLES[v] for v in verdicts]),
    ]
    fitted = print_table(console, table, title=title, full=full)
    counts = {v: verdicts.count(v) for v in (EQUAL, CHANGED, MISSING, NEW) if v in verdicts}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    console.print(summary or "no metrics logged by either run")
    left_out = [c.header for c in fitted.hidden]
    if left_out or fitted.shortened:
        print_footer(console, left_out, "see them whole with --wide, --json or --csv")
