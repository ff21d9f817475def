import math

import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from manylift._core.errors import ModelError
from manylift.design.power import (
    cuped_factor,
    mde_mean,
    mde_proportion,
    power_mean,
    sample_size_mean,
    sample_size_proportion,
    simulate_power,
)


def test_textbook_formula_and_statsmodels_agree():
    r = sample_size_mean(effect=34.22, sd=180, power=0.8, alpha=0.05)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert r.n_treatment == math.ceil(2 * z**2 * 180**2 / 34.22**2)
    per_arm = NormalIndPower().solve_power(effect_size=34.22 / 180, power=0.8, alpha=0.05, ratio=1)
    assert r.n_treatment == math.ceil(per_arm)
    assert r.power >= 0.8


def test_unequal_allocation_matches_statsmodels():
    r = sample_size_mean(effect=0.1, sd=1.0, allocation=0.25)
    # statsmodels: nobs1 is the first group and ratio = nobs2 / nobs1 (control / treated = 3)
    n1 = NormalIndPower().solve_power(effect_size=0.1, power=0.8, alpha=0.05, ratio=3)
    assert abs(r.n_treatment - n1) <= 1
    assert abs(r.n_control - 3 * n1) <= 3


def test_mde_inverts_sample_size():
    r = sample_size_mean(effect=2.0, sd=10.0)
    m = mde_mean(r.n_total, 10.0)
    assert m.effect == pytest.approx(2.0, rel=0.01)
    assert power_mean(r.n_total, m.effect, 10.0) == pytest.approx(0.8, abs=1e-5)  # + far tail


def test_cuped_shrinks_the_sample_by_one_minus_rho_squared():
    plain = sample_size_mean(effect=0.2, sd=1.0)
    cuped = sample_size_mean(effect=0.2, sd=1.0, variance_factor=cuped_factor(0.6))
    assert cuped.n_total == pytest.approx(plain.n_total * 0.64, rel=0.01)
    assert mde_mean(1000, 1.0, variance_factor=0.64).effect == pytest.approx(
        0.8 * mde_mean(1000, 1.0).effect)


@pytest.mark.parametrize("allocation", [0.5, 0.3])
def test_sample_size_gives_the_stated_power_in_simulation(allocation):
    r = sample_size_mean(effect=0.25, sd=2.0, allocation=allocation)
    p, se = simulate_power(r.n_total, 0.25, sd=2.0, allocation=allocation,
                           n_simulations=2000, random_state=1)
    assert abs(p - 0.8) < 3 * se + 0.01


def test_cuped_sample_size_in_simulation():
    r = sample_size_mean(effect=0.2, sd=1.0, variance_factor=cuped_factor(0.6))
    p, se = simulate_power(r.n_total, 0.2, correlation=0.6, n_simulations=2000, random_state=2)
    assert abs(p - 0.8) < 3 * se + 0.01


def test_proportion_sample_size_in_simulation_and_statsmodels():
    r = sample_size_proportion(0.10, 0.12)
    p, se = simulate_power(r.n_total, 0.02, kind="proportion", p_control=0.10,
                           n_simulations=4000, random_state=3)
    assert abs(p - 0.8) < 3 * se + 0.01
    # Cohen's h approximation of statsmodels lands within 2%
    h = proportion_effectsize(0.12, 0.10)
    n_h = NormalIndPower().solve_power(effect_size=h, power=0.8, alpha=0.05, ratio=1)
    assert r.n_treatment == pytest.approx(n_h, rel=0.02)
    m = mde_proportion(r.n_total, 0.10)
    assert m.effect == pytest.approx(0.02, rel=0.01)


def test_errors_name_the_parameter():
    with pytest.raises(ModelError, match="'power'"):
        sample_size_mean(1.0, 1.0, power=1.2)
    with pytest.raises(ModelError, match="'sd'"):
        sample_size_mean(1.0, -1.0)
    with pytest.raises(ModelError, match="correlation"):
        cuped_factor(1.0)
    with pytest.raises(ModelError, match="equal"):
        sample_size_proportion(0.1, 0.1)
