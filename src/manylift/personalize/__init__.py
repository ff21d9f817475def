"""Actionable heterogeneity: will personalization beat the best uniform arm?

The gain-from-personalization model of Shchetkina and Berman ("When Is
Heterogeneity Actionable for Personalization?"): closed form for two arms,
Monte Carlo for m arms (Algorithms 1-2), estimation of sigma, rho, s and
sigma_eps from an experiment, the empirical gain of five personalization
methods by IPW, and sensitivity analysis.  See ``docs/personalize.md``.
"""

from manylift.personalize.analysis import (
    PersonalizationResult,
    analyze_personalization,
    personalize_frame,
    resolve_control,
)
from manylift.personalize.empirical import MethodComparison, MethodResult, compare_methods
from manylift.personalize.estimation import (
    ParameterEstimates,
    estimate_parameters,
    stratified_moments,
)
from manylift.personalize.gain import (
    expected_gain_normal,
    expected_max_normal,
    expected_two_arm_gain,
    two_arm_gain,
    two_arm_gain_derivatives,
)
from manylift.personalize.methods import METHODS, PersonalizationPolicy
from manylift.personalize.montecarlo import GainParameters, GainSimulation, simulate_gain
from manylift.personalize.sensitivity import (
    SensitivityResult,
    counterfactual_swaps,
    gain_elasticities,
    sensitivity,
    sensitivity_curves,
)

__all__ = [
    "METHODS",
    "GainParameters",
    "GainSimulation",
    "MethodComparison",
    "MethodResult",
    "ParameterEstimates",
    "PersonalizationPolicy",
    "PersonalizationResult",
    "SensitivityResult",
    "analyze_personalization",
    "compare_methods",
    "counterfactual_swaps",
    "estimate_parameters",
    "expected_gain_normal",
    "expected_max_normal",
    "expected_two_arm_gain",
    "gain_elasticities",
    "personalize_frame",
    "resolve_control",
    "sensitivity",
    "sensitivity_curves",
    "simulate_gain",
    "stratified_moments",
    "two_arm_gain",
    "two_arm_gain_derivatives",
]
