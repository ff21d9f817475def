import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.policy import ProfitPolicyTree, effect_scores
from manylift.simulate.single import simulate_experiment


def test_policy_tree_learns_the_profitable_region_and_prints_rules():
    sim = simulate_experiment(4000, ate=0.0, heterogeneity=1.0, random_state=8)
    x = sim.frame[sim.covariates].to_numpy()
    y, w = sim.frame["outcome"].to_numpy(), sim.frame["treatment"].to_numpy()
    s = effect_scores(y, w, sim.propensity[:, 1], mu=sim.mu, method="aipw")
    t = ProfitPolicyTree(max_depth=1, min_samples_leaf=100).fit(
        None, None, x, scores=s, cost=0.2, margin=1.0, feature_names=sim.covariates,
        arm_names=["control", "email"])
    assert t.rules_.startswith("if x0 <=")  # tau = x0 + 0.5 x1: x0 is the first split
    assert "-> email" in t.rules_ and "-> control" in t.rules_
    assign = t.predict(x)
    assert np.mean(assign[sim.tau[:, 0] > 1.0] == 1) > 0.9


def test_dr_policy_tree_and_errors():
    sim = simulate_experiment(2000, ate=0.0, random_state=9)
    x = sim.frame[sim.covariates].to_numpy()
    t = ProfitPolicyTree("dr_policy_tree", max_depth=1, min_samples_leaf=100).fit(
        sim.frame["outcome"], sim.frame["treatment"], x, cost=0.2, margin=1.0)
    agree = np.mean(t.predict(x) == (sim.tau[:, 0] > 0.2))
    assert agree > 0.7
    with pytest.raises(ModelError, match="scores"):
        ProfitPolicyTree().fit(None, None, x, cost=0.1, margin=1.0)
    with pytest.raises(ModelError, match="not fitted"):
        ProfitPolicyTree().predict(x)
