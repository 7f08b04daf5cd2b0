"""System metrics of a run, sampled from outside the kernel: no thread in it, nothing to stop at exit.

While a kernel's run is open, the delivery process reads the kernel's process
every ``system_metrics_interval`` seconds, from a thread of its own (psutil; NVIDIA GPUs through
``nvidia-ml-py`` when it is installed) and logs ``system/kernel_cpu_percent``,
``system/kernel_memory_mb`` and, with a GPU, ``system/gpu_utilization_percent``
and ``system/gpu_memory_mb`` (MLflow's ``system/`` prefix), stepped by seconds
since the run began. Samples go straight to MLflow and, as a stream of their own
(``<session>.system``), into the lake's metrics; they are best effort: a sample
that cannot be written is dropped, never retried.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from nbtrack.events import Event
from nbtrack.journal.state import RunIndex
from nbtrack.sinks import Sink

log = logging.getLogger(__name__)

CPU = "system/kernel_cpu_percent"
MEMORY = "system/kernel_memory_mb"
GPU_UTILIZATION = "system/gpu_utilization_percent"
GPU_MEMORY = "system/gpu_memory_mb"
_MAX_WAITING = 3600  # samples kept for a run that has no id yet


@dataclass
class OpenRun:
    key: str
    started: float  # unix time of its run_start


class SystemSampler:
    """Samples each live kernel with an open run from a thread of the delivery process, so a long
    delivery never leaves a gap; the delivery loop writes the samples in batches."""

    WRITE_EVERY = 5.0  # seconds between writes of the buffered samples

    def __init__(self, sinks: list[Sink], interval: float) -> None:
        self.sinks = sinks
        self.interval = interval
        self._watched: dict[str, int] = {}  # session -> its kernel's pid
        self._samples: dict[str, list[tuple[float, dict[str, float]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a new kernel to watch: sample it now, not an interval later
        self._thread: threading.Thread | None = None
        self._processes: dict[int, Any] = {}
        self._gpu: Any = None  # pynvml, once initialised; False when there is none
        self._written = time.monotonic()

    def watch(self, session: str, pid: int | None) -> None:
        """Sample the session's kernel from now on (None: it has ended). Samples are taken before
        its run reaches the store, and written once the run has an id."""
        if self.interval <= 0:
            return
        with self._lock:
            if pid is None:
                self._watched.pop(session, None)
            elif self._watched.get(session) != pid:
                self._watched[session] = pid
                self._wake.set()
        if self._thread is None and self._watched:
            self._thread = threading.Thread(target=self._run, name="nbtrack-system-sampler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._lock:
                watched = dict(self._watched)
            for session, pid in watched.items():
                try:
                    values = self._sample(pid)
                except Exception as exc:  # noqa: BLE001 - the kernel has just gone, or psutil cannot see it
                    log.debug("no sample of pid %s: %s", pid, exc)
                    continue
                with self._lock:
                    self._samples.setdefault(session, []).append((time.time(), values))
            self._wake.wait(self.interval)

    def write(self, runs: dict[str, tuple[OpenRun, RunIndex]], *, force: bool = False) -> None:
        """Write the samples of sessions whose open run has an id (every few seconds, or now with
        ``force``); samples taken before that run began are dropped, the others wait for their run."""
        if not force and time.monotonic() - self._written < self.WRITE_EVERY:
            return
        self._written = time.monotonic()
        ready: list[tuple[str, OpenRun, RunIndex, list[tuple[float, dict[str, float]]]]] = []
        with self._lock:
            for session, points in list(self._samples.items()):
                if session in runs and runs[session][0].key in runs[session][1]:
                    run, index = runs[session]
                    ready.append((session, run, index, [p for p in points if p[0] >= run.started]))
                    del self._samples[session]
                elif session not in self._watched:
                    del self._samples[session]  # its kernel ended without a run
                else:
                    self._samples[session] = points[-_MAX_WAITING:]
        for session, run, index, points in ready:
            if points:
                self._write(session, run, index, points)

    def close(self, runs: dict[str, tuple[OpenRun, RunIndex]]) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1.0)
        self.write(runs, force=True)

    def _sample(self, pid: int) -> dict[str, float]:
        import psutil

        process = self._processes.get(pid)
        first = process is None
        if process is None:
            process = self._processes[pid] = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            raise ProcessLookupError(pid)  # ended, not yet reaped: nothing to measure
        values = {MEMORY: process.memory_info().rss / 2**20}
        cpu = process.cpu_percent(None)
        if not first:  # the first call only starts the measurement: its 0.0 says nothing
            values[CPU] = cpu
        values.update(self._gpu_sample(pid))
        return values

    def _gpu_sample(self, pid: int) -> dict[str, float]:
        if self._gpu is None:
            try:
                import pynvml  # nvidia-ml-py

                pynvml.nvmlInit()
                self._gpu = pynvml
            except Exception:  # noqa: BLE001 - no library, no driver, no GPU
                self._gpu = False
        if not self._gpu:
            return {}
        nvml = self._gpu
        memory, utilization = 0.0, []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            used = [p.usedGpuMemory or 0 for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == pid]
            if used:
                memory += sum(used) / 2**20
                utilization.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        if not utilization:
            return {}
        return {GPU_MEMORY: memory, GPU_UTILIZATION: sum(utilization) / len(utilization)}

    def _write(self, session: str, run: OpenRun, index: RunIndex,
               points: list[tuple[float, dict[str, float]]]) -> None:
        events: list[Event] = []
        for at, values in points:
            stamp = int(at * 1000)
            step = max(0, int(at - run.started))
            events.extend(
                {"id": f"{session}.system-{stamp}-{key}", "seq": stamp, "session": f"{session}.system", "t": at,
                 "type": "metric", "run": run.key, "key": key, "value": round(value, 3), "step": step,
                 "cell_id": None, "exec_count": None}
                for key, value in sorted(values.items()))
        for sink in self.sinks:
            try:
                if sink.name == "mlflow":
                    _log_to_mlflow(index, run.key, events)
                else:  # the lake: its own application-transaction stream, apart from the journal's
                    sink.deliver(events, journal_dir=index.path.parent, run_ids=index)
            except Exception as exc:  # noqa: BLE001 - best effort: a missed sample is not a lost event
                log.debug("system metrics of %s not written to %s: %s", session, sink.name, exc)


def _log_to_mlflow(index: RunIndex, key: str, events: list[Event]) -> None:
    """Directly, not through the sink: the run's journal mark (exactly-once) must not move."""
    from mlflow.entities import Metric

    from nbtrack.store import open_client

    info = index.info(key)
    client = open_client(info["tracking_uri"])
    metrics = [Metric(e["key"], float(e["value"]), int(e["t"] * 1000), int(e["step"])) for e in events]
    for start in range(0, len(metrics), 1000):  # MLflow's limit per batch
        client.log_batch(info["run_id"], metrics=metrics[start:start + 1000], synchronous=True)
