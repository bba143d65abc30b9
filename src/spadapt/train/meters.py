"""Cost meters: wall time, per-step times (median), throughput and peak memory.

Peak memory is the process's resident-set high-water mark on CPU (VmHWM, reset between
measurements through /proc/self/clear_refs where Linux allows it, else `ru_maxrss`, which only
grows) and `torch.cuda.max_memory_allocated` on GPU.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import statistics
import time
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _vm_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def release_memory() -> None:
    """Return freed memory to the OS (gc, then glibc's malloc_trim) so that the next peak
    measurement starts from what is really in use, not from an earlier run's leftovers."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory between `reset()` and `peak_bytes()`."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.resettable = False

    def reset(self) -> None:
        release_memory()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self.resettable = True
        except OSError:
            self.resettable = False

    def peak_bytes(self) -> int:
        if self.cuda:
            return int(torch.cuda.max_memory_allocated())
        hwm = _vm_hwm_bytes()
        if hwm is not None:
            return hwm
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class StepTimer:
    """Times each optimizer step; reports the median, robust to noisy machines."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        if self._start is not None:
            self.durations.append(time.perf_counter() - self._start)
            self._start = None

    @property
    def median(self) -> float:
        return statistics.median(self.durations) if self.durations else 0.0
