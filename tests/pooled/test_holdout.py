"""Holdout validation and posterior policy evaluation of a pooled fit (simulated truth)."""

import json

import numpy as np
import pytest

from manylift._core.errors import DataError
from manylift.evaluation import policy_value
from manylift.pooled.holdout import (
    campaign_effects,
    evaluate_policies,
    holdout_components,
    validate_holdout,
)
from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def strong():
    """Strong unobserved heterogeneity, little noise, many rows per customer."""
    data, truth = simulate_program(2500, 8, 20, rows_per_customer=15,
                                   spec=ProgramSpec(sigma_u=5.0, sigma=2.0), random_state=3)
    fit = PooledModel(n_chains=2, n_warmup=150, n_draws=150, backend="numpy", progress=False,
                      random_state=3).fit(data)
    return data, truth, fit, holdout_components(fit)


def test_components_add_up_to_tau_hat_and_track_the_truth(strong):
    data, truth, fit, h = strong
    assert h.n_draws == fit._acc.holdout_uI.shape[0]
    assert h.n_rows == int(fit.inputs.holdout.sum())
    tau = h.tau_hat()
    parts = h.taubar[:, None] + h.campaign + h.week + h.observed + h.unobserved
    np.testing.assert_allclose(tau, parts, rtol=0, atol=1e-5)  # components are stored in float32
    true_tau = truth.rows["tau"].to_numpy()[fit.inputs.holdout]
    assert np.corrcoef(tau.mean(axis=0), true_tau)[0, 1] > 0.7


def test_validation_on_strong_heterogeneity(strong):
    _, _, _, h = strong
    v = validate_holdout(h)
    assert v.autoc.shape == (h.n_draws,)
    lo, hi = np.quantile(v.blp_slope, [0.025, 0.975])
    assert np.mean(v.autoc) > 0 and np.quantile(v.autoc, 0.05) > 0
    # slope about 1: a draw of tau_hat carries posterior noise in uI_i, which attenuates
    # the slope a little below 1 (errors in variables), never towards 0 with this signal
    assert lo > 0.6 and hi < 1.2


def test_company_value_is_mean_outcome_and_matches_policy_value(strong):
    _, _, fit, h = strong
    p = evaluate_policies(fit, cost=None, components=h)
    company = p.overall["company"]["value"]
    assert np.allclose(company, h.outcome.mean())
    # the evaluation layer's value of the as-randomized policy (assignment = propensity)
    pv = policy_value(h.outcome, h.treatment, h.propensity, assignment=h.propensity,
                      n_bootstrap=0)
    assert pv.estimate == pytest.approx(h.outcome.mean())


def test_model_beats_random_and_company_with_strong_heterogeneity(strong):
    _, truth, fit, h = strong
    p = evaluate_policies(fit, cost=None, components=h)
    m, r = p.overall["model"], p.overall["random"]
    assert np.mean(m["value"] > r["value"]) > 0.95
    assert m["p_beats_random"] > 0.95 and m["p_beats_company"] > 0.9
    assert np.mean(m["gain_over_random_pct"]) > 0
    # random treats as many rows as the model within each intervention
    np.testing.assert_allclose(r["share_targeted"], m["share_targeted"])
    # the true share with a positive effect on the holdout rows
    true_tau = truth.rows["tau"].to_numpy()[fit.inputs.holdout]
    assert abs(np.mean(m["share_targeted"]) - np.mean(true_tau > 0)) < 0.1
    # and by the true potential outcomes of the holdout rows (no IPW noise)
    from manylift.pooled.holdout import _random_assignment

    rows = truth.rows[fit.inputs.holdout]
    y0, y1 = rows["y0"].to_numpy(), rows["y1"].to_numpy()
    pi = (h.tau_hat() > 0).astype(float)
    pr = _random_assignment(pi, h.intervention)
    true_model = (pi * y1 + (1 - pi) * y0).mean(axis=1)
    true_random = (pr * y1 + (1 - pr) * y0).mean(axis=1)
    assert np.all(true_model > true_random)


def test_random_policy_treats_model_count_per_intervention(strong):
    from manylift.pooled.holdout import _random_assignment

    rng = np.random.default_rng(0)
    inter = rng.integers(0, 5, 40)
    model = (rng.random((3, 40)) > 0.4).astype(float)
    pi = _random_assignment(model, inter)
    for g in range(5):
        m = inter == g
        np.testing.assert_allclose(pi[:, m].sum(axis=1), model[:, m].sum(axis=1))
        assert np.ptp(pi[:, m], axis=1).max() == 0  # uniform within the intervention


def test_cost_aware_policy_and_subgroups(strong):
    data, _, fit, h = strong
    p = evaluate_policies(fit, cost="auto", components=h)
    assert p.cost_aware == ("cost" in data.campaigns.columns)
    p_hi = evaluate_policies(fit, cost=1e6, components=h)
    assert np.all(p_hi.overall["model"]["share_targeted"] == 0)
    d = p.to_dict()
    assert set(d["by_propensity_tercile"]) == {"T1", "T2", "T3"}
    assert sum(t["rows"] for t in d["by_propensity_tercile"].values()) == h.n_rows
    for attr in data.campaign_attributes:
        assert sum(t["rows"] for t in d["by_attribute"][attr].values()) == h.n_rows
    with pytest.raises(DataError, match="no_such_column"):
        evaluate_policies(fit, cost="no_such_column", components=h)


def test_results_keys_and_effects(strong):
    _, _, fit, _ = strong
    r = fit.results()
    json.dumps(r)
    for key in ("autoc", "blp_slope"):
        assert set(r["validation"][key]) == {"mean", "sd", "lo", "hi"}
    for pol in ("company", "random", "model"):
        assert set(r["policy"][pol]["value"]) == {"mean", "sd", "lo", "hi"}
    assert set(r["policy"]["model"]["share_targeted"]) == {"mean", "sd", "lo", "hi"}
    e = campaign_effects(fit)
    assert list(e.table["mean"]) == sorted(e.table["mean"], reverse=True)
    assert np.isfinite(e.table["width_ratio"]).all()
    assert 0 <= e.share_above_zero + e.share_below_zero <= 1
    json.dumps(e.to_dict())


def test_no_holdout_is_a_clear_error():
    data, _ = simulate_program(200, 4, 8, random_state=0)
    fit = PooledModel(n_chains=1, n_warmup=10, n_draws=10, backend="numpy", progress=False,
                      holdout=False).fit(data)
    with pytest.raises(DataError, match="holdout"):
        holdout_components(fit)
    assert fit.results()["validation"] is None
