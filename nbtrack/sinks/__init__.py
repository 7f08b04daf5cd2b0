"""Sinks turn journal events into durable records: MLflow runs, Delta tables.

A sink receives events in journal order, in batches, and must be idempotent:
the same event delivered twice records nothing twice (journals are replayed
after a crash). A sink raises on failure; the delivery loop keeps the events
and retries later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from nbtrack.events import Event


class Sink(Protocol):
    name: str

    def deliver(self, events: list[Event], *, journal_dir: Path) -> None:
        """Record ``events`` (all from one journal, in order). ``journal_dir`` resolves blobs."""

    def close(self) -> None:
        """Flush and release resources; called once when delivery stops."""
