"""Parameter estimation recovers sigma, rho, s and sigma_eps on simulated experiments."""

import numpy as np
import pytest
from scipy import stats

from manylift._core.errors import DataError
from manylift.personalize.estimation import estimate_parameters, stratified_moments
from manylift.simulate.multiarm import simulate_multiarm


def _decile_share(n_bins=10):
    """Between-bin share of the variance of a normal cut at its quantiles (closed form)."""
    edges = stats.norm.ppf(np.linspace(0, 1, n_bins + 1))
    cond_means = (stats.norm.pdf(edges[:-1]) - stats.norm.pdf(edges[1:])) * n_bins
    return float(np.mean(cond_means**2))


def test_stratified_estimator_with_oracle_predictions_matches_the_closed_form():
    exp = simulate_multiarm(n=60_000, n_arms=3, sigma=2.0, rho=0.4, s=0.5, sigma_eps=1.0, random_state=3)
    codes = exp.data["arm"].map({a: k for k, a in enumerate(exp.arms)}).to_numpy()
    r = stratified_moments(exp.data["outcome"], codes, exp.potential_outcomes, n_bins=10)
    # Proposition 4 with perfect predictions: between-decile variance = share * sigma^2
    assert r["sigma"] == pytest.approx(2.0 * np.sqrt(_decile_share()), rel=0.03)
    assert r["sigma_eps"] == pytest.approx(1.0, rel=0.02)
    assert r["rho"] == pytest.approx(0.4, abs=0.04)
    assert np.allclose(r["rho_matrix"], r["rho_matrix"].T, equal_nan=True)


@pytest.mark.parametrize(
    "truth",
    [dict(n_arms=3, sigma=1.0, rho=0.5, s=0.3, sigma_eps=1.0),
     dict(n_arms=4, sigma=0.6, rho=0.0, s=0.2, sigma_eps=0.8)],
)
def test_estimates_recover_the_simulated_parameters(truth):
    exp = simulate_multiarm(n=20_000, random_state=7, **truth)
    d = exp.data
    est = estimate_parameters(d["outcome"], d["arm"], d.filter(like="x"), control="control",
                              n_bootstrap=60, n_estimators=100, random_state=0)
    assert est.arms[0] == "control" and est.n_arms == truth["n_arms"]
    # stratification into deciles keeps ~97% of the variance; boosting loses a little more
    assert est.sigma.estimate == pytest.approx(truth["sigma"], rel=0.10)
    assert est.rho.estimate == pytest.approx(truth["rho"], abs=0.08)
    assert est.s.estimate == pytest.approx(exp.truth["s"], rel=0.25)
    assert est.sigma_eps.estimate == pytest.approx(truth["sigma_eps"], rel=0.06)
    for k in ("sigma", "rho", "s", "sigma_eps"):
        iv = getattr(est, k)
        assert iv.lo <= iv.estimate <= iv.hi
    assert est.sigma_eps.lo < truth["sigma_eps"] * 1.06
    assert set(est.to_frame()["parameter"]) == {"sigma", "rho", "s", "sigma_eps"}
    assert len(est.rho_pairs) == truth["n_arms"] * (truth["n_arms"] - 1) // 2
    p = est.point()
    assert p.n_arms == truth["n_arms"] and p.sigma == est.sigma.estimate
    assert len(est.replicate_parameters()) == 60


def test_more_heterogeneity_and_less_correlation_are_detected():
    def fit(**kw):
        d = simulate_multiarm(n=9000, n_arms=3, s=0.2, sigma_eps=1.0, random_state=2, **kw).data
        return estimate_parameters(d["outcome"], d["arm"], d.filter(like="x"), n_bootstrap=0,
                                   n_estimators=80, random_state=0)

    low, high = fit(sigma=0.4, rho=0.8), fit(sigma=1.2, rho=0.1)
    assert high.sigma.estimate > 2 * low.sigma.estimate
    assert high.rho.estimate < low.rho.estimate - 0.4


def test_bad_input_is_reported_with_the_fix():
    d = simulate_multiarm(n=600, random_state=0).data
    with pytest.raises(DataError, match="control value 'nope'"):
        estimate_parameters(d["outcome"], d["arm"], d.filter(like="x"), control="nope")
    with pytest.raises(DataError, match="no treated rows"):
        estimate_parameters(d["outcome"], np.repeat("a", len(d)), d.filter(like="x"))
    x = d.filter(like="x").to_numpy().copy()
    x[3, 1] = np.nan
    with pytest.raises(DataError, match="non-finite values .* 1 row"):
        estimate_parameters(d["outcome"], d["arm"], x)
