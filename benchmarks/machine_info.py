"""What every benchmark records about the machine it ran on (imported by the bench_*.py scripts,
which run with ``benchmarks/`` on ``sys.path``)."""

from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            return round(int(fh.readline().split()[1]) / 1024**2, 1)
    except OSError:
        return None


def base_machine() -> dict:
    """Cores, CPU model, RAM, Python, NumPy and platform."""
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "ram_gib": ram_gib(),
            "python": sys.version.split()[0], "numpy": np.__version__,
            "platform": platform.platform()}


def git_commit() -> str | None:
    """The commit of the checkout the benchmark ran from, marked when ``src/`` is modified."""
    import subprocess
    from pathlib import Path

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False, cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../src"],
                               capture_output=True, text=True, check=False, cwd=here).stdout.strip()
    except OSError:
        return None
    return (out + (" (src modified)" if dirty else "")) or None


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (what ``uptime`` prints)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


GIB = 1024**3


def status_bytes(field: str) -> int | None:
    """A byte count from /proc/self/status (``VmHWM``, ``VmRSS``), None where unavailable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process, if allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int:
    """Peak resident memory since the last :func:`reset_peak` (VmHWM; ru_maxrss otherwise)."""
    hwm = status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def copy_bandwidth_gbs(n_bytes: int = 512 * 1024**2, reps: int = 5) -> float:
    """Best of ``reps`` copies of an ``n_bytes`` array, GB/s (read + write counted)."""
    a = np.ones(n_bytes // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * n_bytes / best / 1e9


def numba_layer() -> str | None:
    """numba's threading layer as it will run (starts its thread pool to find out)."""
    try:
        import numba
        import numpy as np

        @numba.njit(parallel=True)
        def _touch(x):
            for i in numba.prange(x.size):
                x[i] += 1.0
            return x

        _touch(np.zeros(4))
        return numba.threading_layer()
    except Exception:  # noqa: BLE001 - a benchmark annotation, never fatal
        return None
