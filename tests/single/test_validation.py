import numpy as np
import pytest

from manylift._core.errors import DataError
from manylift.evaluation import aipw_scores, ipw_scores
from manylift.simulate.single import simulate_experiment
from manylift.single import (
    CateLearner,
    calibration_by_quantile,
    placebo_refutation,
    subset_stability,
    validate_cate,
)

FAST = dict(n_estimators=60, n_folds=2, inference=False, random_state=0)


@pytest.fixture(scope="module")
def split():
    sim = simulate_experiment(4000, heterogeneity=1.0, random_state=21)
    x = sim.frame[sim.covariates].to_numpy()
    y, w = sim.frame["outcome"].to_numpy(), sim.frame["treatment"].to_numpy()
    tr, ev = np.arange(2000), np.arange(2000, 4000)
    cl = CateLearner("linear_dml", **FAST).fit(y[tr], w[tr], x[tr])
    return sim, x, y, w, tr, ev, cl.effect(x[ev])


def test_blp_slope_covers_one_and_autoc_positive_on_held_out_effects(split):
    sim, x, y, w, tr, ev, tau = split
    e = sim.propensity[ev, 1]
    v = validate_cate(y[ev], w[ev], e, tau, mu0=sim.mu[ev, 0], mu1=sim.mu[ev, 1],
                      n_bootstrap=100)
    lo, hi = v.blp.slope_ci()
    assert lo < 1 < hi
    assert v.autoc.estimate / v.autoc.std_err > 2.5
    assert v.qini.estimate > 0
    d = v.to_dict()
    assert set(d) >= {"autoc", "qini", "blp_slope"}
    assert set(d["autoc"]) == {"estimate", "se"}


def test_random_priority_is_null(split):
    sim, x, y, w, tr, ev, tau = split
    noise = np.random.default_rng(0).normal(size=ev.size)
    v = validate_cate(y[ev], w[ev], sim.propensity[ev, 1], noise, n_bootstrap=100)
    assert abs(v.autoc.estimate) < 3 * v.autoc.std_err
    lo, hi = v.blp.slope_ci()
    assert lo < 0 < hi


def test_placebo_refutation_passes_for_real_heterogeneity(split):
    sim, x, y, w, tr, ev, tau = split
    r = placebo_refutation(CateLearner("linear_dml", **FAST), y[tr], w[tr], x[tr], random_state=1)
    assert r.passed and r.ratio < 0.5
    assert abs(r.placebo_mean) < 0.3  # the shuffled treatment has no effect


def test_placebo_flags_a_learner_that_fits_noise():
    # no effect at all: the placebo effects are as large as the "real" ones
    sim = simulate_experiment(1500, ate=0.0, heterogeneity=0.0, random_state=3)
    x = sim.frame[sim.covariates].to_numpy()
    r = placebo_refutation(CateLearner("t", **FAST), sim.frame["outcome"],
                           sim.frame["treatment"], x, random_state=1)
    assert not r.passed


def test_subset_stability(split):
    sim, x, y, w, tr, ev, tau = split
    r = subset_stability(CateLearner("linear_dml", **FAST), y, w, x, random_state=0)
    assert r.passed and r.correlation > 0.9
    null = simulate_experiment(1500, ate=0.0, heterogeneity=0.0, random_state=4)
    xn = null.frame[null.covariates].to_numpy()
    rn = subset_stability(CateLearner("t", **FAST), null.frame["outcome"],
                          null.frame["treatment"], xn, random_state=0)
    assert rn.correlation < r.correlation


def test_calibration_by_quantile_with_true_effect(split):
    sim, x, y, w, tr, ev, tau = split
    s = aipw_scores(y[ev], w[ev], sim.propensity[ev, 1], sim.mu[ev, 0], sim.mu[ev, 1])
    c = calibration_by_quantile(sim.tau[ev, 0], s, n_bins=5)
    t = c.to_frame()
    assert len(t) == 5 and t["n"].sum() == ev.size
    assert list(t["predicted"]) == sorted(t["predicted"])
    # each bin's interval covers the bin's true mean effect
    order = np.argsort(sim.tau[ev, 0], kind="stable")
    for b, idx in enumerate(np.array_split(order, 5)):
        truth = sim.tau[ev, 0][idx].mean()
        assert t["lo"][b] - 0.5 * t["se"][b] < truth < t["hi"][b] + 0.5 * t["se"][b]
    assert 0.7 < c.slope < 1.3
    with pytest.raises(DataError, match="per bin"):
        calibration_by_quantile([1.0, 2.0], ipw_scores([1.0, 2.0], [0, 1], 0.5), n_bins=5)
