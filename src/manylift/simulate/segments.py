"""A randomized experiment with customer segments and known segment effects.

The ground truth for the Bayesian decisioning tests: a logistic (or Gaussian)
outcome whose treatment effect differs by segment, with the true effects,
the true per-row potential-outcome means and the true segment uplifts
returned next to the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.errors import ModelError
from manylift._core.rng import as_generator

__all__ = ["SegmentExperiment", "simulate_segment_experiment"]


@dataclass(frozen=True, eq=False)
class SegmentExperiment:
    """Simulated data and its truth.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``segment`` (str), ``treatment`` (0/1), ``outcome``, and
        ``x0``, ``x1``, ... (standard-normal pre-treatment covariates).
    segments : tuple of str
    effect : ndarray, shape (n_segments,)
        True effect per segment on the linear-predictor scale (log-odds for
        ``family="bernoulli"``, outcome units for ``"gaussian"``).
    uplift : ndarray, shape (n_segments,)
        True uplift per segment: mean over the segment's rows of
        ``mu1(x_i) - mu0(x_i)`` (conditional on the simulated covariates).
    overall_uplift : float
        The same over all rows.
    mu0, mu1 : ndarray, shape (n,)
        True mean outcome of each row under control / treatment.
    """

    frame: pd.DataFrame
    segments: tuple
    effect: np.ndarray
    uplift: np.ndarray
    overall_uplift: float
    mu0: np.ndarray = field(repr=False)
    mu1: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The truth per segment: ``segment``, ``n``, ``effect``, ``uplift``."""
        n = self.frame["segment"].value_counts().reindex(list(self.segments)).to_numpy()
        return pd.DataFrame({"segment": list(self.segments), "n": n,
                             "effect": self.effect, "uplift": self.uplift})

    def __repr__(self) -> str:
        return (f"SegmentExperiment(rows={len(self.frame)}, segments={len(self.segments)}, "
                f"overall_uplift={self.overall_uplift:.4g})")


def simulate_segment_experiment(n_per_segment=(2000, 2000, 2000, 2000),
                                effects=(0.2, 0.4, 0.6, 0.8), baselines=None,
                                family="bernoulli", propensity=0.5, n_covariates=2,
                                covariate_effect=0.3, noise_sd=1.0,
                                random_state=0) -> SegmentExperiment:
    """Simulate a randomized experiment with segment-specific treatment effects.

    Bernoulli: ``logit P(y=1) = baseline_s + effect_s * W + covariate_effect * sum_k x_k``;
    Gaussian: ``y = baseline_s + effect_s * W + covariate_effect * sum_k x_k + noise``.
    Treatment is assigned by a fair coin with probability ``propensity``.

    Parameters
    ----------
    n_per_segment : sequence of int, default=(2000, 2000, 2000, 2000)
        Rows per segment (segments are named ``"s0"``, ``"s1"``, ...).
    effects : sequence of float, default=(0.2, 0.4, 0.6, 0.8)
        True effect per segment on the linear-predictor scale.
    baselines : sequence of float, default=None
        Control linear predictor per segment; ``None`` gives -2.0 (Bernoulli,
        about 12% control rate) or 0.0 (Gaussian) everywhere.
    family : {"bernoulli", "gaussian"}, default="bernoulli"
    propensity : float, default=0.5
    n_covariates : int, default=2
    covariate_effect : float, default=0.3
    noise_sd : float, default=1.0
        Residual sd (Gaussian only).
    random_state : int or Generator, default=0

    Returns
    -------
    SegmentExperiment

    Examples
    --------
    >>> sim = simulate_segment_experiment(n_per_segment=(100, 100), effects=(0.0, 1.0))
    >>> sim.frame.shape
    (200, 5)
    """
    n_per = np.asarray(n_per_segment, dtype=int)
    eff = np.asarray(effects, dtype=float)
    if n_per.ndim != 1 or eff.shape != n_per.shape or (n_per < 1).any():
        raise ModelError(
            f"n_per_segment and effects must be equally long with positive counts; got "
            f"{n_per.tolist()} and {eff.tolist()}."
        )
    if family not in ("bernoulli", "gaussian"):
        raise ModelError(f"The 'family' parameter must be 'bernoulli' or 'gaussian'; got {family!r}.")
    if not 0 < propensity < 1:
        raise ModelError(f"The 'propensity' parameter must be in (0, 1); got {propensity!r}.")
    S = n_per.size
    base = (np.full(S, -2.0 if family == "bernoulli" else 0.0) if baselines is None
            else np.asarray(baselines, dtype=float))
    if base.shape != (S,):
        raise ModelError(f"baselines must have one value per segment ({S}); got {base.tolist()}.")
    rng = as_generator(random_state)
    seg = np.repeat(np.arange(S), n_per)
    n = seg.size
    X = rng.standard_normal((n, n_covariates))
    w = (rng.random(n) < propensity).astype(int)
    lin0 = base[seg] + covariate_effect * X.sum(axis=1)
    lin1 = lin0 + eff[seg]
    if family == "bernoulli":
        mu0 = 1.0 / (1.0 + np.exp(-lin0))
        mu1 = 1.0 / (1.0 + np.exp(-lin1))
        y = (rng.random(n) < np.where(w == 1, mu1, mu0)).astype(int)
    else:
        mu0, mu1 = lin0, lin1
        y = np.where(w == 1, mu1, mu0) + noise_sd * rng.standard_normal(n)
    names = tuple(f"s{k}" for k in range(S))
    frame = pd.DataFrame({"segment": np.asarray(names)[seg], "treatment": w, "outcome": y})
    for k in range(n_covariates):
        frame[f"x{k}"] = X[:, k]
    diff = mu1 - mu0
    uplift = np.bincount(seg, weights=diff, minlength=S) / n_per
    return SegmentExperiment(frame=frame, segments=names, effect=eff, uplift=uplift,
                             overall_uplift=float(diff.mean()), mu0=mu0, mu1=mu1)
