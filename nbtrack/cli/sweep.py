"""``nbtrack sweep NOTEBOOK -p name=v1,v2 ...``: a grid or random search through papermill.

Exit codes: 0 every execution finished, 5 some failed (their runs and output
notebooks are kept), 2 bad input, 3 notebook/sweep not found.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from nbtrack.cli import Subparsers
from nbtrack.cli.tables import add_output_arguments
from nbtrack.errors import ExecutionFailed

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
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
    parser.add_argument("--register-best", metavar="NAME",
                        help="when the sweep ends, register the model of the best execution by "
                        "--metric in MLflow's Model Registry as a new version of NAME")
    parser.add_argument("--backend", choices=["local", "spark"], default="local",
                        help="local worker processes, or one Spark task per execution")
    parser.add_argument("--spark-master", metavar="URL",
                        help="with --backend spark: local[W] (default), spark://..., or sc://... "
                        "for Spark Connect")
    parser.add_argument("--kernel", dest="kernel_name", help="kernel name (default: the notebook's)")
    parser.add_argument("--cwd", help="working directory of the kernels (default: the notebook's)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: the project's)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    add_output_arguments(parser, json_help="print the runs as JSON (params and metrics nested) "
                         "instead of the final table; the summary line goes to stderr")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nbtrack.batch.params import parse_assignments
    from nbtrack.batch.sweep import sweep
    from nbtrack.cli.execution import prepare
    from nbtrack.query.values import frame_records

    err, warn = prepare("sweep")

    space = parse_assignments(args.param)
    frame = sweep(
        args.notebook, space, file=args.file, random=args.random, seed=args.seed,
        workers=args.workers, timeout=args.timeout, backend=args.backend, resume=args.resume,
        metric=args.metric, maximize=args.maximize, kernel_name=args.kernel_name, cwd=args.cwd,
        progress=not args.no_progress and sys.stderr.isatty(), tracking_uri=args.tracking_uri,
        spark_master=args.spark_master, warn=warn, register_best=args.register_best,
    )
    sweep_id = frame.attrs["sweep_id"]
    rows = frame_records(frame)
    out = Console(highlight=False)
    if args.json:
        from nbtrack.cli.tables import nested_record

        print(json.dumps([nested_record(row) for row in rows], indent=2, allow_nan=False))
    elif args.csv:
        from nbtrack.cli.tables import write_csv

        write_csv(rows, list(frame.columns))
    else:
        print_sweep(out, rows, title=f"sweep {sweep_id}", metric=frame.attrs.get("metric"),
                    maximize=frame.attrs.get("maximize"), full=True if args.wide else None)
    failed = int((frame["status"] != "FINISHED").sum())
    summary = f"sweep {sweep_id}: {len(frame) - failed} finished, {failed} failed"
    summary += f" (resume with: nbtrack sweep --resume {sweep_id})" if failed else ""
    if frame.attrs.get("registered"):
        summary += f"; best model registered as {frame.attrs['registered']}"
    if args.json or args.csv:
        err.print(summary, soft_wrap=True, highlight=False)
    else:  # one line for a script; wrapped at spaces in a terminal
        out.print(summary, soft_wrap=not out.is_terminal)
    problem = frame.attrs.get("register_error")
    if problem is not None:
        return int(getattr(problem, "exit_code", 1))
    if failed:
        return ExecutionFailed.exit_code
    return 0


def print_sweep(console: Console, rows: list[dict[str, Any]], *, title: str,
                metric: str | None = None, maximize: bool | None = None,
                full: bool | None = None) -> None:
    """The final table, one line per execution: number, short run id, status, the params that
    vary, the sweep's metric (best marked ★), the other metrics as they fit, errors last.

    ``rows`` are the sweep frame's records, best first when a metric was chosen.
    """
    from nbtrack.cli.runs import best_rows
    from nbtrack.cli.tables import Column, print_footer, print_table, short_id

    full = not console.is_terminal if full is None else full
    params = [c for c in rows[0] if c.startswith("params.")] if rows else []
    metrics = [c for c in rows[0] if c.startswith("metrics.")] if rows else []
    column = f"metrics.{metric.removeprefix('metrics.')}" if metric else None
    if column not in metrics:
        column = None
    constant = {} if full else {p: _text(rows[0][p]) for p in params
                                if len({_text(r[p]) for r in rows}) == 1}
    ids = [r["run_id"] or "" for r in rows]
    statuses = [r["status"] or "" for r in rows]
    table = [
        Column("#", [str(r["index"]) for r in rows], cut=False, justify="right"),
        Column("run id", ids, compact=[short_id(i) for i in ids], cut=False),
        Column("status", statuses, cut=False,
               styles=["green" if s == "FINISHED" else "red" for s in statuses]),
    ]
    table += [Column(p.removeprefix("params."), [_text(r[p]) for r in rows], rank=3,
                     name=p.removeprefix("params.")) for p in params if p not in constant]
    ordered = ([column] if column else []) + [m for m in metrics if m != column]
    for i, key in enumerate(ordered):
        values = [None if _missing(r[key]) else r[key] for r in rows]
        best = best_rows(values, key.removeprefix("metrics."), maximize) if key == column else set()
        mark = ["★ " if n in best else "" for n in range(len(rows))]
        table.append(Column(
            key.removeprefix("metrics."),
            [m + _number(v, full=True) for m, v in zip(mark, values, strict=True)],
            compact=[m + _number(v) for m, v in zip(mark, values, strict=True)], cut=False,
            justify="right", rank=2 if i == 0 else 4, style="bold" if key == column else "",
            styles=["bold green" if n in best else "" for n in range(len(rows))],
            name=key.removeprefix("metrics."),
        ))
    if any(not _missing(r.get("error")) for r in rows):
        # a failed run's reason matters more than its other metrics: give it room to be read
        table.append(Column("error", [_text(r.get("error")) for r in rows], rank=2, style="red",
                            min_width=30))
    fitted = print_table(console, table, title=title, full=full)
    left_out = [f"{k.removeprefix('params.')}={v}" for k, v in constant.items()]
    left_out += [c.name or c.header for c in fitted.hidden]
    if left_out:
        print_footer(console, left_out, "see them with --wide, --json or --csv")
    elif fitted.shortened:
        print_footer(console, [], "values cut to fit: see them whole with --wide, --json or --csv")


def _missing(value: Any) -> bool:
    from nbtrack.query.values import is_missing

    return is_missing(value)


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _number(value: Any, *, full: bool = False) -> str:
    from nbtrack.cli.tables import number

    return "" if value is None else number(value, full=full)
