"""Per-unit effect scores: inverse-probability (IPW) and doubly robust (AIPW).

One set of scores feeds every evaluation in manylift (ATE, TOC/AUTOC, policy
values): the mean of the scores estimates the average treatment effect, and the
mean over any subset chosen *without* looking at outcomes or treatment
estimates the average effect in that subset.

Binary treatment (``treatment`` in {0, 1}, ``propensity`` = P(W = 1)):

    IPW   Gamma_i = W y / e - (1 - W) y / (1 - e)
    AIPW  Gamma_i = mu1 - mu0 + W (y - mu1) / e - (1 - W) (y - mu0) / (1 - e)

Several arms (integer codes 0..K-1, 0 = control, ``propensity[:, k]`` =
P(A = k)): one column per non-control arm k,

    IPW   Gamma_ik = 1{A = k} y / e_k - 1{A = 0} y / e_0
    AIPW  Gamma_ik = mu_k - mu_0 + 1{A = k} (y - mu_k) / e_k - 1{A = 0} (y - mu_0) / e_0
"""

from __future__ import annotations

import numpy as np

from manylift._core.checks import as_1d_float
from manylift._core.errors import DataError
from manylift.evaluation._checks import (
    check_arm,
    check_arm_matrix,
    check_outcome,
    check_propensity,
    check_treatment,
)

__all__ = ["ipw_scores", "aipw_scores", "multiarm_ipw_scores", "multiarm_aipw_scores"]


def ipw_scores(outcome, treatment, propensity) -> np.ndarray:
    """Inverse-probability-weighted effect scores of a binary treatment.

    Parameters
    ----------
    outcome : array-like of shape (n,)
        Observed outcome ``y``.
    treatment : array-like of shape (n,)
        Assignment, 0 (control) or 1 (treated).
    propensity : float or array-like of shape (n,)
        Known or estimated P(treatment = 1), strictly inside (0, 1).

    Returns
    -------
    ndarray of shape (n,)
        ``W y / e - (1 - W) y / (1 - e)``; its mean is the Horvitz-Thompson
        estimate of the average treatment effect.

    References
    ----------
    Horvitz, D. G. and Thompson, D. J. (1952). A generalization of sampling
    without replacement from a finite universe. JASA 47(260), 663-685.

    Examples
    --------
    >>> ipw_scores([3.0, 1.0], [1, 0], 0.5)
    array([ 6., -2.])
    """
    y = check_outcome(outcome)
    w = check_treatment(treatment, y.size)
    e = check_propensity(propensity, y.size)
    return w * y / e - (1 - w) * y / (1 - e)


def aipw_scores(outcome, treatment, propensity, mu0, mu1) -> np.ndarray:
    """Augmented IPW (doubly robust) effect scores of a binary treatment.

    Parameters
    ----------
    outcome, treatment, propensity
        As in :func:`ipw_scores`.
    mu0, mu1 : float or array-like of shape (n,)
        Outcome-model predictions of E[y | x, W = 0] and E[y | x, W = 1] (fitted
        out of fold, or on other data, for valid inference).

    Returns
    -------
    ndarray of shape (n,)
        ``mu1 - mu0 + W (y - mu1) / e - (1 - W) (y - mu0) / (1 - e)``. Unbiased for
        the effect if either the propensity or the outcome model is right, and with
        smaller variance than IPW when the outcome model predicts well.

    References
    ----------
    Robins, J. M., Rotnitzky, A. and Zhao, L. P. (1994). Estimation of regression
    coefficients when some regressors are not always observed. JASA 89(427), 846-866.

    Examples
    --------
    >>> aipw_scores([3.0, 1.0], [1, 0], 0.5, mu0=1.0, mu1=2.0)
    array([3., 1.])
    """
    y = check_outcome(outcome)
    n = y.size
    w = check_treatment(treatment, n)
    e = check_propensity(propensity, n)
    m0 = _broadcast("mu0", mu0, n)
    m1 = _broadcast("mu1", mu1, n)
    return m1 - m0 + w * (y - m1) / e - (1 - w) * (y - m0) / (1 - e)


