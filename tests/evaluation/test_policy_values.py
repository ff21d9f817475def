"""Policy values: known potential outcomes, AIPW efficiency, exact identities."""

import numpy as np
import pytest

from manylift._core.errors import DataError, ModelError
from manylift.evaluation import multiarm_policy_value, policy_value, policy_value_many
from manylift.evaluation import policy_values as policy_value_module


def _truth(sim, assignment):
    """Value of the policy on these units, from their known potential outcomes."""
    return float(np.mean(np.where(assignment, sim.y1, sim.y0)))


def test_ipw_value_matches_known_potential_outcomes(simulate):
    sim = simulate(5000, seed=1)
    policy = sim.x[:, 0] > 0.3
    r = policy_value(sim.y, sim.w, sim.e, policy, n_bootstrap=200, random_state=0)
    assert abs(r.estimate - _truth(sim, policy)) < 3 * r.std_err
    assert r.share_treated == pytest.approx(policy.mean())


def test_mean_over_seeds_is_close_to_the_truth(simulate):
    errors, aipw_errors = [], []
    for seed in range(200):
        sim = simulate(500, seed=100 + seed)
        policy = sim.x[:, 0] > 0.0
        truth = _truth(sim, policy)
        errors.append(policy_value(sim.y, sim.w, sim.e, policy, n_bootstrap=0).estimate - truth)
        aipw_errors.append(
            policy_value(
                sim.y, sim.w, sim.e, policy, sim.mu0, sim.mu1, method="aipw", n_bootstrap=0
            ).estimate
            - truth
        )
    for err in (np.array(errors), np.array(aipw_errors)):
        assert abs(err.mean()) < 3 * err.std(ddof=1) / np.sqrt(err.size)
    assert np.std(aipw_errors) < 0.7 * np.std(errors)


def test_aipw_has_smaller_standard_error(simulate):
    sim = simulate(5000, seed=2)
    policy = sim.x[:, 0] > 0
    ipw = policy_value(sim.y, sim.w, sim.e, policy, random_state=0)
    aipw = policy_value(sim.y, sim.w, sim.e, policy, sim.mu0, sim.mu1, method="aipw")
    assert aipw.std_err < ipw.std_err
    assert abs(aipw.estimate - _truth(sim, policy)) < 3 * aipw.std_err


def test_bootstrap_se_matches_analytic(simulate):
    sim = simulate(3000, seed=3)
    policy = sim.x[:, 0] > 0
    boot = policy_value(sim.y, sim.w, sim.e, policy, n_bootstrap=400, random_state=0)
    half = policy_value(sim.y, sim.w, sim.e, policy, n_bootstrap=400, bootstrap="half")
    analytic = policy_value(sim.y, sim.w, sim.e, policy, n_bootstrap=0)
    assert boot.estimate == half.estimate == analytic.estimate
    assert 0.85 < boot.std_err / analytic.std_err < 1.15
    assert 0.85 < half.std_err / analytic.std_err < 1.15


def test_closed_form_and_stochastic_policy():
    y = np.array([5.0, 1.0, 2.0, 2.0])
    w = np.array([1, 0, 1, 0])
    e = np.array([0.5, 0.25, 0.8, 0.4])
    # 1{pi = W} y / P(W | e)
    pi = np.array([1, 0, 0, 0])
    expected = np.mean([5 / 0.5, 1 / 0.75, 0.0, 2 / 0.6])
    assert policy_value(y, w, e, pi, n_bootstrap=0).estimate == pytest.approx(expected)
    # A policy treating with probability p is p V(all) + (1 - p) V(none).
    v_all = policy_value(y, w, e, np.ones(4), n_bootstrap=0).estimate
    v_none = policy_value(y, w, e, np.zeros(4), n_bootstrap=0).estimate
    v_mix = policy_value(y, w, e, np.full(4, 0.3), n_bootstrap=0).estimate
    assert v_mix == pytest.approx(0.3 * v_all + 0.7 * v_none)


def test_company_policy_as_randomized_is_the_mean_outcome(simulate):
    sim = simulate(2000, seed=8)
    r = policy_value(sim.y, sim.w, sim.e, assignment=sim.e, n_bootstrap=0)
    assert r.estimate == pytest.approx(sim.y.mean(), rel=1e-12)
    assert r.share_treated == pytest.approx(sim.e.mean())


def test_many_equals_one_at_a_time_exactly(simulate, monkeypatch):
    sim = simulate(700, seed=4)
    assignments = np.vstack(
        [
            sim.x[:, 0] > 0,
            sim.rng.random(sim.y.size) < 0.5,
            np.ones(sim.y.size),
            sim.rng.random(sim.y.size),  # stochastic policy
        ]
    )
    monkeypatch.setattr(policy_value_module, "_CHUNK_ELEMENTS", 2 * sim.y.size)
    many = policy_value_many(sim.y, sim.w, sim.e, assignments)
    single = [policy_value(sim.y, sim.w, sim.e, a, n_bootstrap=0).estimate for a in assignments]
    np.testing.assert_array_equal(many, single)
    many = policy_value_many(sim.y, sim.w, sim.e, assignments, sim.mu0, sim.mu1)
    single = [
        policy_value(
            sim.y, sim.w, sim.e, a, sim.mu0, sim.mu1, method="aipw", n_bootstrap=0
        ).estimate
        for a in assignments
    ]
    np.testing.assert_array_equal(many, single)


