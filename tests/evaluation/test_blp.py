"""BLP test: statsmodels agreement, known truth, coverage, vectorised slopes."""

import numpy as np
import pytest
import statsmodels.api as sm

from manylift._core.errors import DataError, ModelError
from manylift.evaluation import blp as blp_module
from manylift.evaluation import blp_slope_many, blp_test


def _statsmodels_blp(y, w, e, tau, groups=None, baseline=None, cov_type="HC1"):
    x1 = w - e
    x2 = x1 * (tau - tau.mean())
    columns = [x1, x2]
    if groups is None:
        columns.insert(0, np.ones_like(y))
    else:
        levels = np.unique(groups)
        columns = [(groups == g).astype(float) for g in levels] + columns
    if baseline is not None:
        columns.insert(0, baseline)
    design = np.column_stack(columns)
    fit = sm.WLS(y, design, weights=1 / (e * (1 - e))).fit(cov_type=cov_type)
    return fit.params[-2:], fit.bse[-2:]


@pytest.mark.parametrize("cov_type", ["HC0", "HC1"])
@pytest.mark.parametrize("with_groups", [False, True])
def test_equals_statsmodels_wls(simulate, cov_type, with_groups):
    sim = simulate(1500, seed=1)
    groups = sim.rng.integers(0, 12, sim.y.size) if with_groups else None
    tau_hat = sim.tau + sim.rng.normal(scale=0.5, size=sim.y.size)
    r = blp_test(sim.y, sim.w, sim.e, tau_hat, groups=groups, cov_type=cov_type)
    params, bse = _statsmodels_blp(sim.y, sim.w, sim.e, tau_hat, groups, cov_type=cov_type)
    np.testing.assert_allclose([r.ate, r.slope], params, rtol=1e-9)
    np.testing.assert_allclose([r.ate_std_err, r.slope_std_err], bse, rtol=1e-9)
    assert r.n_groups == (12 if with_groups else 1)


def test_equals_statsmodels_with_baseline_control(simulate):
    sim = simulate(1500, seed=2)
    groups = sim.rng.choice(["a", "b", "c"], sim.y.size)
    tau_hat = sim.tau + sim.rng.normal(scale=0.5, size=sim.y.size)
    r = blp_test(sim.y, sim.w, sim.e, tau_hat, groups=groups, baseline=sim.mu0)
    params, bse = _statsmodels_blp(sim.y, sim.w, sim.e, tau_hat, groups, baseline=sim.mu0)
    np.testing.assert_allclose([r.ate, r.slope], params, rtol=1e-9)
    np.testing.assert_allclose([r.ate_std_err, r.slope_std_err], bse, rtol=1e-9)
    plain = blp_test(sim.y, sim.w, sim.e, tau_hat, groups=groups)
    assert r.slope_std_err < plain.slope_std_err  # the baseline removes outcome noise


def test_slope_near_one_for_true_effect_and_zero_for_noise(simulate):
    sim = simulate(6000, seed=3)
    true = blp_test(sim.y, sim.w, sim.e, sim.tau)
    lo, hi = true.slope_ci()
    assert lo < 1 < hi and true.slope_z > 2.5
    lo, hi = true.ate_ci()
    assert lo < sim.tau.mean() < hi
    noise = blp_test(sim.y, sim.w, sim.e, np.random.default_rng(33).normal(size=sim.y.size))
    assert abs(noise.slope) < 3 * noise.slope_std_err
    # A priority that is the effect times 2 has slope 1/2 (the BLP rescales).
    half = blp_test(sim.y, sim.w, sim.e, 2 * sim.tau)
    assert half.slope == pytest.approx(true.slope / 2, rel=1e-10)


def test_interval_coverage_over_simulations(simulate):
    covered = 0
    reps = 100
    for seed in range(reps):
        sim = simulate(1000, seed=1000 + seed)
        lo, hi = blp_test(sim.y, sim.w, sim.e, sim.tau).slope_ci()
        covered += lo < 1 < hi
    assert 0.88 <= covered / reps <= 0.995


def test_slope_many_equals_blp_test_exactly(simulate, monkeypatch):
    sim = simulate(800, seed=4)
    groups = sim.rng.integers(0, 5, sim.y.size)
    priorities = np.vstack(
        [sim.tau, sim.rng.normal(size=(5, sim.y.size)), sim.tau + sim.rng.normal(size=sim.y.size)]
    )
    monkeypatch.setattr(blp_module, "_CHUNK_ELEMENTS", 3 * sim.y.size)  # several blocks
    for kwargs in ({}, {"groups": groups}, {"groups": groups, "baseline": sim.mu0}):
        many = blp_slope_many(sim.y, sim.w, sim.e, priorities, **kwargs)
        single = [blp_test(sim.y, sim.w, sim.e, p, **kwargs).slope for p in priorities]
        np.testing.assert_array_equal(many, single)


def test_constant_priority():
    rng = np.random.default_rng(5)
    y, w = rng.normal(size=100), rng.integers(0, 2, 100)
    with pytest.raises(DataError, match="slope is not identified"):
        blp_test(y, w, 0.5, np.ones(100))
    slopes = blp_slope_many(y, w, 0.5, np.vstack([np.ones(100), rng.normal(size=100)]))
    assert np.isnan(slopes[0]) and np.isfinite(slopes[1])


def test_result_object(simulate):
    sim = simulate(500, seed=6)
    r = blp_test(sim.y, sim.w, sim.e, sim.tau)
    assert repr(r).startswith("BLPResult(slope=")
    frame = r.to_frame()
    assert list(frame.index) == ["ate", "slope"]
    assert frame.loc["slope", "estimate"] == r.slope
    assert frame.loc["slope", "p_value"] == pytest.approx(r.slope_p_value)


def test_bad_inputs_have_clear_messages():
    y = np.zeros(6)
    with pytest.raises(ModelError, match="'cov_type' parameter of blp_test"):
        blp_test(y, [0, 1] * 3, 0.5, np.arange(6), cov_type="HC3")
    with pytest.raises(DataError, match="only one arm"):
        blp_test(y, np.ones(6), 0.5, np.arange(6))
    with pytest.raises(DataError, match="'groups' must be one label per row"):
        blp_test(y, [0, 1] * 3, 0.5, np.arange(6), groups=[1, 2])
