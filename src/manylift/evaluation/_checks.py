"""Input checks shared by the evaluation functions.

Every check raises a :class:`~manylift._core.errors.DataError` (bad arrays) or
:class:`~manylift._core.errors.ModelError` (bad options) whose message names the
parameter, shows the offending values with counts, and says how to fix it.
"""

from __future__ import annotations

import numpy as np

from manylift._core.checks import as_1d_float, example_ids
from manylift._core.errors import DataError, ModelError

__all__ = [
    "check_outcome",
    "check_treatment",
    "check_propensity",
    "check_assignment",
    "check_priorities",
    "check_groups",
    "check_arm",
    "check_arm_matrix",
    "check_n_bootstrap",
    "check_q_grid",
    "check_weights",
]


def check_outcome(outcome, name: str = "outcome") -> np.ndarray:
    arr = as_1d_float(name, outcome)
    if arr.size == 0:
        raise DataError(f"{name!r} is empty; pass at least one row.")
    return arr


def check_treatment(treatment, n: int, name: str = "treatment") -> np.ndarray:
    """Return the 0/1 treatment indicator as floats, rejecting anything else."""
    arr = as_1d_float(name, treatment, n=n)
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        values, counts = np.unique(arr[bad], return_counts=True)
        shown = ", ".join(f"{v:g} ({c} rows)" for v, c in list(zip(values, counts))[:5])
        raise DataError(
            f"{name!r} must hold only 0 (control) and 1 (treated); got {int(bad.sum())} row(s) "
            f"with other values: {shown}. Recode it to 0/1 (for several arms use the "
            f"multiarm_* functions with integer arm codes)."
        )
    return arr


def check_propensity(propensity, n: int, name: str = "propensity") -> np.ndarray:
    """Return propensities as an array of length ``n`` (a scalar is broadcast)."""
    arr = np.asarray(propensity, dtype=float) if np.isscalar(propensity) else propensity
    if np.ndim(arr) == 0:
        arr = np.full(n, float(arr))
    arr = as_1d_float(name, arr, n=n)
    bad = ~((arr > 0) & (arr < 1))
    if bad.any():
        raise DataError(
            f"{name!r} must be strictly between 0 and 1; got {int(bad.sum())} value(s) outside "
            f"(0, 1) (e.g. {example_ids(np.unique(arr[bad]))}) at position(s) "
            f"{example_ids(np.flatnonzero(bad))}. Inverse-probability weights need every unit "
            f"to have had a chance of both arms: drop those rows or trim the sample to "
            f"0.01 < propensity < 0.99."
        )
    return arr


def check_assignment(assignment, n: int, name: str = "assignment") -> np.ndarray:
    """Policy assignment: booleans, 0/1, or treatment probabilities in [0, 1]."""
    arr = as_1d_float(name, assignment, n=n)
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        raise DataError(
            f"{name!r} must be 0/1 (or a treatment probability in [0, 1]); got "
            f"{int(bad.sum())} value(s) outside [0, 1] (e.g. {example_ids(np.unique(arr[bad]))}). "
            f"Pass the policy's decision (treat = 1), not a score; threshold scores first."
        )
    return arr


def check_priorities(priorities, n: int, name: str = "priorities", *,
                     keep_float32: bool = False) -> np.ndarray:
    """Return a (D, n) float array of D priority vectors over the same n rows.

    ``keep_float32``: a float32 array stays float32, for callers that only sort the
    priorities or compare them with a cost (every float32 is a float64 exactly, so
    the order, the ties and the comparisons are the same, and the posterior
    functionals' blocks are not copied); anything else becomes float64.
    """
    try:
        is32 = (keep_float32 and isinstance(priorities, np.ndarray)
                and priorities.dtype == np.float32)
        arr = priorities if is32 else np.asarray(priorities, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name!r} must be numeric; could not convert it ({exc}).") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n:
        raise DataError(
            f"{name!r} must have shape (D, {n}): one row per priority vector (e.g. per "
            f"posterior draw), one column per unit; got shape {arr.shape}. Transpose it if "
            f"units are in rows."
        )
    # min and max carry any NaN or inf, without a (D, n) temporary
    if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        bad = ~np.isfinite(arr)
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(
            f"{name!r} has {int(bad.sum())} non-finite value(s) (NaN or inf) in row(s) "
            f"{example_ids(rows)}. Drop or impute them first."
        )
    return arr


