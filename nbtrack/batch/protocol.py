"""The progress protocol of executions, typed once.

Two kinds of events travel while notebooks execute:

- **Worker events**, from a worker process (``python -m nbtrack.batch.worker``) to its
  executor, one JSON line each: ``start`` (a job's kernel runs its first cell), ``cell``
  (the cell being executed, 1-based, of ``cells``) and ``done`` (the job's :class:`Outcome`).
- **Progress events**, from a batch (a sweep, a re-run) to the ``progress`` callable its
  caller gave: counts of the whole batch, and what changed. The JupyterLab server keeps
  the latest one of a background re-run as the job's ``progress`` (``GET /nbtrack/api/jobs/ID``).

Both are plain JSON values, so they cross processes and HTTP unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal, TypedDict, cast

from nbtrack.batch.jobs import Outcome


class StartEvent(TypedDict):
    event: Literal["start"]
    index: int


class CellEvent(TypedDict):
    event: Literal["cell"]
    index: int
    cell: int  # 1-based
    cells: int


class DoneEvent(TypedDict):
    """The fields of :class:`~nbtrack.batch.jobs.Outcome`, and ``event``."""

    event: Literal["done"]
    index: int
    status: str
    error: str | None
    error_cell: int | None
    duration_s: float
    output: str | None
    kernel_ended: bool


WorkerEvent = StartEvent | CellEvent | DoneEvent
#: Who hears a worker's events (an executor's caller).
OnWorkerEvent = Callable[[WorkerEvent], None]


def done_event(outcome: Outcome) -> DoneEvent:
    """The ``done`` event of an outcome."""
    return DoneEvent(event="done", index=outcome.index, status=outcome.status, error=outcome.error,
                     error_cell=outcome.error_cell, duration_s=outcome.duration_s,
                     output=outcome.output, kernel_ended=outcome.kernel_ended)


def parse_worker_event(line: str) -> WorkerEvent | None:
    """A worker's line as its event; None for a line that is not one."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") not in ("start", "cell", "done"):
        return None
    if not isinstance(event.get("index"), int):
        return None
    return cast(WorkerEvent, event)  # a worker wrote it from one of the types above


State = Literal["running", "finished", "failed", "delivering", "done"]


class _Counts(TypedDict):
    state: State
    done: int  # finished executions
    failed: int  # failed or killed executions
    running: int
    total: int


class ProgressEvent(_Counts, total=False):
    """Counts of the whole batch, then what this event is about, where known."""

    index: int  # the execution (1-based)
    run_id: str  # its MLflow run
    cell: int  # the cell it is executing (1-based) ...
    cells: int  # ... of this many
    status: str  # how it ended (``finished``, ``failed``), or the batch's (``done``)
    error: str | None  # why it failed


#: The ``progress=`` callable of sweeps and re-runs.
ProgressCallback = Callable[[ProgressEvent], None]
