import numpy as np
import pytest

from manylift._core.errors import DataError, ModelError
from manylift.simulate.single import simulate_experiment
from manylift.single import CateLearner, cross_fit_effects, r_loss, select_learner

FAST = dict(n_estimators=60, n_folds=2, random_state=0)


@pytest.fixture(scope="module")
def binary():
    sim = simulate_experiment(2500, heterogeneity=1.0, random_state=5)
    x = sim.frame[sim.covariates].to_numpy()
    return sim, x, sim.frame["outcome"].to_numpy(), sim.frame["treatment"].to_numpy()


# threshold for the correlation of estimated with true CATE (tau = 1 + x0 + 0.5 x1, noise sd 1)
@pytest.mark.parametrize("method,threshold", [("s", 0.8), ("t", 0.8), ("x", 0.85), ("dr", 0.75),
                                              ("linear_dml", 0.95), ("nonparam_dml", 0.75),
                                              ("causal_forest", 0.9)])
def test_learners_recover_the_true_cate(binary, method, threshold):
    sim, x, y, w = binary
    cl = CateLearner(method, inference=False, **FAST).fit(y, w, x)
    tau = cl.effect(x)
    assert tau.shape == (x.shape[0],)
    assert np.corrcoef(tau, sim.tau[:, 0])[0, 1] > threshold
    assert abs(tau.mean() - sim.ate[0]) < 0.2


def test_analytic_intervals_cover_most_true_effects(binary):
    sim, x, y, w = binary
    cl = CateLearner("linear_dml", **FAST).fit(y, w, x)
    lo, hi = cl.effect_interval(x)
    cover = np.mean((lo <= sim.tau[:, 0]) & (sim.tau[:, 0] <= hi))
    assert cover > 0.85  # the true CATE is linear, so LinearDML intervals are valid
    assert np.all(lo <= cl.effect(x)) and np.all(cl.effect(x) <= hi)


def test_bootstrap_intervals_for_metalearners(binary):
    sim, x, y, w = binary
    cl = CateLearner("t", n_bootstrap=5, **FAST).fit(y[:800], w[:800], x[:800])
    lo, hi = cl.effect_interval(x[:50])
    assert lo.shape == (50,) and np.all(hi >= lo)


@pytest.mark.parametrize("method", ["t", "causal_forest", "nonparam_dml"])
def test_multiarm_one_effect_per_arm(method):
    sim = simulate_experiment(3000, n_arms=2, random_state=6)
    x = sim.frame[sim.covariates].to_numpy()
    cl = CateLearner(method, inference=False, **FAST).fit(
        sim.frame["outcome"], sim.frame["treatment"], x)
    tau = cl.effect(x)
    assert tau.shape == (3000, 2)
    for k in range(2):  # the two arms have opposite x0 gradients
        assert np.corrcoef(tau[:, k], sim.tau[:, k])[0, 1] > 0.75


def test_deterministic_under_random_state(binary):
    sim, x, y, w = binary
    a = CateLearner("causal_forest", inference=False, **FAST).fit(y, w, x).effect(x[:20])
    b = CateLearner("causal_forest", inference=False, **FAST).fit(y, w, x).effect(x[:20])
    np.testing.assert_array_equal(a, b)


def test_cross_fitted_effects_are_out_of_sample(binary):
    sim, x, y, w = binary
    eff = cross_fit_effects(CateLearner("t", **FAST), y, w, x, n_folds=2)
    assert eff.shape == (y.size,)
    assert np.corrcoef(eff, sim.tau[:, 0])[0, 1] > 0.7


def test_r_loss_prefers_truth_and_selection_beats_zero(binary):
    sim, x, y, w = binary
    m = sim.propensity[:, 1] * sim.mu[:, 1] + (1 - sim.propensity[:, 1]) * sim.mu[:, 0]
    e = sim.propensity[:, 1]
    true_loss = r_loss(y, w, sim.tau[:, 0], m, e)
    assert true_loss < r_loss(y, w, np.zeros(y.size), m, e)
    assert true_loss < r_loss(y, w, sim.tau[:, 0] + 1.0, m, e)
    sel = select_learner({"s": CateLearner("s", **FAST), "linear_dml": CateLearner("linear_dml", **FAST)},
                         y, w, x, random_state=0)
    t = sel.to_frame().set_index("learner")
    assert t.loc["linear_dml", "r_loss"] < t.loc["zero_effect", "r_loss"]
    assert sel.best in ("s", "linear_dml")


def test_errors():
    x = np.zeros((6, 1))
    with pytest.raises(ModelError, match="not fitted"):
        CateLearner("t").effect(x)
    with pytest.raises(ModelError, match="method"):
        CateLearner("magic").fit(np.arange(6.0), [0, 1] * 3, x)
    with pytest.raises(DataError, match="arm codes"):
        CateLearner("t").fit(np.arange(6.0), [0, 0.5, 1, 0, 1, 0], x)
    with pytest.raises(DataError, match="non-finite"):
        CateLearner("t").fit(np.arange(6.0), [0, 1] * 3, np.full((6, 1), np.nan))
