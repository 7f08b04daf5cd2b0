"""Reads journals incrementally from a byte offset, only whole lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
