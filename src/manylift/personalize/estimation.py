"""Estimating sigma, rho, s and sigma_eps from a multi-arm experiment.

The procedure of Shchetkina and Berman, section 5.2:

1. Split the rows into a training part and a holdout (``test_size`` of each
   arm).  Fit a T-learner on the training part: one LightGBM outcome model
   ``h_a`` per arm (the paper uses XGBoost; both are gradient-boosted trees).
2. On the holdout predict ``y_hat_i^a = h_a(x_i)`` for every unit and arm.
3. ``sigma_eps^2 = Var(y_i - y_hat_i^{T_i})``: the out-of-sample residual
   variance of each unit's own arm.
4. ``sigma`` (stratified estimator, Proposition 4): for the holdout units of
   arm a, cut ``y_hat^a`` into ``n_bins`` quantile bins; ``sigma_a^2`` is the
   variance of the bins' mean observed outcomes (weighted by bin size, i.e.
   the between-bin term of the law of total variance, eq. 12);
   ``sigma = sqrt(mean_a sigma_a^2)``.
5. ``rho``: give every holdout unit, for every arm a, the mean observed
   outcome of the arm-a bin its ``y_hat^a`` falls in; ``rho`` is the mean of
   the pairwise correlations of these assigned outcomes across arms.
6. ``s``: the standard deviation (ddof=1) of the arm means over all rows.

Intervals: 95% basic bootstrap (``2 t - replicate quantiles``), resampling
holdout rows (steps 3-5, the fitted outcome models held fixed) and all rows
within arm (step 6); the replicates apply the very estimator of the point
estimate to the resampled rows.  The binned estimators are biased (the noise of
the bin means inflates sigma and attenuates rho), and resampling adds a second
dose of that noise, so their bootstrap distribution can sit wholly on one side
of the statistic.  Then the reported estimate is bias-corrected
(:func:`~manylift.personalize._bootstrap.bootstrap_interval`): it is the point the
basic interval is built around and always lies inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_positive_int
from manylift._core.rng import as_generator
from manylift.personalize._bootstrap import (
    Interval,
    bootstrap_interval,
    holdout_mask,
    prepare_arrays,
)
from manylift.personalize.montecarlo import GainParameters
from manylift.single._models import make_regressor
from manylift.single.progress import as_progress

__all__ = ["ParameterEstimates", "estimate_parameters", "stratified_moments"]


@dataclass(frozen=True)
class ParameterEstimates:
    """Estimated inputs of the gain model, each with a 95% bootstrap interval.

    Attributes
    ----------
    sigma, rho, s, sigma_eps : Interval
        ``estimate``, ``lo``, ``hi`` of each parameter (the estimate
        bias-corrected where the bootstrap shows a bias; ``uncorrected`` keeps
        the plug-in value).
    arms : list
        Arm labels (code order; the control first when one was named).
    arm_means : dict
        Mean outcome of each arm over all rows.
    arm_counts : dict
        Rows per arm.
    sigma_by_arm : dict
        The per-arm stratified sigma_a.
    rho_pairs : pandas.DataFrame
        ``arm_a, arm_b, rho`` for every pair of arms.
    n_train, n_test, n_bins : int
    bootstrap : pandas.DataFrame
        The bootstrap replicates (columns sigma, rho, s, sigma_eps).
    """

    sigma: Interval
    rho: Interval
    s: Interval
    sigma_eps: Interval
    arms: list
    arm_means: dict
    arm_counts: dict
    sigma_by_arm: dict
    rho_pairs: pd.DataFrame = field(repr=False)
    n_train: int = 0
    n_test: int = 0
    n_bins: int = 10
    bootstrap: pd.DataFrame = field(default=None, repr=False)

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    def point(self, **changes) -> GainParameters:
        """The point estimates as :class:`GainParameters` (normal F)."""
        p = GainParameters(
            sigma=self.sigma.estimate, rho=self.rho.estimate, s=self.s.estimate,
            sigma_eps=self.sigma_eps.estimate, n_arms=self.n_arms,
        )
        return p.replace(**changes) if changes else p

    def replicate_parameters(self) -> list[GainParameters]:
        """One :class:`GainParameters` per bootstrap replicate, reflected about the
        plug-in statistics (``2 theta_hat - theta_b``, the basic bootstrap, consistent
        with the parameter intervals: their median is the reported estimate) and
        clipped to the valid ranges (for intervals of the gain)."""
        m = self.n_arms
        lower = -1.0 / (m - 1)
        point = np.array([_raw(self.sigma), _raw(self.rho), _raw(self.s), _raw(self.sigma_eps)])
        out = []
        for row in self.bootstrap[["sigma", "rho", "s", "sigma_eps"]].to_numpy():
            if not np.all(np.isfinite(row)):
                continue
            sigma, rho, s, eps = 2 * point - row
            out.append(GainParameters(sigma=max(sigma, 0.0), rho=float(np.clip(rho, lower, 1.0)),
                                      s=max(s, 0.0), sigma_eps=max(eps, 0.0), n_arms=m))
        return out

    def to_frame(self) -> pd.DataFrame:
        rows = [{"parameter": k, **getattr(self, k).to_dict()} for k in ("sigma", "rho", "s", "sigma_eps")]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).to_dict() for k in ("sigma", "rho", "s", "sigma_eps")}

    def __repr__(self) -> str:
        return (
            f"ParameterEstimates(m={self.n_arms}, sigma={self.sigma!r}, rho={self.rho!r}, "
            f"s={self.s!r}, sigma_eps={self.sigma_eps!r}; {self.n_test} holdout rows, "
            f"{self.n_bins} bins)"
        )


def _raw(iv: Interval) -> float:
    return iv.estimate if iv.uncorrected is None else iv.uncorrected


def stratified_moments(outcome, arm_codes, predictions, n_bins: int = 10) -> dict:
    """sigma_a, sigma, the pairwise rho matrix, rho and sigma_eps from holdout predictions.

    Parameters
    ----------
    outcome : array of shape (n,)
        Observed holdout outcomes.
    arm_codes : int array of shape (n,)
        Arm of each holdout row, 0..m-1.
    predictions : array of shape (n, m)
        Out-of-sample predicted outcome of every row under every arm.
    n_bins : int, default=10
        Quantile bins (deciles in the paper).

    Returns
    -------
    dict
        ``sigma_by_arm`` (m,), ``sigma``, ``rho_matrix`` (m, m), ``rho``, ``sigma_eps``.

    References
    ----------
    Shchetkina and Berman (2024), section 5.2 and Proposition 4.
    """
    y = np.asarray(outcome, dtype=float)
    a = np.asarray(arm_codes)
    pred = np.asarray(predictions, dtype=float)
    n, m = pred.shape
    resid = y - pred[np.arange(n), a]
    sigma_eps = float(resid.std(ddof=1))
    sigma_a = np.full(m, np.nan)
    assigned = np.full((n, m), np.nan)
    probs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    for k in range(m):
        own = a == k
        if own.sum() < 2:
            continue
        p_own = pred[own, k]
        cuts = np.quantile(p_own, probs)
        b_own = np.searchsorted(cuts, p_own, side="right")
        counts = np.bincount(b_own, minlength=n_bins)
        sums = np.bincount(b_own, weights=y[own], minlength=n_bins)
        nonempty = counts > 0
        means = np.zeros(n_bins)
        means[nonempty] = sums[nonempty] / counts[nonempty]
        grand = y[own].mean()
        sigma_a[k] = np.sqrt(np.sum(counts * (means - grand) ** 2) / counts.sum())
        # empty bins (ties in the predictions) borrow the nearest non-empty bin below/above
        idx = np.flatnonzero(nonempty)
        fill = idx[np.clip(np.searchsorted(idx, np.arange(n_bins)), 0, idx.size - 1)]
        b_all = np.searchsorted(cuts, pred[:, k], side="right")
        assigned[:, k] = means[fill][b_all]
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = assigned - assigned.mean(axis=0)
        sd = np.sqrt((centred**2).mean(axis=0))
        rho_matrix = (centred.T @ centred / n) / np.outer(sd, sd)
    off = rho_matrix[np.triu_indices(m, 1)]
    return {
        "sigma_by_arm": sigma_a,
        "sigma": float(np.sqrt(np.nanmean(sigma_a**2))),
        "rho_matrix": rho_matrix,
        "rho": float(np.nanmean(off)) if np.isfinite(off).any() else float("nan"),
        "sigma_eps": sigma_eps,
    }


def _arm_means(y, codes, m):
    return np.bincount(codes, weights=y, minlength=m) / np.bincount(codes, minlength=m)


def fit_t_learner(x_train, y_train, a_train, m, random_state=0, **lgbm):
    """One LightGBM outcome model per arm (a T-learner); returns the fitted models."""
    models = []
    for k in range(m):
        rows = a_train == k
        models.append(make_regressor("lightgbm", random_state, **lgbm).fit(x_train[rows],
                                                                          y_train[rows]))
    return models


def estimate_parameters(
    outcome,
    arm,
    covariates,
    *,
    control=None,
    test=None,
    test_size: float = 0.3,
    n_bins: int = 10,
    n_bootstrap: int = 200,
    n_estimators: int = 200,
    learning_rate: float = 0.05,
    num_leaves: int = 15,
    min_child_samples: int = 50,
    random_state=0,
    n_jobs: int = 1,
    progress=False,
) -> ParameterEstimates:
    """Estimate sigma, rho, s and sigma_eps from a randomized multi-arm experiment.

    Parameters
    ----------
    outcome : array of shape (n,)
        Observed outcome.
    arm : array of shape (n,)
        Arm (treatment) label of each row; two or more arms.
    covariates : DataFrame or array of shape (n, p)
        Numeric pre-treatment covariates.
    control : label, default=None
        The control arm (listed first); it plays no special role here.
    test : bool array of shape (n,), default=None
        Holdout rows; default a random ``test_size`` share of each arm.
    test_size : float, default=0.3
        Holdout share when ``test`` is not given (the paper's 70/30 split).
    n_bins : int, default=10
        Quantile bins of the stratified estimator (deciles).
    n_bootstrap : int, default=200
        Bootstrap replicates for the 95% intervals (0 for none).
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM options
        Of the per-arm outcome models.
    random_state : int, Generator or None, default=0
    n_jobs : int, default=1
        LightGBM threads.
    progress : bool, default=False
        A progress bar over the bootstrap replicates (standard error).

    Returns
    -------
    ParameterEstimates

    References
    ----------
    Shchetkina and Berman (2024), section 5.2 and Proposition 4.
    Chen and Guestrin (2016), XGBoost (we use LightGBM: Ke et al. 2017).
    """
    where = "estimate_parameters"
    data = prepare_arrays(outcome, arm, covariates, control, where)
    y, codes, labels, x = data.outcome, data.treatment, data.arms, data.covariates
    n_bins = check_positive_int("n_bins", n_bins, where, minimum=2)
    n_bootstrap = check_positive_int("n_bootstrap", n_bootstrap, where, minimum=0)
    m = len(labels)
    rng = as_generator(random_state)
    if test is None:
        test = holdout_mask(codes, test_size, rng)
    test = np.asarray(test, dtype=bool)
    train = ~test
    models = fit_t_learner(
        x[train], y[train], codes[train], m, random_state=random_state,
        n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
        min_child_samples=min_child_samples, n_jobs=n_jobs,
    )
    pred = np.column_stack([mod.predict(x[test]) for mod in models])
    y_te, a_te = y[test], codes[test]
    est = stratified_moments(y_te, a_te, pred, n_bins)
    means = _arm_means(y, codes, m)
    s_hat = float(np.std(means, ddof=1))

    reps = np.full((n_bootstrap, 4), np.nan)
    n_te = y_te.shape[0]
    by_arm = [np.flatnonzero(codes == k) for k in range(m)]
    bar = as_progress(progress, "personalize").bar(range(n_bootstrap), desc="parameter bootstrap")
    for b in bar:
        idx = rng.integers(0, n_te, n_te)
        r = stratified_moments(y_te[idx], a_te[idx], pred[idx], n_bins)
        boot_means = np.array([y[rng.choice(rows, rows.size)].mean() for rows in by_arm])
        reps[b] = (r["sigma"], r["rho"], np.std(boot_means, ddof=1), r["sigma_eps"])
    boot = pd.DataFrame(reps, columns=["sigma", "rho", "s", "sigma_eps"])

    pairs = [
        {"arm_a": labels[i], "arm_b": labels[j], "rho": float(est["rho_matrix"][i, j])}
        for i in range(m) for j in range(i + 1, m)
    ]
    counts = np.bincount(codes, minlength=m)
    return ParameterEstimates(
        sigma=bootstrap_interval(est["sigma"], boot["sigma"], lower=0.0),
        rho=bootstrap_interval(est["rho"], boot["rho"], lower=-1.0 / (m - 1), upper=1.0),
        s=bootstrap_interval(s_hat, boot["s"], lower=0.0),
        sigma_eps=bootstrap_interval(est["sigma_eps"], boot["sigma_eps"], lower=0.0),
        arms=labels,
        arm_means={lab: float(v) for lab, v in zip(labels, means)},
        arm_counts={lab: int(c) for lab, c in zip(labels, counts)},
        sigma_by_arm={lab: float(v) for lab, v in zip(labels, est["sigma_by_arm"])},
        rho_pairs=pd.DataFrame(pairs),
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        n_bins=n_bins,
        bootstrap=boot,
    )
