"""``nbtrack sweep NOTEBOOK -p name=v1,v2 ...``: a grid or random search through papermill.

Exit codes: 0 every execution finished, 5 some failed (their runs and output
notebooks are kept), 2 bad input, 3 notebook/sweep not found.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nbtrack.errors import ExecutionFailed


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep",
        help="execute a notebook over a grid of parameters (one MLflow child run each)",
        description=(
            "Execute NOTEBOOK with papermill for every combination of the -p values "
            "(a grid, or --random N of it). Each execution is a child run of one parent "
            "sweep run; output notebooks go to <project>/.nbtrack/outputs/<sweep_id>/."
        ),
    )
    parser.add_argument("notebook", nargs="?", help="the notebook (optional with --resume)")
    parser.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=V1,V2",
        help="values of a parameter, typed like papermill's -p (int, float, True/False, None, "
        "str); NAME=json:[...] for a JSON list. Repeatable.",
    )
    parser.add_argument("-f", "--file", metavar="PARAMS.yaml",
                        help="YAML file: {name: [values]} or a list of parameter sets")
    parser.add_argument("--random", type=int, metavar="N",
                        help="run N combinations drawn at random instead of the whole grid")
    parser.add_argument("--seed", type=int, help="seed of --random (repeatable samples)")
    parser.add_argument("-w", "--workers", type=int, default=1, metavar="W",
                        help="kernels running at once (default 1)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="limit per execution; a late one is interrupted and FAILED")
    parser.add_argument("--resume", metavar="SWEEP_ID",
                        help="run only the executions of that sweep that are missing or failed")
    parser.add_argument("--metric", help="sort the final table by this metric")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--maximize", dest="maximize", action="store_true", default=None,
                           help="higher --metric is better (default unless it names a loss/error)")
    direction.add_argument("--minimize", dest="maximize", action="store_false",
                           help="lower --metric is better")
    parser.add_argument("--backend", choices=["local", "spark"], default="local",
                        help="local worker processes, or one Spark task per execution")
    parser.add_argument("--spark-master", metavar="URL",
                        help="with --backend spark: local[W] (default), spark://..., or sc://... "
                        "for Spark Connect")
    parser.add_argument("--kernel", dest="kernel_name", help="kernel name (default: the notebook's)")
    parser.add_argument("--cwd", help="working directory of the kernels (default: the notebook's)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: the project's)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nbtrack.batch.params import parse_assignments
    from nbtrack.batch.report import render_runs
    from nbtrack.batch.sweep import sweep
    from nbtrack.cli.execution import prepare

    err, warn = prepare("sweep")

    space = parse_assignments(args.param)
    frame = sweep(
        args.notebook, space, file=args.file, random=args.random, seed=args.seed,
        workers=args.workers, timeout=args.timeout, backend=args.backend, resume=args.resume,
        metric=args.metric, maximize=args.maximize, kernel_name=args.kernel_name, cwd=args.cwd,
        progress=not args.no_progress and sys.stderr.isatty(), tracking_uri=args.tracking_uri,
        spark_master=args.spark_master, warn=warn,
    )
    sweep_id = frame.attrs["sweep_id"]
    out = Console(width=max(Console().width, 120) if not sys.stdout.isatty() else None)
    render_runs(frame, out, metric=args.metric, title=f"sweep {sweep_id}")
    failed = int((frame["status"] != "FINISHED").sum())
    summary = f"sweep {sweep_id}: {len(frame) - failed} finished, {failed} failed"
    out.print(summary + (f" (resume with: nbtrack sweep --resume {sweep_id})" if failed else ""),
              highlight=False, soft_wrap=True)
    if failed:
        return ExecutionFailed.exit_code
    return 0
