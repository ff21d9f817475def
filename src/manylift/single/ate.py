"""Average treatment effect of one treated arm versus control, six ways.

All estimators share one set of inputs (outcome, 0/1 treatment, covariates,
propensity) and report the effect on the natural scale (treated minus control,
in outcome units) with a 95% interval:

``difference_in_means``  Welch standard error.
``ipw``                  mean of the IPW scores W y / e - (1 - W) y / (1 - e) (Horvitz-Thompson).
``aipw``                 mean of the AIPW scores with cross-fitted outcome models.
``ols``                  OLS of y on 1, W and the covariates (HC2 standard errors; statsmodels).
``dml``                  EconML's LinearDML with the covariates as controls (constant effect).
``overlap``              overlap-weighted effect (ATO): weights 1 - e for treated, e for control.

The IPW and AIPW scores come from :mod:`manylift.evaluation`.  Besides the
estimators: a propensity-trimming sweep, Manski's no-assumption bounds for a
bounded outcome, and the E-value of an estimate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from manylift._core.checks import as_1d_float, check_in
from manylift._core.errors import DataError, ModelError
from manylift.evaluation import aipw_scores, ipw_scores
from manylift.single._models import cross_fit_outcome, make_classifier, make_regressor
from manylift.single.positivity import _binary_treatment, _covariate_matrix

__all__ = [
    "ATE_ESTIMATORS",
    "ATEResult",
    "EValueResult",
    "ManskiBounds",
    "TrimmingResult",
    "e_value",
    "estimate_ate",
    "manski_bounds",
    "trimming_sweep",
]

ATE_ESTIMATORS = ("difference_in_means", "ipw", "aipw", "ols", "dml", "overlap")
TRIM_BOUNDS = ((0.0, 1.0), (0.05, 0.95), (0.10, 0.90), (0.15, 0.85), (0.20, 0.80))
_Z = float(stats.norm.ppf(0.975))


def _row(name, est, se, n, lo=None, hi=None) -> dict:
    lo = est - _Z * se if lo is None else lo
    hi = est + _Z * se if hi is None else hi
    return {"estimator": name, "estimate": float(est), "se": float(se),
            "lo": float(lo), "hi": float(hi), "n": int(n)}


@dataclass(frozen=True)
class ATEResult:
    """Average effect by estimator, each with a standard error and 95% interval.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per estimator: ``estimator, estimate, se, lo, hi, n``.
    mu0, mu1 : ndarray (n,)
        The cross-fitted outcome models used by AIPW (reused by the trimming sweep).
    propensity : ndarray (n,)
    """

    table: pd.DataFrame
    mu0: np.ndarray = field(repr=False)
    mu1: np.ndarray = field(repr=False)
    propensity: np.ndarray = field(repr=False)

    def __getitem__(self, estimator: str) -> dict:
        rows = self.table[self.table["estimator"] == estimator]
        if rows.empty:
            raise KeyError(f"No estimator {estimator!r}; have {self.table['estimator'].tolist()}.")
        return rows.iloc[0].to_dict()

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        """``{estimator: {estimate, se, lo, hi}}`` (the results.json layout)."""
        return {r["estimator"]: {k: r[k] for k in ("estimate", "se", "lo", "hi")}
                for r in self.table.to_dict("records")}

    def __repr__(self) -> str:
        lines = ["ATEResult("]
        for r in self.table.to_dict("records"):
            lines.append(f"  {r['estimator']:<20} {r['estimate']:.4g} "
                         f"(95% CI {r['lo']:.4g} to {r['hi']:.4g}; se {r['se']:.3g})")
        return "\n".join(lines) + "\n)"


def _check_inputs(outcome, treatment, propensity):
    w = _binary_treatment(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    e = as_1d_float("propensity", propensity, n=w.size)
    bad = np.flatnonzero((e <= 0) | (e >= 1))
    if bad.size:
        raise DataError(
            f"'propensity' has {bad.size} value(s) outside (0, 1) (rows {bad[:5].tolist()}). "
            f"Clip estimated scores or fix the known assignment probabilities."
        )
    return y, w, e


def _difference_in_means(y, w):
    y1, y0 = y[w == 1], y[w == 0]
    est = y1.mean() - y0.mean()
    se = np.sqrt(y1.var(ddof=1) / y1.size + y0.var(ddof=1) / y0.size)
    return est, se


def _mean_se(scores):
    return float(np.mean(scores)), float(np.std(scores, ddof=1) / np.sqrt(scores.size))


def _overlap_weighted(y, w, e, mu0, mu1):
    """ATO (Li, Morgan and Zaslavsky 2018) with a plug-in influence-function SE."""
    a1 = w * (1 - e)
    a0 = (1 - w) * e
    m1 = np.sum(a1 * y) / np.sum(a1)
    m0 = np.sum(a0 * y) / np.sum(a0)
    infl = a1 * (y - m1) / a1.mean() - a0 * (y - m0) / a0.mean()
    return m1 - m0, float(np.std(infl, ddof=1) / np.sqrt(y.size))


def _ols(y, w, x):
    import statsmodels.api as sm

    design = np.column_stack([np.ones_like(y), w, x])
    fit = sm.OLS(y, design).fit(cov_type="HC2")
    return float(fit.params[1]), float(fit.bse[1])


def _dml(y, w, x, model, n_folds, random_state):
    from econml.dml import LinearDML

    est = LinearDML(
        model_y=make_regressor(model, random_state=random_state),
        model_t=make_classifier("gbm" if model == "lightgbm" else "logistic",
                                random_state=random_state),
        discrete_treatment=True, cv=n_folds, random_state=int(random_state),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(y, w.astype(int), X=None, W=x)
        inf = est.ate_inference()
        lo, hi = est.ate_interval(alpha=0.05)
    return float(inf.mean_point), float(inf.stderr_mean), float(lo), float(hi)


def estimate_ate(outcome, treatment, covariates, propensity, *, estimators=ATE_ESTIMATORS,
                 mu0=None, mu1=None, model="lightgbm", n_folds: int = 5,
                 random_state=0) -> ATEResult:
    """Estimate the average effect of a 0/1 treatment with several estimators.

    Parameters
    ----------
    outcome : array (n,)
    treatment : array (n,) of 0/1
    covariates : array (n, p)
    propensity : array (n,)
        P(treated | x): known (randomized) or cross-fitted
        (:func:`~manylift.single.positivity.estimate_propensity`).
    estimators : sequence of str, default=all six
        Any of ``difference_in_means, ipw, aipw, ols, dml, overlap``.
    mu0, mu1 : array (n,), default=None
        Outcome models for AIPW; cross-fitted with ``model`` when not given.
    model : {"lightgbm", "linear"} or scikit-learn regressor, default="lightgbm"
        Outcome model of AIPW and DML.
    n_folds : int, default=5
        Cross-fitting folds (AIPW outcome models, DML).
    random_state : int, default=0

    Returns
    -------
    ATEResult

    References
    ----------
    Robins, J. M., Rotnitzky, A., & Zhao, L. P. (1994). Estimation of regression
    coefficients when some regressors are not always observed. JASA, 89(427), 846-866.
    Chernozhukov, V., et al. (2018). Double/debiased machine learning for
    treatment and structural parameters. The Econometrics Journal, 21(1), C1-C68.
    Li, F., Morgan, K. L., & Zaslavsky, A. M. (2018). Balancing covariates via
    propensity score weighting. JASA, 113(521), 390-400.

    Examples
    --------
    >>> from manylift.simulate.single import simulate_experiment
    >>> sim = simulate_experiment(800, random_state=0)
    >>> x = sim.frame[sim.covariates].to_numpy()
    >>> r = estimate_ate(sim.frame["outcome"], sim.frame["treatment"], x,
    ...                  sim.propensity[:, 1], estimators=["difference_in_means", "ols"])
    >>> bool(r["ols"]["lo"] < sim.ate[0] < r["ols"]["hi"])
    True
    """
    y, w, e = _check_inputs(outcome, treatment, propensity)
    x = _covariate_matrix(covariates, n=y.size)
    estimators = list(estimators)
    for name in estimators:
        check_in("estimators", name, ATE_ESTIMATORS, "estimate_ate")
    if mu0 is None or mu1 is None:
        if any(k in estimators for k in ("aipw",)):
            mu = cross_fit_outcome(x, y, w.astype(int), make_regressor(model, random_state),
                                   n_folds=n_folds, random_state=random_state)
            mu0, mu1 = mu[:, 0], mu[:, 1]
        else:
            mu0 = np.full(y.size, y[w == 0].mean())
            mu1 = np.full(y.size, y[w == 1].mean())
    mu0 = as_1d_float("mu0", mu0, n=y.size)
    mu1 = as_1d_float("mu1", mu1, n=y.size)
    rows = []
    for name in estimators:
        if name == "difference_in_means":
            rows.append(_row(name, *_difference_in_means(y, w), y.size))
        elif name == "ipw":
            rows.append(_row(name, *_mean_se(ipw_scores(y, w, e)), y.size))
        elif name == "aipw":
            rows.append(_row(name, *_mean_se(aipw_scores(y, w, e, mu0, mu1)), y.size))
        elif name == "ols":
            rows.append(_row(name, *_ols(y, w, x), y.size))
        elif name == "dml":
            est, se, lo, hi = _dml(y, w, x, model, n_folds, random_state)
            rows.append(_row(name, est, se, y.size, lo, hi))
        elif name == "overlap":
            rows.append(_row(name, *_overlap_weighted(y, w, e, mu0, mu1), y.size))
    return ATEResult(table=pd.DataFrame(rows), mu0=mu0, mu1=mu1, propensity=e)


@dataclass(frozen=True)
class TrimmingResult:
    """ATE after dropping customers whose propensity lies outside each interval."""

    table: pd.DataFrame
    estimator: str

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> list:
        return self.table.to_dict("records")

    def __repr__(self) -> str:
        body = "\n".join(
            f"  [{r['lower']:.2f}, {r['upper']:.2f}] n={r['n']:>7} {r['estimate']:.4g} (se {r['se']:.3g})"
            for r in self.table.to_dict("records"))
        return f"TrimmingResult(estimator={self.estimator!r}\n{body}\n)"


def trimming_sweep(outcome, treatment, propensity, *, mu0=None, mu1=None, bounds=TRIM_BOUNDS,
                   estimator: str = "aipw") -> TrimmingResult:
    """ATE on the customers with ``lower <= propensity <= upper``, for each interval.

    Parameters
    ----------
    outcome, treatment, propensity : arrays (n,)
    mu0, mu1 : arrays (n,), default=None
        Outcome models (required for ``estimator="aipw"``).
    bounds : sequence of (lower, upper), default=none, [0.05, 0.95] ... [0.2, 0.8]
    estimator : {"aipw", "ipw", "difference_in_means"}, default="aipw"

    Returns
    -------
    TrimmingResult
        Table ``lower, upper, n, estimate, se, lo, hi`` (a row with n < 2 in
        an arm has NaN estimate).  Trimming changes the estimand: the effect
        among customers with overlap, not the population ATE.
    """
    y, w, e = _check_inputs(outcome, treatment, propensity)
    check_in("estimator", estimator, ["aipw", "ipw", "difference_in_means"], "trimming_sweep")
    if estimator == "aipw" and (mu0 is None or mu1 is None):
        raise ModelError("trimming_sweep with estimator='aipw' needs mu0 and mu1 "
                         "(e.g. from estimate_ate(...).mu0 / .mu1).")
    rows = []
    for lo_b, hi_b in bounds:
        keep = (e >= lo_b) & (e <= hi_b)
        n_keep = int(keep.sum())
        rec = {"lower": float(lo_b), "upper": float(hi_b), "n": n_keep}
        wk = w[keep]
        if n_keep < 4 or wk.sum() < 2 or (1 - wk).sum() < 2:
            rec.update(estimate=np.nan, se=np.nan, lo=np.nan, hi=np.nan)
        else:
            if estimator == "difference_in_means":
                est, se = _difference_in_means(y[keep], wk)
            elif estimator == "ipw":
                est, se = _mean_se(ipw_scores(y[keep], wk, e[keep]))
            else:
                est, se = _mean_se(aipw_scores(y[keep], wk, e[keep], np.asarray(mu0)[keep],
                                               np.asarray(mu1)[keep]))
            rec.update(estimate=est, se=se, lo=est - _Z * se, hi=est + _Z * se)
        rows.append(rec)
    return TrimmingResult(table=pd.DataFrame(rows), estimator=estimator)


@dataclass(frozen=True)
class ManskiBounds:
    """No-assumption bounds on the ATE of a bounded outcome."""

    lower: float
    upper: float
    outcome_min: float
    outcome_max: float

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])

    def to_dict(self) -> dict:
        return {"lower": self.lower, "upper": self.upper,
                "outcome_min": self.outcome_min, "outcome_max": self.outcome_max}

    def __repr__(self) -> str:
        return (f"ManskiBounds(ATE in [{self.lower:.4g}, {self.upper:.4g}], outcome in "
                f"[{self.outcome_min:.4g}, {self.outcome_max:.4g}])")


def manski_bounds(outcome, treatment, *, outcome_min=None, outcome_max=None) -> ManskiBounds:
    """Manski's worst-case bounds on the ATE, assuming only a bounded outcome.

    With p = P(W = 1), E[Y(1)] lies in [p E[Y|W=1] + (1-p) a, p E[Y|W=1] + (1-p) b]
    and E[Y(0)] likewise, for an outcome known to lie in [a, b]; the ATE bounds
    are their differences.  Their width is always b - a: without assumptions
    the sign of the effect is not identified.

    Parameters
    ----------
    outcome, treatment : arrays (n,)
    outcome_min, outcome_max : float, default=None
        The outcome's logical range; default the observed minimum and maximum.

    References
    ----------
    Manski, C. F. (1990). Nonparametric bounds on treatment effects. American
    Economic Review, 80(2), 319-323.
    """
    w = _binary_treatment(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    a = float(y.min()) if outcome_min is None else float(outcome_min)
    b = float(y.max()) if outcome_max is None else float(outcome_max)
    if not a <= y.min() or not y.max() <= b:
        raise DataError(
            f"The outcome has values outside [outcome_min, outcome_max] = [{a}, {b}] "
            f"(observed range [{y.min()}, {y.max()}]). Widen the bounds."
        )
    p = w.mean()
    m1, m0 = y[w == 1].mean(), y[w == 0].mean()
    y1_lo, y1_hi = p * m1 + (1 - p) * a, p * m1 + (1 - p) * b
    y0_lo, y0_hi = (1 - p) * m0 + p * a, (1 - p) * m0 + p * b
    return ManskiBounds(lower=float(y1_lo - y0_hi), upper=float(y1_hi - y0_lo),
                        outcome_min=a, outcome_max=b)


@dataclass(frozen=True)
class EValueResult:
    """E-value of an estimate and of its confidence limit closest to the null."""

    e_value: float
    e_value_ci: float
    risk_ratio: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])

    def to_dict(self) -> dict:
        return {"e_value": self.e_value, "e_value_ci": self.e_value_ci,
                "risk_ratio": self.risk_ratio}

    def __repr__(self) -> str:
        return (f"EValueResult(e_value={self.e_value:.3g}, e_value_ci={self.e_value_ci:.3g}, "
                f"risk_ratio={self.risk_ratio:.3g})")


def _e_of_rr(rr: float) -> float:
    rr = rr if rr >= 1 else 1 / rr
    return float(rr + np.sqrt(rr * (rr - 1)))


def e_value(estimate, lo=None, hi=None, *, outcome_sd=None, scale="difference") -> EValueResult:
    """The E-value: how strong an unmeasured confounder would have to be to explain away an effect.

    E = RR + sqrt(RR (RR - 1)) for a risk ratio RR >= 1 (RR < 1 is inverted).
    For a difference in means (``scale="difference"``) the effect is first
    standardized, d = estimate / outcome_sd, and converted with RR ~ exp(0.91 d)
    (VanderWeele and Ding 2017, section on continuous outcomes).  The E-value
    of the interval uses the limit closest to the null, and is 1 when the
    interval contains the null.

    Parameters
    ----------
    estimate : float
        A difference in means (``scale="difference"``) or a risk ratio (``scale="risk_ratio"``).
    lo, hi : float, default=None
        Its 95% interval.
    outcome_sd : float, default=None
        Standard deviation of the outcome (required for ``scale="difference"``).
    scale : {"difference", "risk_ratio"}, default="difference"

    References
    ----------
    VanderWeele, T. J., & Ding, P. (2017). Sensitivity analysis in observational
    research: introducing the E-value. Annals of Internal Medicine, 167(4), 268-274.

    Examples
    --------
    >>> round(e_value(3.9, 1.8, 8.7, scale="risk_ratio").e_value, 2)
    7.26
    """
    check_in("scale", scale, ["difference", "risk_ratio"], "e_value")

    def to_rr(v):
        if scale == "risk_ratio":
            if v is None or not v > 0:
                raise ModelError(f"A risk ratio must be positive; got {v!r} instead.")
            return float(v)
        if outcome_sd is None or not outcome_sd > 0:
            raise ModelError("e_value with scale='difference' needs a positive 'outcome_sd'.")
        return float(np.exp(0.91 * float(v) / float(outcome_sd)))

    rr = to_rr(estimate)
    point = _e_of_rr(rr)
    if lo is None or hi is None:
        ci = np.nan
    else:
        rlo, rhi = to_rr(lo), to_rr(hi)
        if rlo <= 1 <= rhi:
            ci = 1.0
        else:
            ci = _e_of_rr(rlo if rr >= 1 else rhi)
    return EValueResult(e_value=point, e_value_ci=float(ci), risk_ratio=rr)
