import numpy as np
import pytest

from manylift._core.errors import DataError, ModelError
from manylift.simulate.single import simulate_experiment
from manylift.single import (
    ATE_ESTIMATORS,
    SingleData,
    e_value,
    estimate_ate,
    manski_bounds,
    positivity_diagnostics,
    trimming_sweep,
)

HILLSTROM_COVARIATES = ["recency", "history", "mens", "womens", "newbie", "zip_code", "channel"]


def _hillstrom_arm(raw, arm, outcome):
    """Rows of control and ``arm`` (None = any e-mail); the difference in means from the raw file."""
    if arm is None:
        rows = raw
        treated = (raw["segment"] != "No E-Mail").to_numpy()
    else:
        rows = raw[raw["segment"].isin(["No E-Mail", arm])]
        treated = (rows["segment"] == arm).to_numpy()
    y = rows[outcome].to_numpy(dtype=float)
    raw_dm = y[treated].mean() - y[~treated].mean()
    # Hillstrom repeats rows (distinct customers with equal values)
    data = SingleData.from_frame(rows.assign(t=treated.astype(int)), "t", outcome,
                                 HILLSTROM_COVARIATES, allow_duplicates=True)
    return data, raw_dm


@pytest.mark.slow
@pytest.mark.parametrize("arm,outcome,model", [(None, "spend", "lightgbm"),
                                               ("Mens E-Mail", "visit", "linear"),
                                               ("Womens E-Mail", "spend", "linear")])
def test_hillstrom_every_estimator_covers_the_raw_difference(hillstrom_raw, arm, outcome, model):
    data, raw_dm = _hillstrom_arm(hillstrom_raw, arm, outcome)
    w = data.treatment
    e_known = np.full(data.n, w.mean())  # randomized: the known share treated
    pos = positivity_diagnostics(data.covariates, w, e_known, random_state=0, n_folds=3,
                                 model="gbm" if model == "lightgbm" else "logistic")
    assert abs(pos.propensity_auc - 0.5) < 0.02  # randomization check
    res = estimate_ate(data.outcome, w, data.covariates, e_known, model=model, n_folds=3,
                       random_state=0)
    assert res["difference_in_means"]["estimate"] == pytest.approx(raw_dm, rel=1e-12)
    for name in ATE_ESTIMATORS:
        r = res[name]
        assert r["lo"] < raw_dm < r["hi"], (name, r, raw_dm)
        assert r["se"] > 0


def test_ipw_with_constant_known_propensity_equals_difference_in_means(hillstrom_raw):
    # Horvitz-Thompson with e = share treated is exactly the difference in means
    data, raw_dm = _hillstrom_arm(hillstrom_raw, None, "visit")
    e = np.full(data.n, data.treatment.mean())
    res = estimate_ate(data.outcome, data.treatment, data.covariates, e,
                       estimators=["difference_in_means", "ipw", "ols", "overlap"])
    assert res["ipw"]["estimate"] == pytest.approx(raw_dm, rel=1e-9)
    assert res["overlap"]["estimate"] == pytest.approx(raw_dm, rel=1e-9)
    assert res["ols"]["lo"] < raw_dm < res["ols"]["hi"]


def test_confounded_ipw_and_aipw_recover_truth_where_naive_does_not():
    sim = simulate_experiment(6000, kind="confounded", confounding=1.5, heterogeneity=0.5,
                              random_state=11)
    x = sim.frame[sim.covariates].to_numpy()
    w = sim.frame["treatment"].to_numpy()
    y = sim.frame["outcome"].to_numpy()
    truth = sim.ate[0]
    pos = positivity_diagnostics(x, w, model="logistic", random_state=0)
    res = estimate_ate(y, w, x, pos.propensity, n_folds=3, random_state=0)
    naive = res["difference_in_means"]
    assert not naive["lo"] < truth < naive["hi"]
    assert naive["estimate"] - truth > 0.5  # treated customers have higher baselines
    for name in ("ipw", "aipw", "dml", "ols"):
        r = res[name]
        assert r["lo"] - 0.5 * r["se"] < truth < r["hi"] + 0.5 * r["se"], (name, r, truth)
    assert abs(res["aipw"]["estimate"] - truth) < 3 * res["aipw"]["se"]
    # trimming sweep: fewer rows as the interval narrows
    trim = trimming_sweep(y, w, pos.propensity, mu0=res.mu0, mu1=res.mu1).to_frame()
    assert list(trim["n"]) == sorted(trim["n"], reverse=True)
    assert trim["n"].iloc[0] == y.size


def test_manski_bounds_closed_form_and_width():
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    w = np.array([1, 1, 1, 0, 0, 0])
    b = manski_bounds(y, w, outcome_min=0, outcome_max=1)
    # p = 1/2, E[Y|W=1] = 2/3, E[Y|W=0] = 1/3
    assert b.lower == pytest.approx(0.5 * 2 / 3 - (0.5 * 1 / 3 + 0.5))
    assert b.upper == pytest.approx(0.5 * 2 / 3 + 0.5 - 0.5 * 1 / 3)
    assert b.width == pytest.approx(1.0)
    with pytest.raises(DataError, match="outside"):
        manski_bounds(y * 3, w, outcome_min=0, outcome_max=1)


def test_e_value_published_example_and_null_interval():
    # VanderWeele and Ding (2017): RR 3.9 (95% CI 1.8 to 8.7) -> E-values 7.26 and 3.00
    r = e_value(3.9, 1.8, 8.7, scale="risk_ratio")
    assert r.e_value == pytest.approx(7.26, abs=0.01)
    assert r.e_value_ci == pytest.approx(3.00, abs=0.01)
    assert e_value(0.5, -0.1, 1.1, outcome_sd=2.0).e_value_ci == 1.0
    # protective effects are inverted
    assert e_value(1 / 3.9, scale="risk_ratio").e_value == pytest.approx(7.26, abs=0.01)
    with pytest.raises(ModelError, match="outcome_sd"):
        e_value(1.0)


def test_bad_propensity_and_estimator():
    y, w = np.arange(6.0), np.array([0, 1] * 3)
    x = np.zeros((6, 1))
    with pytest.raises(DataError, match="outside"):
        estimate_ate(y, w, x, np.ones(6))
    with pytest.raises(ModelError, match="estimators"):
        estimate_ate(y, w, x, np.full(6, 0.5), estimators=["naive"])
