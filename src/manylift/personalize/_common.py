"""Helpers shared by the personalize modules: arm coding, covariates, splits, learners."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift._core.checks import as_1d_float, check_probability, example_ids
from manylift._core.errors import DataError, ModelError
from manylift._core.rng import as_generator, seed_int

__all__ = [
    "encode_arms", "covariate_matrix", "check_outcome", "holdout_mask", "lgbm_regressor",
    "Interval", "basic_interval", "percentile_interval",
]


def encode_arms(arm, control=None, where: str = "personalize") -> tuple[np.ndarray, list]:
    """Integer codes 0..m-1 for the arm labels; the control (if given) gets code 0.

    The other labels follow in sorted order (as strings), so codes are
    deterministic.
    """
    values = pd.Series(np.asarray(arm, dtype=object).reshape(-1))
    if values.isna().any():
        bad = np.flatnonzero(values.isna().to_numpy())
        raise DataError(
            f"The arm (treatment) values of {where} have {bad.size} missing value(s) at row(s) "
            f"{example_ids(bad)}. Drop those rows first."
        )
    labels = sorted(pd.unique(values), key=lambda v: (str(type(v)), str(v)))
    if control is not None:
        matches = [lab for lab in labels if lab == control or str(lab) == str(control)]
        if not matches:
            raise DataError(
                f"The control value {control!r} of {where} is not among the arm labels "
                f"{example_ids(labels, 10)}. Pass one of them with control=..."
            )
        labels = [matches[0]] + [lab for lab in labels if lab is not matches[0]]
    if len(labels) < 2:
        raise DataError(
            f"{where} needs an experiment with at least 2 arms; the treatment holds only "
            f"{example_ids(labels)}. Check the treatment column."
        )
    lookup = {lab: k for k, lab in enumerate(labels)}
    codes = values.map(lookup).to_numpy(dtype=np.int64)
    counts = np.bincount(codes, minlength=len(labels))
    if counts.min() < 20:
        small = [f"{labels[k]!r} ({counts[k]} rows)" for k in np.flatnonzero(counts < 20)]
        raise DataError(
            f"{where} needs at least 20 rows per arm; arm(s) {', '.join(small)} have fewer. "
            f"Merge or drop those arms."
        )
    return codes, list(labels)


def covariate_matrix(covariates, n: int, where: str = "personalize") -> tuple[np.ndarray, list[str]]:
    """A finite float matrix (n, p) and its column names from a DataFrame or array."""
    if isinstance(covariates, pd.DataFrame):
        names = [str(c) for c in covariates.columns]
        try:
            x = covariates.to_numpy(dtype=float)
        except (TypeError, ValueError):
            bad = [c for c in covariates.columns if not pd.api.types.is_numeric_dtype(covariates[c])]
            raise DataError(
                f"The covariates of {where} must be numeric; column(s) {example_ids(bad)} are not. "
                f"One-hot encode them first."
            ) from None
    else:
        x = np.asarray(covariates, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        names = [f"x{j + 1}" for j in range(x.shape[1])]
    if x.ndim != 2 or x.shape[0] != n:
        raise DataError(f"The covariates of {where} must be a matrix with {n} rows; got shape {x.shape}.")
    if x.shape[1] == 0:
        raise DataError(f"{where} needs at least one covariate; got none.")
    bad_rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad_rows.size:
        raise DataError(
            f"The covariates of {where} have non-finite values (NaN or inf) in {bad_rows.size} row(s), "
            f"e.g. row(s) {example_ids(bad_rows)}. Drop or impute them first."
        )
    return x, names


def check_outcome(outcome, n: int | None = None) -> np.ndarray:
    return as_1d_float("outcome", outcome, n=n)


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


def lgbm_regressor(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=50,
                   random_state=0, n_jobs=1):
    """A small, regularised LightGBM regressor (deterministic, quiet)."""
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
        min_child_samples=min_child_samples, subsample=1.0, colsample_bytree=1.0,
        random_state=seed_int(random_state), n_jobs=n_jobs, verbose=-1, deterministic=True,
        force_row_wise=True,
    )


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95% interval (``lo``, ``hi``)."""

    estimate: float
    lo: float
    hi: float

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "lo": self.lo, "hi": self.hi}

    def __repr__(self) -> str:
        return f"{self.estimate:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def basic_interval(estimate: float, draws: np.ndarray, lower: float = -np.inf,
                   upper: float = np.inf) -> Interval:
    """95% basic (reverse-percentile) bootstrap interval ``[2 t - q97.5, 2 t - q2.5]``.

    It corrects the first-order bias of the bootstrap distribution, which
    matters for the stratified estimators: resampling duplicates rows, adds
    noise to the bin means and pulls the replicates of rho (and sigma) away
    from the estimate.  Clipped to ``[lower, upper]``.
    """
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size < 2:
        return Interval(float(estimate), float("nan"), float("nan"))
    q_lo, q_hi = np.quantile(draws, [0.025, 0.975])
    lo = float(np.clip(2 * estimate - q_hi, lower, upper))
    hi = float(np.clip(2 * estimate - q_lo, lower, upper))
    return Interval(float(estimate), lo, hi)


def percentile_interval(estimate: float, draws: np.ndarray) -> Interval:
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size < 2:
        return Interval(float(estimate), float("nan"), float("nan"))
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return Interval(float(estimate), float(lo), float(hi))
