"""decompose(fit) on the simulator, against the known truth."""

import json

import numpy as np
import pytest

from manylift.decomposition import decompose, results_section
from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def fitted():
    # the realistic simulator mode (0/1 treatment, customer baselines partly outside the
    # covariates, unbalanced assignment); strong unobserved heterogeneity and enough customers
    # that the small components' posterior noise (which inflates their finite-population
    # sds) stays small in share
    data, truth = simulate_program(4000, 12, 20, rows_per_customer=15,
                                   spec=ProgramSpec(sigma_u=3.0, sigma=2.0), mode="realistic",
                                   random_state=1)
    fit = PooledModel(n_chains=2, n_warmup=150, n_draws=150, backend="numpy", progress=False,
                      random_state=1).fit(data)
    return data, truth, fit, decompose(fit)


def test_sd_shares_recover_the_true_shares_on_the_realistic_simulator(fitted):
    _, truth, fit, d = fitted
    sd = truth.component_sds(fit.inputs.holdout)
    true_share = truth.sd_shares(fit.inputs.holdout)
    post = d.to_dict()
    for k, t in true_share.items():
        assert abs(post["sd_share"][k]["mean"] - t) < 0.05, (k, t, post["sd_share"][k])
        # the raw sds too (outcome units): within 25% (small components are pushed up by
        # posterior noise, the observed one down by the bins' approximation of its curves)
        assert post["sd"][k]["mean"] == pytest.approx(sd[k], rel=0.25), k
    assert max(post["sd_share"], key=lambda k: post["sd_share"][k]["mean"]) == "unobserved"
    np.testing.assert_allclose(sum(d.shares.sd_share.values()), 1.0)
    np.testing.assert_allclose(sum(d.shares.variance_share.values()), 1.0)


def test_shapley_values_add_up_and_the_customer_earns_the_targeting_value(fitted):
    _, _, _, d = fitted
    for r in (d.shapley_ipw, d.shapley_autoc):
        total = r.values["customer"] + r.values["campaign"] + r.values["week"]
        np.testing.assert_allclose(total, r.v_all - r.baseline, rtol=0, atol=1e-9)
        within = r.within_values["observed"] + r.within_values["unobserved"]
        np.testing.assert_allclose(within, r.v_all - r.within_baseline, rtol=0, atol=1e-9)
        # strong unobserved heterogeneity: clear targeting value, most of it the customer's
        assert r.shares is not None and r.p_positive >= 0.9
        s = {k: float(np.mean(v)) for k, v in r.shares.items()}
        assert s["customer"] > 0.6 and s["customer"] > 3 * max(abs(s["campaign"]), abs(s["week"]))
        assert sum(s.values()) == pytest.approx(1.0)
        # within the customer, unobserved (sd 3) earns more than observed heterogeneity
        w = {k: float(np.mean(v)) for k, v in r.within_values.items()}
        assert w["unobserved"] > w["observed"]


def test_fatigue_falls_with_stock_and_week_trend_covers_truth(fitted):
    _, truth, fit, d = fitted
    stock = d.fatigue_stock.draws
    # true fatigue is -0.6 per unit of stock: the top quintile has a smaller effect
    assert np.mean(stock[:, -1] < stock[:, 0]) > 0.95
    w = truth.weeks.sort_values("week")
    x = w["week"].to_numpy(float) - w["week"].mean()
    true_trend = float(x @ w["tau_t"].to_numpy() / (x @ x))
    # one simulated dataset: its posterior puts the truth about 2.3 sd below the mean
    # (the same with and without the interweaving move, and on numba); 300 draws make
    # 0.5% quantiles noisy, so check the z-score against a 99.9% normal bound instead
    trend = d.weeks.extra["trend"]
    assert abs(np.mean(trend) - true_trend) < 3.3 * np.std(trend)
    assert d.activity.draws.shape[1] == fit.inputs.features.n_activity_bins


def test_attribute_regression_agrees_with_statsmodels_effect_coding(fitted):
    import pandas as pd
    import statsmodels.formula.api as smf

    data, _, fit, d = fitted
    a = d.attributes
    assert a is not None and not a.rank_deficient
    levels = [str(c) for c in fit.inputs.levels["campaign"]]
    camp = data.campaigns.assign(campaign_id=data.campaigns["campaign_id"].astype(str))
    table = camp.set_index("campaign_id").reindex(levels)[list(data.campaign_attributes)]
    tau_c = fit.full_effects("tau_c").reshape(-1, len(levels)).mean(axis=0)
    frame = table.astype(str).assign(tau_c=tau_c)
    formula = "tau_c ~ " + " + ".join(f"C({f}, Sum)" for f in data.campaign_attributes)
    ref = smf.ols(formula, data=frame).fit().params
    # least squares is linear in tau_c: the posterior mean of the per-draw coefficients is
    # the regression of the posterior mean of tau_c (patsy's Sum coding drops the last level)
    assert np.mean(a.overall) == pytest.approx(ref["Intercept"], abs=1e-8)
    for f in data.campaign_attributes:
        lv = sorted(set(frame[f]))
        for v in lv[:-1]:
            assert np.mean(a.levels[f][v]) == pytest.approx(ref[f"C({f}, Sum)[S.{v}]"], abs=1e-8)
        # every level is a deviation from the factor's average: they sum to 0 in every draw
        np.testing.assert_allclose(sum(a.levels[f].values()), 0.0, atol=1e-10)
        assert sum(a.campaigns[f].values()) == len(levels)
    assert isinstance(pd.DataFrame(a.to_frame()), pd.DataFrame)


def test_results_section_keys(fitted):
    _, _, fit, _ = fitted
    r = results_section(fit)
    json.dumps(r)
    summ = {"mean", "sd", "lo", "hi"}
    for key in ("sd_share", "sd", "variance_share"):
        for k in ("unobserved", "observed", "week", "campaign"):
            assert set(r[key][k]) == summ
    assert set(r["sd_observed_parts"]) == {"activity", "exposure", "proportion_treated"}
    for name in ("shapley_ipw", "shapley_autoc"):
        for k in ("customer", "campaign", "week", "observed", "unobserved"):
            assert set(r[name][k]) == summ
            assert set(r[name]["values"][k]) == summ
        assert set(r[name]["unobserved_of_total"]) == summ
    a = r["campaign_attributes"]
    assert set(a["overall"]) == summ and set(a["factors"]) == set(fit.data.campaign_attributes)
    assert set(r["week_trend"]) == summ
    assert set(r["fatigue"]) == {"by_stock_quintile", "by_recency", "never_treated"}
