import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.policy import (
    best_arm_rule,
    breakeven_effect,
    breakeven_rule,
    conservative_rule,
    positive_effect_rule,
    risk_adjusted_effect,
    risk_adjusted_rule,
    top_k_rule,
)

# A hand-made customer list: estimated effect (dollars of spend) and its lower bound.
EFFECT = np.array([60.0, 45.0, 42.0, 10.0, -5.0, 100.0])
LOWER = np.array([50.0, 20.0, 30.0, -10.0, -20.0, 40.0])
COST, MARGIN = 12.73, 0.30  # breakeven 42.43


def test_breakeven_effect():
    assert breakeven_effect(COST, MARGIN) == pytest.approx(42.4333, abs=1e-4)
    with pytest.raises(ModelError, match="margin"):
        breakeven_effect(1.0, 0.0)
    with pytest.raises(ModelError, match="cost"):
        breakeven_effect(-1.0, 0.3)


def test_rules_pick_the_right_customers():
    assert positive_effect_rule(EFFECT).tolist() == [True, True, True, True, False, True]
    assert breakeven_rule(EFFECT, COST, MARGIN).tolist() == [True, True, False, False, False, True]
    assert top_k_rule(EFFECT, 0.5).tolist() == [True, True, False, False, False, True]
    assert top_k_rule(EFFECT, 1 / 6).tolist() == [False, False, False, False, False, True]
    assert conservative_rule(LOWER, COST, MARGIN).tolist() == [True, False, False, False, False, False]
    # lambda = 0.3: 0.7 effect + 0.3 lower = [57, 37.5, 38.4, 4, -9.5, 82]
    np.testing.assert_allclose(risk_adjusted_effect(EFFECT, LOWER, 0.3),
                               [57.0, 37.5, 38.4, 4.0, -9.5, 82.0])
    assert risk_adjusted_rule(EFFECT, LOWER, COST, MARGIN, 0.3).tolist() == [
        True, False, False, False, False, True]
    # the extremes of lambda are the breakeven and the conservative rules
    np.testing.assert_array_equal(risk_adjusted_rule(EFFECT, LOWER, COST, MARGIN, 0.0),
                                  breakeven_rule(EFFECT, COST, MARGIN))
    np.testing.assert_array_equal(risk_adjusted_rule(EFFECT, LOWER, COST, MARGIN, 1.0),
                                  conservative_rule(LOWER, COST, MARGIN))


def test_best_arm_net_of_cost():
    effects = np.array([[10.0, 30.0], [50.0, 60.0], [5.0, 4.0], [1.0, 1.0]])
    # net = margin * effect - cost with margin 0.5, costs (2, 12): [3, 3], [23, 18], [0.5, -10], [-1.5, -11.5]
    assign = best_arm_rule(effects, [2.0, 12.0], 0.5)
    assert assign.tolist() == [1, 1, 1, 0]  # ties go to the first (cheaper) arm
    assert best_arm_rule(effects, [2.0, 2.0], 0.5).tolist() == [2, 2, 1, 0]
    # one arm reduces to the breakeven rule
    np.testing.assert_array_equal(best_arm_rule(EFFECT[:, None], COST, MARGIN) == 1,
                                  breakeven_rule(EFFECT, COST, MARGIN))


def test_bad_parameters():
    with pytest.raises(ModelError, match="'k'"):
        top_k_rule(EFFECT, 20)
    with pytest.raises(ModelError, match="risk_aversion"):
        risk_adjusted_effect(EFFECT, LOWER, 1.5)
