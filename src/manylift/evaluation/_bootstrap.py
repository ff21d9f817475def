"""Bootstrap resampling weights, shared by every evaluation metric.

A bootstrap replicate is described by a vector of integer counts, one per row:
how many times the row enters the replicate.  The ordinary bootstrap draws
clusters with replacement (counts 0, 1, 2, ...); the half-sample bootstrap of
grf draws half of the clusters without replacement (counts 0/1).  Both give
standard errors of the full-sample estimate: the half-sample one because
drawing n/2 of n without replacement has the same variance as n draws with
replacement (the finite-population correction is exactly 1/2).

With ``clusters=None`` every row is its own cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from manylift._core.checks import check_in
from manylift._core.errors import DataError

__all__ = ["BOOTSTRAP_KINDS", "bootstrap_counts", "cluster_codes"]

BOOTSTRAP_KINDS = ("half", "ordinary")


def cluster_codes(clusters, n: int) -> tuple[np.ndarray | None, int]:
    """Integer cluster codes 0..G-1 (or None for 'each row its own cluster') and G."""
    if clusters is None:
        return None, n
    arr = np.asarray(clusters)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"'clusters' must be one label per row ({n} rows); got shape {arr.shape}.")
    _, codes = np.unique(arr, return_inverse=True)
    codes = codes.reshape(-1).astype(np.intp)
    return codes, int(codes.max()) + 1


def bootstrap_counts(
    n: int,
    n_bootstrap: int,
    rng: np.random.Generator,
    *,
    kind: str = "half",
    clusters: np.ndarray | None = None,
    n_clusters: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield ``n_bootstrap`` count vectors of length ``n`` (one per replicate)."""
    check_in("bootstrap", kind, BOOTSTRAP_KINDS)
    n_units = n if clusters is None else int(n_clusters)
    if kind == "half" and n_units // 2 < 2 or kind == "ordinary" and n_units < 2:
        raise DataError(
            f"The bootstrap needs at least {4 if kind == 'half' else 2} independent units "
            f"(rows or clusters); got {n_units}. Use more data or n_bootstrap=0."
        )
    for _ in range(n_bootstrap):
        if kind == "half":
            unit_counts = np.zeros(n_units, dtype=np.intp)
            unit_counts[rng.permutation(n_units)[: n_units // 2]] = 1
        else:
            unit_counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        yield unit_counts if clusters is None else unit_counts[clusters]
