"""Does a CATE estimate find real heterogeneity?  Validation and refutation.

* :func:`validate_cate`: the BLP test, TOC/AUTOC, Qini and AUUC of an
  effect estimate used as a priority, all from :mod:`manylift.evaluation`
  (one set of IPW/AIPW scores feeds them, as in grf).
* :func:`placebo_refutation`: shuffle the treatment, refit, and check that the
  estimated effects collapse.
* :func:`subset_stability`: fit on two random halves and correlate the two
  sets of effects on all rows.
* :func:`calibration_by_quantile`: mean predicted effect against the mean
  (A)IPW score (an unbiased estimate of the true mean effect) per quantile bin
  of the prediction.

Thresholds follow the worked EconML report "Dunnhumby — Track 2: Causal
Targeting via Heterogeneous Treatment Effects": a placebo ratio below 0.5 and a
subset correlation above 0.7 pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from manylift._core.checks import as_1d_float, check_positive_int
from manylift._core.errors import DataError, ManyliftError
from manylift._core.rng import as_generator, seed_int
from manylift.evaluation import auuc, blp_test, rank_metric
from manylift.single.learners import CateLearner, _treatment_codes
from manylift.single.positivity import _covariate_matrix

__all__ = [
    "CalibrationResult",
    "CateValidation",
    "PlaceboResult",
    "StabilityResult",
    "calibration_by_quantile",
    "placebo_refutation",
    "subset_stability",
    "validate_cate",
]

_Z = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class CateValidation:
    """BLP, AUTOC, Qini and AUUC of one effect estimate on held-out data.

    A metric that cannot be computed (e.g. the BLP slope of an estimate that is
    the same for every customer) is ``None`` and ``skipped[metric]`` says why.
    """

    blp: object
    autoc: object
    qini: object
    auuc: object = None
    skipped: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{autoc, qini, blp_slope}`` each ``{estimate, se}`` (results.json), plus extras;
        a skipped metric has ``estimate``/``se`` None and ``skipped`` (the reason)."""

        def entry(result, metric, est="estimate", se="std_err"):
            if result is None:
                return {"estimate": None, "se": None,
                        "skipped": self.skipped.get(metric, "not computed")}
            return {"estimate": float(getattr(result, est)), "se": float(getattr(result, se))}

        out = {
            "autoc": entry(self.autoc, "autoc"),
            "qini": entry(self.qini, "qini"),
            "blp_slope": entry(self.blp, "blp", "slope", "slope_std_err"),
            "blp_intercept": entry(self.blp, "blp", "ate", "ate_std_err"),
        }
        if self.auuc is not None or "auuc" in self.skipped:
            out["auuc"] = entry(self.auuc, "auuc")
        return out

    def to_frame(self) -> pd.DataFrame:
        d = self.to_dict()
        return pd.DataFrame([{"metric": k, "estimate": v.get("estimate"), "se": v.get("se"),
                              "skipped": v.get("skipped")} for k, v in d.items()])

    def __repr__(self) -> str:
        d = self.to_dict()
        parts = [f"{k}=skipped" if v["estimate"] is None else
                 f"{k}={v['estimate']:.4g}" + (f" (se {v['se']:.3g})" if v.get("se") is not None
                                               else "") for k, v in d.items()]
        return "CateValidation(" + ", ".join(parts) + ")"


_SKIPPABLE = (ManyliftError, ValueError, ArithmeticError, np.linalg.LinAlgError)


def _attempt(skipped: dict, name: str, fn, reason_fn=None):
    """``fn()``, or None with ``skipped[name]`` set to the reason it could not be computed."""
    try:
        return fn()
    except _SKIPPABLE as exc:
        reason = reason_fn() if reason_fn is not None else None
        skipped[name] = reason or (str(exc) if isinstance(exc, ManyliftError)
                                   else f"{type(exc).__name__}: {exc}")
        return None


