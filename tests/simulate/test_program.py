"""The program simulator: reproducible, as designed, and consistent with its truth."""

import json

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import ModelError
from manylift.features.exposure import ExposureFeatures
from manylift.simulate.program import ProgramSpec, simulate_program


@pytest.fixture(scope="module")
def program():
    return simulate_program(3000, 10, 24, random_state=11)


def test_reproducible_under_a_seed():
    a_data, a_truth = simulate_program(300, 5, 10, random_state=4)
    b_data, b_truth = simulate_program(300, 5, 10, random_state=4)
    pd.testing.assert_frame_equal(a_data.frame, b_data.frame)
    pd.testing.assert_frame_equal(a_data.campaigns, b_data.campaigns)
    pd.testing.assert_frame_equal(a_truth.rows, b_truth.rows)
    pd.testing.assert_frame_equal(a_truth.customers, b_truth.customers)
    c_data, _ = simulate_program(300, 5, 10, random_state=5)
    assert not c_data.frame["outcome"].equals(a_data.frame["outcome"])
    g_data, _ = simulate_program(300, 5, 10, random_state=np.random.default_rng(4))
    assert g_data.n_rows > 0


def test_sizes_and_tables(program):
    data, truth = program
    # a customer may (rarely) never be chosen in 24 weeks
    assert 2980 <= data.n_customers <= 3000
    assert (data.n_campaigns, data.n_weeks) == (10, 24)
    assert data.covariates == ("usage_7d", "usage_8_14d", "usage_15_30d")
    assert data.activity_col == "usage_30d"
    assert list(data.campaigns.columns) == ["campaign_id", "goal", "action", "reward", "cost"]
    assert data.campaign_attributes == ["goal", "action", "reward"]
    assert len(truth.rows) == data.n_rows and len(truth.customers) == 3000
    assert len(truth.campaigns) == 10 and len(truth.weeks) == 24
    # default target: 0.3 * n_weeks rows per customer on average
    assert data.n_rows / data.n_customers == pytest.approx(0.3 * 24, rel=0.05)
    assert "ProgramTruth(average_effect=" in repr(truth)


def test_rows_per_customer_option():
    data, _ = simulate_program(1000, 6, 20, rows_per_customer=12, random_state=2)
    assert data.n_rows / data.n_customers == pytest.approx(12, rel=0.05)
    with pytest.raises(ModelError, match="'rows_per_customer'.*got 25"):
        simulate_program(100, 4, 20, rows_per_customer=25)


@pytest.mark.parametrize("kw, name", [({"n_customers": 1}, "n_customers"),
                                      ({"n_campaigns": 0}, "n_campaigns"),
                                      ({"n_weeks": 2.5}, "n_weeks")])
def test_bad_sizes(kw, name):
    with pytest.raises(ModelError, match=f"'{name}'"):
        simulate_program(**{"n_customers": 100, "n_campaigns": 4, "n_weeks": 6, **kw})


def test_at_most_one_row_per_customer_per_week(program):
    data, _ = program
    assert not data.frame.duplicated(["customer_id", "week"]).any()


def test_treated_shares_near_the_designed_share(program):
    data, truth = program
    designed = truth.campaigns.set_index("campaign_id")["treated_share"]
    assert designed.between(0.58, 0.86).all()
    f = data.frame
    realised = f.groupby("campaign_id", observed=True)["treated"].agg(["mean", "size"])
    p = designed.reindex(realised.index)
    z = (realised["mean"] - p) / np.sqrt(p * (1 - p) / realised["size"])
    assert (z.abs() < 4).all(), z
    # randomized within each intervention at the campaign's share: the pooled z-statistic
    assert abs(z.sum() / np.sqrt(len(z))) < 4


def test_eligibility_rules_as_designed(program):
    data, truth = program
    f = data.frame.merge(truth.customers[["customer_id", "level"]], on="customer_id")
    f = f.merge(truth.campaigns[["campaign_id", "rule"]].astype({"campaign_id": str}),
                left_on=f["campaign_id"].astype(str), right_on="campaign_id",
                suffixes=("", "_t"))
    rel = np.log1p(f["usage_7d"]) - f["level"]
    assert set(f["rule"]) >= {"dormant", "any"} or set(f["rule"]) >= {"active", "any"}
    assert (rel[f["rule"] == "dormant"] < 0).all()
    assert (rel[f["rule"] == "active"] >= -0.3).all()
    # "any" campaigns reach customers on both sides of their usual level
    anyrel = rel[f["rule"] == "any"]
    assert (anyrel < -0.3).any() and (anyrel > 0).any()


