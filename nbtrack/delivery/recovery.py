"""Kernels that died: is a journal's kernel still alive, and closing the runs of one that is not.

A killed kernel (``kill -9``, an out-of-memory kill, a machine that rebooted) leaves its
journal without ``run_end`` and ``session_end``, and maybe with a half-written last line.
The deliverer appends what the kernel could not write: each open run ends as KILLED (with
a fallback ``run_start`` for a run that died before it knew its notebook), then the
session ends, so every sink closes the runs as it would any other.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

from nbtrack.events import Event
from nbtrack.journal import JournalFile, last_event, read_events, torn_tail
from nbtrack.journal.state import Status
from nbtrack.project import Project

log = logging.getLogger(__name__)

_HEADER_GRACE = 60.0  # seconds a journal without a whole first line may still be being written


def process_alive(header: Event | None) -> bool:
    """Is the kernel that writes this journal still running? (Unknown hosts count as alive.)"""
    if not header:
        return False
    if header.get("host") != socket.gethostname():
        return True
    pid = header.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        import psutil

        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, not yet reaped by its parent
        started = header.get("pid_started")
        return started is None or abs(process.create_time() - float(started)) < 2.0
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied...
        return False


def close_dead_journal(journal: JournalFile, project: Project, header: Event | None) -> bool:
    """Close the runs of a kernel that died: append their run_end (KILLED) and session_end.

    ``header`` is the journal's first event (None while its first line is not whole). True
    when the journal changed.
    """
    torn = torn_tail(journal.path)
    if not torn:
        last_written = last_event(journal.path)
        if last_written is None or last_written.get("type") == "session_end":
            return False  # nothing written yet, or already closed: no scan
    elif header is None and time.time() - _mtime(journal.path) < _HEADER_GRACE:
        return False  # a kernel may be writing its first line right now
    else:
        _end_torn_line(journal, torn)
    last: Event | None = None
    open_runs: dict[str, None] = {}
    started: set[str] = set()
    for event, _ in read_events(journal.path, 0):
        last = event
        run = str(event.get("run") or "")
        if event.get("type") == "run_start":
            started.add(run)
        if run and event.get("type") != "run_end":
            open_runs[run] = None
        if event.get("type") == "run_end":
            open_runs.pop(run, None)
    if last is None and not torn:
        return False
    if last is not None and last.get("type") == "session_end":
        return bool(torn)
    seq = int((last or {}).get("seq", 0))
    lines = []
    for run in open_runs:
        if run not in started:  # died before it knew its notebook
            seq += 1
            lines.append(_synthetic(journal.session, seq, "run_start", **_fallback_start(
                project, run, journal.session, header or {})))
        seq += 1
        lines.append(_synthetic(journal.session, seq, "run_end", run=run, status="KILLED",
                                notebook=None, papermill_output=None, out_of_order=[],
                                recovered=True))
    seq += 1
    lines.append(_synthetic(journal.session, seq, "session_end", recovered=True))
    with open(journal.path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    return True


def _end_torn_line(journal: JournalFile, torn: bytes) -> None:
    """End the line a dying kernel left half-written, so it stays one line of its own.

    Without its newline, the events recovery appends would merge into it and be lost.
    A fragment that does not parse is skipped by every reader; say so once.
    """
    with open(journal.path, "ab") as f:
        f.write(b"\n")
    try:
        json.loads(torn)
        return  # only its newline was missing: a whole event, delivered as any other
    except ValueError:
        pass
    note = (f"the last line of journal {journal.session} ({len(torn)} bytes) was torn when its "
            "kernel died and was skipped; every event before it is delivered")
    log.warning("%s", note)
    Status(journal.folder, journal.session).note("torn", note)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _synthetic(session: str, seq: int, type_: str, **payload: Any) -> Event:
    return {"id": f"{session}-{seq}", "seq": seq, "session": session, "t": time.time(),
            "type": type_, **payload}


def _fallback_start(project: Project, run: str, session: str, header: Event) -> dict[str, Any]:
    from nbtrack import tags
    from nbtrack.store import resolve

    uri = header.get("tracking_uri") or resolve(project=project).tracking_uri  # the kernel's store
    return {"run": run, "experiment": "untitled", "notebook": None, "project": str(project.root),
            "tracking_uri": uri, "name": None, "mlflow_run_id": None,
            "parent_run_id": None, "origin": "recovered", "papermill_input": None,
            "papermill_output": None,
            "tags": {tags.RUN_KEY: run, tags.SESSION: session, tags.NOTEBOOK: "untitled"}}
