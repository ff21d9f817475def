"""Peak resident memory of this process."""

from __future__ import annotations

import resource
import sys

__all__ = ["peak_rss_gib"]


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own
    address space. ``getrusage``'s ``ru_maxrss`` is not used there: it keeps the parent's
    resident size from before ``exec``, so a ``manylift fit`` started by a large Python
    process (a test runner, a notebook) would report the parent's memory. Elsewhere:
    ``ru_maxrss`` (macOS reports bytes, other systems KiB).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)
