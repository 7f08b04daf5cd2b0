"""The local backend: W worker processes, each running one job at a time.

Each worker holds up to ``JOBS_PER_WORKER`` jobs: the one running, and the
next, whose kernel the worker starts meanwhile (``nbtrack.batch.kernels``).
The price: at the end of a sweep, a job may wait behind a long one while
another worker is idle.

The caller gets every worker event (``start``, ``cell``, ``done``) on its own
thread, in order, so it can update a progress bar or MLflow without locks. A
worker that dies, or stops answering well past its job's timeout, is killed
(with its kernel), its running job recorded as FAILED, its queued job handed on,
and a fresh worker takes the next jobs: one bad execution never stops the others.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from nbtrack.batch.jobs import FAILED, Job, Outcome
from nbtrack.batch.protocol import OnWorkerEvent, WorkerEvent, done_event, parse_worker_event
from nbtrack.batch.worker import KILL_GRACE_S
from nbtrack.errors import UsageProblem

#: Extra seconds past a job's timeout before its worker is presumed stuck and killed.
BACKSTOP_S = KILL_GRACE_S + 20.0
#: The running job and the next one (whose kernel starts while the first runs).
JOBS_PER_WORKER = 2


class _Worker:
    """One ``python -m nbtrack.batch.worker`` process and the thread reading its events."""

    def __init__(self, slot: int, events: queue.Queue[tuple[int, WorkerEvent | None]],
                 log_path: Path | None) -> None:
        self.slot = slot
        self.jobs: list[Job] = []  # submitted, not done: the running one first
        self.deadline: float | None = None  # for the running job
        self.killed_kernels: list[int] = []  # pids (and their children's) that kill() ended
        self._log: IO[bytes] | None = open(log_path, "ab") if log_path else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nbtrack.batch.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log else subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._reader.start()

    def _read(self, events: queue.Queue[tuple[int, WorkerEvent | None]]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = parse_worker_event(line)
            if event is not None:
                events.put((self.slot, event))
        events.put((self.slot, None))  # EOF: the process is gone

    @property
    def job(self) -> Job | None:
        """The job running (or about to: the worker runs its jobs in order)."""
        return self.jobs[0] if self.jobs else None

    def submit(self, job: Job) -> None:
        assert self.process.stdin is not None
        self.jobs.append(job)
        if len(self.jobs) == 1:
            self._set_deadline()
        self.process.stdin.write(job.to_json() + "\n")
        self.process.stdin.flush()

    def started(self, index: int) -> None:
        if self.job is not None and self.job.index == index:
            self._set_deadline()

    def done(self, index: int) -> None:
        self.jobs = [job for job in self.jobs if job.index != index]
        self._set_deadline()  # the next job starts at once

    def _set_deadline(self) -> None:
        job = self.job
        self.deadline = (time.monotonic() + job.timeout + BACKSTOP_S
                         if job is not None and job.timeout else None)

    def finish(self) -> None:
        """No more jobs: the worker shuts its kernels down and exits (``close()`` waits for it)."""
        try:
            if self.process.stdin:
                self.process.stdin.close()
        except OSError:
            pass

    def close(self, wait: float = 10.0) -> None:
        try:
            self.finish()
            self.process.wait(timeout=wait)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        finally:
            if self._log:
                self._log.close()

    def kill(self) -> None:
        """Kill the worker and its kernels (a kernel runs in its own session), and wait for them."""
        import psutil

        try:
            tree = psutil.Process(self.process.pid)
            kernels = tree.children(recursive=False)
            self.killed_kernels = [p.pid for p in tree.children(recursive=True)]
        except psutil.Error:
            kernels = []
        for proc in [*kernels]:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(kernels, timeout=5)  # dead: a killed kernel writes nothing more
        self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class LocalExecutor:
    """Run jobs on ``workers`` local worker processes; returns one Outcome per job.

    ``start()`` may be called early: workers then import papermill while the
    caller is still setting up its runs.
    """

    def __init__(self, workers: int = 1, log_dir: Path | None = None) -> None:
        if workers < 1:
            raise UsageProblem(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.log_dir = log_dir
        self._events: queue.Queue[tuple[int, WorkerEvent | None]] = queue.Queue()
        self._pool: dict[int, _Worker] = {}
        self._finishing: list[_Worker] = []  # out of work, exiting
        self._next_slot = 0
        self._abort: BaseException | None = None
        #: Pids of the kernels killed with their workers (an interrupted or aborted run).
        self.killed_kernels: list[int] = []

    def start(self, count: int | None = None) -> LocalExecutor:
        """Spawn up to ``count`` (default W) workers now."""
        wanted = min(self.workers, count if count is not None else self.workers)
        while len(self._pool) < wanted:
            self._spawn()
        return self

    def _spawn(self) -> _Worker:
        log = None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = self.log_dir / f"worker-{self._next_slot}.log"
        worker = _Worker(self._next_slot, self._events, log)
        self._pool[self._next_slot] = worker
        self._next_slot += 1
        return worker

    def abort(self, error: BaseException) -> None:
        """From another thread: ``run()`` kills its workers and raises ``error``."""
        self._abort = error
        self._events.put((-1, None))

    def close(self) -> None:
        """Let idle workers exit (their stdin closes); kill any that will not."""
        for worker in [*self._finishing, *self._pool.values()]:
            worker.close()
        self._pool.clear()
        self._finishing.clear()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, jobs: Sequence[Job], on_event: OnWorkerEvent | None = None) -> list[Outcome]:
        """Execute ``jobs`` (W at a time, in order); ``on_event`` sees start/cell/done events."""
        notify = on_event or (lambda event: None)
        pending = list(reversed(jobs))  # pop() from the end takes jobs in order
        outcomes: dict[int, Outcome] = {}
        workers = self._pool
        self.start(len(jobs))

        def give_work(worker: _Worker) -> None:
            while pending and len(worker.jobs) < JOBS_PER_WORKER:
                worker.submit(pending.pop())

        def fail(worker: _Worker, error: str) -> None:
            job = worker.job
            assert job is not None
            outcome = Outcome(index=job.index, status=FAILED, error=error, output=job.output,
                              kernel_ended=False)
            outcomes[job.index] = outcome
            notify(done_event(outcome))
            pending.extend(reversed(worker.jobs[1:]))  # not started: the next worker takes them
            worker.jobs = []
            worker.close(wait=0)
            del workers[worker.slot]
            if pending:
                give_work(self._spawn())

        try:
            for _ in range(JOBS_PER_WORKER):  # one job each first, then one more each
                for worker in list(workers.values()):
                    if pending and len(worker.jobs) < JOBS_PER_WORKER:
                        worker.submit(pending.pop())
            while len(outcomes) < len(jobs):
                try:
                    slot, event = self._events.get(timeout=0.5)
                except queue.Empty:
                    now = time.monotonic()
                    for worker in list(workers.values()):
                        if worker.job and worker.deadline and now > worker.deadline:
                            worker.kill()
                            fail(worker, f"timed out after {worker.job.timeout:g} s (killed)")
                    continue
                if slot == -1 and self._abort is not None:
                    raise self._abort
                found = workers.get(slot)
                if found is None:
                    continue  # a killed worker's last words
                worker = found
                if event is None:
                    if worker.job is not None:
                        fail(worker, f"worker process died (exit code {worker.process.wait()})")
                    else:
                        worker.close(wait=0)
                        del workers[slot]
                        if pending and not workers:
                            give_work(self._spawn())
                    continue
                if event["event"] == "done":
                    outcomes[event["index"]] = Outcome.from_dict(event)
                    worker.done(event["index"])
                    notify(event)
                    give_work(worker)
                    if not worker.jobs:  # none left for it: it ends its kernels meanwhile
                        worker.finish()
                        self._finishing.append(workers.pop(slot))
                else:
                    if event["event"] == "start":
                        worker.started(event["index"])
                    notify(event)
        except BaseException:
            for worker in workers.values():
                worker.kill()
                self.killed_kernels += worker.killed_kernels
            workers.clear()
            raise
        return [outcomes[job.index] for job in jobs]
