"""A process that executes jobs with papermill, one kernel at a time: ``python -m nbtrack.rerun.worker``.

Why a process of its own: a kernel learns which MLflow run it belongs to only
from its environment (``NBTRACK_RUN_ID`` ...), which it inherits from the
process that starts it. Threads share one ``os.environ``; a worker process
runs one kernel at a time, so setting the job's variables just before the
kernel starts is safe. Workers are long-lived (papermill's import costs
~0.5-2 s, paid once per worker, not per execution).

Protocol: one ``Job`` as JSON per line on stdin; JSON events on stdout
(``start``, ``cell``, ``done`` with the ``Outcome``). Everything else the
process prints goes to stderr, so a chatty library cannot corrupt the stream.

A job's ``timeout`` covers the whole execution: when it passes, the kernel is
interrupted (like Jupyter's stop button, so the notebook records the
interrupted cell and the kernel still ends its run), and killed if it has not
stopped 10 s later.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from nbtrack.rerun.jobs import FAILED, FINISHED, KILLED, Job, Outcome

Emit = Callable[[dict[str, Any]], None]
KILL_GRACE_S = 10.0
LOAD_EXTENSION_ARG = "--IPKernelApp.extra_extensions=nbtrack"


@contextmanager
def _environment(extra: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Watchdog:
    """Interrupts, then kills, this process's kernels when a job overstays its timeout."""

    def __init__(self, timeout: float | None) -> None:
        self.fired = False
        self.killed = False
        self._timers: list[threading.Timer] = []
        if timeout:
            self._timers = [
                threading.Timer(timeout, self._signal, (signal.SIGINT,)),
                threading.Timer(timeout + KILL_GRACE_S, self._signal, (signal.SIGKILL,)),
            ]
            for timer in self._timers:
                timer.daemon = True
                timer.start()

    def _signal(self, signum: int) -> None:
        import psutil

        self.fired = True
        self.killed = self.killed or signum == signal.SIGKILL
        # Direct children only: the kernel. Its own children may include nbtrack's
        # detached delivery process, which must outlive this execution.
        for child in psutil.Process().children(recursive=False):
            try:
                child.send_signal(signum)
            except psutil.Error:
                pass

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


def _count_cells(path: str, has_params: bool) -> int:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    return len(nb.cells) + (1 if has_params and not injected else 0)


def run_job(job: Job, emit: Emit) -> Outcome:
    """Execute one job with papermill in this process; never raises for a notebook's failure."""
    import papermill
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

    def on_cell_start(cell: Any, cell_index: int) -> None:
        emit({"event": "cell", "index": job.index, "cell": cell_index + 1, "cells": cells})

    os.makedirs(os.path.dirname(job.output) or ".", exist_ok=True)
    watchdog = _Watchdog(job.timeout)
    try:
        with _environment(job.env):
            papermill.execute_notebook(
                job.notebook,
                job.output,
                parameters=job.params or None,
                kernel_name=job.kernel_name,
                progress_bar=False,
                cwd=job.cwd,
                extra_arguments=[LOAD_EXTENSION_ARG] if job.load_extension else [],
                on_cell_start=on_cell_start,
            )
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
    import papermill  # noqa: F401 - paid now, while the sweep sets up its runs

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        outcome = run_job(Job.from_json(line), emit)
        emit({"event": "done", **json.loads(outcome.to_json())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
