"""Shared helpers of the small frozen result dataclasses."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["fmt", "normal_interval", "two_sided_p", "readonly"]


def fmt(x: float, digits: int = 4) -> str:
    """A compact number for a ``__repr__``: 4 significant digits, nan as 'nan'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def normal_interval(estimate: float, std_err: float, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval ``estimate +- z * std_err`` (nan if no std_err)."""
    if not (0 < level < 1):
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    z = stats.norm.ppf(0.5 + level / 2)
    return float(estimate - z * std_err), float(estimate + z * std_err)


def two_sided_p(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else float("nan")


def readonly(arr) -> np.ndarray:
    """A read-only copy, so a frozen result cannot be changed through its arrays."""
    out = np.array(arr, dtype=float, copy=True)
    out.setflags(write=False)
    return out
