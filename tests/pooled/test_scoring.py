"""Scoring new rows with a fitted pooled model: against the holdout validation, through a
saved run folder, and against the truth of weeks the fit never saw."""

import json

import numpy as np
import pandas as pd
import pytest

import manylift as ml
from manylift._core.errors import DataError
from manylift.pooled.holdout import holdout_components
from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data, truth = simulate_program(1500, 6, 20, random_state=0)
    fit = PooledModel(n_chains=2, n_warmup=100, n_draws=100, backend="numba",
                      progress=False).fit(data)
    run = tmp_path_factory.mktemp("run")
    fit.save(run)
    return data, truth, fit, run


def test_scoring_the_holdout_rows_reproduces_the_validation_draws(fitted):
    data, _, fit, _ = fitted
    f = data.frame
    hold = f[np.asarray(fit.inputs.holdout)].reset_index(drop=True).drop(columns=["outcome"])
    # the holdout rows lie inside the fitted weeks: their history is the full data's
    got = fit.scoring_model().effect_draws(hold, history=f)
    want = holdout_components(fit).tau_hat()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # float32 components


def test_a_saved_run_scores_like_the_fit_in_memory(fitted):
    data, _, fit, run = fitted
    f = data.frame
    new = f[f["week"] >= 15].drop(columns=["outcome"]).sample(frac=1.0, random_state=1)
    loaded = ml.load_run(run)
    a = fit.predict_effect(new, history=f, cost=0.3, random_state=4)
    b = loaded.predict_effect(new, history=f, cost=0.3, random_state=4)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    assert a.summary == b.summary
    # one row per input row, in the input's order
    assert len(a.rows) == len(new)
    np.testing.assert_array_equal(a.rows["customer_id"].to_numpy(), new["customer_id"].to_numpy())
    assert set(a.rows["decision"]) <= {"target", "do not target"}
    # the decision is the report's rule on the posterior mean: effect above cost
    np.testing.assert_array_equal(a.rows["decision"] == "target", a.rows["tau_mean"] > 0.3)
    assert loaded.summary().loc["average_effect", "mean"] == pytest.approx(
        float(fit.posterior.posterior["average_effect"].mean()))


def test_missing_or_tampered_model_files_give_a_clear_error(fitted, tmp_path):
    import shutil

    _, _, _, run = fitted
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / "model.json").unlink()
    with pytest.raises(DataError, match=r"model\.json' is missing"):
        ml.load_run(bad)
    shutil.copy(run / "model.json", bad / "model.json")
    meta = json.loads((bad / "model.json").read_text())
    meta["version"] = 99
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"model\.json' has model format version 99"):
        ml.load_run(bad)
    (bad / "model.json").write_text("{not json")
    with pytest.raises(DataError, match=r"model\.json' cannot be read as JSON"):
        ml.load_run(bad)
    del meta["levels"]
    meta["version"] = 1
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"lacks \['levels'\]"):
        ml.load_run(bad)


def test_new_rows_errors_name_the_problem(fitted):
    data, _, fit, _ = fitted
    new = data.frame[data.frame["week"] == 20].drop(columns=["outcome"])
    with pytest.raises(DataError, match=r"'usage_30d' \(activity\)"):
        fit.predict_effect(new.drop(columns=["usage_30d"]), history=data.frame)
    with pytest.raises(DataError, match="after the history"):
        fit.predict_effect(new)  # week 20 is inside the fitted weeks: needs history=
    with pytest.raises(DataError, match="'margin'"):
        fit.predict_effect(new, history=data.frame, margin=0)


@pytest.mark.slow
def test_scores_of_weeks_the_fit_never_saw_find_the_responsive_rows():
    """Fit weeks 1-24 of a realistic program; score weeks 25-30 from the stored state (no
    outcome, no treatment column): the scored effects correlate with the true per-row
    effects and the targeted rows' true effect exceeds the others'. Unseen campaigns, weeks
    and customers get wider intervals."""
    data, truth = simulate_program(6000, 10, 30, rows_per_customer=14,
                                   spec=ProgramSpec(sigma_u=3.0), random_state=5)
    f = data.frame
    early = (f["week"] <= 24).to_numpy()
    fit_data = ml.ExperimentData.from_frame(
        f[early].drop(columns=["propensity"]), data.campaigns.assign(
            campaign_id=data.campaigns["campaign_id"].astype(str)),
        covariates=list(data.covariates), activity_col=data.activity_col)
    fit = PooledModel(n_chains=2, n_warmup=200, n_draws=200, backend="numba",
                      progress=False).fit(fit_data)
    new = f[~early].drop(columns=["outcome", "treated", "propensity"]).copy()
    new["campaign_id"] = new["campaign_id"].astype(str)
    s = fit.predict_effect(new, cost=1.0).rows
    true = truth.rows.loc[~early, "tau"].to_numpy()
    r = np.corrcoef(s["tau_mean"], true)[0, 1]
    assert r > 0.5, r
    tgt = (s["decision"] == "target").to_numpy()
    assert 0 < tgt.mean() < 1
    assert true[tgt].mean() > true[~tgt].mean() + 0.5
    # every week is new to the fit: its effect is drawn from the fitted spread of weeks
    assert (s["tau_hi"] - s["tau_lo"]).min() > 0
    # an unseen campaign and an unseen customer widen the interval
    one = new.iloc[[0]].copy()
    base = fit.predict_effect(one, random_state=1).rows.iloc[0]
    other = one.assign(campaign_id="NEW", customer_id=-1)
    wide = fit.predict_effect(other, random_state=1).rows.iloc[0]
    assert (wide["tau_hi"] - wide["tau_lo"]) > (base["tau_hi"] - base["tau_lo"])


@pytest.mark.parametrize("n_draws", [1, 2, 3, 7, 400])
def test_fast_quantiles_equal_numpys(n_draws):
    from manylift.pooled.scoring import _quantiles

    x = np.random.default_rng(n_draws).normal(size=(n_draws, 33))
    np.testing.assert_allclose(_quantiles(x, (0.025, 0.975)),
                               np.quantile(x, [0.025, 0.975], axis=0), rtol=1e-12)
