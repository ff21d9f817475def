"""Closed-form gain (eq. 7, Proposition 3) against quadrature and Monte Carlo."""

import numpy as np
import pytest
from scipy import stats

from manylift._core.errors import ModelError
from manylift.personalize.gain import (
    expected_gain_normal,
    expected_max_normal,
    expected_two_arm_gain,
    two_arm_gain,
    two_arm_gain_derivatives,
)
from manylift.personalize.montecarlo import GainParameters, simulate_gain

GRID = [(1.0, 0.0, 0.0), (1.0, 0.5, 0.5), (2.0, -0.5, 1.0), (0.5, 0.9, 0.2), (3.0, 0.3, 4.0)]


@pytest.mark.parametrize("sigma,rho,s", GRID)
def test_expected_closed_form_equals_quadrature_of_eq7(sigma, rho, s):
    closed = expected_two_arm_gain(sigma, rho, s)
    quad = expected_two_arm_gain(sigma, rho, s, method="quadrature")
    assert closed == pytest.approx(quad, rel=1e-7, abs=1e-10)


def test_two_arm_gain_equals_direct_expectation_of_rectified_difference():
    # eq. 6: E[(Y^A - Y^B)^+] with Y^A - Y^B ~ N(mu_A - mu_B, 2 sigma^2 (1 - rho))
    for mu_a, mu_b, sigma, rho in [(0.0, 1.0, 1.0, 0.2), (2.0, 0.5, 0.7, -0.4), (0.0, 0.0, 1.0, 0.0)]:
        v = sigma * np.sqrt(2 * (1 - rho))
        lo, hi = (mu_a, mu_b) if mu_b >= mu_a else (mu_b, mu_a)
        direct = stats.norm(lo - hi, v).expect(lambda x: max(x, 0.0))
        assert two_arm_gain(mu_a, mu_b, sigma, rho) == pytest.approx(direct, rel=1e-6)
    assert two_arm_gain(0.0, 1.0, 1.0, 1.0) == 0.0  # v = 0: nobody crosses over


@pytest.mark.parametrize("mu_b,sigma,rho", [(0.0, 1.0, 0.0), (0.5, 1.0, 0.5), (1.5, 2.0, -0.3)])
def test_two_arm_gain_against_monte_carlo_with_fixed_means(mu_b, sigma, rho):
    r = simulate_gain(sigma, rho, 0.0, 2, arm_means=[0.0, mu_b], n_sims=400, n_individuals=500,
                      random_state=11)
    assert abs(r.oracle_gain - two_arm_gain(0.0, mu_b, sigma, rho)) < 4 * r.oracle_gain_se


@pytest.mark.parametrize("sigma,rho,s", GRID)
@pytest.mark.parametrize("n_arms", [2, 4])
def test_expected_gain_against_monte_carlo_over_a_grid(sigma, rho, s, n_arms):
    rho = max(rho, -1 / (n_arms - 1) + 0.05)
    truth = expected_gain_normal(sigma, rho, s, n_arms)
    if n_arms == 2:
        assert truth == pytest.approx(expected_two_arm_gain(sigma, rho, s), rel=1e-9)
    r = simulate_gain(sigma, rho, s, n_arms, n_sims=1500, n_individuals=200, random_state=3)
    assert abs(r.oracle_gain - truth) < 4 * r.oracle_gain_se + 1e-12


def test_expected_max_normal_known_values():
    assert expected_max_normal(1) == 0.0
    assert expected_max_normal(2) == pytest.approx(1 / np.sqrt(np.pi))
    assert expected_max_normal(3) == pytest.approx(1.5 / np.sqrt(np.pi))  # 3 / (2 sqrt(pi))


