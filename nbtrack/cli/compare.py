"""``nbtrack compare RUN_ID...``: params diff and metrics (best marked) of runs in the terminal.

``--json`` prints the comparison's documented ``to_dict()`` shape, ``--csv`` its params
and metrics (one column per run); ``--html FILE`` writes the same page ``%nbtrack compare``
shows (curves and figures included). In a terminal the tables keep runs as columns and
fit the window: runs that do not fit side by side are shown a page of runs at a time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.cli import Subparsers
from nbtrack.cli.runs import add_store_arguments
from nbtrack.cli.tables import add_output_arguments

if TYPE_CHECKING:
    from rich.console import Console

    from nbtrack.cli.tables import Column, Fitted
    from nbtrack.query.comparison import Comparison


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="compare runs: params diff, metrics, changed cells",
        description="Compare runs by id (from `nbtrack runs NOTEBOOK`); runs may come "
        "from different notebooks of the store. Differing params are highlighted "
        "(marked ≠); for each metric the best run is marked ★ (lower is better for "
        "loss/error/mae/mse/rmse/mape, higher otherwise).",
    )
    # "*": the query layer's rule (at least one id) and message, shared with %nbtrack compare
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                        help="MLflow run ids, or their first characters (8, as tables show them)")
    add_output_arguments(
        parser, json_help="print the comparison as JSON (params, metrics, histories, figures, cells)")
    parser.add_argument(
        "--html", metavar="FILE", default=None,
        help="also write an HTML page with tables, metric curves and figures to FILE",
    )
    add_store_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from nbtrack.query.compare import compare

    comparison = compare(args.run_ids, tracking_uri=args.tracking_uri, project=args.project)
    if args.html:
        from nbtrack.query.compare_html import render_comparison_page

        Path(args.html).write_text(render_comparison_page(comparison), encoding="utf-8")
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2, allow_nan=False))
        return 0
    if args.csv:
        from nbtrack.cli.tables import write_csv

        data = comparison.to_dict()
        write_csv(comparison_rows(data), ["kind", "key", *comparison.run_ids])
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    print_comparison(console, comparison, full=True if args.wide else None)
    if args.html:
        console.print(f"wrote {args.html}")
    return 0


def print_comparison(console: Console, comparison: Comparison, *, full: bool | None = None) -> None:
    """Runs, params (differences highlighted), metrics (best marked), figures, changed cells.

    ``full`` (default: not a terminal) prints every value whole; in a terminal, runs that do
    not fit side by side are shown a page at a time, and a last line says how to narrow them.
    """
    from rich.syntax import Syntax
    from rich.text import Text

    from nbtrack.cli.tables import print_footer, print_table

    full = not console.is_terminal if full is None else full
    data = comparison.to_dict()
    fitted = print_table(console, _runs_columns(data, full), title="runs", full=full,
                         row_styles=[_STATUS_STYLES.get(r["status"], "") for r in data["runs"]])
    shown = [fitted]
    _print_user_runs(console, comparison)
    shown += _print_transposed(console, "params (≠ differs)", *_params_columns(data, full),
                               full=full)
    _print_inputs(console, comparison)
    shown += _print_transposed(console, "metrics: last (best) · ★ best run",
                               *_metrics_columns(data, full), full=full)
    if any(m["key"].startswith(tags.SYSTEM_METRICS) for m in data["metrics"]):  # what each run cost
        shown += _print_transposed(console, "system: peak", *_metrics_columns(data, full, system=True),
                                   full=full)
    if comparison.figures:
        shown += _print_transposed(console, "figures (latest execution of each cell)",
                                   *_figures_columns(data, full), full=full)
        for line in _artifact_roots(comparison, full):
            console.print(Text(line, style="dim"))
    for cell in comparison.cells:
        where = f"cell {cell.index}" if cell.index is not None else "cell"
        console.print(Text(f"changed {where} ({cell.cell_id})", style="bold"))
        for diff in cell.diffs.values():
            console.print(Syntax(diff.rstrip("\n"), "diff", theme="ansi_dark", word_wrap=not full))
    system = any(m["key"].startswith(tags.SYSTEM_METRICS) for m in data["metrics"])
    transposed = 2 + system + bool(comparison.figures)  # params, metrics, system, figures
    if len(shown) - 1 > transposed:  # some table took more than one page
        runs = len(data["runs"])
        print_footer(console, [], f"{runs} runs do not fit side by side, so they are shown a page "
                     "at a time: compare fewer (nbtrack compare ID ID ...), or see them all with "
                     "--wide, --json or --csv",
                     f"{runs} runs shown a page at a time; compare fewer, or use --wide, "
                     "--json, --csv")
    elif any(f.shortened for f in shown):
        print_footer(console, [], "values cut to fit: see them whole with --wide, --json or --csv")


_STATUS_STYLES = {"FAILED": "red", "KILLED": "red", "RUNNING": "cyan"}
#: The narrowest the names of params, metrics and figures are cut to beside the runs.
KEY_WIDTH = 20


def comparison_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Params and metrics (last and best) as rows ``kind, key, <run id>...`` for ``--csv``."""
    rows = [{"kind": "param", "key": p["key"], **p["values"]} for p in data["params"]]
    for metric in data["metrics"]:
        for which in ("last", "best"):
            values = {rid: v[which] if v else None for rid, v in metric["values"].items()}
            rows.append({"kind": f"metric.{which}", "key": metric["key"], **values})
    return rows


