"""Small validation helpers for parameters and arrays.

Messages follow scikit-learn's pattern: "The 'x' parameter of f must be ...;
got ... instead."
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from manylift._core.errors import DataError, ModelError

__all__ = ["check_in", "check_positive_int", "check_probability", "as_1d_float", "example_ids"]


def check_in(name: str, value, allowed: Iterable, where: str = "") -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ModelError(
            f"The {name!r} parameter{' of ' + where if where else ''} must be one of "
            f"{allowed}; got {value!r} instead."
        )


def check_positive_int(name: str, value, where: str = "", minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ModelError(
            f"The {name!r} parameter{' of ' + where if where else ''} must be an integer "
            f">= {minimum}; got {value!r} instead."
        )
    return int(value)


def check_probability(name: str, value: float, where: str = "", open_interval: bool = True) -> float:
    ok = 0 < value < 1 if open_interval else 0 <= value <= 1
    if not ok or not np.isfinite(value):
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise ModelError(
            f"The {name!r} parameter{' of ' + where if where else ''} must be in {rng}; "
            f"got {value!r} instead."
        )
    return float(value)


def example_ids(values, k: int = 5) -> str:
    """Format up to ``k`` example values for an error message."""
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:k])
    more = f" and {len(values) - k} more" if len(values) > k else ""
    return f"{shown}{more}"


def as_1d_float(name: str, values, n: int | None = None, allow_nan: bool = False) -> np.ndarray:
    """Convert ``values`` to a 1-d float array, with a clear error on bad input."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name!r} must be numeric; could not convert it ({exc}).") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise DataError(f"{name!r} must be one-dimensional; got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise DataError(f"{name!r} has {arr.shape[0]} values; expected {n} (one per row).")
    if not allow_nan:
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise DataError(
                f"{name!r} has {bad.size} non-finite value(s) (NaN or inf) at position(s) "
                f"{example_ids(bad)}. Drop or impute those rows first."
            )
    return arr
