"""``nbtrack compare RUN_ID...``: params diff and metrics (best marked) of runs in the terminal.

``--json`` prints the comparison's documented ``to_dict()`` shape; ``--html FILE``
writes the same page ``%nbtrack compare`` shows (curves and figures included).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.cli.runs import add_store_arguments, print_table

if TYPE_CHECKING:
    from nbtrack.query.compare import Comparison


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--json", action="store_true",
        help="print the comparison as JSON (params, metrics, histories, figures, cells)",
    )
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
        from nbtrack.query.render import render_comparison_page

        Path(args.html).write_text(render_comparison_page(comparison), encoding="utf-8")
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2, allow_nan=False))
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    print_comparison(console, comparison)
    if args.html:
        console.print(f"wrote {args.html}")
    return 0


def print_comparison(console: Any, comparison: Comparison) -> None:
    """Runs, params (differences highlighted), metrics (best marked), figures, changed cells."""
    from rich.syntax import Syntax
    from rich.text import Text

    print_table(console, _runs_table(comparison))
    _print_user_runs(console, comparison)
    print_table(console, _params_table(comparison))
    _print_inputs(console, comparison)
    print_table(console, _metrics_table(comparison))
    if comparison.figures:
        print_table(console, _figures_table(comparison))
        for line in _artifact_roots(comparison):
            console.print(Text(line, style="dim"))
    for cell in comparison.cells:
        where = f"cell {cell.index}" if cell.index is not None else "cell"
        console.print(Text(f"changed {where} ({cell.cell_id})", style="bold"))
        for diff in cell.diffs.values():
            console.print(Syntax(diff.rstrip("\n"), "diff", theme="ansi_dark"))


def _print_user_runs(console: Any, comparison: Comparison) -> None:
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


def _print_inputs(console: Any, comparison: Comparison) -> None:
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


def _table(title: str, first: str, comparison: Comparison) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    table.add_column(Text(first), overflow="fold")
    for run in comparison.runs:
        table.add_column(Text(run.label), overflow="fold")
    return table


def _runs_table(comparison: Comparison) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="runs", title_justify="left")
    for name in ("run", "run id", "notebook", "status", "start (UTC)"):
        table.add_column(name, no_wrap=name == "run id", overflow="fold")
    for run in comparison.runs:
        start = (run.to_dict()["start_time"] or "")[:19].replace("T", " ")
        table.add_row(*(Text(v) for v in (run.label, run.run_id, run.experiment_name,
                                          run.status, start)))
    return table


def _params_table(comparison: Comparison) -> Any:
    from rich.text import Text

    table = _table("params (≠ differs)", "param", comparison)
    for key, row in comparison.params.iterrows():
        differs = bool(row["differs"])
        values = [row[rid] for rid in comparison.run_ids]
        cells = [Text(f"{key} ≠" if differs else str(key))]
        cells += [Text("" if v is None or v != v else str(v)) for v in values]
        table.add_row(*cells, style="bold yellow" if differs else "dim")
    if not len(comparison.params):
        table.add_row(Text("no params logged"), *[Text("") for _ in comparison.runs])
    return table


def _metrics_table(comparison: Comparison) -> Any:
    from rich.text import Text

    table = _table("metrics: last (best) · ★ best run", "metric", comparison)
    metrics = comparison.metrics
    for key in metrics.index:
        arrow = "↓" if comparison.directions[key] == "min" else "↑"
        winners = comparison.best_runs.get(key, {})
        cells = [Text(f"{key} {arrow}")]
        for rid in comparison.run_ids:
            if rid not in comparison.histories.get(key, {}):
                cells.append(Text(""))
                continue
            last, best = metrics.at[key, (rid, "last")], metrics.at[key, (rid, "best")]
            cell = _marked(last, rid in winners.get("last", []))
            if _fmt(best) != _fmt(last):
                cell.append(" (")
                cell.append_text(_marked(best, rid in winners.get("best", [])))
                cell.append(")")
            cells.append(cell)
        table.add_row(*cells)
    if not len(metrics):
        table.add_row(Text("no metrics logged"), *[Text("") for _ in comparison.runs])
    return table


def _fmt(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def _marked(value: float, is_best: bool) -> Any:
    from rich.text import Text

    if is_best:
        return Text(f"★ {_fmt(value)}", style="bold green")
    return Text(_fmt(value))


def _figures_table(comparison: Comparison) -> Any:
    from rich.text import Text

    table = _table("figures (latest execution of each cell)", "cell-figure", comparison)
    for group in comparison.figures:
        cells = [Text(group.key)]
        for rid in comparison.run_ids:
            files = group.runs.get(rid)
            if not files:
                cells.append(Text("—"))
                continue
            cells.append(Text(files[-1].path))
        table.add_row(*cells)
    return table


def _artifact_roots(comparison: Comparison) -> list[str]:
    """Where each run's artifact paths are, so figures can be opened."""
    from nbtrack.query.artifacts import local_artifact_dir

    lines = []
    for run in comparison.runs:
        local = local_artifact_dir(run.artifact_uri)
        lines.append(f"artifacts of {run.label}: {local if local else run.artifact_uri}")
    return lines
