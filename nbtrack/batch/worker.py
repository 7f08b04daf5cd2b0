"""A process that executes jobs with papermill, one at a time: ``python -m nbtrack.batch.worker``.

Why a process of its own: a kernel learns which MLflow run it belongs to only
from its environment (``NBTRACK_RUN_ID`` ...), given to it at launch. Workers
are long-lived (papermill's import costs ~0.5-2 s, paid once per worker, not
per execution), and start the next job's kernel while the current job runs
(``nbtrack.batch.kernels``), each with its own job's environment.

Protocol: one ``Job`` as JSON per line on stdin, read as it comes (a thread
queues them, so the next job is known early); JSON events on stdout
(``start``, ``cell``, ``done`` with the ``Outcome``: ``nbtrack.batch.protocol``). Everything else the
process prints goes to stderr, so a chatty library cannot corrupt the stream.

A job's ``timeout`` covers the whole execution: when it passes, the job's kernel
is interrupted (like Jupyter's stop button, so the notebook records the
interrupted cell and the kernel still ends its run), and killed if it has not
stopped 10 s later. Other kernels of the worker (the next job's) are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from nbtrack.batch.jobs import FAILED, FINISHED, KILLED, Job, Outcome
from nbtrack.batch.protocol import OnWorkerEvent, WorkerEvent, done_event

if TYPE_CHECKING:
    from nbtrack.batch.kernels import Kernels

KILL_GRACE_S = 10.0
FIRST_JOB_WAIT_S = 1.0  # for the first job, before importing papermill


class _Watchdog:
    """Interrupts, then kills, one job's kernel (by pid) when the job overstays its timeout."""

    def __init__(self, timeout: float | None, pid: int | None) -> None:
        self.fired = False
        self.killed = False
        self._pid = pid
        self._timers: list[threading.Timer] = []
        if timeout and pid:
            self._timers = [
                threading.Timer(timeout, self._signal, (signal.SIGINT,)),
                threading.Timer(timeout + KILL_GRACE_S, self._signal, (signal.SIGKILL,)),
            ]
            for timer in self._timers:
                timer.daemon = True
                timer.start()

    def _signal(self, signum: int) -> None:
        # The kernel only: its own children may include nbtrack's detached delivery
        # process, which must outlive this execution.
        assert self._pid is not None
        self.fired = True
        self.killed = self.killed or signum == signal.SIGKILL
        try:
            os.kill(self._pid, signum)
        except OSError:
            pass

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


def _count_cells(path: str, has_params: bool) -> int:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    return len(nb.cells) + (1 if has_params and not injected else 0)


def run_job(job: Job, emit: OnWorkerEvent, kernels: Kernels) -> Outcome:
    """Execute one job with papermill in this process; never raises for a notebook's failure.

    Its kernel comes from ``kernels`` (started ahead if it could be); meanwhile, at
    every cell start, ``kernels`` may start the kernel of the job after it.
    """
    import papermill
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    started = time.monotonic()
    emit({"event": "start", "index": job.index})
    outcome = Outcome(index=job.index, status=FINISHED, output=job.output)
    try:
        cells = _count_cells(job.notebook, bool(job.params))
    except Exception as exc:
        outcome.status, outcome.error = FAILED, f"cannot read notebook: {exc}"
        return outcome

    async def on_cell_start(cell: Any, cell_index: int) -> None:
        emit({"event": "cell", "index": job.index, "cell": cell_index + 1, "cells": cells})
        await kernels.look_ahead()

    os.makedirs(os.path.dirname(job.output) or ".", exist_ok=True)
    watchdog = _Watchdog(None, None)
    try:
        with kernels.kernel(job) as km:
            watchdog = _Watchdog(job.timeout, getattr(km.provisioner, "pid", None) if km else None)
            try:
                run_sync(kernels.look_ahead)()
                papermill.execute_notebook(
                    job.notebook,
                    job.output,
                    parameters=job.params or None,
                    kernel_name=job.kernel_name,
                    progress_bar=False,
                    cwd=job.cwd,
                    km=km,
                    on_cell_start=on_cell_start,
                )
            finally:
                watchdog.cancel()  # before the kernel is shut down
    except PapermillExecutionError as exc:
        outcome.status = FAILED
        outcome.error = f"{exc.ename}: {exc.evalue}"
        outcome.error_cell = exc.exec_count
    except DeadKernelError:
        outcome.status, outcome.error, outcome.kernel_ended = FAILED, "kernel died", False
    except KeyboardInterrupt:
        outcome.status, outcome.error = KILLED, "interrupted"
        raise
    except Exception as exc:  # papermill or kernel start-up problems: report, go on
        outcome.status = FAILED
        outcome.error = f"{type(exc).__name__}: {exc}".strip()
    finally:
        watchdog.cancel()
        outcome.duration_s = round(time.monotonic() - started, 3)
    if watchdog.fired:
        outcome.status = FAILED
        outcome.kernel_ended = outcome.kernel_ended and not watchdog.killed
        outcome.error = f"timed out after {job.timeout:g} s" + (
            f" (interrupted in cell In [{outcome.error_cell}])" if outcome.error_cell else ""
        )
    return outcome


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for events; send fd 1 (prints, library chatter) to stderr."""
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return stream


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    out = _protocol_stream()
    # jsonschema (under nbformat) builds an RFC 3987 grammar at import when rfc3987_syntax is
    # installed: ~0.8 s of CPU per worker, for an "iri" format no notebook schema uses.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from nbtrack.batch.kernels import Kernels

    def emit(event: WorkerEvent) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    jobs: queue.Queue[Job | None] = queue.Queue()
    threading.Thread(target=_read_jobs, args=(sys.stdin, jobs), daemon=True).start()
    kernels = Kernels(jobs)
    try:
        # The first job usually comes with the worker: its kernel starts while papermill's
        # import is paid (both ~1 s), and while the sweep sets up its runs.
        kernels.start_first(wait=FIRST_JOB_WAIT_S)
        import papermill  # noqa: F401

        while (job := kernels.next_job()) is not None:
            outcome = run_job(job, emit, kernels)
            emit(done_event(outcome))
    finally:
        kernels.close()
    return 0


def _read_jobs(stream: IO[str], jobs: queue.Queue[Job | None]) -> None:
    try:
        for line in stream:
            if line.strip():
                jobs.put(Job.from_json(line))
    finally:
        jobs.put(None)


if __name__ == "__main__":
    sys.exit(main())
