"""Personalization methods: learn a policy that beats the best uniform arm on true outcomes."""

import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.personalize.empirical import compare_methods
from manylift.personalize.methods import METHODS, PersonalizationPolicy
from manylift.simulate.multiarm import simulate_multiarm


@pytest.fixture(scope="module")
def experiment():
    # strong, uncorrelated heterogeneity: personalization pays a lot
    return simulate_multiarm(n=5000, n_arms=3, sigma=1.0, rho=0.0, s=0.1, sigma_eps=0.5, random_state=0)


def _true_value(exp, rows, codes):
    return exp.potential_outcomes[rows, codes].mean()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_beats_the_best_uniform_arm_on_true_outcomes(experiment, method):
    d = experiment.data
    x = d.filter(like="x")
    train = np.arange(len(d)) < 3500
    test_rows = np.flatnonzero(~train)
    pol = PersonalizationPolicy(method, control="control", n_estimators=60, forest_trees=40,
                                random_state=0)
    assert pol.fit(d["outcome"][train], d["arm"][train], x[train]) is pol
    codes = pol.predict_codes(x[~train])
    assert codes.shape == (test_rows.size,) and pol.arms_[0] == "control"
    po = experiment.potential_outcomes[test_rows]
    uniform = po.mean(axis=0).max()
    oracle = po.max(axis=1).mean()
    value = _true_value(experiment, test_rows, codes)
    # oracle gain is ~0.85 here; every method should capture a good part of it
    floor = 0.5 if method == "policy_tree" else 0.8
    assert value - uniform > floor * (oracle - uniform)
    labels = pol.predict(x[~train])
    assert set(labels) <= set(pol.arms_)


def test_ols_is_the_fully_interacted_regression(experiment):
    # eq. 13 with all arm x covariate interactions equals a separate OLS per arm
    d = experiment.data
    x = d.filter(like="x").to_numpy()
    pol = PersonalizationPolicy("ols", control="control").fit(d["outcome"], d["arm"], x)
    scores = pol.predict_scores(x[:50])
    for k, arm in enumerate(pol.arms_):
        rows = (d["arm"] == arm).to_numpy()
        design = np.column_stack([np.ones(rows.sum()), x[rows]])
        beta = np.linalg.lstsq(design, d["outcome"].to_numpy()[rows], rcond=None)[0]
        assert np.allclose(scores[:, k], np.column_stack([np.ones(50), x[:50]]) @ beta, atol=1e-8)


def test_policy_is_deterministic_and_checks_its_state(experiment):
    d = experiment.data.iloc[:1500]
    x = d.filter(like="x")
    a = PersonalizationPolicy("t_learner", n_estimators=30).fit(d["outcome"], d["arm"], x).predict(x)
    b = PersonalizationPolicy("t_learner", n_estimators=30).fit(d["outcome"], d["arm"], x).predict(x)
    assert (a == b).all()
    with pytest.raises(ModelError, match="not fitted yet"):
        PersonalizationPolicy("ols").predict(x)
    with pytest.raises(ModelError, match="'method' parameter of PersonalizationPolicy"):
        PersonalizationPolicy("xgboost").fit(d["outcome"], d["arm"], x)
    pol = PersonalizationPolicy("ols").fit(d["outcome"], d["arm"], x)
    with pytest.raises(ModelError, match="fitted on 6 covariates; got 2"):
        pol.predict(x.iloc[:, :2])


def test_ipw_gains_agree_with_the_true_gain_of_each_policy(experiment):
    d = experiment.data
    test = np.random.default_rng(5).random(len(d)) < 0.3
    comp = compare_methods(d["outcome"], d["arm"], d.filter(like="x"), methods=("ols", "t_learner"),
                           control="control", test=test, n_bootstrap=200, n_estimators=60,
                           random_state=1)
    assert comp.best_uniform_arm == experiment.truth["best_arm"]
    assert comp.n_test == test.sum()
    po = experiment.potential_outcomes[test]
    best = comp.arms.index(comp.best_uniform_arm)
    truth_codes = [experiment.arms.index(a) for a in comp.arms]  # comp order -> simulator columns
    for name, r in comp.methods.items():
        assert r.gain_se > 0 and r.se > 0
        assert r.gain > 3 * r.gain_se  # clearly positive
        assigned = np.asarray(truth_codes)[comp.assignments[name]]
        true_gain = po[np.arange(po.shape[0]), assigned].mean() - po[:, truth_codes[best]].mean()
        assert abs(r.gain - true_gain) < 3 * r.gain_se
        assert abs(sum(r.arm_shares.values()) - 1) < 1e-12
        assert comp.profiles[name].shape[1] == 6
    frame = comp.to_frame()
    assert list(frame["method"]) == ["best_uniform", "ols", "t_learner"]
    assert comp.assignment_shares.shape == (2, 3)
