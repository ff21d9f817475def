"""Bayesian campaign decisioning: pooled and hierarchical uplift models with NumPyro.

Split by idea: :mod:`.model` (priors, the NumPyro model, :class:`BayesianUplift`),
:mod:`.data` (the design, collapsed into cells of identical rows), :mod:`.checks`
(sampler diagnostics, prior and posterior predictive checks) and :mod:`.results`
(posterior summaries of effects and uplift).  The decision tiers built on these
live in :mod:`manylift.policy.tiers`.  See ``docs/bayes.md``.
"""

from manylift.single.bayes.checks import BayesDiagnostics, PredictiveCheck
from manylift.single.bayes.data import BayesDesign, build_design
from manylift.single.bayes.model import BayesianUplift, BayesPriors
from manylift.single.bayes.results import OverallEffect, SegmentEffects
from manylift.single.data import resolve_control

__all__ = [
    "BayesDesign",
    "BayesDiagnostics",
    "BayesPriors",
    "BayesianUplift",
    "OverallEffect",
    "PredictiveCheck",
    "SegmentEffects",
    "build_design",
    "resolve_control",
]
