"""What a cell cost the kernel: CPU time and the resident-memory peak, measured in the kernel itself.

The peak is the kernel's memory high-water mark, reset at each cell's start
(Linux: writing ``5`` to ``/proc/self/clear_refs``), read back at its end
through ``getrusage``: a few microseconds per cell, no thread. Where the mark
cannot be reset, a cell only reports a peak when it set a new one.
"""

from __future__ import annotations

import os
import resource
import sys
import time


class CellUsage:
    def __init__(self) -> None:
        self._clear: int | None = None
        try:
            self._clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
        except OSError:
            pass
        self._cpu = time.process_time()  # the %load_ext cell has no start
        self._peak_before = _peak_mb()

    def start(self) -> None:
        self._cpu = time.process_time()
        if self._clear is not None:
            try:
                os.write(self._clear, b"5")
            except OSError:
                os.close(self._clear)
                self._clear = None
        self._peak_before = _peak_mb()

    def finish(self) -> tuple[float, float | None]:
        """``(cpu seconds, peak MB or None)`` since :meth:`start`."""
        cpu = time.process_time() - self._cpu
        peak = _peak_mb()
        if self._clear is None and peak <= self._peak_before:
            return cpu, None  # the peak was set before this cell: unknown here
        return cpu, peak

    def close(self) -> None:
        if self._clear is not None:
            os.close(self._clear)
            self._clear = None


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
