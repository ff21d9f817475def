"""decompose(fit) on the simulator, against the known truth."""

import json

import numpy as np
import pytest

from manylift.decomposition import decompose, results_section
from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program

pytestmark = pytest.mark.slow

TRUE_COLUMN = {"unobserved": "unobserved", "observed": "observed", "week": "week_effect",
               "campaign": "campaign"}


@pytest.fixture(scope="module")
def fitted():
    data, truth = simulate_program(1500, 8, 20, rows_per_customer=15,
                                   spec=ProgramSpec(sigma=2.0), mode="model", random_state=1)
    fit = PooledModel(n_chains=2, n_warmup=150, n_draws=150, backend="numpy", progress=False,
                      random_state=1).fit(data)
    return data, truth, fit, decompose(fit)


def _true_shares(truth, holdout):
    rows = truth.rows[holdout]
    var = {k: rows[c].var() for k, c in TRUE_COLUMN.items()}
    tot = sum(var.values())
    return {k: v / tot for k, v in var.items()}


def test_variance_shares_cover_true_finite_population_shares(fitted):
    _, truth, fit, d = fitted
    true = _true_shares(truth, fit.inputs.holdout)
    post = d.variance_share.to_dict()
    tol = 0.1  # small components are biased up a little by posterior noise in the draws
    for k, t in true.items():
        assert post[k]["lo"] - tol < t < post[k]["hi"] + tol, (k, t, post[k])
        assert abs(post[k]["mean"] - t) < tol, (k, t, post[k])
    # the simulator makes unobserved heterogeneity the largest component, and so does the fit
    assert max(true, key=true.get) == "unobserved"
    assert max(post, key=lambda k: post[k]["mean"]) == "unobserved"
    assert post["unobserved"]["lo"] > max(post[k]["hi"] for k in post if k != "unobserved")
    shares = np.stack(list(d.variance_share.shares.values()))
    np.testing.assert_allclose(shares.sum(axis=0), 1.0)


def test_shapley_sums_exactly_on_the_fit(fitted):
    _, _, _, d = fitted
    for r in (d.shapley_ipw, d.shapley_autoc):
        total = r.values["customer"] + r.values["campaign"] + r.values["week"]
        np.testing.assert_allclose(total, r.v_all - r.v_none, rtol=0, atol=1e-9)
        shares = sum(np.mean(r.shares[k]) for k in ("customer", "campaign", "week"))
        assert shares == pytest.approx(1.0)
    # the customer carries most of the ranking signal when unobserved heterogeneity dominates
    s = {k: np.mean(v) for k, v in d.shapley_autoc.shares.items()}
    assert s["customer"] > s["campaign"] and s["customer"] > s["week"]


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


def test_attribute_regression_agrees_with_statsmodels(fitted):
    import pandas as pd
    import statsmodels.api as sm

    data, _, fit, d = fitted
    a = d.attributes
    assert a is not None and a.names[0] == "intercept"
    levels = [str(c) for c in fit.inputs.levels["campaign"]]
    camp = data.campaigns.assign(campaign_id=data.campaigns["campaign_id"].astype(str))
    table = camp.set_index("campaign_id").reindex(levels)[list(data.campaign_attributes)]
    X = pd.get_dummies(table.astype(str), drop_first=True, dtype=float)
    X.insert(0, "intercept", 1.0)
    tau_c = fit.full_effects("tau_c").reshape(-1, len(levels)).mean(axis=0)
    # least squares is linear in tau_c: the posterior mean of the per-draw coefficients is
    # the regression of the posterior mean of tau_c
    if a.rank_deficient:
        np.testing.assert_allclose(X.to_numpy() @ a.coef.mean(axis=0), tau_c, atol=1e-8)
    else:
        ref = sm.OLS(tau_c, X.to_numpy()).fit().params
        np.testing.assert_allclose(a.coef.mean(axis=0), ref, atol=1e-8)
        assert a.names == [c if c == "intercept" else c.replace("_", "[", 1) + "]"
                           for c in X.columns]


def test_results_section_keys(fitted):
    _, _, fit, _ = fitted
    r = results_section(fit)
    json.dumps(r)
    summ = {"mean", "sd", "lo", "hi"}
    for k in ("unobserved", "observed", "week", "campaign"):
        assert set(r["variance_share"][k]) == summ
    for name in ("shapley_ipw", "shapley_autoc"):
        for k in ("customer", "campaign", "week", "observed", "unobserved"):
            assert set(r[name][k]) == summ
    assert set(r["week_trend"]) == summ
    assert set(r["fatigue"]) == {"by_stock_quintile", "by_recency", "never_treated"}