def test_campaigns_reach_different_but_overlapping_customers(program):
    data, truth = program
    sets = data.frame.groupby("campaign_id", observed=True)["customer_id"].agg(set)
    rule = truth.campaigns.set_index("campaign_id")["rule"]
    jac = []
    for a in sets.index:
        for b in sets.index:
            if a < b and rule[a] != rule[b]:
                jac.append(len(sets[a] & sets[b]) / len(sets[a] | sets[b]))
    assert jac, "the fixture should have campaigns with different rules"
    assert all(0 < j < 1 for j in jac)


def test_usage_covariates_evolve(program):
    data, _ = program
    f = data.frame
    # usage changes from week to week within a customer (not a constant per customer)
    within_sd = f.groupby("customer_id")["usage_7d"].std().median()
    assert within_sd > 0
    # the 30-day window is the sum of the three shorter ones
    np.testing.assert_allclose(f["usage_30d"], f["usage_7d"] + f["usage_8_14d"]
                               + f["usage_15_30d"])


def test_truth_is_consistent_with_the_outcomes(program):
    data, truth = program
    r, f = truth.rows, data.frame
    np.testing.assert_array_equal(r["customer_id"], f["customer_id"])
    np.testing.assert_array_equal(r["week"], f["week"])
    np.testing.assert_allclose(np.where(f["treated"] == 1, r["y1"], r["y0"]), f["outcome"])
    np.testing.assert_allclose(r["y1"] - r["y0"], r["tau"])
    parts = r["taubar"] + r["campaign"] + r["week_effect"] + r["observed"] + r["unobserved"]
    np.testing.assert_allclose(parts, r["tau"])
    # unobserved part is the customer's u_I; campaign and week parts are their deviations
    u = truth.customers.set_index("customer_id")["u_I"]
    np.testing.assert_allclose(r["unobserved"], u.reindex(r["customer_id"]).to_numpy())
    assert abs(truth.campaigns["tau_c"].sum()) < 1e-9 and abs(truth.weeks["tau_t"].sum()) < 1e-9
    assert r["observed"].mean() == pytest.approx(0, abs=1e-9)
    camp_avg = r.groupby("campaign_id", observed=True)["tau"].mean()
    np.testing.assert_allclose(
        truth.campaigns.set_index("campaign_id")["average_effect"].reindex(camp_avg.index),
        camp_avg)
    assert truth.params["average_effect"] == pytest.approx(r["tau"].mean())
    shares = truth.variance_shares()
    assert set(shares) == {"unobserved", "observed", "week", "campaign"}
    assert sum(shares.values()) == pytest.approx(1)


def test_unobserved_responsiveness_correlated_with_slopes():
    spec = ProgramSpec(corr_u_slope=0.5)
    _, truth = simulate_program(4000, 4, 6, spec=spec, random_state=0)
    c = truth.customers
    assert c["u_I"].std() == pytest.approx(spec.sigma_u, rel=0.06)
    for name in ("usage_7d", "usage_8_14d", "usage_15_30d"):
        rho = np.corrcoef(c["u_I"], c[f"u_{name}"])[0, 1]
        assert rho == pytest.approx(0.5, abs=0.05)  # se about 0.012 at n = 4000


def test_invalid_correlation_rejected():
    with pytest.raises(ModelError, match=r"'corr_u_slope'.*1/sqrt\(3\) = 0.577.*got 0.7"):
        simulate_program(100, 4, 6, spec=ProgramSpec(corr_u_slope=0.7))


def test_features_from_the_data_equal_the_truth(program):
    data, truth = program
    fe = ExposureFeatures().fit(data.frame, data.covariates, data.activity_col)
    f = fe.transform(data.frame)
    np.testing.assert_array_equal(f.recency, truth.rows["recency"].to_numpy())
    np.testing.assert_allclose(f.stock, truth.rows["stock"].to_numpy(), rtol=0, atol=1e-10)
    assert (f.cell == fe.n_cells - 1).any() and (f.cell < fe.n_cells - 1).any()


def test_to_dict_is_json_ready(program):
    _, truth = program
    d = json.loads(json.dumps(truth.to_dict()))
    assert set(d) == {"params", "sd_share", "variance_share", "campaigns", "weeks"}
    assert sum(d["sd_share"].values()) == pytest.approx(1.0)
    assert set(d["campaigns"]) == set(truth.campaigns["campaign_id"])
    assert d["params"]["n_customers"] == 3000


def _dim_per_campaign(data):
    """Difference in means per intervention, averaged over the campaign's rows (with SE)."""
    f = data.frame
    g = f.groupby(["campaign_id", "week", "treated"], observed=True)["outcome"]
    m = g.mean().unstack("treated")
    v = g.var().unstack("treated")
    n = g.size().unstack("treated")
    est = m[1] - m[0]
    var = v[1] / n[1] + v[0] / n[0]
    size = n.sum(axis=1)
    w = size / size.groupby(level="campaign_id").transform("sum")
    camp = (est * w).groupby(level="campaign_id").sum()
    se = np.sqrt((var * w**2).groupby(level="campaign_id").sum())
    return camp, se


