"""``nbtrack recover``: deliver what dead kernels left in the journals, now, in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from nbtrack.cli import Subparsers
from nbtrack.errors import NotFound
from nbtrack.project import Project, find_project_root


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
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
    from nbtrack.journal import list_journals

    project = Project(find_project_root(args.project or Path.cwd()))
    if not project.state_dir.is_dir():
        raise NotFound(f"no .nbtrack/ folder in {project.root}: nothing was tracked here")
    pending = [j.session for j in list_journals(project.journal_dir)]
    if not pending:  # answered without opening the store (MLflow's import alone takes seconds)
        print(f"nothing to deliver: every journal of {project.root} is delivered")
        return 0
    from rich.console import Console
    from rich.markup import escape

    from nbtrack.delivery.daemon import ALREADY_RUNNING, pid_path, serve
    from nbtrack.delivery.launcher import daemon_alive
    from nbtrack.delivery.recovery import process_alive
    from nbtrack.journal.state import RunIndex, Status

    console = Console()
    with console.status(f"delivering {len(pending)} journal(s)…"):
        busy = serve(project, idle_exit=0, once=True) == ALREADY_RUNNING
    left = {j.session: j for j in list_journals(project.journal_dir)}
    done_dir = project.journal_dir / "done"
    runs = 0
    for session in pending:
        runs += len(RunIndex(done_dir if session not in left else project.journal_dir, session))
    summary = f"delivered {len(pending) - len(left)} of {len(pending)} journal(s), {runs} run(s)"
    console.print(summary + (f"; {len(left)} still open:" if left else ""))
    daemon = daemon_alive(project)
    for session in pending:
        if session in left:
            status = Status(project.journal_dir, session)
            header = left[session].header() or {}
            lines = status.problems(retrying=daemon)
            if process_alive(header):
                lines.insert(0, f"its kernel is still running (pid {header.get('pid')})")
            elif not lines:
                lines = ["not delivered yet (nothing failed): run `nbtrack recover` again"]
        else:
            lines = Status(done_dir, session).problems()
        for line in lines:
            console.print(f"  {session}: {escape(line)}", soft_wrap=True)
    if left and daemon:
        pid = pid_path(project).read_text().strip() if pid_path(project).exists() else "?"
        console.print(f"the delivery process (pid {pid}) {'holds these journals and ' if busy else ''}"
                      "keeps delivering them", soft_wrap=True)
    elif left:
        console.print("nothing retries them now: a kernel of this project, or `nbtrack recover` again, "
                      "delivers them once the store is reachable", soft_wrap=True)
    return 0