def _print_transposed(console: Console, title: str, key: Column, runs: list[Column], *,
                      full: bool) -> list[Fitted]:
    """A table with the runs as columns, in pages of runs that fit side by side (one per page)."""
    from nbtrack.cli.tables import pages, print_table

    key.min_width = min(key.min_width, console.width // 3)  # a narrow terminal: room for a run
    groups = [runs] if full else pages(key, runs, console.width)
    printed = []
    for n, group in enumerate(groups):
        first, last = sum(len(g) for g in groups[:n]) + 1, sum(len(g) for g in groups[:n + 1])
        which = f"run {first}" if first == last else f"runs {first}–{last}"
        heading = title if len(groups) == 1 else f"{which} of {len(runs)} · {title}"
        printed.append(print_table(console, [key, *group], title=heading, full=full))
    return printed


def _run_header(run: dict[str, Any], full: bool) -> str:
    """The run's id (8 characters in a terminal) over its name."""
    from nbtrack.cli.tables import short_id

    return f"{run['run_id'] if full else short_id(run['run_id'])}\n{run['run_name']}"


def _runs_columns(data: dict[str, Any], full: bool) -> list[Column]:
    from nbtrack.cli.tables import Column, short_id

    runs = data["runs"]
    ids = [r["run_id"] for r in runs]
    columns = [
        Column("run id", ids if full else [short_id(i) for i in ids], cut=False),
        Column("name", [r["run_name"] or "" for r in runs], rank=1),
        Column("notebook", [r["experiment_name"] or "" for r in runs], rank=2),
        Column("status", [r["status"] for r in runs], cut=False),
        Column("start (UTC)", [(r["start_time"] or "")[:19].replace("T", " ") for r in runs],
               rank=1, cut=False),
    ]
    if any(r.get("models") for r in runs):  # flavor and size of each run's models
        from nbtrack.query.models import describe

        columns.append(Column("model", [", ".join(describe(m) for m in r.get("models") or [])
                                        for r in runs], rank=2))
    return columns


def _params_columns(data: dict[str, Any], full: bool) -> tuple[Column, list[Column]]:
    from nbtrack.cli.tables import Column

    params = data["params"]
    key = Column("param", [f"{p['key']} ≠" if p["differs"] else p["key"] for p in params] or
                 ["no params logged"], min_width=KEY_WIDTH,
                 styles=[("bold yellow" if p["differs"] else "dim") for p in params] or [""])
    runs = []
    for run in data["runs"]:
        values = [p["values"].get(run["run_id"]) for p in params]
        runs.append(Column(_run_header(run, full), [("" if v is None else str(v)) for v in values]
                           or [""], rank=1,
                           styles=["bold yellow" if p["differs"] else "" for p in params] or [""]))
    return key, runs


def _metrics_columns(data: dict[str, Any], full: bool, *, system: bool = False) -> tuple[Column, list[Column]]:
    """The results' metrics (last, and best over steps), or the ``system/`` ones (their peak)."""
    from nbtrack.cli.tables import Column, number

    metrics = [m for m in data["metrics"] if m["key"].startswith(tags.SYSTEM_METRICS) == system]
    if system:
        key = Column("measure", [m["key"].removeprefix(tags.SYSTEM_METRICS) for m in metrics],
                     min_width=KEY_WIDTH)
        runs = [Column(_run_header(run, full),
                       [number(m["values"][run["run_id"]]["best"], full=full) if m["values"].get(run["run_id"])
                        else "" for m in metrics] or [""], rank=1, cut=False, justify="right")
                for run in data["runs"]]
        return key, runs
    key = Column("metric", [f"{m['key']} {'↓' if m['direction'] == 'min' else '↑'}"
                            for m in metrics] or ["no metrics logged"], min_width=KEY_WIDTH)
    runs = []
    for run in data["runs"]:
        rid = run["run_id"]
        cells, styles = [], []
        for metric in metrics:
            value, winners = metric["values"].get(rid), metric["best_runs"]
            if not value:
                cells.append("")
                styles.append("")
                continue
            last = ("★ " if rid in winners["last"] else "") + number(value["last"], full=full)
            best = ("★ " if rid in winners["best"] else "") + number(value["best"], full=full)
            same = number(value["best"], full=full) == number(value["last"], full=full)
            cells.append(last if same else f"{last} ({best})")
            styles.append("bold green" if rid in winners["last"] else "")
        runs.append(Column(_run_header(run, full), cells or [""], rank=1, cut=False,
                           justify="right", styles=styles or [""]))
    return key, runs


def _figures_columns(data: dict[str, Any], full: bool) -> tuple[Column, list[Column]]:
    from nbtrack.cli.tables import Column

    figures = data["figures"]
    key = Column("cell-figure", [f["key"] for f in figures], min_width=KEY_WIDTH)
    runs = []
    for run in data["runs"]:
        files = [f["runs"].get(run["run_id"]) for f in figures]
        runs.append(Column(_run_header(run, full), [fs[-1]["path"] if fs else "—" for fs in files],
                           rank=1))
    return key, runs


def _print_user_runs(console: Console, comparison: Comparison) -> None:
    """The runs the notebook's own MLflow made, as links (a server) or with the command to open them."""
    from rich.text import Text

    from nbtrack.query.links import ui_command

    for run in comparison.runs:
        if not run.user_runs:
            continue
        console.print(Text(f"{run.label}: the notebook's own MLflow made {len(run.user_runs)} run(s)"))
        for uri in dict.fromkeys(item.get("tracking_uri") or "" for item in run.user_runs):
            items = [item for item in run.user_runs if (item.get("tracking_uri") or "") == uri]
            for item in items:
                text = Text(f"  {item['run_id']}  {item.get('name') or ''}".rstrip())
                if item.get("url"):
                    text.stylize(f"link {item['url']}")
                console.print(text)
            if uri:
                console.print(Text(f"  open: {ui_command(uri)}", style="dim"))


def _print_inputs(console: Console, comparison: Comparison) -> None:
    """"inputs differ: columns …" and each moved table, under the params."""
    from rich.text import Text

    from nbtrack.query.inputs import drift_headline

    headline = drift_headline(comparison.inputs)
    if headline is None:
        return
    console.print(Text(headline, style="bold yellow"))
    labels = comparison.labels
    for drift in comparison.inputs["drift"]:
        pair = f"{labels.get(drift['run_a'], drift['run_a'])} → {labels.get(drift['run_b'], drift['run_b'])}"
        console.print(Text(f"  {pair}: {drift['summary']}"))


def _artifact_roots(comparison: Comparison, full: bool) -> list[str]:
    """Where each run's artifact paths are, so figures can be opened."""
    from nbtrack.query.artifacts import local_artifact_dir

    lines, patterns = [], set()
    for run in comparison.runs:
        local = str(local_artifact_dir(run.artifact_uri) or run.artifact_uri)
        label = run.label if full else run.run_id[:8]
        lines.append(f"artifacts of {label}: {local}")
        patterns.add(local.replace(run.run_id, "<run id>"))
    if not full and len(lines) > 1 and len(patterns) == 1 and "<run id>" in next(iter(patterns)):
        return [f"artifacts of each run: {patterns.pop()}"]  # one line instead of one per run
    return lines
