"""What every benchmark records about the machine it ran on (imported by the bench_*.py scripts,
which run with ``benchmarks/`` on ``sys.path``)."""

from __future__ import annotations

import os
import platform
import sys

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
