import numpy as np
import pytest

from manylift.evaluation import policy_value
from manylift.policy import (
    best_arm_rule,
    breakeven_rule,
    conservative_rule,
    effect_scores,
    evaluate_policy,
    positive_effect_rule,
    profit_curve,
    risk_adjusted_rule,
    segment_summary,
    sensitivity_grid,
    top_k_rule,
)
from manylift.simulate.single import simulate_experiment
from manylift.single import CateLearner

FAST = dict(n_estimators=60, n_folds=2, random_state=0)


def _true_profit(sim, rows, assign, cost, margin):
    a = np.asarray(assign).astype(int)
    gain = np.where(a > 0, sim.tau[rows, np.clip(a - 1, 0, None)], 0.0)
    return float(np.mean(np.where(a > 0, margin * gain - cost, 0.0)))


def test_ipw_profit_equals_policy_value_difference():
    sim = simulate_experiment(1000, random_state=0)
    y, w = sim.frame["outcome"].to_numpy(), sim.frame["treatment"].to_numpy()
    e = sim.propensity[:, 1]
    assign = sim.frame["x0"].to_numpy() > 0
    s = effect_scores(y, w, e, method="ipw")
    r = evaluate_policy(s, assign, cost=0.4, margin=2.0)
    v_pi = policy_value(y, w, e, assign, n_bootstrap=0).estimate
    v_none = policy_value(y, w, e, np.zeros(y.size, dtype=bool), n_bootstrap=0).estimate
    assert r.profit == pytest.approx(2.0 * (v_pi - v_none) - 0.4 * assign.mean(), rel=1e-10)
    assert r.roi == pytest.approx(r.profit / (0.4 * assign.mean()))


@pytest.mark.parametrize("n_arms", [1, 2])
def test_estimated_profit_of_each_rule_covers_true_profit(n_arms):
    sim = simulate_experiment(6000, n_arms=n_arms, ate=0.3, random_state=10 + n_arms)
    x = sim.frame[sim.covariates].to_numpy()
    y, w = sim.frame["outcome"].to_numpy(), sim.frame["treatment"].to_numpy()
    tr, ev = np.arange(3000), np.arange(3000, 6000)
    cl = CateLearner("linear_dml", **FAST).fit(y[tr], w[tr], x[tr])
    tau = cl.effect(x[ev]).reshape(ev.size, n_arms)
    lo = np.asarray(cl.effect_interval(x[ev])[0]).reshape(ev.size, n_arms)
    e = sim.propensity[ev] if n_arms > 1 else sim.propensity[ev, 1]
    # outcome models: the truth shifted by a constant (a misspecified model keeps AIPW unbiased)
    scores = effect_scores(y[ev], w[ev], e, mu=sim.mu[ev] + 0.5, method="aipw")
    cost, margin = 0.5, 1.0
    rules = {
        "treat_all": np.ones(ev.size, dtype=int),
        "positive_effect": best_arm_rule(tau, 0.0, 1.0),
        "breakeven": best_arm_rule(tau, cost, margin),
        "conservative": best_arm_rule(lo, cost, margin),
        "risk_adjusted": best_arm_rule(tau, cost, margin, lower=lo, risk_aversion=0.3),
    }
    for name, assign in rules.items():
        r = evaluate_policy(scores, assign, cost=cost, margin=margin, rule=name)
        truth = _true_profit(sim, ev, assign, cost, margin)
        assert abs(r.profit - truth) < 3 * r.profit_se, (name, r, truth)
    # targeting beats treating everyone here (many customers have effects below the cost)
    assert _true_profit(sim, ev, rules["breakeven"], cost, margin) > \
        _true_profit(sim, ev, rules["treat_all"], cost, margin)
    # for one arm the boolean rules give the same assignment as best_arm_rule
    if n_arms == 1:
        np.testing.assert_array_equal(breakeven_rule(tau[:, 0], cost, margin),
                                      rules["breakeven"] == 1)
        np.testing.assert_array_equal(conservative_rule(lo[:, 0], cost, margin),
                                      rules["conservative"] == 1)
        np.testing.assert_array_equal(risk_adjusted_rule(tau[:, 0], lo[:, 0], cost, margin, 0.3),
                                      rules["risk_adjusted"] == 1)
        np.testing.assert_array_equal(positive_effect_rule(tau[:, 0]),
                                      rules["positive_effect"] == 1)
        r = evaluate_policy(scores, top_k_rule(tau[:, 0], 0.2), cost=cost, margin=margin)
        assert r.share_targeted == pytest.approx(0.2)


def test_profit_curve_sensitivity_and_segments():
    sim = simulate_experiment(4000, ate=0.3, random_state=4)
    y, w = sim.frame["outcome"].to_numpy(), sim.frame["treatment"].to_numpy()
    s = effect_scores(y, w, sim.propensity[:, 1], mu=sim.mu, method="aipw")
    curve = profit_curve(s, sim.tau[:, 0], cost=0.5, margin=1.0)
    t = curve.to_frame()
    assert t["q"].iloc[0] == 0 and t["profit"].iloc[0] == 0
    # with the true CATE as ranking, profit peaks where tau crosses the breakeven 0.5
    true_share = np.mean(sim.tau[:, 0] > 0.5)
    assert abs(curve.best_share - true_share) <= 0.15
    grid = sensitivity_grid(s, sim.tau[:, 0], costs=[0.25, 0.5], margins=[1.0, 2.0]).to_frame()
    assert len(grid) == 4
    assert grid.sort_values("breakeven")["share_targeted"].is_monotonic_decreasing
    seg = np.where(sim.frame["x0"] > 0, "high", "low")
    summ = segment_summary(seg, s, sim.tau[:, 0], cost=0.5, margin=1.0).to_frame().set_index("segment")
    # true effects: high x0 -> large effect, low x0 -> small effect
    assert summ.loc["high", "action"] == "target"
    assert summ.loc["low", "action"] == "do not target"
    for lab in ("high", "low"):
        truth = sim.tau[seg == lab, 0].mean()
        assert abs(summ.loc[lab, "effect"] - truth) < 3 * summ.loc[lab, "se"]
