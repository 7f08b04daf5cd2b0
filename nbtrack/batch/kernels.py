"""A worker's kernels: the next job's kernel starts while the current job runs.

An IPython kernel takes a worker ~0.6-0.8 s to start (the new process imports
IPython, nbtrack ...) and ~0.3 s to shut down; an execution used to wait for
both. A worker now holds up to two jobs: while the first runs, the second's
kernel starts, and papermill gets it ready-made (``execute_notebook(km=...)``;
nbclient then neither starts nor shuts down a kernel it does not own). A
finished job's kernel is asked to shut down and reaped later, between cells
of the next job; it is killed if it has not exited ``SHUTDOWN_WAIT_S`` later.

Each kernel's environment is the worker's, as it was when the worker started,
plus its own job's variables, handed to the launch itself: ``os.environ`` is
never changed, so a kernel started during job k never sees job k's variables.
Its working directory is its job's ``cwd`` (papermill's ``chdir`` for the
running job does not leak into the next kernel).

Kernels talk over IPC (Unix sockets in a folder only this user can enter), the
transport ipykernel asks for: over TCP every kernel prints "Kernel is running
over TCP without encryption" into the user's terminal. A socket path too long
for the system falls back to TCP.

Everything here runs on the worker's main thread, on the event loop nbclient
uses there (``jupyter_core.utils.run_sync``): the look-ahead is awaited from
nbclient's ``on_cell_start`` hook, or run between jobs.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import logging
import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from traitlets import default

from nbtrack.batch.jobs import Job

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 5.0  # jupyter_client's own wait before it kills a kernel
LOAD_EXTENSION_ARG = "--IPKernelApp.extra_extensions=nbtrack"
#: What nbclient adds for a kernel it starts itself: no SQLite history shared by parallel kernels.
HISTORY_ARG = "--HistoryManager.hist_file=:memory:"


#: Longest Unix socket path the system takes (sun_path is 108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100 if sys.platform.startswith("linux") else 96
_socket_folder: str | None = None
_socket_numbers = itertools.count(1)


def _ipc_base() -> str | None:
    """A new socket base path in this process's private folder, or None when it would be too long."""
    global _socket_folder
    if sys.platform == "win32":
        return None
    if _socket_folder is None:
        _socket_folder = tempfile.mkdtemp(prefix="nbtrack-kernels-")  # mode 0700
        atexit.register(shutil.rmtree, _socket_folder, ignore_errors=True)
    base = os.path.join(_socket_folder, f"k{os.getpid()}-{next(_socket_numbers)}")
    return base if len(base) + 3 <= _MAX_SOCKET_PATH else None  # sockets are <base>-<1..5>


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager on IPC sockets (see the module's docstring); papermill and nbclient
    take it as ``kernel_manager_class``."""

    @default("transport")
    def _ipc_transport(self) -> str:
        return "ipc" if self._ipc_path is not None else "tcp"

    @default("ip")
    def _ipc_ip(self) -> str:
        return self._ipc_path if self.transport == "ipc" and self._ipc_path else "127.0.0.1"

    @property
    def _ipc_path(self) -> str | None:
        if not hasattr(self, "_ipc_base"):
            self._ipc_base = _ipc_base()
        return self._ipc_base


class _Manager(IpcKernelManager):
    """Remembers the clients papermill makes, to close their channels when the kernel ends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clients: list[Any] = []

    def client(self, **kwargs: Any) -> Any:
        kc = super().client(**kwargs)
        self.clients.append(kc)
        return kc


@dataclass
class _Start:
    """A job's kernel, started; or why it could not be (raised when the job runs)."""

    km: _Manager | None = None
    error: Exception | None = None


def _kernel_name(job: Job, base_cwd: str) -> str | None:
    if job.kernel_name:
        return job.kernel_name
    with open(os.path.join(base_cwd, job.notebook), encoding="utf-8") as f:
        name = json.load(f).get("metadata", {}).get("kernelspec", {}).get("name")
    return name if isinstance(name, str) and name else None


class Kernels:
    """Jobs from ``jobs`` (``None`` ends them), each with a kernel started ahead when possible."""

    def __init__(self, jobs: queue.Queue[Job | None]) -> None:
        self._jobs = jobs
        self._env = dict(os.environ)
        self._cwd = os.getcwd()
        self._ahead: tuple[Job, _Start] | None = None  # the next job
        self._current: tuple[Job, _Start] | None = None  # the job next_job() returned
        self._no_more = False
        self._ending: list[tuple[_Manager, float]] = []  # kernels asked to shut down, deadline

    def next_job(self) -> Job | None:
        """The next job (waiting for it); None once the stream of jobs has ended."""
        if self._current is not None and self._current[1].km is not None:
            run_sync(self._retire)(self._current[1].km)  # its job never asked for it
        self._current = None
        while self._ahead is None and not self._no_more:
            try:
                job = self._jobs.get(timeout=0.1)
            except queue.Empty:
                run_sync(self._reap)()
                continue
            if job is None:
                self._no_more = True
            else:
                self._ahead = (job, _Start())  # its kernel starts with the job
        self._current, self._ahead = self._ahead, None
        return self._current[0] if self._current else None

    def start_first(self, wait: float) -> None:
        """Wait up to ``wait`` s for the first job and start its kernel."""
        if self._ahead is not None or self._no_more:
            return
        try:
            job = self._jobs.get(timeout=wait)
        except queue.Empty:
            return
        if job is None:
            self._no_more = True
        else:
            self._ahead = (job, run_sync(self._start)(job))

    async def look_ahead(self) -> None:
        """Start the kernel of the job after the current one, if it has arrived; reap ended ones."""
        await self._reap()
        if self._ahead is not None or self._no_more:
            return
        try:
            job = self._jobs.get_nowait()
        except queue.Empty:
            return
        if job is None:
            self._no_more = True
            return
        self._ahead = (job, await self._start(job))

    @contextmanager
    def kernel(self, job: Job) -> Iterator[_Manager | None]:
        """The running kernel for ``job`` (None: papermill finds no kernel name and says so).

        Raises what stopped the kernel from starting. The kernel is shut down afterwards.
        """
        start = _Start()
        if self._current is not None and self._current[0] is job:
            start = self._current[1]
            self._current = None
        if start.km is None and start.error is None:
            start = run_sync(self._start)(job)
        if start.error is not None:
            raise start.error
        try:
            yield start.km
        finally:
            if start.km is not None:
                run_sync(self._retire)(start.km)

    def close(self) -> None:
        """Shut down every kernel still here (waiting for them, killing those that linger)."""
        run_sync(self._close)()

    async def _start(self, job: Job) -> _Start:
        try:
            name = _kernel_name(job, self._cwd)
            if name is None:
                return _Start()
            km = _Manager(kernel_name=name)
            args = [LOAD_EXTENSION_ARG] if job.load_extension else []
            if km.ipykernel:
                args.append(HISTORY_ARG)
            cwd = os.path.join(self._cwd, job.cwd) if job.cwd else self._cwd
            await km.start_kernel(extra_arguments=args, env={**self._env, **job.env}, cwd=cwd)
        except Exception as exc:  # reported as the job's failure, as papermill would
            return _Start(error=exc)
        return _Start(km=km)

    async def _retire(self, km: _Manager) -> None:
        for kc in km.clients:
            await ensure_async(kc.stop_channels())
        km.clients.clear()
        try:
            if await km.is_alive():
                await km.request_shutdown()
        except Exception as exc:
            log.warning("could not ask kernel %s to shut down: %s", km.kernel_id, exc)
        self._ending.append((km, time.monotonic() + SHUTDOWN_WAIT_S))
        await self._reap()

    async def _reap(self) -> None:
        now = time.monotonic()
        still: list[tuple[_Manager, float]] = []
        for km, deadline in self._ending:
            try:
                if await km.is_alive():
                    if now < deadline:
                        still.append((km, deadline))
                        continue
                    await km.shutdown_kernel(now=True)  # kills it, cleans up
                else:
                    await km.cleanup_resources()
            except Exception as exc:
                log.warning("could not clean up kernel %s: %s", km.kernel_id, exc)
        self._ending = still

    async def _close(self) -> None:
        for held in (self._current, self._ahead):
            if held is not None and held[1].km is not None:
                await self._retire(held[1].km)
        self._current = self._ahead = None
        while self._ending:
            await self._reap()
            if self._ending:
                await asyncio.sleep(0.05)
