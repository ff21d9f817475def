"""Evaluation layer of manylift: scores, rank metrics, BLP and policy values.

Arrays in, small frozen result dataclasses out (docs/evaluation.md);
this layer imports only :mod:`manylift._core`. Scores first, as in grf: one set
of (A)IPW scores feeds the ATE, the TOC/AUTOC/Qini rank metrics and policy
values; the ``*_many`` functions evaluate D priority vectors or policies at
once (e.g. one per posterior draw) and equal the one-at-a-time functions
exactly.

See ``docs/evaluation.md`` for the definitions and examples.
"""

from manylift.evaluation.bayesian_bootstrap import bayesian_bootstrap_weights
from manylift.evaluation.blp import BLPResult, blp_slope_many, blp_test
from manylift.evaluation.policy_values import (
    PolicyComparison,
    PolicyValueResult,
    compare_policies_many,
    multiarm_policy_value,
    policy_value,
    policy_value_many,
    random_assignment,
)
from manylift.evaluation.rank import (
    RankResult,
    grouped_autoc_many,
    rank_metric,
    rank_metric_many,
    rank_summary_many,
    toc_curve,
    toc_curve_many,
)
from manylift.evaluation.scores import (
    aipw_scores,
    ipw_scores,
    multiarm_aipw_scores,
    multiarm_ipw_scores,
)
from manylift.evaluation.uplift import (
    AUUCResult,
    UpliftAtKResult,
    auuc,
    uplift_at_k,
    uplift_curve,
)

__all__ = [
    "AUUCResult",
    "BLPResult",
    "PolicyComparison",
    "PolicyValueResult",
    "RankResult",
    "UpliftAtKResult",
    "aipw_scores",
    "bayesian_bootstrap_weights",
    "auuc",
    "blp_slope_many",
    "blp_test",
    "compare_policies_many",
    "grouped_autoc_many",
    "ipw_scores",
    "multiarm_aipw_scores",
    "multiarm_ipw_scores",
    "multiarm_policy_value",
    "policy_value",
    "policy_value_many",
    "rank_metric",
    "random_assignment",
    "rank_metric_many",
    "rank_summary_many",
    "toc_curve",
    "toc_curve_many",
    "uplift_at_k",
    "uplift_curve",
]