def _check_dim(data, truth, min_corr):
    est, se = _dim_per_campaign(data)
    true = truth.campaigns.set_index("campaign_id")["average_effect"].reindex(est.index)
    z = (est - true) / se
    assert (z.abs() < 4).all(), z
    # z-scores behave like standard normals: mean square near 1
    assert np.mean(z**2) < 2.5
    corr = np.corrcoef(est, true)[0, 1]
    assert corr > min_corr, corr


def test_difference_in_means_per_campaign_matches_true_effect(program):
    # small sample: within a few SE of the truth for every campaign (the realistic default:
    # customer baselines add noise, so no correlation threshold at this size)
    _check_dim(*program, min_corr=-1.0)
    _check_dim(*simulate_program(3000, 10, 24, mode="model", random_state=11), min_corr=-1.0)


def test_realistic_mode_outcome_baseline_and_shares():
    """Realistic mode: y = baseline_i + m + tau * W + eps with W in {0, 1}; the customer
    baseline is partly outside the covariates; treated shares spread over 0.58-0.86."""
    spec = ProgramSpec(sigma=0.01, baseline_sd=4.0)
    data, truth = simulate_program(3000, 12, 20, spec=spec, random_state=2)
    rows, f = truth.rows, data.frame
    # control rows carry no effect, treated rows the whole effect (0/1 treatment)
    np.testing.assert_allclose(rows["y1"] - rows["y0"], rows["tau"], atol=1e-9)
    np.testing.assert_allclose(np.where(f["treated"] == 1, rows["y1"], rows["y0"]),
                               f["outcome"], atol=1e-9)
    c = truth.customers
    assert c["baseline"].std() == pytest.approx(4.0, rel=0.05)
    r = np.corrcoef(c["baseline"], c["level"])[0, 1]
    assert 0.4 < r < 0.6  # partly seen through usage, mostly not
    share = truth.campaigns["treated_share"]
    assert share.between(0.58, 0.86).all() and share.max() - share.min() > 0.15
    # the model-consistent mode has no baseline and an effect-coded outcome
    _, t2 = simulate_program(300, 4, 10, mode="model", random_state=2)
    assert (t2.customers["baseline"] == 0).all()
    with pytest.raises(ModelError, match="'mode'"):
        simulate_program(100, 4, 6, mode="natural")


def test_treated_share_option_changes_only_the_assignment():
    a, ta = simulate_program(400, 5, 10, spec=ProgramSpec(treated_share=0.5), random_state=3)
    b, tb = simulate_program(400, 5, 10, spec=ProgramSpec(treated_share=0.8), random_state=3)
    assert a.frame["treated"].mean() == pytest.approx(0.5, abs=0.04)
    assert b.frame["treated"].mean() == pytest.approx(0.8, abs=0.04)
    # same customers, campaigns and usage: only who is treated differs
    pd.testing.assert_frame_equal(a.frame[["customer_id", "campaign_id", "week", "usage_7d"]],
                                  b.frame[["customer_id", "campaign_id", "week", "usage_7d"]])
    pd.testing.assert_series_equal(ta.customers["u_I"], tb.customers["u_I"])
    with pytest.raises(ModelError, match="'treated_share'"):
        ProgramSpec(treated_share=(0.9, 0.2)) and simulate_program(
            100, 4, 6, spec=ProgramSpec(treated_share=(0.9, 0.2)))


def test_post_treatment_column_is_moved_by_the_treatment():
    data, truth = simulate_program(3000, 20, 30, spec=ProgramSpec(post_treatment=True),
                                   random_state=4)
    f = data.frame
    assert "spend_next_30d" in f.columns and "spend_next_30d" not in data.covariates
    from manylift.data.balance import balance_table

    t = balance_table({"spend_next_30d": f["spend_next_30d"].to_numpy()}, f["treated"].to_numpy(),
                      [f["campaign_id"].to_numpy(), f["week"].to_numpy()])
    assert bool(t["imbalanced"].iloc[0])


@pytest.mark.slow
def test_difference_in_means_per_campaign_large_n():
    # 150,000 customers, 1.35 million rows: SE about 0.08 against a spread of about 0.5
    data, truth = simulate_program(150000, 20, 30, random_state=3)
    _check_dim(data, truth, min_corr=0.9)
    _check_dim(*simulate_program(150000, 20, 30, mode="model", random_state=3), min_corr=0.9)
