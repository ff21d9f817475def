"""Holdout validation and posterior policy evaluation of a pooled fit (simulated truth)."""

import json

import numpy as np
import pytest

from manylift._core.errors import DataError
from manylift.evaluation import policy_value, random_assignment
from manylift.pooled.holdout import (
    calibration_baseline,
    campaign_effects,
    evaluate,
    evaluate_policies,
    holdout_components,
    propensity_bins,
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
    # one holdout row per customer: the bootstrap's units are the customers
    assert np.unique(h.arrays.customer).size == h.n_rows
    assert h.n_rows == int(fit.inputs.holdout.sum())
    tau = h.tau_hat()
    parts = h.taubar[:, None] + h.campaign + h.week + h.observed + h.unobserved
    np.testing.assert_allclose(tau, parts, rtol=0, atol=1e-5)  # components are stored in float32
    true_tau = truth.rows["tau"].to_numpy()[fit.inputs.holdout]
    assert np.corrcoef(tau.mean(axis=0), true_tau)[0, 1] > 0.7


def test_validation_on_strong_heterogeneity(strong):
    _, _, _, h = strong
    v = validate_holdout(h)
    assert v.autoc.shape == (h.n_draws,) and v.scores == "aipw_intervention_mean"
    lo, hi = np.quantile(v.blp_slope, [0.025, 0.975])
    assert np.quantile(v.autoc, 0.025) > 0
    # the bootstrap adds the holdout's sampling uncertainty: a wider interval, same centre
    assert np.std(v.autoc) > 1.5 * np.std(v.autoc_model_only)
    assert abs(np.mean(v.autoc) - np.mean(v.autoc_model_only)) < np.std(v.autoc)
    # slope about 1: a draw of tau_hat carries posterior noise in uI_i, which attenuates
    # the slope a little below 1 (errors in variables), never towards 0 with this signal
    assert lo > 0.6 and hi < 1.2


def test_intervention_baseline_makes_the_scores_precise_and_keeps_them_unbiased(strong):
    data, truth, fit, h = strong
    a = h.arrays
    assert a.baseline is not None
    ipw = holdout_components(fit, scores="ipw").arrays
    assert ipw.baseline is None
    # the outcome's level (about 40) dominates the IPW score; centring removes it
    assert np.std(a.scores()) < 0.3 * np.std(ipw.scores())
    # both estimate the mean true effect of the holdout rows (within 3 standard errors)
    true_tau = truth.rows["tau"].to_numpy()[fit.inputs.holdout]
    for s in (a.scores(), ipw.scores()):
        assert abs(s.mean() - true_tau.mean()) < 3 * s.std() / np.sqrt(s.size)
    # the baseline of a row never uses the row itself: changing a holdout outcome leaves
    # every baseline unchanged
    f = data.frame
    inter = (f["campaign_id"].astype(str) + "|" + f["week"].astype(str)).to_numpy()
    y = f["outcome"].to_numpy(float).copy()
    base = calibration_baseline(y, ~fit.inputs.holdout, inter, f["campaign_id"].astype(str))
    y[np.flatnonzero(fit.inputs.holdout)[:50]] += 1e6
    again = calibration_baseline(y, ~fit.inputs.holdout, inter, f["campaign_id"].astype(str))
    np.testing.assert_array_equal(base, again)


def test_company_value_is_mean_outcome_and_matches_policy_value(strong):
    _, _, fit, h = strong
    p = evaluate_policies(fit, cost=None, components=h)
    company = p.overall["company"]["value_model_only"]
    assert np.allclose(company, h.outcome.mean())
    # with the bootstrap: the weighted mean outcome of each draw, centred on the mean
    w = h.weights(slice(0, 5))
    np.testing.assert_allclose(p.overall["company"]["value"][:5], w @ h.outcome, rtol=1e-12)
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
    # the model-only interval of the gain is narrower than the one with sampling uncertainty
    assert np.std(m["gain_over_company"]) > 1.5 * np.std(m["gain_over_company_model_only"])
    # random treats as many rows as the model within each intervention
    np.testing.assert_allclose(r["share_targeted"], m["share_targeted"])
    # the true share with a positive effect on the holdout rows
    true_tau = truth.rows["tau"].to_numpy()[fit.inputs.holdout]
    assert abs(np.mean(m["share_targeted"]) - np.mean(true_tau > 0)) < 0.1
    # and by the true potential outcomes of the holdout rows (no IPW noise)
    rows = truth.rows[fit.inputs.holdout]
    y0, y1 = rows["y0"].to_numpy(), rows["y1"].to_numpy()
    pi = (h.tau_hat() > 0).astype(float)
    pr = random_assignment(pi, h.intervention)
    true_model = (pi * y1 + (1 - pi) * y0).mean(axis=1)
    true_random = (pr * y1 + (1 - pr) * y0).mean(axis=1)
    assert np.all(true_model > true_random)


def test_propensity_bins_cut_campaigns_not_rows():
    camp = np.array(["A", "A", "B", "B", "B", "C", "D", "D", "E"])
    shares = {"A": 0.6, "E": 0.6, "B": 0.7, "C": 0.8, "D": 0.9}
    bins, labels = propensity_bins(np.array([shares[c] for c in camp]), camp)
    # thirds of the 5 campaigns' shares (edges 0.633 and 0.767), however many rows each
    # campaign has; equal shares (A and E) always share a bin
    want = {"A": 0, "E": 0, "B": 1, "C": 2, "D": 2}
    assert list(bins) == [want[c] for c in camp]
    assert labels == ["[0.60, 0.60)", "[0.70, 0.70)", "[0.80, 0.90]"]


def test_cost_aware_policy_and_subgroups(strong):
    data, _, fit, h = strong
    p = evaluate_policies(fit, cost="auto", components=h)
    assert p.cost_aware == ("cost" in data.campaigns.columns)
    p_hi = evaluate_policies(fit, cost=1e6, components=h)
    assert np.all(p_hi.overall["model"]["share_targeted"] == 0)
    d = p.to_dict()
    bins = d["by_propensity_bin"]
    assert 2 <= len(bins) <= 3
    assert sum(t["rows"] for t in bins.values()) == h.n_rows
    assert sum(t["campaigns"] for t in bins.values()) == data.n_campaigns
    lo = [t["share_range"][0] for t in bins.values()]
    assert lo == sorted(lo)
    for attr in data.campaign_attributes:
        assert sum(t["rows"] for t in d["by_attribute"][attr].values()) == h.n_rows
    with pytest.raises(DataError, match="no_such_column"):
        evaluate_policies(fit, cost="no_such_column", components=h)


def test_results_keys_and_effects(strong):
    _, _, fit, _ = strong
    r = fit.results()
    json.dumps(r)
    summ = {"mean", "sd", "lo", "hi"}
    for key in ("autoc", "autoc_model_only", "blp_slope"):
        assert set(r["validation"][key]) == summ
    for pol in ("company", "random", "model"):
        for k in ("value", "value_model_only", "net_value", "net_value_model_only"):
            assert set(r["policy"][pol][k]) == summ
    m = r["policy"]["model"]
    for k in ("gain_over_company", "gain_over_company_model_only", "gain_over_random_pct"):
        assert set(m[k]) == summ
    assert 0 <= m["p_beats_company"] <= 1 and 0 <= m["p_beats_company_model_only"] <= 1
    assert set(r["policy"]["model"]["share_targeted"]) == summ
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


def test_a_holdout_without_both_arms_says_what_is_missing():
    # few customers reach 6 rows: the holdout has a handful of rows, not both arms
    data, _ = simulate_program(300, 5, 12, rows_per_customer=2, random_state=0)
    fit = PooledModel(n_chains=1, n_warmup=10, n_draws=10, backend="numpy", progress=False
                      ).fit(data)
    ev = evaluate(fit)
    assert ev.validation is None and ev.policy is None and "6 rows" in ev.problem
    r = fit.results()
    json.dumps(r)
    assert r["validation"] is None and "at least 6 rows" in r["holdout_problem"]
