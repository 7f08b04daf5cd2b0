"""Appends events to the session's journal before the cell returns.

Each event is one ``os.write`` of a full line on an ``O_APPEND`` file, so it is
in the operating system's hands (and survives the kernel being killed) as soon
as :meth:`JournalWriter.append` returns. ``fsync=True`` also survives a power
cut, at about a millisecond per event.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbtrack.events import Event, event_id


class JournalWriter:
    """Single writer of one session's journal (thread-safe within the kernel)."""

    def __init__(self, journal_dir: Path, session: str, *, fsync: bool = False) -> None:
        self.journal_dir = Path(journal_dir)
        self.session = session
        self.fsync = fsync
        self.path = self.journal_dir / f"{session}.jsonl"
        self.blob_dir = self.journal_dir / f"{session}.blobs"
        self._lock = threading.Lock()
        self._seq = 0
        self._held: list[bytes] | None = None  # lines of an open batch() or hold()
        self._holding = False
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @property
    def seq(self) -> int:
        """Sequence number of the last event written."""
        return self._seq

    def append(self, type_: str, run: str | None = None, **payload: Any) -> Event:
        with self._lock:
            self._seq += 1
            event: Event = {
                "id": event_id(self.session, self._seq),
                "seq": self._seq,
                "session": self.session,
                "t": time.time(),
                "type": type_,
            }
            if run is not None:
                event["run"] = run
            event.update(payload)
            line = (json.dumps(event, default=str, separators=(",", ":")) + "\n").encode("utf-8")
            if self._held is not None:
                self._held.append(line)
            else:
                self._write(line)
            return event

    def hold(self) -> None:
        """Keep appended events in memory until :meth:`release`: a hot loop's points cost one write
        per many, not one each. Whoever holds releases before its cell returns (and at least twice a
        second), so what was captured is on disk by then."""
        with self._lock:
            if self._held is None:
                self._held = []
                self._holding = True

    def release(self) -> None:
        """Write what :meth:`hold` kept (one ``os.write``)."""
        with self._lock:
            if not self._holding:
                return
            self._holding = False
            held, self._held = self._held or [], None
            if held:
                self._write(b"".join(held))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write the events appended inside as one ``os.write`` (a cell's events: one syscall)."""
        with self._lock:
            outer = self._held is not None
            if not outer:
                self._held = []
        try:
            yield
        finally:
            if not outer:
                with self._lock:
                    held, self._held = self._held or [], None
                    if held:
                        self._write(b"".join(held))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)

    def write_blob(self, name: str, data: bytes | Sequence[bytes | bytearray | memoryview]) -> str:
        """Store a file beside the journal; returns its path relative to the journal folder.

        ``data`` may be several parts written one after the other (a model snapshot's
        buffers, never joined into one copy). The file appears whole or not at all.
        """
        target = self.blob_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as f:
            for part in [data] if isinstance(data, bytes) else data:
                f.write(part)
        os.replace(tmp, target)
        return self.blob_path(name)

    def blob_path(self, name: str) -> str:
        """Where blob ``name`` is (or will be), relative to the journal folder."""
        return f"{self.blob_dir.name}/{name}"

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
