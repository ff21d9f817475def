"""Gelman finite-population standard deviations of the effect components, and their shares.

Definitions follow "Learning from Many Experiments: A Hierarchical Bayesian
Framework for Decomposing Marketing Treatment Heterogeneity" (the paper), section
7.1, Table 4 and Web Appendix B.1, which follow Gelman (2005) and Gelman and
Hill (2006, pp. 460-462).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift.decomposition._summary import summary
from manylift.pooled.holdout import HoldoutComponents, holdout_components

__all__ = ["HeterogeneityShares", "VarianceShares", "heterogeneity_shares", "variance_shares",
           "variance_shares_from_arrays", "shares_from_sd"]

SHARE_COMPONENTS = ("unobserved", "observed", "week", "campaign")


@dataclass(frozen=True, repr=False)
class HeterogeneityShares:
    """Per-draw finite-population sds of the effect components and two kinds of shares.

    Attributes
    ----------
    sd : dict of ndarray (D,)
        s_f for ``unobserved`` (uI_i), ``observed`` (gammaI' V_ij), ``week``
        (tau_t) and ``campaign`` (tau_c), in outcome units.
    sd_share : dict of ndarray (D,)
        s_f / sum_f s_f: the paper's normalised shares ("Learning from Many
        Experiments", Table 4); they sum to 1 in every draw.
    variance_share : dict of ndarray (D,)
        s_f^2 / sum_f s_f^2; they also sum to 1 in every draw.
    observed_parts : dict of ndarray (D,)
        s_f of the parts of the observed component: ``activity`` (activity
        bins), ``exposure`` (recency x stock cells) and ``proportion_treated``
        (sd of the centred share times |coefficient|, the paper's footnote).
        They need not add up to ``sd["observed"]`` (sds of a sum do not add).
    """

    sd: dict
    sd_share: dict
    variance_share: dict
    observed_parts: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{"sd_share", "sd", "variance_share", "sd_observed_parts"}`` of summaries."""
        return {"sd_share": {k: summary(v) for k, v in self.sd_share.items()},
                "sd": {k: summary(v) for k, v in self.sd.items()},
                "variance_share": {k: summary(v) for k, v in self.variance_share.items()},
                "sd_observed_parts": {k: summary(v) for k, v in self.observed_parts.items()}}

    def to_frame(self) -> pd.DataFrame:
        """Posterior means of s_f, sd_share and variance_share per component."""
        return pd.DataFrame({
            "sd": {k: float(np.mean(v)) for k, v in self.sd.items()},
            "sd_share": {k: float(np.mean(v)) for k, v in self.sd_share.items()},
            "variance_share": {k: float(np.mean(v)) for k, v in self.variance_share.items()},
        })

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={float(np.mean(v)):.3f}" for k, v in self.sd_share.items())
        return f"HeterogeneityShares(sd_share: {inner})"

    def as_variance_shares(self) -> VarianceShares:
        """The squared-sd shares alone, in the shape of earlier versions."""
        return VarianceShares(shares=self.variance_share, sd=self.sd)


@dataclass(frozen=True, repr=False)
class VarianceShares:
    """Per-draw shares s_f^2 / sum s_f^2 (they sum to 1 in every draw) and the sds behind them.

    ``to_dict()`` gives ``{component: summary}`` of the shares (the
    ``decomposition.variance_share`` key of results.json).
    """

    shares: dict
    sd: dict

    def to_dict(self) -> dict:
        return {k: summary(v) for k, v in self.shares.items()}

    def to_frame(self) -> pd.DataFrame:
        rows = {k: {**summary(self.shares[k]), "sd_mean": float(np.mean(self.sd[k]))}
                for k in self.shares}
        return pd.DataFrame(rows).T

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={float(np.mean(v)):.3f}" for k, v in self.shares.items())
        return f"VarianceShares({inner})"


def shares_from_sd(sd: dict, observed_parts: dict | None = None) -> HeterogeneityShares:
    """Both kinds of shares from per-draw component sds ``{name: (D,)}``."""
    sd = {k: np.atleast_1d(np.asarray(v, float)) for k, v in sd.items()}
    tot = sum(sd.values())
    tot2 = sum(s ** 2 for s in sd.values())
    with np.errstate(divide="ignore", invalid="ignore"):
        sd_share = {k: s / tot for k, s in sd.items()}
        var_share = {k: s ** 2 / tot2 for k, s in sd.items()}
    return HeterogeneityShares(sd=sd, sd_share=sd_share, variance_share=var_share,
                               observed_parts=dict(observed_parts or {}))


def variance_shares_from_arrays(components: dict, ddof: dict | int = 0) -> HeterogeneityShares:
    """Shares from per-draw component values over rows.

    Parameters
    ----------
    components : dict of array-like (D, n)
        One (draws x rows) array per component.
    ddof : int or dict, default=0
        Delta degrees of freedom of each component's sd over rows (a dict maps
        names to values; missing names use 0).

    Returns
    -------
    HeterogeneityShares

    References
    ----------
    Gelman, A. (2005). Analysis of variance - why it is more important than ever.
    Annals of Statistics 33(1), 1-53 (finite-population standard deviations).

    Examples
    --------
    >>> a = np.array([[1.0, -1.0, 1.0, -1.0]]); b = np.array([[0.0, 0.0, 2.0, 2.0]])
    >>> r = variance_shares_from_arrays({"a": a, "b": b})
    >>> float(r.sd_share["a"][0]), float(r.variance_share["a"][0])
    (0.5, 0.5)
    """
    dd = ddof if isinstance(ddof, dict) else {k: int(ddof) for k in components}
    sd = {k: np.atleast_2d(np.asarray(v, float)).std(axis=1, ddof=dd.get(k, 0))
          for k, v in components.items()}
    return shares_from_sd(sd)


def _customer_sd(unobserved: np.ndarray, customer: np.ndarray) -> np.ndarray:
    """sd over customers (ddof 1, the paper's s_u) of uI per draw (one value per customer)."""
    _, first = np.unique(customer, return_index=True)
    u = unobserved[:, np.sort(first)].astype(np.float64)
    return u.std(axis=1, ddof=1) if u.shape[1] > 1 else np.zeros(u.shape[0])


def heterogeneity_shares(fit, components: HoldoutComponents | None = None
                         ) -> HeterogeneityShares:
    """Finite-population sds of the effect components over the holdout, and their shares.

    Per functional draw, following the paper's Web Appendix B.1 (Gelman's
    finite-population sds): s_unobserved is the sd of uI_i over the holdout
    customers (divisor n - 1); s_observed, s_week and s_campaign are the sds
    over holdout rows of gammaI' V_ij, tau_t and tau_c (divisor n: the
    lambda-weighted sd of level effects, lambda the rows' shares of each
    level). ``sd_share`` = s_f / sum s_f (the paper's s_f^N);
    ``variance_share`` = s_f^2 / sum s_f^2.

    Parameters
    ----------
    fit : PooledFit
    components : HoldoutComponents, optional

    Returns
    -------
    HeterogeneityShares
    """
    h = components if components is not None else holdout_components(fit)
    sd: dict = {k: [] for k in SHARE_COMPONENTS}
    parts: dict = {}
    for sl in h.blocks():
        b = h.block(sl)
        sd["unobserved"].append(_customer_sd(b.unobserved, h.arrays.customer))
        for k in ("observed", "week", "campaign"):
            sd[k].append(getattr(b, k).std(axis=1, dtype=np.float64))
        for k, v in b.parts_sd.items():
            parts.setdefault(k, []).append(v)
    return shares_from_sd({k: np.concatenate(v) for k, v in sd.items()},
                          {k: np.concatenate(v) for k, v in parts.items()})


def variance_shares(fit, components: HoldoutComponents | None = None) -> VarianceShares:
    """The shares s_f^2 / sum s_f^2 of :func:`heterogeneity_shares` (earlier interface)."""
    return heterogeneity_shares(fit, components).as_variance_shares()
