"""Isolated per-campaign regressions: customer-clustered OLS with week fixed effects."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from manylift.pooled.isolated import isolated_campaign_effects, ols_week_fe_cluster


@pytest.mark.parametrize("n", [60, 400])
def test_equals_statsmodels_on_the_explicit_dummy_design(n):
    rng = np.random.default_rng(n)
    week = rng.integers(0, 6, n)
    cluster = rng.integers(0, n // 5, n)
    X = rng.normal(size=(n, 3))
    w = rng.integers(0, 2, n).astype(float)
    # customers share a level and a response: rows of one customer are correlated
    y = (2 + (0.5 + rng.normal(0, 0.5, n // 5)[cluster]) * w + X @ [1.0, -0.5, 0.2]
         + 0.4 * week + rng.normal(size=n) + rng.normal(size=n // 5)[cluster])
    dummies = pd.get_dummies(pd.Categorical(week), drop_first=True).to_numpy(float)
    ref = sm.OLS(y, np.column_stack([np.ones(n), w, X, dummies])).fit(
        cov_type="cluster", cov_kwds={"groups": cluster})
    est, se = ols_week_fe_cluster(y, w, X, week, cluster)
    assert est == pytest.approx(ref.params[1], rel=1e-10)
    assert se == pytest.approx(ref.bse[1], rel=1e-10)


def test_clustering_widens_the_interval_when_customers_repeat():
    rng = np.random.default_rng(0)
    n_c, reps = 300, 6
    cust = np.repeat(np.arange(n_c), reps)
    n = cust.size
    w = rng.integers(0, 2, n).astype(float)
    tau_i = rng.normal(1.0, 4.0, n_c)[cust]  # persistent responsiveness
    y = tau_i * w + rng.normal(0, 3, n_c)[cust] + rng.normal(size=n)
    frame = pd.DataFrame({"customer_id": cust, "outcome": y, "treated": w,
                          "week": np.tile(np.arange(reps), n_c)})
    res = isolated_campaign_effects(frame, np.zeros((n, 0)), np.ones(n, bool),
                                    np.zeros(n, np.int64), ["K1"])
    hc1 = sm.OLS(y, np.column_stack([np.ones(n), w, pd.get_dummies(
        frame["week"], drop_first=True).to_numpy(float)])).fit(cov_type="HC1").bse[1]
    assert res.loc[0, "se"] > 1.2 * hc1