def validate_cate(outcome, treatment, propensity, effect, *, mu0=None, mu1=None,
                  n_bootstrap: int = 200, random_state=0) -> CateValidation:
    """BLP, TOC/AUTOC, Qini and AUUC of ``effect`` used as a priority.

    Use held-out (or cross-fitted) effects: a learner scored on its own
    training rows looks better than it is.  A metric that cannot be computed
    (e.g. the BLP slope when the estimate is constant) is skipped with the
    reason in ``skipped``, never raised: one failed check must not stop an
    analysis.

    Parameters
    ----------
    outcome, treatment, propensity : arrays (n,)
        0/1 treatment and P(treated).
    effect : array (n,)
        Estimated CATE (the priority).
    mu0, mu1 : arrays (n,), default=None
        Outcome models; when given the rank metrics use AIPW scores, else IPW.
    n_bootstrap : int, default=200
    random_state : int, default=0

    References
    ----------
    Chernozhukov, V., Demirer, M., Duflo, E., & Fernandez-Val, I. (2018). Generic
    machine learning inference on heterogeneous treatment effects in randomized
    experiments. NBER Working Paper 24678.
    Yadlowsky, S., Fleming, S., Shah, N., Brunskill, E., & Wager, S. (2021).
    Evaluating treatment prioritization rules via rank-weighted average
    treatment effects. arXiv:2111.07966.
    """
    from manylift.evaluation import aipw_scores, ipw_scores

    y = as_1d_float("outcome", outcome)
    w = as_1d_float("treatment", treatment, n=y.size)
    e = as_1d_float("propensity", propensity, n=y.size)
    tau = as_1d_float("effect", effect, n=y.size)
    if mu0 is not None and mu1 is not None:
        scores = aipw_scores(y, w, e, mu0, mu1)
    else:
        scores = ipw_scores(y, w, e)
    baseline = None
    if mu0 is not None and mu1 is not None:
        baseline = (1 - e) * np.asarray(mu0, dtype=float) + e * np.asarray(mu1, dtype=float)
    skipped: dict = {}
    rs = seed_int(random_state)

    def constant():
        if np.ptp(tau) == 0:
            return (f"the estimated effect is the same ({tau[0]:.4g}) for every evaluation "
                    f"customer: the learner found no heterogeneity to rank by, so the BLP slope "
                    f"is not identified")
        return None

    blp = _attempt(skipped, "blp", lambda: blp_test(y, w, e, tau, baseline=baseline), constant)
    autoc = _attempt(skipped, "autoc", lambda: rank_metric(
        scores, tau, kind="autoc", n_bootstrap=n_bootstrap, random_state=rs))
    qini = _attempt(skipped, "qini", lambda: rank_metric(
        scores, tau, kind="qini", n_bootstrap=n_bootstrap, random_state=rs))
    au = _attempt(skipped, "auuc", lambda: auuc(y, w, tau, e, n_bootstrap=n_bootstrap,
                                                random_state=rs))
    return CateValidation(blp=blp, autoc=autoc, qini=qini, auuc=au, skipped=skipped)


@dataclass(frozen=True)
class PlaceboResult:
    """Effects re-estimated after shuffling the treatment.

    ``ratio`` = RMS(placebo effects) / RMS(original effects): a learner that
    finds structure in pure noise has a ratio near 1; a healthy one well
    below ``threshold``.
    """

    ratio: float
    placebo_mean: float
    placebo_rms: float
    original_rms: float
    threshold: float = 0.5

    @property
    def passed(self) -> bool:
        return bool(self.ratio < self.threshold)

    def to_dict(self) -> dict:
        return {"ratio": self.ratio, "placebo_mean": self.placebo_mean,
                "placebo_rms": self.placebo_rms, "original_rms": self.original_rms,
                "threshold": self.threshold, "passed": self.passed}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])

    def __repr__(self) -> str:
        return (f"PlaceboResult(ratio={self.ratio:.3f}, threshold={self.threshold}, "
                f"{'PASS' if self.passed else 'FAIL'})")


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def placebo_refutation(learner: CateLearner, outcome, treatment, covariates, *,
                       effect=None, threshold: float = 0.5, random_state=0) -> PlaceboResult:
    """Refit ``learner`` on a randomly permuted treatment and compare effect sizes.

    Under a shuffled treatment every true effect is zero, so the re-estimated
    effects should be small compared with the original ones.

    Parameters
    ----------
    learner : CateLearner
        Not modified (a copy is fitted).
    outcome, treatment, covariates : arrays
    effect : array, default=None
        The original effects on the same rows; estimated with ``learner`` when not given.
    threshold : float, default=0.5
    random_state : int, default=0
    """
    w = _treatment_codes(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    x = _covariate_matrix(covariates, n=w.size)
    if effect is None:
        effect = learner.clone(inference=False).fit(y, w, x).effect(x)
    rng = as_generator(random_state)
    shuffled = rng.permutation(w)
    placebo = learner.clone(inference=False).fit(y, shuffled, x).effect(x)
    orig_rms, plac_rms = _rms(effect), _rms(placebo)
    ratio = plac_rms / orig_rms if orig_rms > 0 else float("inf")
    return PlaceboResult(ratio=float(ratio), placebo_mean=float(np.mean(placebo)),
                         placebo_rms=plac_rms, original_rms=orig_rms, threshold=threshold)


@dataclass(frozen=True)
class StabilityResult:
    """Correlation of the effects of learners fitted on disjoint random halves."""

    correlation: float
    correlations: tuple = field(default_factory=tuple)
    threshold: float = 0.7

    @property
    def passed(self) -> bool:
        return bool(self.correlation > self.threshold)

    def to_dict(self) -> dict:
        return {"correlation": self.correlation, "correlations": list(self.correlations),
                "threshold": self.threshold, "passed": self.passed}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"split": range(len(self.correlations)),
                             "correlation": list(self.correlations)})

    def __repr__(self) -> str:
        return (f"StabilityResult(correlation={self.correlation:.3f}, threshold={self.threshold}, "
                f"{'PASS' if self.passed else 'FAIL'})")


