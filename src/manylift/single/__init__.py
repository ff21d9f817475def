"""Single-experiment toolkit: one data preparer, positivity, ATE estimators, CATE learners,
validation, Bayesian decisioning.

For one experiment (or observational targeting data) with covariates, a
treatment (binary or several arms) and an outcome.  See ``docs/single.md`` and
``docs/bayes.md``.
"""

from manylift.single.ate import (
    ATE_ESTIMATORS,
    ATEResult,
    EValueResult,
    ManskiBounds,
    TrimmingResult,
    e_value,
    estimate_ate,
    manski_bounds,
    trimming_sweep,
)
from manylift.single.bayes import (
    BayesDiagnostics,
    BayesianUplift,
    BayesPriors,
    OverallEffect,
    PredictiveCheck,
    SegmentEffects,
)
from manylift.single.data import CovariateEncoder, SingleData, resolve_control
from manylift.single.learners import (
    LEARNERS,
    CateLearner,
    LearnerSelection,
    cross_fit_effects,
    r_loss,
    select_learner,
)
from manylift.single.positivity import (
    PositivityResult,
    estimate_propensity,
    positivity_diagnostics,
    standardized_mean_differences,
)
from manylift.single.validation import (
    CalibrationResult,
    CateValidation,
    PlaceboResult,
    StabilityResult,
    calibration_by_quantile,
    placebo_refutation,
    subset_stability,
    validate_cate,
)

__all__ = [
    "BayesDiagnostics",
    "BayesPriors",
    "BayesianUplift",
    "OverallEffect",
    "PredictiveCheck",
    "SegmentEffects",
    "ATEResult",
    "ATE_ESTIMATORS",
    "CalibrationResult",
    "CovariateEncoder",
    "CateLearner",
    "CateValidation",
    "EValueResult",
    "LEARNERS",
    "LearnerSelection",
    "ManskiBounds",
    "PlaceboResult",
    "PositivityResult",
    "SingleData",
    "StabilityResult",
    "TrimmingResult",
    "calibration_by_quantile",
    "cross_fit_effects",
    "e_value",
    "estimate_ate",
    "estimate_propensity",
    "manski_bounds",
    "placebo_refutation",
    "positivity_diagnostics",
    "r_loss",
    "resolve_control",
    "select_learner",
    "standardized_mean_differences",
    "subset_stability",
    "trimming_sweep",
    "validate_cate",
]
