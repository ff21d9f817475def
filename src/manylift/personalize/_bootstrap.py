"""Helpers of the personalize modules: the array preparer, the holdout split, bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manylift._core.checks import check_probability
from manylift._core.errors import ModelError
from manylift._core.rng import as_generator
from manylift.single.data import SingleData

__all__ = ["Interval", "bootstrap_interval", "holdout_mask", "percentile_interval",
           "prepare_arrays", "MIN_ROWS_PER_ARM"]

#: Rows every arm needs (a 70/30 split and decile bins must leave a few rows per bin).
MIN_ROWS_PER_ARM = 20


def prepare_arrays(outcome, arm, covariates, control=None, where: str = "personalize",
                   require_covariates: bool = True) -> SingleData:
    """Validate arrays with :meth:`SingleData.from_arrays` (the one preparer).

    The control, when it cannot be told from the labels, is the first label in
    sorted order: here it only fixes the baseline of the causal forest.
    """
    data = SingleData.from_arrays(outcome, arm, covariates, control=control,
                                  first_label_control=True, min_rows_per_arm=MIN_ROWS_PER_ARM,
                                  where=where)
    if require_covariates and data.covariates.shape[1] == 0:
        raise ModelError(f"{where} needs at least one covariate; got none.")
    return data


def holdout_mask(arm_codes: np.ndarray, test_size: float, random_state) -> np.ndarray:
    """Boolean mask of the evaluation rows: ``test_size`` of each arm, at random."""
    check_probability("test_size", test_size, "personalize")
    rng = as_generator(random_state)
    test = np.zeros(arm_codes.shape[0], dtype=bool)
    for a in np.unique(arm_codes):
        rows = np.flatnonzero(arm_codes == a)
        k = int(round(test_size * rows.size))
        if k < 10 or rows.size - k < 10:
            raise ModelError(
                f"test_size={test_size} leaves fewer than 10 training or evaluation rows in an arm "
                f"with {rows.size} rows; use a test_size nearer 0.3 or more data."
            )
        test[rng.choice(rows, size=k, replace=False)] = True
    return test


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95% interval (``lo``, ``hi``).

    ``uncorrected`` is the plug-in statistic and ``bias_corrected`` tells whether
    ``estimate`` is it minus the bootstrap bias (see :func:`bootstrap_interval`).
    """

    estimate: float
    lo: float
    hi: float
    uncorrected: float | None = None
    bias_corrected: bool = False

    def to_dict(self) -> dict:
        out = {"estimate": self.estimate, "lo": self.lo, "hi": self.hi}
        if self.uncorrected is not None:
            out["uncorrected"] = self.uncorrected
            out["bias_corrected"] = self.bias_corrected
        return out

    def __repr__(self) -> str:
        return f"{self.estimate:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def bootstrap_interval(statistic: float, draws, lower: float = -np.inf,
                       upper: float = np.inf) -> Interval:
    """The statistic and its 95% basic bootstrap interval, bias-corrected when the
    bootstrap distribution is shifted.

    The replicates ``draws`` must come from the same estimator as ``statistic``,
    applied to resampled data.  The interval is the basic (reverse-percentile)
    one, ``[2 t - q97.5, 2 t - q2.5]``, which corrects the first-order bias of the
    statistic.  When that bias is not negligible, ``|median(t*) - t| > 0.25
    sd(t*)`` (Efron and Tibshirani's rule of thumb for when a bias correction is
    worth its variance), the reported estimate is the bias-corrected
    ``2 t - median(t*)``, the point the basic interval is built around: it always
    lies inside the interval, where the uncorrected ``t`` may not (a binned
    estimator whose replicates all fall on one side of it).  The median keeps the
    correction robust to a few extreme replicates.  Everything is clipped to
    ``[lower, upper]``.

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap,
    sections 10.6 (bias correction) and 13.4 (basic and percentile intervals).
    Davison, A. C. and Hinkley, D. V. (1997). Bootstrap Methods and their
    Application, section 5.2.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> iv = bootstrap_interval(0.61, 0.58 + 0.005 * rng.standard_normal(200))
    >>> iv.bias_corrected, iv.lo <= iv.estimate <= iv.hi
    (True, True)
    """
    t = float(statistic)
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size < 2 or not np.isfinite(t):
        return Interval(float(np.clip(t, lower, upper)), float("nan"), float("nan"), t, False)
    q_lo, q_med, q_hi = np.quantile(draws, [0.025, 0.5, 0.975])
    lo, hi = 2 * t - q_hi, 2 * t - q_lo
    bias = q_med - t
    corrected = bool(abs(bias) > 0.25 * np.std(draws, ddof=1)) or not (lo <= t <= hi)
    point = 2 * t - q_med if corrected else t
    return Interval(float(np.clip(point, lower, upper)), float(np.clip(lo, lower, upper)),
                    float(np.clip(hi, lower, upper)), t, corrected)


def percentile_interval(estimate: float, draws: np.ndarray) -> Interval:
    """The estimate with the 2.5% and 97.5% quantiles of ``draws``."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size < 2:
        return Interval(float(estimate), float("nan"), float("nan"))
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return Interval(float(estimate), float(lo), float(hi))
