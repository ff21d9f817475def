"""The pooled model: PooledModel (features + sampler) -> PooledFit, and its holdout functionals."""

from manylift.pooled.fit import PooledFit, posterior_summary
from manylift.pooled.holdout import (
    CampaignEffects,
    HoldoutComponents,
    HoldoutEvaluation,
    PolicyEvaluation,
    ValidationResult,
    campaign_effects,
    evaluate,
    evaluate_policies,
    holdout_components,
    validate_holdout,
)
from manylift.pooled.isolated import isolated_campaign_effects
from manylift.pooled.model import PooledModel

__all__ = [
    "CampaignEffects",
    "HoldoutComponents",
    "HoldoutEvaluation",
    "PolicyEvaluation",
    "PooledFit",
    "PooledModel",
    "ValidationResult",
    "campaign_effects",
    "evaluate",
    "evaluate_policies",
    "holdout_components",
    "isolated_campaign_effects",
    "posterior_summary",
    "validate_holdout",
]
