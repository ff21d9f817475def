"""Sensitivity curves, elasticities and counterfactual swaps."""

import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.personalize.gain import expected_gain_normal
from manylift.personalize.montecarlo import GainParameters, simulate_gain
from manylift.personalize.sensitivity import (
    counterfactual_swaps,
    gain_elasticities,
    sensitivity,
    sensitivity_curves,
)

BASE = GainParameters(sigma=1.0, rho=0.4, s=0.3, sigma_eps=0.5, n_arms=3)
MC = dict(n_sims=300, n_individuals=150, random_state=4)


def test_curves_move_in_the_directions_of_propositions_1_to_3():
    curves = sensitivity_curves(BASE, grid_size=6, **MC)
    assert set(curves["parameter"]) == {"s", "sigma", "rho", "sigma_eps"}
    for name, sign in (("sigma", 1), ("rho", -1), ("s", -1), ("sigma_eps", -1)):
        c = curves[curves["parameter"] == name].sort_values("value")
        steps = np.diff(c["gain"].to_numpy())
        assert np.all(sign * steps > 0), name
        assert c["is_current"].sum() == 1
    # the oracle column along the sigma curve follows the closed form
    c = curves[(curves["parameter"] == "sigma") & (curves["value"] > 0)]
    for row in c.itertuples():
        truth = expected_gain_normal(row.value, BASE.rho, BASE.s, 3)
        assert abs(row.oracle_gain - truth) < 0.08 * truth + 0.01


def test_elasticities_table6_directions_all_help():
    el = gain_elasticities(BASE, **MC)
    assert list(el["parameter"]) == ["s", "sigma", "rho", "sigma_eps"]
    assert list(el["change"]) == ["1% lower", "1% higher", "1% lower", "1% lower"]
    assert np.all(el["elasticity"] > 0)
    assert np.allclose(el["new_value"], [0.297, 1.01, 0.396, 0.495])
    # the elasticity of sigma in the oracle two-arm normal case is known:
    # d log gain / d log sigma = sigma^2 (1-rho) / (sqrt(s^2 + sigma^2 (1-rho)) (sqrt(.) - s))
    p = GainParameters(sigma=1.0, rho=0.0, s=0.5, n_arms=2)
    el2 = gain_elasticities(p, n_sims=4000, n_individuals=100, random_state=0)
    root = np.sqrt(0.25 + 1.0)
    exact = 1.0 / (root * (root - 0.5))
    assert el2.set_index("parameter").loc["sigma", "elasticity"] == pytest.approx(exact, rel=0.1)


def test_swaps_reproduce_the_other_experiment_when_only_one_parameter_differs():
    a = BASE
    b = BASE.replace(sigma=2.0)
    table = counterfactual_swaps(a, b, names=("A", "B"), **MC)
    assert list(table.index) == ["A", "B"]
    assert table.loc["A", "sigma"] == pytest.approx(table.loc["B", "original"], abs=1e-12)
    assert table.loc["B", "sigma"] == pytest.approx(table.loc["A", "original"], abs=1e-12)
    assert table.loc["A", "rho"] == pytest.approx(table.loc["A", "original"], abs=1e-12)
    assert table.loc["A", "sigma"] > table.loc["A", "original"]
    with pytest.raises(ModelError, match="counterfactual_swaps"):
        counterfactual_swaps(a, b, parameters=("mu",), **MC)


def test_sensitivity_bundle():
    res = sensitivity(BASE, grid_size=3, n_sims=200, n_sims_elasticity=300, n_individuals=100)
    assert len(res.elasticities) == 4 and len(res.curves) >= 12
    assert "largest lever" in repr(res)
    g = simulate_gain(BASE, n_sims=300, n_individuals=100, random_state=0).gain
    assert res.elasticities["gain"].iloc[0] == pytest.approx(g)


def test_largest_lever_is_the_largest_absolute_change_when_the_gain_is_negative():
    from types import SimpleNamespace

    from manylift.report.personalize import plot_elasticities, plot_sensitivity_curves

    # noisy predictions: targeting loses to the best uniform arm (negative gain); then a % change
    # of the gain ranks the parameters backwards (the issue: rho named, s moves the gain 7x more)
    p = GainParameters(sigma=0.2, rho=0.6, s=0.3, sigma_eps=2.0, n_arms=3)
    mc = dict(n_sims=1000, n_individuals=200, n_per_arm=2000, random_state=0)
    res = sensitivity(p, grid_size=2, n_sims=200, n_sims_elasticity=1000,
                      n_individuals=200, n_per_arm=2000, random_state=0)
    base = simulate_gain(p, **mc).gain
    assert base < 0
    # independently: the gain after each 1% helpful change, same random numbers
    changed = {"s": p.replace(s=0.99 * p.s), "sigma": p.replace(sigma=1.01 * p.sigma),
               "rho": p.replace(rho=0.99 * p.rho), "sigma_eps": p.replace(sigma_eps=0.99 * p.sigma_eps)}
    moves = {k: simulate_gain(q, **mc).gain - base for k, q in changed.items()}
    truth = max(moves, key=lambda k: abs(moves[k]))
    assert truth == "s"
    top = res.largest_lever
    assert top["parameter"] == truth
    assert top["gain_change"] == pytest.approx(moves["s"], rel=1e-9)
    # every helpful change raises the (negative) gain, so every elasticity is positive
    assert np.all(res.elasticities["elasticity"] > 0)
    result = SimpleNamespace(sensitivity=res, comparison=None)
    assert "1% lower s moves the predicted gain most" in plot_elasticities(result).axes[0].get_title()
    assert plot_sensitivity_curves(result)._suptitle.get_text().startswith(
        "The gain responds most to s")