def multiarm_ipw_scores(outcome, arm, propensity) -> np.ndarray:
    """IPW effect scores of each arm against control (arm 0).

    Parameters
    ----------
    outcome : array-like of shape (n,)
        Observed outcome.
    arm : array-like of shape (n,)
        Assigned arm as an integer code 0..K-1; 0 is the control arm.
    propensity : array-like of shape (n, K) or (K,)
        P(arm = k) per row (rows sum to 1), or one probability vector shared by
        all rows (e.g. ``[0.5, 0.25, 0.25]`` for a 2:1:1 design).

    Returns
    -------
    ndarray of shape (n, K - 1)
        Column ``k - 1`` holds ``1{A = k} y / e_k - 1{A = 0} y / e_0``. With two
        arms it equals :func:`ipw_scores` with ``propensity[:, 1]``.

    References
    ----------
    Imbens, G. W. (2000). The role of the propensity score in estimating
    dose-response functions. Biometrika 87(3), 706-710.

    Examples
    --------
    >>> multiarm_ipw_scores([4.0, 2.0, 1.0], [2, 1, 0], [0.5, 0.25, 0.25])
    array([[ 0., 16.],
           [ 8.,  0.],
           [-2., -2.]])
    """
    y, a, e = _multiarm_inputs(outcome, arm, propensity)
    n_arms = e.shape[1]
    rows = np.arange(y.size)
    ipw = y / e[rows, a]  # y / P(observed arm)
    control = np.where(a == 0, ipw, 0.0)
    out = np.empty((y.size, n_arms - 1))
    for k in range(1, n_arms):
        out[:, k - 1] = np.where(a == k, ipw, 0.0) - control
    return out


def multiarm_aipw_scores(outcome, arm, propensity, mu) -> np.ndarray:
    """Doubly robust effect scores of each arm against control (arm 0).

    Parameters
    ----------
    outcome, arm, propensity
        As in :func:`multiarm_ipw_scores`.
    mu : array-like of shape (n, K)
        Outcome-model predictions E[y | x, A = k], control in column 0.

    Returns
    -------
    ndarray of shape (n, K - 1)
        Column ``k - 1`` holds ``mu_k - mu_0 + 1{A = k}(y - mu_k)/e_k -
        1{A = 0}(y - mu_0)/e_0``. With two arms it equals :func:`aipw_scores`.

    References
    ----------
    Robins, J. M., Rotnitzky, A. and Zhao, L. P. (1994). JASA 89(427), 846-866.

    Examples
    --------
    >>> multiarm_aipw_scores([4.0, 1.0], [1, 0], [0.5, 0.5], [[1.0, 2.0], [1.0, 2.0]])
    array([[5.],
           [1.]])
    """
    y, a, e = _multiarm_inputs(outcome, arm, propensity)
    n_arms = e.shape[1]
    m = check_arm_matrix(mu, y.size, "mu", n_arms=n_arms)
    rows = np.arange(y.size)
    residual = (y - m[rows, a]) / e[rows, a]
    control = m[:, 0] + np.where(a == 0, residual, 0.0)
    out = np.empty((y.size, n_arms - 1))
    for k in range(1, n_arms):
        out[:, k - 1] = m[:, k] + np.where(a == k, residual, 0.0) - control
    return out


def _broadcast(name: str, values, n: int) -> np.ndarray:
    if np.ndim(values) == 0:
        values = np.full(n, float(values))
    return as_1d_float(name, values, n=n)


def _multiarm_inputs(outcome, arm, propensity):
    y = check_outcome(outcome)
    n = y.size
    e = check_arm_matrix(propensity, n, "propensity")
    a = check_arm(arm, n=n, n_arms=e.shape[1])
    check_arm_propensity(e)
    return y, a, e


def check_arm_propensity(e: np.ndarray) -> None:
    """Per-arm propensities must be in (0, 1) and sum to 1 in every row."""
    bad = ~((e > 0) & (e < 1))
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(
            f"'propensity' must be strictly between 0 and 1 for every arm; {rows.size} row(s) "
            f"have a value outside (0, 1) (e.g. rows {rows[:5].tolist()}). Every unit needs a "
            f"chance of every arm compared: drop those rows or the arm."
        )
    total = e.sum(axis=1)
    off = np.abs(total - 1) > 1e-6
    if off.any():
        raise DataError(
            f"'propensity' rows must sum to 1 over the arms; {int(off.sum())} row(s) do not "
            f"(e.g. sums {np.unique(np.round(total[off], 6))[:5].tolist()}). Give P(arm = k) for "
            f"every arm k, control in column 0."
        )
