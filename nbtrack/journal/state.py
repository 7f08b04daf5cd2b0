"""Small files beside each journal that make delivery resumable and observable.

``<session>.<sink>.cursor``   byte offset and seq delivered to that sink
``<session>.runs.json``       nbtrack run key -> MLflow run id (and where it lives)
``<session>.status.json``     delivered seq per sink and the current errors, read by the kernel
Each is written by the single deliverer of that journal, atomically (write + rename).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, default=str))
    os.replace(tmp, path)


class Cursor:
    def __init__(self, journal_dir: Path, session: str, sink: str) -> None:
        self.path = journal_dir / f"{session}.{sink}.cursor"

    def load(self) -> tuple[int, int]:
        value = _read_json(self.path, {})
        return int(value.get("offset", 0)), int(value.get("seq", 0))

    def save(self, offset: int, seq: int) -> None:
        _write_json(self.path, {"offset": offset, "seq": seq})


class RunIndex(Mapping[str, str]):
    """Run key -> MLflow run id for one session; a ``Mapping`` so sinks can read it directly."""

    def __init__(self, journal_dir: Path, session: str) -> None:
        self.path = journal_dir / f"{session}.runs.json"
        self._data: dict[str, dict[str, Any]] = _read_json(self.path, {})

    def __getitem__(self, key: str) -> str:
        return str(self._data[key]["run_id"])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @classmethod
    def info_of(cls, journal_dir: Path, session: str, key: str) -> dict[str, Any]:
        return cls(journal_dir, session).info(key)

    def info(self, key: str) -> dict[str, Any]:
        return self._data.get(key, {})

    def set(self, key: str, run_id: str, **info: Any) -> None:
        self._data[key] = {"run_id": run_id, **info}
        _write_json(self.path, self._data)


class Status:
    """What the kernel shows: how far delivery got, and what is failing now.

    ``errors`` holds one entry per failing sink: its message, since when, how many
    attempts and when the next one is due (or when the delivery process gave up);
    ``notes`` holds things said once about the journal (a torn last line).
    """

    def __init__(self, journal_dir: Path, session: str) -> None:
        self.path = journal_dir / f"{session}.status.json"

    def read(self) -> dict[str, Any]:
        value: dict[str, Any] = _read_json(self.path, {"delivered": {}, "errors": {}})
        return value

    def update(self, sink: str, *, seq: int | None = None, error: str | None = None,
               retry_in: float | None = None) -> bool:
        """Record progress or a failure; True when ``error`` is a new message for this sink."""
        value = self.read()
        if seq is not None:
            value.setdefault("delivered", {})[sink] = seq
        errors = value.setdefault("errors", {})
        new = False
        if error is None:
            errors.pop(sink, None)
        else:
            entry = errors.get(sink, {})
            if entry.get("message") != error:
                entry, new = {"message": error, "since": time.time()}, True
            entry["attempts"] = int(entry.get("attempts", 0)) + 1
            entry.pop("gave_up", None)
            if retry_in is not None:
                entry["retry_at"] = time.time() + retry_in
            errors[sink] = entry
        value["updated"] = time.time()
        _write_json(self.path, value)
        return new

    def gave_up(self) -> None:
        """The delivery process stopped retrying; the backlog waits for a kernel or ``nbtrack recover``."""
        value = self.read()
        for entry in value.get("errors", {}).values():
            entry["gave_up"] = time.time()
            entry.pop("retry_at", None)
        value["updated"] = time.time()
        _write_json(self.path, value)

    def note(self, key: str, message: str) -> None:
        value = self.read()
        value.setdefault("notes", {})[key] = message
        _write_json(self.path, value)

    def problems(self, *, retrying: bool = True) -> list[str]:
        """One line per current problem, with its retry state, for ``%nbtrack status`` and the CLI.

        ``retrying``: a deliverer is running and will try again (else no "next in").
        """
        value = self.read()
        lines = []
        for entry in value.get("errors", {}).values():
            state = f"failing since {_clock(entry.get('since'))}, {entry.get('attempts', 1)} attempt(s)"
            if entry.get("gave_up"):
                state += (f"; the delivery process stopped retrying at {_clock(entry['gave_up'])}: "
                          "a new kernel or `nbtrack recover` delivers the backlog")
            elif retrying and entry.get("retry_at"):
                state += f", next in {max(0, round(float(entry['retry_at']) - time.time()))} s"
            lines.append(f"{entry['message']} ({state})")
        lines.extend(value.get("notes", {}).values())
        return lines


def _clock(t: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(t)))
    except (TypeError, ValueError):
        return "?"
