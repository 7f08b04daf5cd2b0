"""``nbtrack lake optimize|sql|show``: maintain and query the project's Delta tables.

The lake is ``--lake PATH``, else the project's ``lake_path`` option
(``[tool.nbtrack]`` in pyproject.toml or ``NBTRACK_LAKE_PATH``), else
``<project>/.nbtrack/lake``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from nbtrack.lake.maintenance import DEFAULT_RETENTION_HOURS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
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
                     help="output format (default: table)")
    sql.add_argument("--limit", type=int, default=100, metavar="N",
                     help="print at most N rows as a table (default 100; csv/json print all)")

    actions.add_parser(
        "show", help="table versions, files and sizes",
        description="Print each table's current version, number of files, size, rows "
        "and last commit.",
    )
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
    from rich.table import Table

    from nbtrack.lake.maintenance import show

    infos = show(lake)
    table = Table(title=f"lake {lake}", title_justify="left")
    for column in ("table", "version", "files", "size", "rows", "last commit"):
        table.add_column(column, justify="left" if column in ("table", "last commit") else "right")
    for info in infos:
        stamp = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.modified))
                 if info.modified else "")
        table.add_row(info.name, str(info.version), str(info.files), _size(info.size_bytes),
                      str(info.rows), stamp)
    Console(highlight=False).print(table)
    return 0


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
    from nbtrack.lake.maintenance import sql

    result = sql(lake, args.query)
    if args.format == "json":
        print(json.dumps(result.to_pylist(), default=str, indent=1))
    elif args.format == "csv":
        import io

        import pyarrow.csv as pcsv

        buffer = io.BytesIO()
        pcsv.write_csv(result, buffer)
        print(buffer.getvalue().decode(), end="")
    else:
        import pandas as pd

        frame = result.slice(0, args.limit).to_pandas()
        with pd.option_context("display.max_columns", None, "display.width", 200,
                               "display.max_colwidth", 60):
            print(frame.to_string(index=False) if len(frame) else "(no rows)")
        if result.num_rows > args.limit:
            print(f"… {result.num_rows - args.limit} more rows (--limit N, or --format csv)")
    return 0
