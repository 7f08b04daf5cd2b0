"""``nbtrack retrain NOTEBOOK --metric M``: retrain a notebook when the Delta tables it read moved.

Prints one line when nothing moved (``inputs unchanged since run <id> (data/train v3); nothing
to retrain``); else re-executes the champion's notebook snapshot on the new data (the re-run's
progress bar on a terminal), then prints champion vs challenger on M and the input versions
each read, and a last line with the decision. ``--watch SECONDS`` checks again every SECONDS
until Ctrl-C or SIGTERM (exit 0), one status line per check.

Exit codes: 0 unchanged, retrained or promoted; 2 bad usage (an unknown metric, a champion
that recorded no inputs, a catalog table without Spark, a registered model of another
notebook); 3 not found (a notebook without runs, an input table gone or vacuumed past the
recorded version, a challenger without a model to register: after its report); 4 store
unavailable; 5 the challenger's execution failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from nbtrack.cli.runs import add_store_arguments
from nbtrack.errors import ExecutionFailed, NbtrackError, UsageProblem

if TYPE_CHECKING:
    from rich.console import Console

    from nbtrack.batch.retrain import RetrainDecision


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "retrain",
        help="re-run a notebook when the Delta tables it read have new versions",
        description=(
            "Compare the Delta tables NOTEBOOK's champion read (nbtrack.read_delta) with their "
            "current versions. The champion is the run holding the registered model's champion "
            "alias with --register, else the latest finished run. When a table has a newer "
            "version, re-execute the champion's notebook snapshot with its params on the latest "
            "data (a run tagged nbtrack.retrain_of), and compare both runs on --metric (lower is "
            "better for losses and errors). With --register NAME the challenger's model becomes a "
            "version of NAME, and takes the champion alias only when it is better. Nothing is "
            "created when no input moved."
        ),
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="path of the notebook (.ipynb)")
    parser.add_argument("--metric", required=True, metavar="NAME",
                        help="the metric that decides (the champion must have logged it)")
    parser.add_argument("--register", metavar="REGISTERED",
                        help="the registered model: its champion alias names the champion; the "
                        "challenger's model is registered, and promoted when better")
    parser.add_argument("--watch", type=float, metavar="SECONDS",
                        help="check again every SECONDS until Ctrl-C or SIGTERM")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter of the challenger (typed like papermill's -p)")
    parser.add_argument("--backend", choices=["local", "spark"], default="local",
                        help="execute the challenger in a local kernel or as a Spark task (which "
                        "also reads catalog tables' versions)")
    parser.add_argument("--spark-master", metavar="URL",
                        help="with --backend spark and no live session: local[1], spark://... or sc://...")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="limit for the execution")
    parser.add_argument("--kernel", dest="kernel_name", help="kernel name (default: the notebook's)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    parser.add_argument("--json", action="store_true",
                        help="print each decision as one line of JSON instead of the report")
    add_store_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from nbtrack.batch.params import parse_overrides
    from nbtrack.cli.execution import prepare
    from nbtrack.registry.register import check_name

    if args.watch is not None and not args.watch > 0:
        raise UsageProblem(f"--watch takes a number of seconds above 0, not {args.watch:g}")
    if args.register is not None:
        check_name(args.register)
    params = parse_overrides(args.param)
    err, warn = prepare("retrain")
    if args.watch is None:
        decision = _check(args, params, warn)
        _show(args, decision, stamp=False)
        if decision.registration_error is not None:
            err.print(f"nbtrack retrain: {decision.registration_error}", highlight=False, soft_wrap=True)
            return decision.registration_error.exit_code
        return ExecutionFailed.exit_code if decision.status not in (None, "FINISHED") else 0
    checks = 0
    try:
        while True:
            try:
                decision = _check(args, params, warn)
                _show(args, decision, stamp=True)
            except UsageProblem:
                raise
            except NbtrackError as exc:
                if checks == 0:
                    raise  # a first check that fails is a mistake to fix, not a state to watch
                print(f"{_now()} check failed: {exc}", flush=True)
            checks += 1
            time.sleep(args.watch)
    except KeyboardInterrupt:
        err.print(f"nbtrack retrain: stopped watching after {checks} check{'s' * (checks != 1)}",
                  highlight=False)
        return 0


def _check(args: argparse.Namespace, params: dict[str, Any], warn: Any) -> RetrainDecision:
    from nbtrack.batch.retrain import retrain

    return retrain(
        args.notebook, args.metric, register=args.register, params=params, project=args.project,
        tracking_uri=args.tracking_uri, backend=args.backend, spark_master=args.spark_master,
        progress=not args.no_progress and sys.stderr.isatty(), timeout=args.timeout,
        kernel_name=args.kernel_name, warn=warn,
    )


def _show(args: argparse.Namespace, decision: RetrainDecision, *, stamp: bool) -> None:
    if args.json:
        print(json.dumps(decision.to_dict(), allow_nan=False), flush=True)
        return
    if decision.challenger is not None:
        from rich.console import Console

        out = Console(highlight=False)
        print_decision(out, decision, full=not out.is_terminal)
    print(f"{_now()} {decision.headline()}" if stamp else decision.headline(), flush=True)


def print_decision(console: Console, decision: RetrainDecision, *, full: bool | None = None) -> None:
    """Champion vs challenger: each run's id, status, value of the metric (the better one in bold
    green) and the version of every input it read (the moved ones in yellow)."""
    from nbtrack.cli.tables import Column, number, print_table
    from nbtrack.metric_direction import direction
    from nbtrack.query.freshness import table_label

    assert decision.challenger is not None
    root = decision.root
    tables = sorted(set(decision.champion_inputs) | set(decision.challenger_inputs))
    moved = {m.table for m in decision.trigger}
    labels = ["run", "status", f"{decision.metric} ({direction(decision.metric)})"]
    labels += [table_label(t, root) for t in tables]

    def cells(run_id: str, status: str, value: float | None, inputs: dict[str, int]) -> list[str]:
        return [run_id, status, number(value, full=True)] + [
            f"v{inputs[t]}" if t in inputs else "" for t in tables]

    champion = cells(decision.champion, decision.champion_status, decision.champion_value, decision.champion_inputs)
    challenger = cells(decision.challenger, decision.status or "", decision.challenger_value,
                       decision.challenger_inputs)
    best = "bold green"
    styles_a = ["", "", "" if decision.better else best] + ["" for _ in tables]
    styles_b = ["", "", best if decision.better else ""] + ["yellow" if t in moved else "" for t in tables]
    columns = [
        Column("", labels, min_width=12),
        Column("champion", champion, compact=[champion[0][:8], *champion[1:]], cut=False,
               styles=styles_a),
        Column("challenger", challenger, compact=[challenger[0][:8], *challenger[1:]], cut=False,
               styles=styles_b),
    ]
    print_table(console, columns, title=f"champion vs challenger on {decision.metric}", full=full)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