def test_versus_gives_paired_difference(simulate):
    sim = simulate(3000, seed=5)
    model = sim.x[:, 0] > 0
    treat_all = np.ones(sim.y.size, dtype=bool)
    r = policy_value(sim.y, sim.w, sim.e, model, versus=treat_all, random_state=0)
    other = policy_value(sim.y, sim.w, sim.e, treat_all, random_state=0)
    assert r.difference == pytest.approx(r.estimate - other.estimate, abs=1e-12)
    # The policies agree on half the units, so the paired SE is well below the unpaired one.
    assert r.difference_std_err < 0.8 * np.hypot(r.std_err, other.std_err)
    true_difference = _truth(sim, model) - _truth(sim, treat_all)
    assert abs(r.difference - true_difference) < 3 * r.difference_std_err
    assert "difference" in r.to_frame().columns


def test_multiarm_with_two_arms_equals_binary(simulate):
    sim = simulate(1000, seed=6)
    policy = (sim.x[:, 0] > 0).astype(int)
    e2 = np.column_stack([1 - sim.e, sim.e])
    for kwargs_bin, kwargs_multi in (
        ({}, {}),
        (
            {"mu0": sim.mu0, "mu1": sim.mu1, "method": "aipw"},
            {"mu": np.column_stack([sim.mu0, sim.mu1]), "method": "aipw"},
        ),
    ):
        binary = policy_value(sim.y, sim.w, sim.e, policy, random_state=0, **kwargs_bin)
        multi = multiarm_policy_value(sim.y, sim.w, e2, policy, random_state=0, **kwargs_multi)
        assert multi.estimate == pytest.approx(binary.estimate, rel=1e-13)
        assert multi.std_err == pytest.approx(binary.std_err, rel=1e-10)
        assert multi.share_treated == pytest.approx(binary.share_treated)
        assert multi.arm_shares == pytest.approx((1 - policy.mean(), policy.mean()))
    # A matrix of arm probabilities equals the codes it one-hot encodes.
    onehot = np.column_stack([1 - policy, policy])
    assert multiarm_policy_value(sim.y, sim.w, e2, onehot, n_bootstrap=0).estimate == (
        pytest.approx(multiarm_policy_value(sim.y, sim.w, e2, policy, n_bootstrap=0).estimate)
    )


def test_multiarm_known_truth():
    rng = np.random.default_rng(7)
    n = 20_000
    x = rng.normal(size=n)
    probs = np.array([0.4, 0.3, 0.3])
    arm = rng.choice(3, size=n, p=probs)
    potential = np.column_stack([x, x + 1.0 * (x > 0), x + 1.0 * (x < 0)]) + rng.normal(size=(n, 1))
    y = potential[np.arange(n), arm]
    policy = np.where(x > 0, 1, 2)  # the best arm for everyone
    truth = potential[np.arange(n), policy].mean()
    ipw = multiarm_policy_value(y, arm, probs, policy, random_state=0)
    assert abs(ipw.estimate - truth) < 3 * ipw.std_err
    mu = np.column_stack([x, x + 1.0 * (x > 0), x + 1.0 * (x < 0)])
    aipw = multiarm_policy_value(y, arm, probs, policy, mu=mu, method="aipw", random_state=0)
    assert abs(aipw.estimate - truth) < 3 * aipw.std_err
    assert aipw.std_err < ipw.std_err
    assert ipw.share_treated == 1.0


def test_bad_inputs_have_clear_messages():
    y, w = np.ones(4), np.array([0, 1, 0, 1])
    with pytest.raises(ModelError, match="method='ipw' in policy_value ignores them"):
        policy_value(y, w, 0.5, w, mu0=y, mu1=y)
    with pytest.raises(ModelError, match="needs both outcome-model predictions"):
        policy_value(y, w, 0.5, w, method="aipw")
    with pytest.raises(DataError, match=r"'assignment' must be 0/1 .* got 1 value\(s\) outside"):
        policy_value(y, w, 0.5, [0, 1, 2, 0])
    with pytest.raises(DataError, match="'assignments' must be 0/1"):
        policy_value_many(y, w, 0.5, [[0, 1, 2, 0]])
    with pytest.raises(DataError, match="integer arm codes 0..1"):
        multiarm_policy_value(y, w, [0.5, 0.5], [0, 1, 2, 0])
    with pytest.raises(ModelError, match="'method' parameter of policy_value"):
        policy_value(y, w, 0.5, w, method="dr")
