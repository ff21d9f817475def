"""PooledModel: recovery of known truth, resume equality, bad inputs, saved files."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import (
    InterventionArmError,
    NonFiniteError,
    TooFewUnitsError,
    ValidationError,
)
from manylift.data.experiment import ExperimentData
from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program

warnings.filterwarnings("ignore", category=UserWarning)


def _truth_campaign_effects(fit, truth):
    cal = ~fit.inputs.holdout
    rows = truth.rows[cal]
    return rows.groupby(rows["campaign_id"].astype(str), observed=True)["tau"].mean()


@pytest.mark.slow
def test_recovers_average_effect_sigma_u_and_campaign_effects():
    data, truth = simulate_program(1500, 14, 24, spec=ProgramSpec(sigma=3.0), random_state=11)
    fit = PooledModel(n_chains=2, n_warmup=250, n_draws=250, backend="numpy", progress=False,
                      random_state=1).fit(data)
    post = fit.posterior.posterior
    true_avg = truth.rows["tau"][~fit.inputs.holdout].mean()
    ae = post["average_effect"].values.ravel()
    assert np.quantile(ae, 0.005) < true_avg < np.quantile(ae, 0.995)
    su = post["sigma_u"].values.ravel()
    assert abs(su.mean() - truth.params["sigma_u"]) < 0.35
    est = post["campaign_effect"].mean(("chain", "draw")).to_series()
    lo = post["campaign_effect"].quantile(0.025, ("chain", "draw")).to_series()
    hi = post["campaign_effect"].quantile(0.975, ("chain", "draw")).to_series()
    tc = _truth_campaign_effects(fit, truth).reindex(est.index)
    assert np.corrcoef(est, tc)[0, 1] > 0.7
    assert ((lo <= tc) & (tc <= hi)).mean() >= 0.85


def _uI_corr(rows_per_customer, seed):
    data, truth = simulate_program(600, 8, 40, rows_per_customer=rows_per_customer,
                                   spec=ProgramSpec(sigma=3.0), random_state=seed)
    fit = PooledModel(n_chains=1, n_warmup=150, n_draws=150, backend="numpy", progress=False,
                      holdout=False).fit(data)
    c = fit.customers.merge(truth.customers, on="customer_id")
    return np.corrcoef(c["mean"], c["u_I"])[0, 1]


@pytest.mark.slow
def test_customer_responsiveness_is_learned_and_improves_with_more_rows():
    few = _uI_corr(6, 2)
    many = _uI_corr(24, 2)
    assert few > 0.2
    assert many > few + 0.1


def test_resume_gives_the_same_draws_as_an_uninterrupted_run(tmp_path):
    data, _ = simulate_program(200, 4, 10, random_state=0)
    kw = dict(n_chains=2, n_warmup=30, n_draws=20, thin=2, backend="numpy", progress=False,
              checkpoint_every=20, random_state=7)
    full = PooledModel(**kw).fit(data)
    ck = tmp_path / "ck.npz"
    assert PooledModel(**kw).fit(data, checkpoint=ck, stop_after=45) is None
    assert ck.exists()
    resumed = PooledModel(**kw).fit(data, checkpoint=ck, resume=True)
    assert resumed.run.resumed
    np.testing.assert_array_equal(full.run.theta, resumed.run.theta)
    np.testing.assert_array_equal(full.run.sigma2, resumed.run.sigma2)
    np.testing.assert_array_equal(full.run.loglik, resumed.run.loglik)
    np.testing.assert_array_equal(full.customers["mean"], resumed.customers["mean"])


def test_save_writes_results_customers_and_posterior(tmp_path):
    import arviz as az

    data, _ = simulate_program(200, 4, 10, random_state=0)
    fit = PooledModel(n_chains=2, n_warmup=10, n_draws=10, backend="numpy",
                      progress=False).fit(data)
    fit.save(tmp_path)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["schema_version"] == 1
    for k in ("average_effect", "sigma_u", "taubar"):
        assert set(res["effects"][k]) == {"mean", "sd", "lo", "hi"}
    assert len(res["effects"]["campaigns"]) == data.n_campaigns
    assert res["data"]["rows"] == data.n_rows
    cust = pd.read_parquet(tmp_path / "customers.parquet")
    assert list(cust.columns) == ["customer_id", "mean", "sd", "lo", "hi"]
    assert len(cust) == data.n_customers
    idata = az.from_netcdf(tmp_path / "posterior.nc")
    assert idata.posterior["taubar"].shape == (2, 10)


def _frame():
    data, _ = simulate_program(100, 3, 8, random_state=0)
    return data.frame.drop(columns=["propensity"]).copy()


def test_bad_inputs_fail_before_sampling():
    df = _frame()
    one_arm = df.copy()
    first = one_arm["campaign_id"] == one_arm["campaign_id"].iloc[0]
    one_arm.loc[first, "treated"] = 1
    with pytest.raises(InterventionArmError, match="no control rows"):
        ExperimentData.from_frame(one_arm)
    nan_cov = df.copy()
    nan_cov.loc[3, "usage_7d"] = np.nan
    with pytest.raises(NonFiniteError, match="usage_7d"):
        ExperimentData.from_frame(nan_cov, covariates=["usage_7d"])
    # a single customer: no intervention can have both arms
    single = df[df["customer_id"] == df["customer_id"].iloc[0]]
    with pytest.raises((InterventionArmError, ValidationError), match="no (control|treated) rows"):
        ExperimentData.from_frame(single)
    # a single campaign: campaign effects are not identified
    one_campaign = df[df["campaign_id"] == df["campaign_id"].iloc[0]]
    data = ExperimentData.from_frame(one_campaign)
    with pytest.raises(TooFewUnitsError, match="at least 2 campaigns"):
        PooledModel(n_chains=1, n_warmup=1, n_draws=1, progress=False).fit(data)


def test_ctrl_c_leaves_a_checkpoint_that_resumes_to_the_same_draws(tmp_path):
    from manylift._core.errors import SamplerError

    data, _ = simulate_program(200, 4, 10, random_state=0)
    kw = dict(n_chains=2, n_warmup=10, n_draws=20, backend="numpy", progress=False,
              checkpoint_every=5, random_state=2)
    full = PooledModel(**kw).fit(data)

    ck = tmp_path / "ck.npz"
    import os
    import signal

    import manylift.pooled.model as pm

    original = pm.StreamingCustomers.__call__

    def interrupting(self, chain, draw, state):  # a real SIGINT (Ctrl-C) at the 8th draw
        original(self, chain, draw, state)
        if draw == 7 and chain == 0:
            os.kill(os.getpid(), signal.SIGINT)

    pm.StreamingCustomers.__call__ = interrupting
    try:
        with pytest.raises(SamplerError, match="checkpoint was written"):
            PooledModel(**kw).fit(data, checkpoint=ck)
    finally:
        pm.StreamingCustomers.__call__ = original
    assert ck.exists()
    resumed = PooledModel(**kw).fit(data, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(full.run.theta, resumed.run.theta)
    np.testing.assert_array_equal(full.customers["mean"], resumed.customers["mean"])


def test_resume_refuses_a_checkpoint_from_other_moves(tmp_path):
    """A checkpoint written with the interweaving move is not continued without it."""
    from manylift._core.errors import SamplerError
    from manylift.sampler.state import ModelSpec

    data, _ = simulate_program(200, 4, 10, random_state=0)
    kw = dict(n_chains=1, n_warmup=10, n_draws=10, backend="numpy", progress=False,
              checkpoint_every=5)
    ck = tmp_path / "ck.npz"
    assert PooledModel(**kw).fit(data, checkpoint=ck, stop_after=10) is None
    with pytest.raises(SamplerError, match="other settings.*sampler moves"):
        PooledModel(**kw, spec=ModelSpec(interweave=False)).fit(data, checkpoint=ck, resume=True)
    # the setting that differs is named, with both values
    with pytest.raises(SamplerError, match=r"--draws: 10 in the checkpoint, 12 now"):
        PooledModel(**{**kw, "n_draws": 12}).fit(data, checkpoint=ck, resume=True)
    with pytest.raises(SamplerError, match=r"random coefficients.*'u0'"):
        PooledModel(**kw, random_intercept=False).fit(data, checkpoint=ck, resume=True)


def test_decompose_method_reaches_the_decomposition_layer():
    # manylift.PooledModel is the workflows layer's: its fits decompose and report
    import manylift

    data, _ = simulate_program(300, 5, 30, random_state=2)
    fit = manylift.PooledModel(n_chains=1, n_warmup=20, n_draws=20, backend="numpy",
                               progress=False).fit(data)
    dec = fit.decompose()
    shares = dec.variance_share.to_dict()
    total = sum(v["mean"] for k, v in shares.items() if isinstance(v, dict) and "mean" in v)
    assert abs(total - 1) < 1e-6
