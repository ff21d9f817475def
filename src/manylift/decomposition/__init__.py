"""Decomposition layer of manylift: where the heterogeneity of a pooled fit comes from.

Gelman finite-population sds and their shares (sd_share, variance_share), Shapley / XPER values of the effect
components for targeting payoffs, campaign-attribute regressions, week trend,
fatigue curves and effects by activity level, all per posterior draw
(docs/results.md; ``docs/results.md``).
"""

from manylift.decomposition.decompose import Decomposition, decompose, results_section
from manylift.decomposition.effects import (
    AttributeRegression,
    EffectCurve,
    activity_effects,
    attribute_regression,
    fatigue_curves,
    week_trend,
)
from manylift.decomposition.shapley import (
    ShapleyResult,
    shapley_decomposition,
    shapley_decompositions,
    shapley_values,
)
from manylift.decomposition.shares import (
    HeterogeneityShares,
    VarianceShares,
    heterogeneity_shares,
    shares_from_sd,
    variance_shares,
    variance_shares_from_arrays,
)

__all__ = [
    "AttributeRegression",
    "Decomposition",
    "EffectCurve",
    "HeterogeneityShares",
    "ShapleyResult",
    "VarianceShares",
    "activity_effects",
    "attribute_regression",
    "decompose",
    "fatigue_curves",
    "heterogeneity_shares",
    "results_section",
    "shapley_decomposition",
    "shapley_decompositions",
    "shapley_values",
    "shares_from_sd",
    "variance_shares",
    "variance_shares_from_arrays",
    "week_trend",
]