def test_derivative_signs_propositions_1_to_3():
    mu_a, mu_b, sigma, rho = 0.0, 0.8, 1.2, 0.3
    d = two_arm_gain_derivatives(mu_a, mu_b, sigma, rho)
    h = 1e-6
    num_sigma = (two_arm_gain(mu_a, mu_b, sigma + h, rho) - two_arm_gain(mu_a, mu_b, sigma - h, rho)) / (2 * h)
    num_rho = (two_arm_gain(mu_a, mu_b, sigma, rho + h) - two_arm_gain(mu_a, mu_b, sigma, rho - h)) / (2 * h)
    num_d = (two_arm_gain(mu_a, mu_b + h, sigma, rho) - two_arm_gain(mu_a, mu_b - h, sigma, rho)) / (2 * h)
    assert d["sigma"] == pytest.approx(num_sigma, rel=1e-5) and d["sigma"] > 0
    assert d["rho"] == pytest.approx(num_rho, rel=1e-5) and d["rho"] < 0
    assert d["d"] == pytest.approx(num_d, rel=1e-5) and d["d"] < 0
    # the expectation over arm means: up in sigma, down in rho and in s (Proposition 3)
    sig = np.linspace(0.1, 3, 15)
    assert np.all(np.diff([expected_two_arm_gain(x, 0.3, 0.5) for x in sig]) > 0)
    rhos = np.linspace(-0.9, 0.95, 15)
    assert np.all(np.diff([expected_two_arm_gain(1.0, x, 0.5) for x in rhos]) < 0)
    ss = np.linspace(0.0, 3, 15)
    assert np.all(np.diff([expected_two_arm_gain(1.0, 0.3, x) for x in ss]) < 0)


def test_monte_carlo_derivative_signs_with_common_random_numbers():
    base = GainParameters(sigma=1.0, rho=0.4, s=0.5, n_arms=3)
    g0 = simulate_gain(base, n_sims=800, n_individuals=200, random_state=5).oracle_gain
    up_sigma = simulate_gain(base.replace(sigma=1.2), n_sims=800, n_individuals=200, random_state=5)
    up_rho = simulate_gain(base.replace(rho=0.6), n_sims=800, n_individuals=200, random_state=5)
    up_s = simulate_gain(base.replace(s=0.7), n_sims=800, n_individuals=200, random_state=5)
    assert up_sigma.oracle_gain > g0 > up_rho.oracle_gain
    assert up_s.oracle_gain < g0


def test_spike_and_slab_gain_first_rises_then_falls_with_the_number_of_arms():
    # Figure 6(d) of Shchetkina and Berman: sigma = 10, pi = 0.9, (1 - pi) s^2 = 50.
    s = np.sqrt(50 / 0.1)
    gains = {}
    for m in (2, 8, 24):
        r = simulate_gain(10.0, 0.5, s, m, distribution="spike_slab", spike_prob=0.9,
                          n_sims=2000, n_individuals=100, random_state=2)
        gains[m] = r
    assert gains[8].oracle_gain - gains[2].oracle_gain > 4 * np.hypot(gains[8].oracle_gain_se, gains[2].oracle_gain_se)
    assert gains[8].oracle_gain - gains[24].oracle_gain > 4 * np.hypot(gains[8].oracle_gain_se, gains[24].oracle_gain_se)
    # with a normal F of the same variance the gain keeps rising with m (closed form)
    normal = [expected_gain_normal(10.0, 0.5, np.sqrt(50), m) for m in (2, 8, 24)]
    assert normal[0] < normal[1] < normal[2]


def test_prediction_error_lowers_the_gain_and_zero_error_is_the_oracle():
    base = GainParameters(sigma=1.0, rho=0.3, s=0.3, n_arms=3)
    exact = simulate_gain(base, n_sims=300, n_individuals=200, random_state=1)
    assert exact.gain == exact.oracle_gain
    prev = exact.gain
    for eps in (0.5, 1.0, 2.0):
        r = simulate_gain(base.replace(sigma_eps=eps), n_sims=300, n_individuals=200, random_state=1)
        assert r.oracle_gain == exact.oracle_gain  # common random numbers
        assert r.gain < prev
        prev = r.gain
    # a noisy benchmark choice (finite experiment) can only lower the uniform arm's true value
    noisy = simulate_gain(base.replace(sigma_eps=1.0), n_sims=300, n_individuals=200, n_per_arm=20,
                          random_state=1)
    exact_bench = simulate_gain(base.replace(sigma_eps=1.0), n_sims=300, n_individuals=200, random_state=1)
    assert noisy.value_uniform < exact_bench.value_uniform
    assert "gain with prediction error" in repr(noisy)
    assert noisy.to_frame().shape[0] == 1


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ModelError, match="'rho' parameter of simulate_gain must be in"):
        simulate_gain(1.0, -0.9, 0.5, 3)
    with pytest.raises(ModelError, match="'sigma' parameter"):
        expected_two_arm_gain(-1.0, 0.0, 0.0)
    with pytest.raises(ModelError, match="'arm_means'"):
        simulate_gain(1.0, 0.0, 0.5, 3, arm_means=[0, 1])
