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
from manylift.decomposition.shapley import ShapleyResult, shapley_decomposition
from manylift.decomposition.shares import VarianceShares, variance_shares
from manylift.pooled.holdout import holdout_components

__all__ = ["Decomposition", "decompose", "results_section"]

SHAPLEY_KEYS = ("customer", "campaign", "week", "observed", "unobserved")


@dataclass(frozen=True, repr=False)
class Decomposition:
    """All decompositions of a pooled fit (DESIGN.md section 5).

    Attributes
    ----------
    variance_share : VarianceShares or None
    shapley_ipw, shapley_autoc : ShapleyResult or None
        None when the fit has no holdout rows.
    attributes : AttributeRegression or None
    weeks : EffectCurve
        Week deviations tau_t with ``extra["trend"]`` (outcome units per week).
    fatigue_stock, fatigue_recency : EffectCurve
    activity : EffectCurve
    """

    variance_share: VarianceShares | None
    shapley_ipw: ShapleyResult | None
    shapley_autoc: ShapleyResult | None
    attributes: AttributeRegression | None
    weeks: EffectCurve
    fatigue_stock: EffectCurve
    fatigue_recency: EffectCurve
    activity: EffectCurve

    def to_dict(self) -> dict:
        """The ``decomposition`` section of results.json."""
        vs = self.variance_share
        out = {"variance_share": None if vs is None else vs.to_dict()}
        for name in ("shapley_ipw", "shapley_autoc"):
            if getattr(self, name) is None:
                out[name] = None
                continue
            r = getattr(self, name).to_dict()
            out[name] = {k: r[k] for k in SHAPLEY_KEYS}
            out[name]["details"] = {k: v for k, v in r.items() if k not in SHAPLEY_KEYS}
        out["campaign_attributes"] = None if self.attributes is None else self.attributes.to_dict()
        wk = self.weeks.to_dict()
        out["week_trend"] = wk["trend"]
        out["fatigue"] = {"by_stock_quintile": self.fatigue_stock.to_dict()["levels"],
                          "by_recency": self.fatigue_recency.to_dict()["levels"],
                          "never_treated": self.fatigue_stock.to_dict()["never_treated"]}
        out["activity"] = self.activity.to_dict()["levels"]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Variance shares and both Shapley shares (posterior means) side by side."""
        if self.variance_share is None:
            return pd.DataFrame(columns=["variance_share", "shapley_ipw", "shapley_autoc"])
        vs = self.variance_share.to_frame()["mean"].rename("variance_share")
        si = pd.Series({k: v["mean"] for k, v in self.shapley_ipw.to_dict().items()
                        if k in SHAPLEY_KEYS}, name="shapley_ipw")
        sa = pd.Series({k: v["mean"] for k, v in self.shapley_autoc.to_dict().items()
                        if k in SHAPLEY_KEYS}, name="shapley_autoc")
        return pd.concat([vs, si, sa], axis=1)

    def __repr__(self) -> str:
        return f"Decomposition({self.variance_share!r}, fatigue={self.fatigue_stock!r})"


def decompose(fit) -> Decomposition:
    """Variance shares, Shapley values (IPW and AUTOC payoffs) and effect curves of a fit.

    Parameters
    ----------
    fit : PooledFit

    Returns
    -------
    Decomposition
        The holdout parts (variance shares, Shapley values) are None when the fit
        has no holdout rows.
    """
    has_holdout = bool(np.asarray(fit.inputs.holdout).any())
    h = holdout_components(fit) if has_holdout else None
    stock, recency = fatigue_curves(fit)
    return Decomposition(
        variance_share=variance_shares(fit, h) if has_holdout else None,
        shapley_ipw=shapley_decomposition(fit, "ipw", h) if has_holdout else None,
        shapley_autoc=shapley_decomposition(fit, "autoc", h) if has_holdout else None,
        attributes=attribute_regression(fit),
        weeks=week_trend(fit),
        fatigue_stock=stock,
        fatigue_recency=recency,
        activity=activity_effects(fit),
    )


def results_section(fit) -> dict:
    """``decompose(fit).to_dict()``: the ``decomposition`` key of results.json."""
    return decompose(fit).to_dict()
