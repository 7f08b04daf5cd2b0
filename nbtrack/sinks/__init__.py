"""Sinks turn journal events into durable records: MLflow runs, Delta tables.

A sink receives events in journal order, in batches, and must be idempotent:
the same event delivered twice records nothing twice (journals are replayed
after a crash). A sink raises on failure; the delivery loop keeps its cursor
where it was and retries later.

The MLflow sink runs first and assigns every nbtrack run key an MLflow run id;
the other sinks get that mapping (``run_ids``) and identify runs by the MLflow
run id, so every surface shows one id per run. An event whose run has no MLflow
id yet is held back by the delivery loop until it has one.

A run's ``run_start`` can come many events after the run's first events. The
first sink therefore also gets, at the head of a batch, the starts (found
further on in the journal) of runs in the batch: it starts runs before taking
other events, and a ``run_start`` never counts as delivered (no exactly-once
mark), since it may be out of journal order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from nbtrack.events import Event


class RetrySoon(Exception):  # noqa: N818 - a signal, not an error
    """A sink waits for something that appears shortly (a run id a sweep is creating):
    the delivery loop tries again in a moment, without reporting a failure."""


class Sink(Protocol):
    name: str

    def deliver(
        self, events: list[Event], *, journal_dir: Path, run_ids: Mapping[str, str]
    ) -> None:
        """Record ``events`` (all from one journal, in order).

        ``journal_dir`` resolves artifact blobs (``event["file"]`` is relative to
        it); ``run_ids`` maps nbtrack run keys to MLflow run ids.
        """

    def close(self) -> None:
        """Flush and release resources; called once when delivery stops."""
