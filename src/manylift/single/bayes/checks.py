"""Checks of the Bayesian uplift models: sampler diagnostics and predictive checks.

* :func:`diagnose`: ArviZ rank-normalized split R-hat and bulk / tail ESS per
  scalar parameter, and the divergent transitions (:class:`BayesDiagnostics`).
* :func:`predictive_check`: the outcome rate implied by prior draws (the mean
  predicted probability) or by replicated data sets from posterior draws, overall
  and per segment and arm, against the observed rate (:class:`PredictiveCheck`).
  It works on the cells of the design (a replicated cell of ``n`` rows is one
  binomial draw, or for the Gaussian family ``n`` normal draws summed), so it is
  exact and as fast as the collapse allows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift.single.bayes.data import BayesDesign

__all__ = ["BayesDiagnostics", "PredictiveCheck", "diagnose", "predictive_check", "sigmoid"]


def sigmoid(x):
    from scipy.special import expit

    return expit(x)  # overflow-free logistic


@dataclass(frozen=True, eq=False)
class BayesDiagnostics:
    """MCMC diagnostics (ArviZ rank-normalized split R-hat, bulk/tail ESS, divergences).

    Attributes
    ----------
    rhat_max, ess_bulk_min, ess_tail_min : float
        Worst values over all scalar parameters.
    divergences : int
        Divergent transitions after warm-up, all chains.
    n_draws, n_chains : int
    rhat_threshold : float
        R-hat above this fails (default 1.01).
    ess_threshold : float
        Bulk or tail ESS below this fails (default 100 per chain).
    table : pandas.DataFrame
        Per-parameter ``rhat``, ``ess_bulk``, ``ess_tail``.
    """

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    n_draws: int
    n_chains: int
    rhat_threshold: float
    ess_threshold: float
    table: pd.DataFrame = field(repr=False)

    @property
    def problems(self) -> list[str]:
        out = []
        if not self.rhat_max <= self.rhat_threshold:
            worst = self.table["rhat"].fillna(np.inf).idxmax()
            out.append(f"R-hat is {self.rhat_max:.3f} (> {self.rhat_threshold}) for {worst}")
        ess = min(self.ess_bulk_min, self.ess_tail_min)
        if not ess >= self.ess_threshold:
            worst = self.table[["ess_bulk", "ess_tail"]].min(axis=1).fillna(0).idxmin()
            out.append(
                f"the effective sample size is {ess:.0f} (< {self.ess_threshold:.0f}) for {worst}"
            )
        if self.divergences > 0:
            out.append(
                f"{self.divergences} of {self.n_draws * self.n_chains} draws came from "
                f"divergent transitions"
            )
        return out

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        return {
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": int(self.divergences),
            "passed": self.passed,
        }

    def __repr__(self) -> str:
        return (
            f"BayesDiagnostics(rhat_max={self.rhat_max:.4f}, ess_bulk_min={self.ess_bulk_min:.0f}, "
            f"ess_tail_min={self.ess_tail_min:.0f}, divergences={self.divergences}, "
            f"passed={self.passed})"
        )


@dataclass(frozen=True, eq=False)
class PredictiveCheck:
    """A prior or posterior predictive check of the outcome rate.

    Attributes
    ----------
    kind : str
        ``"prior"`` or ``"posterior"``.
    observed : float
        The observed mean outcome (conversion rate for a binary outcome).
    draws : ndarray, shape (n_draws,)
        The mean outcome implied by each draw: for the prior check, the mean of
        the predicted probabilities (the implied rate); for the posterior
        check, the mean of a replicated data set (includes sampling noise).
    row_values : ndarray
        A sample of row-level predicted probabilities / means (for histograms
        of the implied per-customer rates).
    groups : pandas.DataFrame
        Per segment x arm: ``observed``, predictive ``mean``, ``lo``, ``hi``
        (95%) and ``p_value`` = P(replicated >= observed).
    """

    kind: str
    observed: float
    draws: np.ndarray
    row_values: np.ndarray = field(repr=False)
    groups: pd.DataFrame = field(repr=False)

    @property
    def p_value(self) -> float:
        """Share of predictive draws at or above the observed value."""
        return float(np.mean(self.draws >= self.observed))

    @property
    def interval(self) -> tuple[float, float]:
        lo, hi = np.quantile(self.draws, [0.025, 0.975])
        return float(lo), float(hi)

    @property
    def covers_observed(self) -> bool:
        lo, hi = self.interval
        return bool(lo <= self.observed <= hi)

    def to_dict(self) -> dict:
        lo, hi = self.interval
        return {
            "observed": self.observed,
            "mean": float(np.mean(self.draws)),
            "lo": lo,
            "hi": hi,
            "p_value": self.p_value,
        }

    def to_frame(self) -> pd.DataFrame:
        return self.groups.copy()

    def __repr__(self) -> str:
        lo, hi = self.interval
        return (
            f"PredictiveCheck(kind={self.kind!r}, observed={self.observed:.4g}, "
            f"predictive 95% [{lo:.4g}, {hi:.4g}], p_value={self.p_value:.3f})"
        )


def diagnose(grouped: dict, divergences: int, labels, *, n_chains: int, n_draws: int,
             rhat_threshold: float = 1.01, min_ess: float | None = None) -> BayesDiagnostics:
    """Diagnostics of draws grouped by chain (``{site: (chain, draw, ...)}``).

    ``labels(site, k)`` names the ``k`` scalars of a site.  A single chain is
    split in halves (split R-hat).  ``min_ess`` defaults to 100 per chain.
    """
    import arviz as az

    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, arr in grouped.items():
            if name == "effect_z":
                continue  # its transform `effect` is reported
            flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
            names = labels(name, flat.shape[2])
            for j in range(flat.shape[2]):
                x = flat[:, :, j]
                if x.shape[0] == 1:
                    # ArviZ needs two chains; split-R-hat on one chain compares its halves
                    half = x.shape[1] // 2
                    x = x[:, : 2 * half].reshape(2, half)
                rows[names[j]] = {
                    "rhat": float(az.rhat(x)),
                    "ess_bulk": float(az.ess(x, method="bulk")),
                    "ess_tail": float(az.ess(x, method="tail")),
                }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "parameter"
    # a parameter that never moves (e.g. a constant) gives NaN; treat as failing
    rhat = table["rhat"].fillna(np.inf)
    threshold = float(min_ess) if min_ess is not None else 100.0 * n_chains
    return BayesDiagnostics(
        rhat_max=float(rhat.max()),
        ess_bulk_min=float(table["ess_bulk"].fillna(0).min()),
        ess_tail_min=float(table["ess_tail"].fillna(0).min()),
        divergences=int(divergences), n_draws=int(n_draws), n_chains=int(n_chains),
        rhat_threshold=float(rhat_threshold), ess_threshold=threshold, table=table,
    )


def linear_predictor(d: BayesDesign, base, tau, beta, treated) -> np.ndarray:
    """eta (D, C) of every cell at treatment ``treated`` (0/1 per cell or a scalar), with
    ``base`` (D, S), ``tau`` (D, S), ``beta`` (D, k) on the model's centred design."""
    idx = d.segment_index
    w = np.broadcast_to(np.asarray(treated, dtype=float), idx.shape)
    eta = base[:, idx] + tau[:, idx] * (w - d.treated_share[idx])[None, :]
    if beta.shape[1]:
        eta = eta + beta @ d.X.T
    return eta


