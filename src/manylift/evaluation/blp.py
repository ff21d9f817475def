"""Best linear predictor (BLP) test of treatment-effect heterogeneity.

The weighted regression of Chernozhukov, Demirer, Duflo and Fernandez-Val,

    y = alpha' Z + beta1 (W - e) + beta2 (W - e)(tau_hat - mean(tau_hat)) + error,

with weights 1 / (e (1 - e)), where Z is an intercept or group (intervention)
fixed effects, optionally with a baseline prediction of the outcome. beta1 is
the average effect and beta2, the slope, the best linear predictor of the true
effect by tau_hat: beta2 = 1 when tau_hat is a calibrated predictor of the
effect, beta2 = 0 when it carries no information about it, and beta2 > 0
significantly is evidence of heterogeneity that tau_hat detects.

Standard errors are heteroskedasticity-robust (HC0 or HC1) sandwich errors of
the full regression (fixed effects included); they equal statsmodels'
``WLS(...).fit(cov_type="HC1")``.  The fixed effects and baseline are
partialled out first (Frisch-Waugh-Lovell), which gives the same coefficients,
residuals and sandwich for beta1 and beta2 and lets :func:`blp_slope_many`
share that work across D priority vectors.

References
----------
Chernozhukov, V., Demirer, M., Duflo, E. and Fernandez-Val, I. (2018/2025).
Generic machine learning inference on heterogeneous treatment effects in
randomized experiments. NBER Working Paper 24678 (Econometrica, forthcoming),
equation (3.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manylift._core.checks import check_in
from manylift._core.errors import DataError
from manylift.evaluation._checks import (
    check_groups,
    check_outcome,
    check_priorities,
    check_propensity,
    check_treatment,
)
from manylift.evaluation._results import fmt, normal_interval, two_sided_p

__all__ = ["BLPResult", "blp_test", "blp_slope_many"]

_COV_TYPES = ("HC0", "HC1")
_CHUNK_ELEMENTS = 2**21


@dataclass(frozen=True, eq=False)
class BLPResult:
    """Coefficients of the BLP regression with robust standard errors.

    Attributes
    ----------
    ate : float
        beta1, the (weighted) average treatment effect, in outcome units.
    ate_std_err : float
    slope : float
        beta2, the heterogeneity loading of the priority: 1 = calibrated,
        0 = no information.
    slope_std_err : float
    n : int
        Rows used.
    n_groups : int
        Number of fixed-effect groups (1 = intercept only).
    cov_type : {"HC0", "HC1"}
        The robust covariance used.
    """

    ate: float
    ate_std_err: float
    slope: float
    slope_std_err: float
    n: int
    n_groups: int
    cov_type: str = "HC1"

    @property
    def slope_z(self) -> float:
        return float(self.slope / self.slope_std_err) if self.slope_std_err > 0 else float("nan")

    @property
    def slope_p_value(self) -> float:
        """Two-sided p-value of slope = 0 (no heterogeneity detected by the priority)."""
        return two_sided_p(self.slope_z)

    def slope_ci(self, level: float = 0.95) -> tuple[float, float]:
        return normal_interval(self.slope, self.slope_std_err, level)

    def ate_ci(self, level: float = 0.95) -> tuple[float, float]:
        return normal_interval(self.ate, self.ate_std_err, level)

    def to_dict(self) -> dict:
        """Plain numbers for results.json: ``{"slope": {estimate, se, lo, hi, z, p_value},
        "ate": {...}, "n", "n_groups"}``."""
        frame = self.to_frame().rename(columns={"std_err": "se"})
        out = {term: {k: float(v) for k, v in row.items()} for term, row in frame.iterrows()}
        return {"slope": out["slope"], "ate": out["ate"], "n": self.n, "n_groups": self.n_groups}

    def to_frame(self):
        """Two rows (``ate``, ``slope``): estimate, std_err, lo, hi (95%), z, p_value."""
        import pandas as pd

        rows = []
        for name, est, se in (
            ("ate", self.ate, self.ate_std_err),
            ("slope", self.slope, self.slope_std_err),
        ):
            lo, hi = normal_interval(est, se)
            z = est / se if se > 0 else float("nan")
            rows.append(
                {
                    "term": name,
                    "estimate": est,
                    "std_err": se,
                    "lo": lo,
                    "hi": hi,
                    "z": z,
                    "p_value": two_sided_p(z),
                }
            )
        return pd.DataFrame(rows).set_index("term")

    def __repr__(self) -> str:
        lo, hi = self.slope_ci()
        return (
            f"BLPResult(slope={fmt(self.slope)}, std_err={fmt(self.slope_std_err)}, "
            f"95% CI=[{fmt(lo)}, {fmt(hi)}], ate={fmt(self.ate)} (se {fmt(self.ate_std_err)}), "
            f"n={self.n}, n_groups={self.n_groups}, cov_type={self.cov_type!r})"
        )


def blp_test(
    outcome,
    treatment,
    propensity,
    priority,
    groups=None,
    *,
    baseline=None,
    cov_type: str = "HC1",
) -> BLPResult:
    """BLP test: does the priority (a predicted effect) predict the true effect?

    Parameters
    ----------
    outcome : array-like of shape (n,)
    treatment : array-like of shape (n,)
        0/1 assignment.
    propensity : float or array-like of shape (n,)
        P(treatment = 1), strictly inside (0, 1).
    priority : array-like of shape (n,)
        The predicted effect tau_hat, fitted on other data.
    groups : array-like of shape (n,), optional
        Fixed-effect groups (e.g. intervention ids); default an intercept.
    baseline : array-like of shape (n,) or (n, p), optional
        Baseline predictions of the outcome (CDDF's B(Z)) added as controls;
        they reduce noise and do not change what the slope means.
    cov_type : {"HC1", "HC0"}, default="HC1"
        Robust covariance; HC1 scales HC0 by n / (n - k), k counting every
        coefficient including the fixed effects (as statsmodels does).

    Returns
    -------
    BLPResult

    References
    ----------
    Chernozhukov, V., Demirer, M., Duflo, E. and Fernandez-Val, I. (2025). Generic
    machine learning inference on heterogeneous treatment effects in randomized
    experiments. NBER WP 24678, equation (3.5).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> tau = rng.normal(size=n); w = rng.integers(0, 2, n)
    >>> y = tau * w + rng.normal(size=n)
    >>> r = blp_test(y, w, 0.5, priority=tau)
    >>> lo, hi = r.slope_ci(); bool(lo < 1 < hi)
    True
    """
    check_in("cov_type", cov_type, _COV_TYPES, "blp_test")
    y, w, e, codes, n_groups, controls = _inputs(outcome, treatment, propensity, groups, baseline)
    tau = check_priorities(priority, y.size, "priority")
    if tau.shape[0] != 1:
        raise DataError(
            f"'priority' must be one vector of length {y.size}; got shape {tau.shape}. Use "
            f"blp_slope_many for several priorities."
        )
    common = _Common(y, w, e, codes, n_groups, controls)
    b1, b2, x2 = common.fit(tau)
    if not np.isfinite(b2[0]):
        raise DataError(
            "The BLP slope is not identified: 'priority' does not vary across units (the "
            "interaction (W - e)(priority - mean) is collinear with (W - e)). Pass a priority "
            "that varies across units."
        )
    residual = common.y - b1[0] * common.x1 - b2[0] * x2[0]
    cov = common.sandwich(x2[0], residual, cov_type)
    return BLPResult(
        ate=float(b1[0]),
        ate_std_err=float(np.sqrt(cov[0, 0])),
        slope=float(b2[0]),
        slope_std_err=float(np.sqrt(cov[1, 1])),
        n=int(y.size),
        n_groups=n_groups,
        cov_type=cov_type,
    )


def blp_slope_many(
    outcome, treatment, propensity, priorities, groups=None, *, baseline=None
) -> np.ndarray:
    """BLP slopes of D priority vectors at once (e.g. one per posterior draw).

    The fixed effects, baseline controls, outcome and (W - e) are partialled out
    once; each priority then needs only a two-regressor solve.

    Parameters
    ----------
    outcome, treatment, propensity, groups, baseline
        As in :func:`blp_test`.
    priorities : array-like of shape (D, n)
        One predicted-effect vector per row.

    Returns
    -------
    ndarray of shape (D,)
        Element d equals ``blp_test(..., priorities[d], ...).slope`` exactly
        (nan for a priority that does not vary, for which the slope is not identified).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> tau = rng.normal(size=n); w = rng.integers(0, 2, n)
    >>> y = tau * w + rng.normal(size=n)
    >>> slopes = blp_slope_many(y, w, 0.5, [tau, rng.normal(size=n)])
    >>> bool(abs(slopes[0] - 1) < 0.2 and abs(slopes[1]) < 0.2)
    True
    """
    y, w, e, codes, n_groups, controls = _inputs(outcome, treatment, propensity, groups, baseline)
    tau = check_priorities(priorities, y.size, "priorities")
    common = _Common(y, w, e, codes, n_groups, controls)
    out = np.empty(tau.shape[0])
    step = max(1, _CHUNK_ELEMENTS // y.size)
    for start in range(0, tau.shape[0], step):
        out[start : start + step] = common.fit(tau[start : start + step])[1]
    return out


# -- internals ---------------------------------------------------------------


def _inputs(outcome, treatment, propensity, groups, baseline):
    y = check_outcome(outcome)
    n = y.size
    w = check_treatment(treatment, n)
    e = check_propensity(propensity, n)
    if groups is None:
        codes, n_groups = np.zeros(n, dtype=np.intp), 1
    else:
        codes, n_groups = check_groups(groups, n)
    controls = None
    if baseline is not None:
        controls = np.asarray(baseline, dtype=float)
        if controls.ndim == 1:
            controls = controls[:, None]
        if controls.ndim != 2 or controls.shape[0] != n:
            raise DataError(
                f"'baseline' must have shape (n,) or (n, p) with n = {n}; got {controls.shape}."
            )
        if not np.isfinite(controls).all():
            raise DataError("'baseline' has non-finite values (NaN or inf); impute them first.")
    if np.unique(w).size < 2:
        raise DataError(
            "'treatment' has only one arm; the BLP regression needs treated and control rows."
        )
    return y, w, e, codes, n_groups, controls


class _Common:
    """The part of the BLP regression shared by every priority vector."""

    def __init__(self, y, w, e, codes, n_groups, controls):
        self.n = y.size
        self.weight = 1.0 / (e * (1.0 - e))
        self.codes = codes
        self.n_groups = n_groups
        self.group_weight = np.bincount(codes, weights=self.weight, minlength=n_groups)
        self.centred_w = w - e
        self.controls = None
        self.n_controls = 0
        if controls is not None:
            c = self._demean_groups(controls.T)  # (p, n)
            gram = (c * self.weight) @ c.T
            keep = _independent_columns(gram)
            c = c[keep]
            self.controls = c
            self.n_controls = int(c.shape[0])
            self.controls_inv = np.linalg.inv(gram[np.ix_(keep, keep)])
        self.y = self.partial_out(y[None, :])[0]
        self.x1 = self.partial_out(self.centred_w[None, :])[0]
        self.s11 = np.sum(self.weight * self.x1 * self.x1)
        self.r1 = np.sum(self.weight * self.x1 * self.y)

    def _demean_groups(self, v: np.ndarray) -> np.ndarray:
        """Subtract weighted group means from each row of v (rows x n)."""
        rows = v.shape[0]
        flat = (self.codes[None, :] + self.n_groups * np.arange(rows)[:, None]).ravel()
        sums = np.bincount(flat, weights=(v * self.weight).ravel(), minlength=rows * self.n_groups)
        means = sums.reshape(rows, self.n_groups) / self.group_weight
        return v - np.take_along_axis(means, np.broadcast_to(self.codes, v.shape), axis=1)

    def partial_out(self, v: np.ndarray) -> np.ndarray:
        """Residuals of each row of v after the fixed effects and baseline controls."""
        v = self._demean_groups(v)
        if self.controls is None:
            return v
        # Row-wise sums and elementwise updates (no BLAS), so one row's result does
        # not depend on how many rows are computed together.
        xw = [np.sum(v * (self.weight * c), axis=1) for c in self.controls]
        for i, c in enumerate(self.controls):
            coef = sum(self.controls_inv[i, j] * xw[j] for j in range(self.n_controls))
            v = v - coef[:, None] * c
        return v

    def fit(self, tau: np.ndarray):
        """beta1, beta2 (each of shape (D,)) and the partialled-out interaction (D, n)."""
        x2 = self.partial_out(self.centred_w * (tau - tau.mean(axis=1, keepdims=True)))
        wx2 = self.weight * x2
        s12 = np.sum(wx2 * self.x1, axis=1)
        s22 = np.sum(wx2 * x2, axis=1)
        r2 = np.sum(wx2 * self.y, axis=1)
        det = self.s11 * s22 - s12 * s12
        # The interaction is (up to rounding) a multiple of (W - e), e.g. a constant
        # priority: the slope is not identified.
        degenerate = ~(det > 1e-10 * self.s11 * s22)
        with np.errstate(divide="ignore", invalid="ignore"):
            b1 = (s22 * self.r1 - s12 * r2) / det
            b2 = (self.s11 * r2 - s12 * self.r1) / det
        b1 = np.where(degenerate, self.r1 / self.s11, b1)
        b2 = np.where(degenerate, np.nan, b2)
        return b1, b2, x2

    def sandwich(self, x2: np.ndarray, residual: np.ndarray, cov_type: str) -> np.ndarray:
        x = np.stack([self.x1, x2])  # (2, n)
        bread = np.linalg.inv((x * self.weight) @ x.T)
        score = x * (self.weight * residual)
        cov = bread @ (score @ score.T) @ bread
        if cov_type == "HC1":
            k = self.n_groups + self.n_controls + 2
            cov = cov * self.n / (self.n - k)
        return cov


def _independent_columns(gram: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Indices of a linearly independent subset of columns (drops collinear controls)."""
    keep: list[int] = []
    for j in range(gram.shape[0]):
        trial = keep + [j]
        sub = gram[np.ix_(trial, trial)]
        scale = np.sqrt(np.outer(np.diag(sub), np.diag(sub))) + 1e-300
        if np.linalg.eigvalsh(sub / scale).min() > tol:
            keep.append(j)
    return np.asarray(keep, dtype=np.intp)