def subset_stability(learner: CateLearner, outcome, treatment, covariates, *,
                     n_splits: int = 1, threshold: float = 0.7,
                     random_state=0) -> StabilityResult:
    """Fit the learner on two disjoint random halves; correlate their effects on all rows.

    With several arms the correlation is over all (row, arm) effects.
    ``n_splits`` repeats with new random halves; ``correlation`` is the mean.
    """
    w = _treatment_codes(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    x = _covariate_matrix(covariates, n=w.size)
    n_splits = check_positive_int("n_splits", n_splits, "subset_stability")
    rng = as_generator(random_state)
    cors = []
    for _ in range(n_splits):
        # stratified halves so that every arm is in both
        half = np.zeros(w.size, dtype=bool)
        for k in np.unique(w):
            idx = rng.permutation(np.flatnonzero(w == k))
            half[idx[: idx.size // 2]] = True
        a = learner.clone(inference=False).fit(y[half], w[half], x[half]).effect(x)
        b = learner.clone(inference=False).fit(y[~half], w[~half], x[~half]).effect(x)
        a, b = np.ravel(a), np.ravel(b)
        cors.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0)
    return StabilityResult(correlation=float(np.mean(cors)), correlations=tuple(cors),
                           threshold=threshold)


@dataclass(frozen=True)
class CalibrationResult:
    """Predicted against observed mean effect by quantile bin of the prediction."""

    table: pd.DataFrame

    @property
    def slope(self) -> float:
        """Least-squares slope of observed on predicted bin means (1 = calibrated)."""
        t = self.table
        if t["predicted"].std() == 0:
            return float("nan")
        return float(np.polyfit(t["predicted"], t["observed"], 1)[0])

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> list:
        return self.table.to_dict("records")

    def __repr__(self) -> str:
        return f"CalibrationResult(bins={len(self.table)}, slope={self.slope:.3g})"


def calibration_by_quantile(effect, scores, *, n_bins: int = 5) -> CalibrationResult:
    """Mean predicted effect and mean (A)IPW score in each quantile bin of the prediction.

    Parameters
    ----------
    effect : array (n,)
        Predicted effects (held out).
    scores : array (n,)
        IPW or AIPW scores: their mean in a bin estimates the bin's true mean effect.
    n_bins : int, default=5

    Returns
    -------
    CalibrationResult
        Table ``bin, n, predicted, observed, se, lo, hi`` (lowest predictions first).
    """
    tau = as_1d_float("effect", effect)
    s = as_1d_float("scores", scores, n=tau.size)
    n_bins = check_positive_int("n_bins", n_bins, "calibration_by_quantile")
    if tau.size < 2 * n_bins:
        raise DataError(f"calibration_by_quantile needs at least 2 rows per bin; got {tau.size} "
                        f"rows for {n_bins} bins. Use fewer bins.")
    order = np.argsort(tau, kind="stable")
    rows = []
    for b, idx in enumerate(np.array_split(order, n_bins)):
        obs = s[idx].mean()
        se = s[idx].std(ddof=1) / np.sqrt(idx.size)
        rows.append({"bin": b + 1, "n": int(idx.size), "predicted": float(tau[idx].mean()),
                     "observed": float(obs), "se": float(se),
                     "lo": float(obs - _Z * se), "hi": float(obs + _Z * se)})
    return CalibrationResult(table=pd.DataFrame(rows))
