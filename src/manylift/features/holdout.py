"""The calibration / holdout split of docs/pooled.md."""

from __future__ import annotations

import numpy as np

from manylift._core.rng import as_generator

__all__ = ["holdout_split"]


def holdout_split(customer_codes: np.ndarray, min_rows: int = 6, random_state=0) -> np.ndarray:
    """One randomly chosen row per customer with at least ``min_rows`` rows.

    Parameters
    ----------
    customer_codes : array of int or any hashable ids, one per row
    min_rows : int, default=6
    random_state : int or Generator, default=0

    Returns
    -------
    holdout : bool ndarray
        True for the held-out rows; the fit uses the rest (calibration).

    Examples
    --------
    >>> int(holdout_split(np.array([0] * 6 + [1] * 2), random_state=0).sum())
    1
    """
    import pandas as pd

    codes = pd.factorize(np.asarray(customer_codes))[0]
    n = codes.size
    counts = np.bincount(codes)
    rng = as_generator(random_state)
    # a uniform random key per row; the row with the smallest key in each customer is held out
    key = rng.random(n)
    order = np.lexsort((key, codes))
    first = np.ones(n, bool)
    first[1:] = codes[order][1:] != codes[order][:-1]
    chosen = order[first]
    out = np.zeros(n, bool)
    eligible = counts[codes[chosen]] >= min_rows
    out[chosen[eligible]] = True
    return out
