"""Background jobs of the server (re-runs): started by a POST, polled by ``GET /jobs/<id>``.

A job runs in a daemon thread, at most ``workers`` at a time (the others wait
in ``queued``); the server never waits for one at exit. Its function receives
a ``progress`` callable and its latest report (a
:class:`~nbtrack.batch.protocol.ProgressEvent`) is what the panel shows. The
registry keeps the last ``keep`` finished jobs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nbtrack.errors import NbtrackError, NotFound

if TYPE_CHECKING:
    from nbtrack.batch.protocol import ProgressCallback, ProgressEvent

JobState = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    """One background task and what the panel needs to show about it."""

    id: str
    kind: str
    target: str
    state: JobState = "queued"
    progress: ProgressEvent | None = None  # the latest
    result: Any = None
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "state": self.state,
            "progress": dict(self.progress or {}),
            "result": self.result,
            "message": self.message,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class JobRegistry:
    """Starts jobs in daemon threads, bounded by a semaphore, and keeps their state."""

    def __init__(self, workers: int = 2, keep: int = 200) -> None:
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(
        self,
        kind: str,
        target: str,
        fn: Callable[[ProgressCallback], Any],
        *,
        describe_error: Callable[[BaseException], str] | None = None,
    ) -> Job:
        """Start ``fn(progress)`` in the background; its return value becomes ``job.result``."""
        job = Job(id=uuid.uuid4().hex, kind=kind, target=target)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        thread = threading.Thread(
            target=self._run, args=(job, fn, describe_error), name=f"nbtrack-{kind}-{job.id[:8]}",
            daemon=True,
        )
        thread.start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (jobs are kept in memory until the server restarts)")
        return job

    def _run(
        self,
        job: Job,
        fn: Callable[[ProgressCallback], Any],
        describe_error: Callable[[BaseException], str] | None,
    ) -> None:
        def progress(report: ProgressEvent) -> None:
            job.progress = report.copy()

        with self._slots:
            job.state = "running"
            job.started = time.time()
            try:
                job.result = fn(progress)
            except Exception as exc:  # a failed job is reported to the panel, never raised
                job.message = describe_error(exc) if describe_error else _describe(exc)
                job.state = "failed"
            else:
                job.state = "done"
            finally:
                job.finished = time.time()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished is not None]
        for job_id in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job_id]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, NbtrackError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
