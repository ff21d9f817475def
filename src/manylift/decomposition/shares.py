"""Gelman finite-population variance shares of the effect components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift.decomposition._summary import summary
from manylift.pooled.holdout import HoldoutComponents, holdout_components

__all__ = ["VarianceShares", "variance_shares", "variance_shares_from_arrays"]

SHARE_COMPONENTS = ("unobserved", "observed", "week", "campaign")


@dataclass(frozen=True, repr=False)
class VarianceShares:
    """Per-draw finite-population variance shares (they sum to 1 in every draw).

    Attributes
    ----------
    shares : dict of ndarray (D,)
        ``unobserved`` (uI_i), ``observed`` (gammaI' V_ij), ``week`` (tau_t),
        ``campaign`` (tau_c).
    sd : dict of ndarray (D,)
        The finite-population standard deviations (outcome units) behind them.
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


def variance_shares_from_arrays(components: dict) -> VarianceShares:
    """Shares of sd_k^2 / sum_k sd_k^2 per draw, sd_k the sd over rows of component k.

    Parameters
    ----------
    components : dict of array-like (D, n)
        One (draws x rows) array per component.

    Returns
    -------
    VarianceShares

    References
    ----------
    Gelman, A. (2005). Analysis of variance - why it is more important than ever.
    Annals of Statistics 33(1), 1-53 (finite-population standard deviations).

    Examples
    --------
    >>> a = np.array([[1.0, -1.0, 1.0, -1.0]]); b = np.array([[0.0, 0.0, 1.0, 1.0]])
    >>> variance_shares_from_arrays({"a": a, "b": b}).shares["a"].round(3).tolist()
    [0.8]
    """
    sd = {k: np.atleast_2d(np.asarray(v, float)).std(axis=1, ddof=1) for k, v in components.items()}
    tot = sum(s ** 2 for s in sd.values())
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = {k: s ** 2 / tot for k, s in sd.items()}
    return VarianceShares(shares=shares, sd=sd)


def variance_shares(fit, components: HoldoutComponents | None = None) -> VarianceShares:
    """Finite-population variance shares of the effect components over the holdout rows.

    For each functional draw, the sd over holdout rows of uI_i, gammaI' V_ij,
    tau_t and tau_c, squared and normalised to sum to 1 (DESIGN.md section 5).

    Parameters
    ----------
    fit : PooledFit
    components : HoldoutComponents, optional

    Returns
    -------
    VarianceShares
    """
    h = components if components is not None else holdout_components(fit)
    return variance_shares_from_arrays({k: getattr(h, k) for k in SHARE_COMPONENTS})
