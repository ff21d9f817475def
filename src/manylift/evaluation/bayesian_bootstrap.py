"""Bayesian-bootstrap weights: sampling uncertainty of an evaluation sample, per posterior draw.

A posterior draw of a model fixes the priority (or policy); the evaluation
sample (e.g. the holdout) is still one sample from the population. Rubin's
Bayesian bootstrap puts a flat Dirichlet(1, ..., 1) posterior on the weights of
the sampled units; averaging a score with such weights gives a draw from the
posterior of its population mean. Pairing one weight draw with each posterior
draw of the model, and sharing it across every policy evaluated in that draw,
makes the spread over draws carry model *and* sampling uncertainty, with the
differences between policies paired.

Units are the resampled entities (customers): every row of a unit gets the
unit's weight. A draw's weights depend only on ``(random_state, draw)``, so
blocks of draws computed separately give the same numbers.

References
----------
Rubin, D. B. (1981). The Bayesian bootstrap. The Annals of Statistics 9(1), 130-134.
"""

from __future__ import annotations

import numpy as np

from manylift._core.errors import DataError

__all__ = ["bayesian_bootstrap_weights"]

#: Mixed into every draw's seed so that these streams differ from the sampler's.
_STREAM = 0xB007


def bayesian_bootstrap_weights(units, draws, random_state: int = 0,
                               dtype=np.float64) -> np.ndarray:
    """Row weights of one Dirichlet(1, ..., 1) draw over the units, per posterior draw.

    Parameters
    ----------
    units : array-like of int, shape (n,)
        Unit code of each row (0..U-1, e.g. the customer); rows of one unit
        share its weight.
    draws : array-like of int, shape (D,)
        Indices of the posterior draws (e.g. ``chain * n_draws + draw``); draw
        ``d`` always gets the same weights for a given ``random_state``.
    random_state : int, default=0
    dtype : numpy dtype, default=float64

    Returns
    -------
    ndarray of shape (D, n)
        Positive row weights; each row sums to 1 over the rows.

    Examples
    --------
    >>> w = bayesian_bootstrap_weights([0, 0, 1, 2], draws=[0, 1], random_state=3)
    >>> w.shape, bool(np.allclose(w.sum(axis=1), 1)), bool(w[0, 0] == w[0, 1])
    ((2, 4), True, True)
    """
    codes = np.asarray(units)
    if codes.ndim != 1 or codes.size == 0 or codes.dtype.kind not in "iu" or codes.min() < 0:
        raise DataError(
            f"'units' must be a non-empty 1-d array of integer codes >= 0 (one per row); got "
            f"dtype {codes.dtype} and shape {codes.shape}. Encode labels with np.unique(..., "
            f"return_inverse=True) first."
        )
    n_units = int(codes.max()) + 1
    draws = np.asarray(draws, dtype=np.int64).ravel()
    seed = int(random_state)
    out = np.empty((draws.size, codes.size), dtype=dtype)
    for k, d in enumerate(draws):
        rng = np.random.default_rng([seed, _STREAM, int(d)])
        g = rng.standard_exponential(n_units)  # Dirichlet(1..1) = normalised Exp(1) draws
        row = g[codes]
        out[k] = row / row.sum()
    return out
