"""``nbtrack lake optimize|sql|show``: maintain and query the project's Delta tables.

The lake is ``--lake PATH``, else the project's ``lake_path`` option
(``[tool.nbtrack]`` in pyproject.toml or ``NBTRACK_LAKE_PATH``), else
``<project>/.nbtrack/lake``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from nbtrack.cli import Subparsers
from nbtrack.cli.tables import add_output_arguments
from nbtrack.lake.maintenance import DEFAULT_RETENTION_HOURS

if TYPE_CHECKING:
    from rich.console import Console

    from nbtrack.cli.tables import Fitted


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lake",
        help="optimize, query and inspect the Delta tables",
        description="Maintain and query the Delta tables nbtrack writes (bronze events, "
        "silver runs/params/metrics/cells/artifacts/inputs, gold leaderboard).",
    )
    parser.add_argument("--lake", metavar="PATH", default=None,
                        help="lake folder or URI (default: the project's, "
                        "<project>/.nbtrack/lake)")
    parser.add_argument("--project", metavar="DIR", default=None,
                        help="project root holding .nbtrack/ (default: git root of the "
                        "current directory, else the current directory)")
    actions = parser.add_subparsers(dest="lake_command", metavar="ACTION", required=True)

    optimize = actions.add_parser(
        "optimize", help="compact small files and vacuum old ones",
        description="Bin-pack each table's small files into large ones (safe while runs "
        "are being delivered), then delete files no version within the retention needs.",
    )
    optimize.add_argument(
        "--retention-hours", type=int, default=DEFAULT_RETENTION_HOURS, metavar="H",
        help=f"keep files older versions need for H hours (default {DEFAULT_RETENTION_HOURS}; "
        "0 deletes them now: ends time travel to those versions; use only while "
        "nothing is being delivered)",
    )
    optimize.add_argument("--no-vacuum", action="store_true", help="compact only")

    sql = actions.add_parser(
        "sql", help="run a SQL query over the tables",
        description="Answer SQL over the lake in-process (deltalake's DataFusion engine). "
        "Tables are named events, runs, params, metrics, cells, artifacts, inputs, leaderboard; "
        "quote dotted leaderboard columns: SELECT \"params.lr\", \"best.val_loss\" "
        "FROM leaderboard.",
    )
    sql.add_argument("query", metavar="QUERY", help='e.g. "SELECT key, avg(value) FROM '
                     'metrics GROUP BY key"')
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table",
                     help="output format (default: table; --json and --csv say the same)")
    sql.add_argument("--limit", type=int, default=100, metavar="N",
                     help="print at most N rows as a table (default 100; csv/json print all)")
    add_output_arguments(sql, json_help="print every row as JSON (same as --format json)")

    show = actions.add_parser(
        "show", help="table versions, files and sizes",
        description="Print each table's current version, number of files, size, rows "
        "and last commit.",
    )
    add_output_arguments(show, json_help="print the tables as JSON instead of a table")
    return parser


def resolve_lake(args: argparse.Namespace) -> str:
    if args.lake:
        return str(args.lake)
    from nbtrack.store import resolve

    return resolve(project=args.project).lake_uri


def run(args: argparse.Namespace) -> int:
    lake = resolve_lake(args)
    handler = {"optimize": _optimize, "sql": _sql, "show": _show}[args.lake_command]
    return handler(lake, args)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _show(lake: str, args: argparse.Namespace) -> int:
    from rich.console import Console

    from nbtrack.cli.tables import Column, print_table, write_csv
    from nbtrack.lake.maintenance import show

    rows: list[dict[str, Any]] = [
        {"table": info.name, "version": info.version, "files": info.files,
         "size_bytes": info.size_bytes, "rows": info.rows,
         "last_commit": (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.modified))
                         if info.modified else None)}
        for info in show(lake)
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if args.csv:
        write_csv(rows, ["table", "version", "files", "size_bytes", "rows", "last_commit"])
        return 0
    console = Console(highlight=False)
    table = [Column("table", [r["table"] for r in rows], cut=False)]
    table += [Column(name, [str(r[key]) for r in rows], rank=1, cut=False, justify="right")
              for name, key in (("version", "version"), ("files", "files"), ("rows", "rows"))]
    table.insert(3, Column("size", [_size(r["size_bytes"]) for r in rows], rank=1, cut=False,
                           justify="right"))
    table.append(Column("last commit", [r["last_commit"] or "" for r in rows], rank=2))
    fitted = print_table(console, table, title=f"lake {lake}", full=True if args.wide else None)
    _footer(console, fitted)
    return 0


def _footer(console: Console, fitted: Fitted) -> None:
    from nbtrack.cli.tables import print_footer

    left_out = [c.header for c in fitted.hidden]
    if left_out or fitted.shortened:
        print_footer(console, left_out, "see them whole with --wide, --json or --csv")


def _optimize(lake: str, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nbtrack.lake.maintenance import optimize

    console = Console(highlight=False, stderr=True)
    with Progress(TextColumn("optimize {task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=name or "done")

        results = optimize(lake, retention_hours=args.retention_hours,
                           vacuum=not args.no_vacuum, progress=progress)
    out = Console(highlight=False)
    for r in results:
        out.print(f"{r.name:12} files {r.files_before:>5} → {r.files_after:<5} "
                  f"(compacted {r.removed}, wrote {r.added}, vacuumed {r.vacuumed})")
    before = sum(r.files_before for r in results)
    after = sum(r.files_after for r in results)
    out.print(f"total files {before} → {after}")
    return 0


def _sql(lake: str, args: argparse.Namespace) -> int:
    from nbtrack.cli.tables import print_table
    from nbtrack.lake.maintenance import sql

    result = sql(lake, args.query)
    output = "json" if args.json else "csv" if args.csv else args.format
    if output == "json":
        print(json.dumps(result.to_pylist(), default=str, indent=1))
    elif output == "csv":
        import io

        import pyarrow.csv as pcsv

        buffer = io.BytesIO()
        pcsv.write_csv(result, buffer)
        print(buffer.getvalue().decode(), end="")
    else:
        from rich.console import Console

        console = Console(highlight=False)
        rows = result.slice(0, args.limit).to_pylist()
        if not rows:
            print("(no rows)")
            return 0
        fitted = print_table(console, [_sql_column(name, [r[name] for r in rows], i)
                                       for i, name in enumerate(result.column_names)],
                             full=True if args.wide else None)
        _footer(console, fitted)
        if result.num_rows > args.limit:
            console.print(f"… {result.num_rows - args.limit} more rows (--limit N, or --csv)",
                          style="dim")
    return 0


def _sql_column(name: str, values: list[Any], position: int) -> Any:
    """A result column: numbers right-aligned with 4 significant digits in a terminal, other
    values as text cut to fit; columns are kept left to right while they fit."""
    import datetime as dt

    from nbtrack.cli.tables import Column, number, short_id

    present = [v for v in values if v is not None]
    full = ["" if v is None else str(v) for v in values]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return Column(name, [number(v, full=True) for v in values],
                      compact=[number(v) for v in values], rank=position, cut=False,
                      justify="right")
    if present and all(isinstance(v, dt.datetime) for v in present):
        return Column(name, full, compact=[v.strftime("%Y-%m-%d %H:%M:%S") if v else ""
                                           for v in values], rank=position, cut=False)
    if name == "run_id" or name.endswith("_run_id"):  # the 8 characters every command takes
        return Column(name, full, compact=[short_id(v) for v in full], rank=position, cut=False)
    return Column(name, full, rank=position)
