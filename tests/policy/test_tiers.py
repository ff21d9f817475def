"""Decision tiers follow the stated thresholds (hand-made cases, no fitting)."""

import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.policy.tiers import (
    ACTION_LABELS,
    TierThresholds,
    assign_tiers,
    breakeven_uplift,
    decision_table,
)
from manylift.single.bayes import SegmentEffects


def _effects(shares_positive, n_draws=1000, scale=0.01):
    """Uplift draws with an exact share above zero: k draws at +scale, the rest at -scale."""
    rows = []
    for share in shares_positive:
        k = int(round(share * n_draws))
        rows.append(np.r_[np.full(k, scale), np.full(n_draws - k, -scale)])
    up = np.vstack(rows)
    S = len(shares_positive)
    return SegmentEffects(
        segments=tuple(f"seg{j}" for j in range(S)), n=np.full(S, 100),
        n_treated=np.full(S, 50), n_control=np.full(S, 50), raw_lift=np.zeros(S),
        effect_draws=up * 10, uplift_draws=up,
    )


def test_assign_tiers_at_the_thresholds():
    th = TierThresholds(target=0.9, test_more=0.7)
    p = [1.0, 0.9, 0.8999, 0.7, 0.6999, 0.0]
    assert assign_tiers(p, th).tolist() == [
        "target", "target", "test_more", "test_more", "deprioritize", "deprioritize"]
    custom = TierThresholds(target=0.95, test_more=0.5)
    assert assign_tiers([0.94, 0.5, 0.49], custom).tolist() == [
        "test_more", "test_more", "deprioritize"]


def test_decision_table_uses_p_positive_without_cost():
    eff = _effects([0.95, 0.80, 0.50, 0.90])
    t = decision_table(eff)
    by = t.frame.set_index("segment")
    assert by.loc["seg0", "p_positive"] == pytest.approx(0.95)
    assert by["action"].to_dict() == {
        "seg0": "target", "seg1": "test_more", "seg2": "deprioritize", "seg3": "target"}
    assert t.basis == "p_positive" and "p_breakeven" not in t.frame
    assert by.loc["seg1", "action_label"] == ACTION_LABELS["test_more"]
    # sorted by decision probability
    assert t.frame["decision_probability"].is_monotonic_decreasing
    assert t.counts() == {"target": 2, "test_more": 1, "deprioritize": 1}


def test_decision_table_with_cost_and_margin_uses_breakeven():
    # uplift draws: 0.01 (share s) or -0.01; breakeven 0.02 / 4 = 0.005 sits between them
    rng = np.random.default_rng(0)
    up = np.vstack([np.r_[np.full(950, 0.01), np.full(50, 0.004)],   # P(>0)=1, P(>be)=0.95
                    np.r_[np.full(600, 0.01), np.full(400, 0.004)],  # P(>0)=1, P(>be)=0.6
                    rng.permutation(np.r_[np.full(750, 0.006), np.full(250, -0.01)])])
    eff = SegmentEffects(segments=("a", "b", "c"), n=np.array([10, 10, 10]),
                         n_treated=np.array([5, 5, 5]), n_control=np.array([5, 5, 5]),
                         raw_lift=np.zeros(3), effect_draws=up, uplift_draws=up)
    t = decision_table(eff, cost=0.02, margin=4.0)
    assert t.breakeven == pytest.approx(0.005) and t.basis == "p_breakeven"
    by = t.frame.set_index("segment")
    assert by.loc["a", "p_breakeven"] == pytest.approx(0.95)
    assert by.loc["b", "p_positive"] == pytest.approx(1.0)
    assert by["action"].to_dict() == {"a": "target", "b": "deprioritize", "c": "test_more"}
    # profit per customer treated = margin * uplift - cost, per draw
    assert by.loc["a", "profit_mean"] == pytest.approx(4 * (0.95 * 0.01 + 0.05 * 0.004) - 0.02)
    # without cost, segment b would be targeted: P(uplift > 0) = 1
    assert decision_table(eff).frame.set_index("segment").loc["b", "action"] == "target"


def test_bad_thresholds_and_costs():
    with pytest.raises(ModelError, match="must not exceed"):
        TierThresholds(target=0.6, test_more=0.8)
    with pytest.raises(ModelError, match="'target'.*\\[0, 1\\]"):
        TierThresholds(target=1.5)
    with pytest.raises(ModelError, match="both cost and margin"):
        breakeven_uplift(1.0, None)
    with pytest.raises(ModelError, match="'margin'.*> 0"):
        breakeven_uplift(1.0, 0.0)
    with pytest.raises(ModelError, match="\\[0, 1\\]"):
        assign_tiers([0.5, np.nan])
    assert breakeven_uplift(None, None) is None
