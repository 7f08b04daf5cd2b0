"""Drains journals into the sinks: batched, resumable, and recovering dead kernels' runs.

The same loop runs in the per-project delivery process and, where that cannot
start, in a thread of the kernel. Each sink has its own cursor per journal, so
a sink that is down (a tracking server, an unwritable lake) keeps its backlog
without holding the others back, and catches up when it is back.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from typing import Any

from nbtrack.delivery.state import Cursor, RunIndex, Status
from nbtrack.events import Event
from nbtrack.journal import JournalFile, list_journals, read_events
from nbtrack.project import Project
from nbtrack.sinks import RetrySoon, Sink

BATCH = 20000  # events per sink call (MLflow chunks them by its own limits)
_BACKOFF_MAX = 30.0


def make_sinks(project: Project) -> list[Sink]:
    """MLflow first (it assigns run ids), then the lake when it is enabled and installed."""
    from nbtrack.sinks.mlflow import MlflowSink
    from nbtrack.store import resolve

    sinks: list[Sink] = [MlflowSink(project)]
    try:
        from nbtrack.sinks.delta import make_sink
    except ImportError:
        return sinks
    delta = make_sink(resolve(project=project))
    if delta is not None:
        sinks.append(delta)
    return sinks


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


class Deliverer:
    def __init__(self, project: Project, *, sessions: set[str] | None = None,
                 sinks: list[Sink] | None = None) -> None:
        self.project = project
        self.only = sessions  # a kernel thread delivers only its own journal
        self.sinks = sinks if sinks is not None else make_sinks(project)
        self._retry_at: dict[tuple[str, str], tuple[float, float]] = {}
        self._headers: dict[str, Event | None] = {}

    # -- one pass ----------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Deliver whatever is new in every journal; True if anything moved."""
        moved = False
        for journal in list_journals(self.project.journal_dir):
            if self.only is not None and journal.session not in self.only:
                continue
            header = self._header(journal)
            alive = process_alive(header)
            if self.only is None and alive and (header or {}).get("delivery") == "thread":
                continue  # its kernel delivers it itself
            moved |= self.deliver_journal(journal)
            if not alive and self.only is None:
                moved |= self._recover(journal)
            self._archive_if_done(journal)
        return moved

    def live_sessions(self) -> int:
        return sum(process_alive(self._header(j)) for j in list_journals(self.project.journal_dir))

    def _header(self, journal: JournalFile) -> Event | None:
        if journal.session not in self._headers or self._headers[journal.session] is None:
            self._headers[journal.session] = journal.header()
        return self._headers[journal.session]

    def deliver_journal(self, journal: JournalFile) -> bool:
        index = RunIndex(journal.folder, journal.session)
        status = Status(journal.folder, journal.session)
        moved = False
        for sink in self.sinks:
            key = (journal.session, sink.name)
            retry_at, delay = self._retry_at.get(key, (0.0, 0.0))
            if time.monotonic() < retry_at:
                continue
            cursor = Cursor(journal.folder, journal.session, sink.name)
            offset, _ = cursor.load()
            events: list[Event] = []
            ends: list[int] = []
            for event, end in read_events(journal.path, offset, limit=BATCH):
                events.append(event)
                ends.append(end)
            batch = deliverable(events, index, first=sink is self.sinks[0])
            if not batch:
                continue
            try:
                sink.deliver(batch, journal_dir=journal.folder, run_ids=index)
            except RetrySoon:
                self._retry_at[key] = (time.monotonic() + 0.1, 0.0)
                continue
            except Exception as exc:  # noqa: BLE001 - keep the backlog, retry later
                delay = min(max(1.0, delay * 2), _BACKOFF_MAX)
                self._retry_at[key] = (time.monotonic() + delay, delay)
                status.update(sink.name, error=_describe(sink.name, exc))
                continue
            self._retry_at.pop(key, None)
            if not journal.path.exists():
                return moved  # another deliverer (nbtrack recover) finished and archived it meanwhile
            cursor.save(ends[len(batch) - 1], int(batch[-1]["seq"]))
            status.update(sink.name, seq=int(batch[-1]["seq"]), error=None)
            moved = True
        return moved

    # -- dead kernels --------------------------------------------------------------------------

    def _recover(self, journal: JournalFile) -> bool:
        """Close the runs of a kernel that died: append their run_end (KILLED) and session_end."""
        last: Event | None = None
        open_runs: dict[str, None] = {}
        started: set[str] = set()
        for event, _ in read_events(journal.path, 0):
            last = event
            run = event.get("run")
            if event.get("type") == "run_start":
                started.add(run)
            if run and event.get("type") != "run_end":
                open_runs[run] = None
            if event.get("type") == "run_end":
                open_runs.pop(run, None)
        if last is None or last.get("type") == "session_end":
            return False
        seq = int(last.get("seq", 0))
        lines = []
        header = self._header(journal) or {}
        for run in open_runs:
            if run not in started:  # died before it knew its notebook
                seq += 1
                lines.append(_synthetic(journal.session, seq, "run_start", **_fallback_start(
                    self.project, run, journal.session, header)))
            seq += 1
            lines.append(_synthetic(journal.session, seq, "run_end", run=run, status="KILLED",
                                    notebook=None, papermill_output=None, out_of_order=[],
                                    recovered=True))
        seq += 1
        lines.append(_synthetic(journal.session, seq, "session_end", recovered=True))
        with open(journal.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(line) + "\n" for line in lines))
        return True

    def _archive_if_done(self, journal: JournalFile) -> None:
        size = journal.path.stat().st_size if journal.path.exists() else 0
        for sink in self.sinks:
            offset, _ = Cursor(journal.folder, journal.session, sink.name).load()
            if offset < size:
                return
        last = None
        for event, _ in read_events(journal.path, max(0, size - 4096)):
            last = event
        if last is None or last.get("type") != "session_end":
            return
        done = journal.folder / "done"
        done.mkdir(exist_ok=True)
        for path in journal.folder.glob(f"{journal.session}.*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)  # blobs: now in the artifact store
            else:
                os.replace(path, done / path.name)
        self._headers.pop(journal.session, None)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                pass


def deliverable(events: list[Event], index: RunIndex, *, first: bool) -> list[Event]:
    """The prefix of ``events`` a sink can take now.

    The first sink (MLflow) can take a run's events once the batch holds its
    ``run_start`` (a recovered run's start comes after its events, so the sink
    handles starts first); the other sinks once MLflow has given the run an id.
    """
    startable = {e.get("run") for e in events if e.get("type") == "run_start"} if first else set()
    for i, event in enumerate(events):
        run = event.get("run")
        if run is None or run in index or run in startable:
            continue
        return events[:i]
    return events


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


def _describe(sink: str, exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{sink} delivery failing: {text[:300]} (events are kept in the journal and retried)"
