"""Cost-aware targeting: decision rules, out-of-sample profit and ROI, policy trees.

See ``docs/single.md`` (section "Policies").
"""

from manylift.policy.analyze import POLICY_RULES, SingleAnalysis, analyze_experiment
from manylift.policy.profit import (
    PolicyProfit,
    ProfitCurve,
    SegmentSummary,
    SensitivityGrid,
    effect_scores,
    evaluate_policy,
    profit_curve,
    segment_summary,
    sensitivity_grid,
)
from manylift.policy.rules import (
    best_arm_rule,
    breakeven_effect,
    breakeven_rule,
    conservative_rule,
    positive_effect_rule,
    risk_adjusted_effect,
    risk_adjusted_rule,
    top_k_rule,
)
from manylift.policy.tiers import (
    BayesDecision,
    DecisionTable,
    TierThresholds,
    assign_tiers,
    bayes_decisioning,
    breakeven_uplift,
    decision_table,
)
from manylift.policy.tree import ProfitPolicyTree

__all__ = [
    "BayesDecision",
    "DecisionTable",
    "TierThresholds",
    "assign_tiers",
    "bayes_decisioning",
    "breakeven_uplift",
    "decision_table",
    "POLICY_RULES",
    "PolicyProfit",
    "ProfitCurve",
    "ProfitPolicyTree",
    "SegmentSummary",
    "SensitivityGrid",
    "SingleAnalysis",
    "analyze_experiment",
    "best_arm_rule",
    "breakeven_effect",
    "breakeven_rule",
    "conservative_rule",
    "effect_scores",
    "evaluate_policy",
    "positive_effect_rule",
    "profit_curve",
    "risk_adjusted_effect",
    "risk_adjusted_rule",
    "segment_summary",
    "sensitivity_grid",
    "top_k_rule",
]
