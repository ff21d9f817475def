"""Positivity and covariate balance of one treated-versus-control comparison.

A cross-fitted propensity model tells how predictable treatment is from the
covariates (its AUC); the share of customers with a propensity inside
[0.1, 0.9] and [0.05, 0.95] tells where causal comparisons rest on data rather
than extrapolation; standardized mean differences before and after inverse
propensity weighting tell whether weighting balances the covariates.  For a
randomized experiment with known assignment probabilities the known
propensity is used downstream and the fitted model's AUC is a randomization
check (near 0.5 when assignment was random).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from manylift._core.checks import as_1d_float, check_in, check_positive_int
from manylift._core.errors import DataError, PropensityError
from manylift.single._models import cross_fit_proba, make_classifier

__all__ = [
    "PositivityResult",
    "estimate_propensity",
    "positivity_diagnostics",
    "standardized_mean_differences",
]

OVERLAP_BOUNDS = ((0.1, 0.9), (0.05, 0.95))


def _binary_treatment(treatment, n=None) -> np.ndarray:
    w = as_1d_float("treatment", treatment, n=n)
    bad = np.flatnonzero((w != 0) & (w != 1))
    if bad.size:
        raise DataError(
            f"'treatment' must be 0/1 here; {bad.size} value(s) are not "
            f"(e.g. {w[bad[:3]].tolist()}). Compare one arm with control at a time."
        )
    if w.min() == w.max():
        raise DataError("'treatment' has a single value; both treated and control rows are needed.")
    return w


def _covariate_matrix(covariates, n=None) -> np.ndarray:
    x = np.asarray(covariates, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"'covariates' must be a 2-d array (rows x columns); got shape {x.shape}.")
    if n is not None and x.shape[0] != n:
        raise DataError(f"'covariates' has {x.shape[0]} rows; expected {n} (one per customer).")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"'covariates' has {int(bad.sum())} non-finite value(s) in {rows.size} row(s) "
            f"(e.g. row {rows[0]}). Impute or drop them first."
        )
    return x


def estimate_propensity(covariates, treatment, *, model="gbm", n_folds: int = 5,
                        random_state=0, clip: float = 1e-3) -> np.ndarray:
    """Cross-fitted propensity scores.

    Parameters
    ----------
    covariates : array (n, p)
    treatment : array (n,) of int
        0/1, or arm codes 0..K.
    model : {"gbm", "logistic"} or scikit-learn classifier, default="gbm"
        ``"gbm"`` is a small single-threaded LightGBM classifier.
    n_folds : int, default=5
        Each row's score comes from a model not trained on it.
    random_state : int, default=0
    clip : float, default=1e-3
        Scores are clipped to [clip, 1 - clip] so that weights stay finite.

    Returns
    -------
    ndarray
        Shape (n,) with P(treated) for a 0/1 treatment; (n, K + 1) with the
        probability of every arm otherwise.
    """
    x = _covariate_matrix(covariates)
    w = np.asarray(treatment, dtype=int)
    n_folds = check_positive_int("n_folds", n_folds, "estimate_propensity", minimum=2)
    clf = make_classifier(model, random_state=random_state)
    proba = cross_fit_proba(x, w, clf, n_folds=n_folds, random_state=random_state)
    proba = np.clip(proba, clip, 1 - clip)
    proba /= proba.sum(axis=1, keepdims=True)
    return proba[:, 1] if proba.shape[1] == 2 else proba


def standardized_mean_differences(covariates, treatment, propensity=None,
                                  names=None) -> pd.DataFrame:
    """Standardized mean difference of every covariate, before and after weighting.

    SMD = (mean treated - mean control) / sqrt((var treated + var control) / 2),
    the denominator always from the unweighted sample (Austin 2009).  After
    weighting, the means are inverse-propensity weighted (1/e for treated,
    1/(1 - e) for control).  |SMD| < 0.1 is the usual balance threshold.

    References
    ----------
    Austin, P. C. (2009). Balance diagnostics for comparing the distribution of
    baseline covariates between treatment groups in propensity-score matched
    samples. Statistics in Medicine, 28(25), 3083-3107.
    """
    w = _binary_treatment(treatment)
    x = _covariate_matrix(covariates, n=w.size)
    names = list(names) if names is not None else [f"x{j}" for j in range(x.shape[1])]
    t, c = w == 1, w == 0
    var = (x[t].var(axis=0, ddof=1) + x[c].var(axis=0, ddof=1)) / 2
    sd = np.sqrt(np.where(var > 0, var, np.nan))
    before = (x[t].mean(axis=0) - x[c].mean(axis=0)) / sd
    out = pd.DataFrame({"covariate": names, "smd_before": before})
    if propensity is not None:
        e = as_1d_float("propensity", propensity, n=w.size)
        wt = np.where(t, 1 / e, 1 / (1 - e))
        m1 = np.average(x[t], axis=0, weights=wt[t])
        m0 = np.average(x[c], axis=0, weights=wt[c])
        out["smd_after"] = (m1 - m0) / sd
    return out


@dataclass(frozen=True)
class PositivityResult:
    """Positivity and balance diagnostics of one treated-versus-control comparison.

    Attributes
    ----------
    propensity : ndarray (n,)
        The propensity used downstream: the known one when given, else cross-fitted.
    fitted_propensity : ndarray (n,)
        The cross-fitted model's scores (their AUC is ``propensity_auc``).
    propensity_auc : float
        AUC of the cross-fitted scores for predicting treatment (0.5 = not
        predictable; near 1 = a positivity problem).
    overlap_share : dict
        ``{"0.1-0.9": share, "0.05-0.95": share}`` of customers whose
        propensity lies in the interval.
    balance : pandas.DataFrame
        ``covariate, smd_before, smd_after`` (after inverse-propensity weighting).
    known_propensity : bool
        True when a known assignment probability was used.
    treatment : ndarray (n,)
        The 0/1 treatment (kept so that displays can draw the histogram by arm).
    """

    propensity: np.ndarray
    fitted_propensity: np.ndarray
    propensity_auc: float
    overlap_share: dict
    balance: pd.DataFrame
    known_propensity: bool
    treatment: np.ndarray
    model: str = "gbm"

    @property
    def n_balanced(self) -> int:
        """Covariates with |SMD| < 0.1 before weighting."""
        return int((self.balance["smd_before"].abs() < 0.1).sum())

    @property
    def max_abs_smd(self) -> float:
        return float(self.balance["smd_before"].abs().max())

    def to_frame(self) -> pd.DataFrame:
        rows = [("propensity_auc", self.propensity_auc)]
        rows += [(f"overlap_share[{k}]", v) for k, v in self.overlap_share.items()]
        rows += [("balanced_covariates", self.n_balanced),
                 ("covariates", len(self.balance)),
                 ("max_abs_smd_before", self.max_abs_smd)]
        return pd.DataFrame(rows, columns=["diagnostic", "value"])

    def to_dict(self) -> dict:
        return {
            "propensity_auc": self.propensity_auc,
            "overlap_share": dict(self.overlap_share),
            "known_propensity": self.known_propensity,
            "balanced_covariates": self.n_balanced,
            "covariates": len(self.balance),
            "max_abs_smd_before": self.max_abs_smd,
            "max_abs_smd_after": float(self.balance["smd_after"].abs().max())
            if "smd_after" in self.balance else None,
        }

    def __repr__(self) -> str:
        ov = ", ".join(f"[{k}]: {v:.1%}" for k, v in self.overlap_share.items())
        return (f"PositivityResult(propensity_auc={self.propensity_auc:.3f}, overlap {ov}, "
                f"balanced={self.n_balanced}/{len(self.balance)}, "
                f"known_propensity={self.known_propensity})")


def positivity_diagnostics(covariates, treatment, propensity=None, *, covariate_names=None,
                           model="gbm", n_folds: int = 5, random_state=0) -> PositivityResult:
    """Propensity model, overlap and balance for a 0/1 treatment.

    Parameters
    ----------
    covariates : array (n, p)
    treatment : array (n,) of 0/1
    propensity : array (n,) or None, default=None
        Known assignment probabilities (randomized experiment).  When given,
        it is used downstream and the cross-fitted model's AUC serves as a
        randomization check.
    covariate_names : list of str, default=None
    model : {"gbm", "logistic"} or classifier, default="gbm"
    n_folds : int, default=5
    random_state : int, default=0

    Returns
    -------
    PositivityResult

    References
    ----------
    Petersen, M. L., Porter, K. E., Gruber, S., Wang, Y., & van der Laan, M. J.
    (2012). Diagnosing and responding to violations in the positivity
    assumption. Statistical Methods in Medical Research, 21(1), 31-54.

    Examples
    --------
    >>> from manylift.simulate.single import simulate_experiment
    >>> sim = simulate_experiment(600, random_state=0)
    >>> x = sim.frame[sim.covariates].to_numpy()
    >>> r = positivity_diagnostics(x, sim.frame["treatment"], model="logistic")
    >>> 0.35 < r.propensity_auc < 0.65
    True
    """
    w = _binary_treatment(treatment)
    x = _covariate_matrix(covariates, n=w.size)
    if isinstance(model, str):
        check_in("model", model, ["gbm", "lightgbm", "logistic"], "positivity_diagnostics")
    fitted = estimate_propensity(x, w.astype(int), model=model, n_folds=n_folds,
                                 random_state=random_state)
    auc = float(roc_auc_score(w, fitted))
    if propensity is not None:
        e = as_1d_float("propensity", propensity, n=w.size)
        bad = np.flatnonzero((e <= 0) | (e >= 1))
        if bad.size:
            raise PropensityError(
                f"'propensity' has {bad.size} value(s) outside (0, 1) (rows {bad[:5].tolist()}); "
                f"known assignment probabilities must be strictly between 0 and 1."
            )
        known = True
    else:
        e, known = fitted, False
    overlap = {f"{lo:g}-{hi:g}": float(np.mean((e >= lo) & (e <= hi))) for lo, hi in OVERLAP_BOUNDS}
    balance = standardized_mean_differences(x, w, e, names=covariate_names)
    return PositivityResult(
        propensity=e, fitted_propensity=fitted, propensity_auc=auc, overlap_share=overlap,
        balance=balance, known_propensity=known, treatment=w.astype(int),
        model=model if isinstance(model, str) else type(model).__name__,
    )
