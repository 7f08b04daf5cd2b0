"""Drains journals into the sinks: batched, resumable, and recovering dead kernels' runs
(closed by :mod:`nbtrack.delivery.recovery`).

The same loop runs in the per-project delivery process and, where that cannot
start, in a thread of the kernel. Each sink has its own cursor per journal, so
a sink that is down (a tracking server, an unwritable lake) keeps its backlog
without holding the others back, and catches up when it is back.

A run's ``run_start`` may come any number of events after the run's first
events (capture writes it once it knows the notebook; recovery appends it at
the end). Batches stay bounded: a streaming look-ahead keeps only the run
starts it finds, and hands the first sink those of the runs in its batch.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from nbtrack.delivery.recovery import close_dead_journal, process_alive
from nbtrack.delivery.sampler import OpenRun, SystemSampler
from nbtrack.events import Event
from nbtrack.journal import JournalFile, RunStarts, last_event, list_journals, read_events
from nbtrack.journal.state import Cursor, RunIndex, Status
from nbtrack.project import Project
from nbtrack.sinks import RetrySoon, Sink

log = logging.getLogger(__name__)

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


class Deliverer:
    def __init__(self, project: Project, *, sessions: set[str] | None = None,
                 sinks: list[Sink] | None = None) -> None:
        self.project = project
        self.only = sessions  # a kernel thread delivers only its own journal
        self.sinks = sinks if sinks is not None else make_sinks(project)
        self._retry_at: dict[tuple[str, str], tuple[float, float]] = {}
        self._waiting: dict[tuple[str, str], tuple[int, str]] = {}  # runs known, the run it waits for
        self._headers: dict[str, Event | None] = {}
        self._starts: dict[str, RunStarts] = {}
        self._open: dict[str, OpenRun] = {}  # session -> its run whose start is delivered, not its end
        # Sampled from outside the kernel only: a kernel delivering from its own thread is not watched.
        self.sampler = SystemSampler(self.sinks, _sampling_interval(project) if sessions is None else 0.0)

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
            pid = (header or {}).get("pid")
            if isinstance(pid, int) and (header or {}).get("host") == socket.gethostname():
                self.sampler.watch(journal.session, pid if alive else None)  # an ended kernel is not sampled
            if not alive and self.only is None:
                moved |= close_dead_journal(journal, self.project, self._header(journal))
            self._archive_if_done(journal)
        self.sampler.write(self._open_runs())
        return moved

    def watch_kernels(self) -> None:
        """Have the sampler watch every live kernel of the project (their runs get ids later)."""
        for journal in list_journals(self.project.journal_dir):
            header = self._header(journal)
            pid = (header or {}).get("pid")
            if isinstance(pid, int) and (header or {}).get("host") == socket.gethostname() and process_alive(header):
                self.sampler.watch(journal.session, pid)

    def live_sessions(self) -> int:
        return sum(process_alive(self._header(j)) for j in list_journals(self.project.journal_dir))

    def _header(self, journal: JournalFile) -> Event | None:
        if journal.session not in self._headers or self._headers[journal.session] is None:
            self._headers[journal.session] = journal.header()
        return self._headers[journal.session]

    def backlog(self) -> list[str]:
        """Sessions whose journal holds events some sink has not taken yet."""
        waiting = []
        for journal in list_journals(self.project.journal_dir):
            if self.only is not None and journal.session not in self.only:
                continue
            size = _size(journal.path)
            if any(Cursor(journal.folder, journal.session, sink.name).load()[0] < size
                   for sink in self.sinks):
                waiting.append(journal.session)
        return waiting

    def give_up(self) -> None:
        """Stop retrying (the delivery process is leaving): say so where users look."""
        for session in self.backlog():
            Status(self.project.journal_dir, session).gave_up()

    def deliver_journal(self, journal: JournalFile) -> bool:
        index = RunIndex(journal.folder, journal.session)
        status = Status(journal.folder, journal.session)
        size = _size(journal.path)
        moved = False
        for sink in self.sinks:
            first = sink is self.sinks[0]
            key = (journal.session, sink.name)
            retry_at, delay = self._retry_at.get(key, (0.0, 0.0))
            if time.monotonic() < retry_at or self._still_waiting(journal, key, index):
                continue  # backing off, or waiting for a run's start / MLflow id that has not come yet
            cursor = Cursor(journal.folder, journal.session, sink.name)
            offset, _ = cursor.load()
            if offset >= size:
                continue
            events: list[Event] = []
            ends: list[int] = []
            for event, end in read_events(journal.path, offset, limit=BATCH):
                events.append(event)
                ends.append(end)
            if not events:
                continue  # only a line still being written
            ahead = self._starts_ahead(journal, events, index) if first else {}
            batch = deliverable(events, index, startable=ahead.keys() if first else (), first=first)
            if not batch:
                self._waiting[key] = (len(index), str(events[0].get("run")))
                continue
            try:
                sink.deliver([*ahead.values(), *batch], journal_dir=journal.folder, run_ids=index)
            except RetrySoon:
                self._retry_at[key] = (time.monotonic() + 0.1, 0.0)
                continue
            except Exception as exc:  # noqa: BLE001 - keep the backlog, retry later
                delay = min(max(1.0, delay * 2), _BACKOFF_MAX)
                self._retry_at[key] = (time.monotonic() + delay, delay)
                message = _describe(sink.name, exc)
                if status.update(sink.name, error=message, retry_in=delay):
                    log.warning("%s: %s", journal.session, message)
                continue
            self._retry_at.pop(key, None)
            if not journal.path.exists():
                return moved  # another deliverer (nbtrack recover) finished and archived it meanwhile
            cursor.save(ends[len(batch) - 1], int(batch[-1]["seq"]))
            status.update(sink.name, seq=int(batch[-1]["seq"]), error=None)
            if first:
                self._follow_runs(journal.session, batch)
            moved = True
        return moved

    def _follow_runs(self, session: str, events: list[Event]) -> None:
        """Which run of the session is open now (its system metrics are sampled)."""
        for event in events:
            if event.get("type") == "run_start":
                self._open[session] = OpenRun(str(event["run"]), float(event.get("t") or time.time()))
            elif event.get("type") == "run_end" and session in self._open and self._open[session].key == event["run"]:
                self.sampler.write(self._open_runs(), force=True)  # the run's last samples, first
                del self._open[session]

    def _starts_ahead(self, journal: JournalFile, events: list[Event], index: RunIndex) -> dict[str, Event]:
        """Start events, further on in the journal, of the runs this batch has events of but no start."""
        started = {e.get("run") for e in events if e.get("type") == "run_start"}
        unknown = {run for e in events if (run := e.get("run")) and run not in index and run not in started}
        if not unknown:
            return {}
        return self._run_starts(journal).find(unknown, index)

    def _run_starts(self, journal: JournalFile) -> RunStarts:
        return self._starts.setdefault(journal.session, RunStarts(journal.path))

    def _still_waiting(self, journal: JournalFile, key: tuple[str, str], index: RunIndex) -> bool:
        """Is the run a sink waits for still without a start (first sink) or an MLflow id?

        Checked by the look-ahead over new bytes only, so a kernel writing a million points
        before its run's start does not make delivery re-read its batch at every pass.
        """
        if key not in self._waiting:
            return False
        runs, run = self._waiting[key]
        if len(index) != runs:
            del self._waiting[key]
            return False
        if key[1] == self.sinks[0].name and self._run_starts(journal).find({run}, index):
            del self._waiting[key]
            return False
        return True

    def _archive_if_done(self, journal: JournalFile) -> None:
        size = journal.path.stat().st_size if journal.path.exists() else 0
        for sink in self.sinks:
            offset, _ = Cursor(journal.folder, journal.session, sink.name).load()
            if offset < size:
                return
        last = last_event(journal.path)
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
        self._starts.pop(journal.session, None)
        for sink in self.sinks:
            self._waiting.pop((journal.session, sink.name), None)
            self._retry_at.pop((journal.session, sink.name), None)

    def _open_runs(self) -> dict[str, tuple[OpenRun, RunIndex]]:
        return {session: (run, RunIndex(self.project.journal_dir, session)) for session, run in self._open.items()}

    def close(self) -> None:
        self.sampler.close(self._open_runs())
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                pass


def deliverable(events: list[Event], index: Mapping[str, str], *, startable: Collection[str] = (),
                first: bool) -> list[Event]:
    """The prefix of ``events`` a sink can take now.

    The first sink (MLflow) can take a run's events once it has the run's
    ``run_start``: in the batch, or found further on (``startable``); it handles
    starts before other events. The other sinks wait until MLflow has given the
    run an id.
    """
    if first:
        startable = {*startable, *(str(e.get("run")) for e in events if e.get("type") == "run_start")}
    else:
        startable = ()
    for i, event in enumerate(events):
        run = event.get("run")
        if run is None or run in index or run in startable:
            continue
        return events[:i]
    return events


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


_URL = re.compile(r"\bhttps?://[^/\s'\"()]+")
_UNREACHABLE = ("connection refused", "max retries exceeded", "failed to establish", "timed out",
                "name or service not known", "nodename nor servname", "temporary failure in name",
                "connection aborted", "connection reset", "remote end closed")


def _sampling_interval(project: Project) -> float:
    from nbtrack.config import project_config

    try:
        return float(project_config(project.root).system_metrics_interval)
    except Exception:  # noqa: BLE001 - a broken config must not stop delivery
        return 0.0


def _describe(sink: str, exc: BaseException) -> str:
    """One readable line for the kernel and ``%nbtrack status``, not an exception's repr."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    causes = [exc]
    while causes[-1].__cause__ is not None and len(causes) < 10:
        causes.append(causes[-1].__cause__)
    detail = " ".join(f"{type(c).__name__} {c}" for c in causes).lower()
    url = _URL.search(text)
    if url and (any(word in detail for word in _UNREACHABLE) or
                any(isinstance(c, ConnectionError) for c in causes)):
        return f"{sink} delivery failing: cannot reach {url.group(0)}; events are kept and retried"
    if len(text) > 200:
        text = text[:200].rsplit(" ", 1)[0] + " …"
    return f"{sink} delivery failing: {text}; events are kept and retried"
