"""System metrics of a run, sampled from outside the kernel: no thread in it, nothing to stop at exit.

While a kernel's run is open, the delivery process reads the kernel's process
every ``system_metrics_interval`` seconds (psutil; NVIDIA GPUs through
``nvidia-ml-py`` when it is installed) and logs ``system/kernel_cpu_percent``,
``system/kernel_memory_mb`` and, with a GPU, ``system/gpu_utilization_percent``
and ``system/gpu_memory_mb`` (MLflow's ``system/`` prefix), stepped by seconds
since the run began. Samples go straight to MLflow and, as a stream of their own
(``<session>.system``), into the lake's metrics; they are best effort: a sample
that cannot be written is dropped, never retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
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


@dataclass
class OpenRun:
    key: str
    started: float  # unix time of its run_start


class SystemSampler:
    """Samples each live kernel with an open run, at most once per interval."""

    def __init__(self, sinks: list[Sink], interval: float) -> None:
        self.sinks = sinks
        self.interval = interval
        self._due: dict[str, float] = {}
        self._processes: dict[int, Any] = {}
        self._gpu: Any = None  # pynvml, once initialised; False when there is none

    def tick(self, session: str, pid: int, run: OpenRun, index: RunIndex) -> None:
        if self.interval <= 0 or run.key not in index:
            return
        now = time.monotonic()
        if now < self._due.get(session, 0.0):
            return
        self._due[session] = now + self.interval
        try:
            values = self._sample(pid)
        except Exception as exc:  # noqa: BLE001 - the kernel has just gone, or psutil may not see it
            log.debug("no sample of pid %s: %s", pid, exc)
            return
        self._write(session, run, index, values)

    def _sample(self, pid: int) -> dict[str, float]:
        import psutil

        process = self._processes.get(pid)
        if process is None:
            process = self._processes[pid] = psutil.Process(pid)
            process.cpu_percent(None)  # the first call only starts the measurement
        values = {MEMORY: process.memory_info().rss / 2**20, CPU: process.cpu_percent(None)}
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

    def _write(self, session: str, run: OpenRun, index: RunIndex, values: Mapping[str, float]) -> None:
        now = time.time()
        step = max(0, int(now - run.started))
        stamp = int(now * 1000)
        events: list[Event] = [
            {"id": f"{session}.system-{stamp}-{i}", "seq": stamp, "session": f"{session}.system", "t": now,
             "type": "metric", "run": run.key, "key": key, "value": round(value, 3), "step": step,
             "cell_id": None, "exec_count": None}
            for i, (key, value) in enumerate(sorted(values.items()))
        ]
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
    client.log_batch(info["run_id"], metrics=metrics, synchronous=True)