def cell_means(d: BayesDesign, base, tau, beta, treated) -> np.ndarray:
    """Mean outcome (outcome units) of every cell at treatment ``treated``: (D, C)."""
    eta = linear_predictor(d, base, tau, beta, treated)
    if d.family == "bernoulli":
        return sigmoid(eta)
    return d.y_loc + d.y_scale * eta


def predictive_check(d: BayesDesign, kind: str, params, rng, replicate: bool,
                     chunk: int = 64) -> PredictiveCheck:
    """Predictive check from parameter draws ``(base, tau, beta, noise)``.

    ``replicate=False`` (prior check): per draw the mean predicted outcome over
    the rows.  ``replicate=True`` (posterior check): per draw a replicated data
    set of the same rows, its mean outcome, overall and per segment and arm.
    """
    base, tau, beta, noise = params
    D = base.shape[0]
    S = d.n_segments
    group = d.segment_index * 2 + d.treated.astype(int)
    G = 2 * S
    gcount = np.bincount(group, weights=d.n, minlength=G)
    onehot = np.zeros((G, d.n_cells))
    onehot[group, np.arange(d.n_cells)] = 1.0
    N = d.n.sum()
    rates = np.empty(D)
    grates = np.empty((D, G))
    row_sample = []
    n_keep = max(1, 20000 // max(D, 1))
    pick = d.n / N
    for start in range(0, D, chunk):
        sl = slice(start, min(D, start + chunk))
        mu = cell_means(d, base[sl], tau[sl], beta[sl], d.treated)  # (c, C), outcome units
        if replicate:
            if d.family == "bernoulli":
                tot = rng.binomial(d.n.astype(np.int64)[None, :], np.clip(mu, 0.0, 1.0))
            else:
                # the sum of n normal draws of sd sigma: n mu + sqrt(n) sigma z (outcome units)
                sd = d.y_scale * noise[sl][:, None]
                tot = d.n * mu + np.sqrt(d.n) * sd * rng.standard_normal(mu.shape)
        else:
            tot = d.n * mu
        rates[sl] = tot.sum(axis=1) / N
        with np.errstate(invalid="ignore", divide="ignore"):
            grates[sl] = (tot @ onehot.T) / gcount
        # implied per-customer values: cells drawn in proportion to their rows
        cols = rng.choice(d.n_cells, size=n_keep, p=pick)
        row_sample.append(mu[:, cols].ravel())
    total = d.y_loc * d.n + d.y_scale * d.y_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        obs_g = np.bincount(group, weights=total, minlength=G) / gcount
    recs = []
    for g in range(G):
        if gcount[g] == 0:
            continue
        q = np.quantile(grates[:, g], [0.025, 0.975])
        recs.append({
            "segment": d.segments[g // 2],
            "arm": "treated" if g % 2 else "control",
            "n": int(gcount[g]),
            "observed": float(obs_g[g]),
            "mean": float(grates[:, g].mean()),
            "lo": float(q[0]),
            "hi": float(q[1]),
            "p_value": float(np.mean(grates[:, g] >= obs_g[g])),
        })
    return PredictiveCheck(
        kind=kind, observed=d.outcome_mean, draws=rates,
        row_values=np.concatenate(row_sample), groups=pd.DataFrame.from_records(recs),
    )
