"""Reads journals incrementally from a byte offset, only whole lines; looks ahead for run starts."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from nbtrack.events import Event


@dataclass(frozen=True)
class JournalFile:
    path: Path

    @property
    def session(self) -> str:
        return self.path.name[: -len(".jsonl")]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def header(self) -> Event | None:
        """The ``session_start`` event (first line), if written yet."""
        for event, _ in read_events(self.path, 0, limit=1):
            return event
        return None


def list_journals(journal_dir: Path) -> list[JournalFile]:
    if not journal_dir.is_dir():
        return []
    return [JournalFile(p) for p in sorted(journal_dir.glob("*.jsonl"))]


def read_events(
    path: Path, offset: int = 0, *, limit: int | None = None
) -> Iterator[tuple[Event, int]]:
    """Yield ``(event, offset_after_it)`` for each complete line from ``offset``.

    A trailing partial line (a write in progress) is left for the next read; an
    unparsable complete line (disk corruption) is skipped rather than blocking
    delivery of everything after it.
    """
    count = 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            position = offset
            for raw in f:
                if not raw.endswith(b"\n"):
                    return
                position += len(raw)
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                yield event, position
                count += 1
                if limit is not None and count >= limit:
                    return
    except FileNotFoundError:
        return


def find_events(path: Path, type_: str, offset: int = 0) -> tuple[list[Event], int]:
    """The events of one type from ``offset``, and the offset after the last whole line.

    Only lines that mention the type are parsed and only matching events are kept,
    so delivery can look far ahead (a run's start after a million points) cheaply
    and in little memory.
    """
    needle = json.dumps(type_).encode()
    found: list[Event] = []
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                offset += len(raw)
                if needle not in raw:
                    continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if event.get("type") == type_:
                    found.append(event)
    except FileNotFoundError:
        pass
    return found, offset


def torn_tail(path: Path) -> bytes:
    """What follows the last newline: a line its writer never finished (empty if none).

    Only a dead writer leaves one for good: the kernel was killed mid-write.
    """
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            position = end
            while position > 0:
                step = min(65536, position)
                position -= step
                f.seek(position)
                newline = f.read(step).rfind(b"\n")
                if newline >= 0:
                    position += newline + 1
                    break
            f.seek(position)
            return f.read(end - position)
    except FileNotFoundError:
        return b""


def last_event(path: Path) -> Event | None:
    """The last whole event of a journal (read from its end: no scan)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    window = 4096
    while True:
        last = None
        start = max(0, size - window)
        for event, _ in read_events(path, start):
            last = event
        if last is not None or start == 0:
            return last
        window *= 16


class RunStarts:
    """The ``run_start`` events of one journal, found by a streaming scan that holds nothing else.

    A run's start can come any number of events after its first events; delivery asks
    for it here instead of holding those events. The scan resumes where it stopped, so
    a journal is read ahead once however often delivery asks; a start is dropped once
    ``index`` (run key -> run id) knows its run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._found: dict[str, Event] = {}

    def find(self, runs: Collection[str], index: Mapping[str, str]) -> dict[str, Event]:
        """The start events of ``runs`` found anywhere in the journal so far."""
        if any(run not in self._found for run in runs):
            starts, self._offset = find_events(self.path, "run_start", self._offset)
            self._found.update((e["run"], e) for e in starts if e.get("run") and e["run"] not in index)
        for run in [r for r in self._found if r in index]:
            del self._found[run]
        return {run: self._found[run] for run in runs if run in self._found}