def check_groups(groups, n: int, name: str = "groups") -> tuple[np.ndarray, int]:
    """Encode group labels (any hashable values) as integer codes 0..G-1."""
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{name!r} must be one label per row ({n} rows); got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{name!r} has missing (NaN) labels; give every row a group.")
    try:
        _, codes = np.unique(arr, return_inverse=True)
    except TypeError:
        _, codes = np.unique(arr.astype(str), return_inverse=True)
    codes = codes.reshape(-1).astype(np.intp)
    return codes, int(codes.max()) + 1


def check_arm(
    arm, n: int | None = None, n_arms: int | None = None, name: str = "arm"
) -> np.ndarray:
    """Integer arm codes 0..K-1 (0 is the control arm)."""
    arr = as_1d_float(name, arm, n=n)
    ok = (arr == np.round(arr)) & (arr >= 0)
    if n_arms is not None:
        ok &= arr < n_arms
    if not ok.all():
        limit = f"0..{n_arms - 1}" if n_arms is not None else "0, 1, 2, ..."
        raise DataError(
            f"{name!r} must hold integer arm codes {limit} (0 = control); got "
            f"{int((~ok).sum())} other value(s) (e.g. {example_ids(np.unique(arr[~ok]))}). "
            f"Map arm labels to codes first, e.g. with pandas.factorize, putting control first."
        )
    return arr.astype(np.intp)


def check_arm_matrix(values, n: int, name: str, n_arms: int | None = None) -> np.ndarray:
    """An (n, K) matrix of per-arm quantities; a length-K vector is broadcast to all rows."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name!r} must be numeric; could not convert it ({exc}).") from None
    if arr.ndim == 1:  # one vector shared by every row
        arr = np.broadcast_to(arr, (n, arr.shape[0]))
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 2:
        raise DataError(
            f"{name!r} must have shape (n, K) = ({n}, number of arms >= 2), one column per arm "
            f"with the control arm in column 0, or a length-K vector shared by all rows; got "
            f"shape {arr.shape}."
        )
    if n_arms is not None and arr.shape[1] != n_arms:
        raise DataError(
            f"{name!r} has {arr.shape[1]} columns but there are {n_arms} arms; give one column "
            f"per arm, control first."
        )
    if not np.isfinite(arr).all():
        raise DataError(f"{name!r} has non-finite values (NaN or inf); drop or impute them first.")
    return arr


def check_n_bootstrap(n_bootstrap, where: str) -> int:
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise ModelError(
            f"The 'n_bootstrap' parameter of {where} must be an integer >= 0 (0 skips the "
            f"bootstrap); got {n_bootstrap!r} instead."
        )
    if n_bootstrap < 0 or n_bootstrap == 1:
        raise ModelError(
            f"The 'n_bootstrap' parameter of {where} must be 0 (no bootstrap) or >= 2; got "
            f"{n_bootstrap!r} instead."
        )
    return int(n_bootstrap)


def check_q_grid(q, where: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(q, dtype=float))
    if (
        arr.ndim != 1
        or arr.size == 0
        or not np.isfinite(arr).all()
        or arr.min() <= 0
        or arr.max() > 1
        or np.any(np.diff(arr) <= 0)
    ):
        raise ModelError(
            f"The 'q' parameter of {where} must be strictly increasing fractions in (0, 1] "
            f"(e.g. numpy.linspace(0.01, 1, 100)); got {example_ids(arr)} instead."
        )
    return arr


def check_weights(weights, n_rows: int, n: int, name: str = "weights") -> np.ndarray:
    """Unit weights: (n,) shared by all rows, or (n_rows, n); finite and positive."""
    try:
        arr = np.asarray(weights, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name!r} must be numeric; could not convert it ({exc}).") from None
    if arr.ndim == 1 and arr.shape[0] == n:
        arr = np.broadcast_to(arr, (n_rows, n))
    if arr.shape != (n_rows, n):
        raise DataError(
            f"{name!r} must have shape ({n},) or ({n_rows}, {n}) (one weight per unit, per "
            f"row of priorities or assignments); got shape {arr.shape}."
        )
    # min > 0 and a finite max mean every weight is finite and positive (NaN fails both)
    if arr.size and not (arr.min() > 0 and np.isfinite(arr.max())):
        bad = ~(np.isfinite(arr) & (arr > 0))
        raise DataError(
            f"{name!r} must be finite and positive; got {int(bad.sum())} bad value(s) in "
            f"row(s) {example_ids(np.unique(np.nonzero(bad)[0]))}. Bootstrap weights are "
            f"positive (e.g. Dirichlet draws); drop units with weight 0 instead."
        )
    return arr
