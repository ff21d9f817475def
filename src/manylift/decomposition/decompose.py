"""``decompose(fit)``: every decomposition of a pooled fit, and its results.json section."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift.decomposition.effects import (
    AttributeRegression,
    EffectCurve,
    activity_effects,
    attribute_regression,
    fatigue_curves,
    week_trend,
)
from manylift.decomposition.shapley import ShapleyResult, shapley_decompositions
from manylift.decomposition.shares import (
    HeterogeneityShares,
    VarianceShares,
    heterogeneity_shares,
)
from manylift.pooled.holdout import HoldoutComponents, holdout_components, holdout_problem

__all__ = ["Decomposition", "decompose", "results_section"]


@dataclass(frozen=True, repr=False)
class Decomposition:
    """All decompositions of a pooled fit (docs/results.md).

    Attributes
    ----------
    shares : HeterogeneityShares or None
        Finite-population sds of the effect components, sd_share and variance_share.
    shapley_ipw, shapley_autoc : ShapleyResult or None
        None when the fit has no usable holdout (``holdout_problem`` says why).
    attributes : AttributeRegression or None
    weeks : EffectCurve
        Week deviations tau_t with ``extra["trend"]`` (outcome units per week).
    fatigue_stock, fatigue_recency : EffectCurve
    activity : EffectCurve
    holdout_problem : str or None
    """

    shares: HeterogeneityShares | None
    shapley_ipw: ShapleyResult | None
    shapley_autoc: ShapleyResult | None
    attributes: AttributeRegression | None
    weeks: EffectCurve
    fatigue_stock: EffectCurve
    fatigue_recency: EffectCurve
    activity: EffectCurve
    holdout_problem: str | None = None

    @property
    def variance_share(self) -> VarianceShares | None:
        """The shares s_f^2 / sum s_f^2 alone (earlier interface); see ``shares``."""
        return None if self.shares is None else self.shares.as_variance_shares()

    def to_dict(self) -> dict:
        """The ``decomposition`` section of results.json."""
        if self.shares is None:
            out = {"sd_share": None, "sd": None, "variance_share": None,
                   "sd_observed_parts": None}
        else:
            out = self.shares.to_dict()
        for name in ("shapley_ipw", "shapley_autoc"):
            r = getattr(self, name)
            out[name] = None if r is None else r.to_dict()
        if self.holdout_problem:
            out["holdout_problem"] = self.holdout_problem
        out["campaign_attributes"] = None if self.attributes is None else self.attributes.to_dict()
        wk = self.weeks.to_dict()
        out["week_trend"] = wk["trend"]
        out["fatigue"] = {"by_stock_quintile": self.fatigue_stock.to_dict()["levels"],
                          "by_recency": self.fatigue_recency.to_dict()["levels"],
                          "never_treated": self.fatigue_stock.to_dict()["never_treated"]}
        out["activity"] = self.activity.to_dict()["levels"]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Shares (posterior means) and both Shapley shares side by side."""
        cols = ["sd", "sd_share", "variance_share", "shapley_ipw", "shapley_autoc"]
        if self.shares is None:
            return pd.DataFrame(columns=cols)
        f = self.shares.to_frame()
        for name in ("shapley_ipw", "shapley_autoc"):
            r = getattr(self, name)
            sh = {} if r is None or r.shares is None else r.shares
            wsh = {} if r is None or r.within_shares is None else r.within_shares
            f = f.reindex(list(dict.fromkeys([*f.index, "customer"])))
            f[name] = pd.Series({k: float(np.mean(v)) for k, v in {**sh, **wsh}.items()})
        return f[cols]

    def __repr__(self) -> str:
        return f"Decomposition({self.shares!r}, fatigue={self.fatigue_stock!r})"


def decompose(fit, components: HoldoutComponents | None = None, *,
              progress: bool = False) -> Decomposition:
    """Shares, Shapley values (IPW and AUTOC payoffs) and effect curves of a fit.

    Parameters
    ----------
    fit : PooledFit
    components : HoldoutComponents, optional
        The holdout components (built from the fit when not given).
    progress : bool, default=False
        A progress bar over the draws of the Shapley games.

    Returns
    -------
    Decomposition
        The holdout parts (shares, Shapley values) are None when the fit has no
        usable holdout rows (``holdout_problem`` says why).
    """
    arrays = fit.inputs.holdout_arrays
    problem = holdout_problem(arrays.treatment)
    h = None if problem else (components if components is not None
                              else holdout_components(fit))
    stock, recency = fatigue_curves(fit)
    shapley = ({} if h is None
               else shapley_decompositions(fit, ("ipw", "autoc"), h, progress=progress))
    return Decomposition(
        shares=None if h is None else heterogeneity_shares(fit, h),
        shapley_ipw=shapley.get("ipw"),
        shapley_autoc=shapley.get("autoc"),
        attributes=attribute_regression(fit),
        weeks=week_trend(fit),
        fatigue_stock=stock,
        fatigue_recency=recency,
        activity=activity_effects(fit),
        holdout_problem=problem,
    )


def results_section(fit) -> dict:
    """``decompose(fit).to_dict()``: the ``decomposition`` key of results.json."""
    return decompose(fit).to_dict()
