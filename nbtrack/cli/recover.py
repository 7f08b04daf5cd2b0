"""``nbtrack recover``: deliver what dead kernels left in the journals, now, in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from nbtrack.errors import NotFound
from nbtrack.project import Project, find_project_root


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "recover",
        help="deliver journals left by dead kernels (their runs end as KILLED)",
        description="Deliver every journal of the project into the tracking store and the lake. "
        "Runs of kernels that died are ended with status KILLED. Waits for a running "
        "delivery process to finish first.",
    )
    parser.add_argument("--project", type=Path, default=None,
                        help="project folder holding .nbtrack/ (default: git root of the current folder)")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nbtrack.delivery.daemon import serve
    from nbtrack.delivery.state import RunIndex
    from nbtrack.journal import list_journals

    project = Project(find_project_root(args.project or Path.cwd()))
    if not project.state_dir.is_dir():
        raise NotFound(f"no .nbtrack/ folder in {project.root}: nothing was tracked here")
    pending = [j.session for j in list_journals(project.journal_dir)]
    console = Console()
    with console.status(f"delivering {len(pending)} journal(s)…"):
        serve(project, idle_exit=0, once=True)
    left = {j.session for j in list_journals(project.journal_dir)}
    done_dir = project.journal_dir / "done"
    runs = 0
    for session in pending:
        folder = done_dir if session not in left else project.journal_dir
        runs += len(RunIndex(folder, session))
    console.print(f"delivered {len(pending) - len(left)} of {len(pending)} journal(s), "
                  f"{runs} run(s); {len(left)} still open (kernels running or a store unreachable)")
    return 0
