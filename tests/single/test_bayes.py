"""Bayesian uplift models (NumPyro NUTS): recovery, shrinkage, agreement with
statsmodels, Hillstrom against the raw difference in means, checks, diagnostics,
and input validation."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from manylift._core.errors import ColumnError, ConvergenceWarning, DataError, ModelError
from manylift.data.datasets import load_hillstrom
from manylift.simulate.segments import simulate_segment_experiment
from manylift.single.bayes import BayesianUplift, BayesPriors, resolve_control

FAST = dict(n_chains=4, n_warmup=500, n_draws=500, random_state=1)


# --------------------------------------------------------------------------
# simulated segments with known effects: one fit shared by several tests
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim():
    # five well-measured segments with different effects and baselines, and one tiny
    # segment (60 rows) whose raw lift is mostly noise
    return simulate_segment_experiment(
        n_per_segment=(1500, 1500, 1500, 1500, 1500, 60),
        effects=(0.1, 0.3, 0.5, 0.7, 0.4, 0.4),
        baselines=(-2.0, -1.5, -2.2, -1.8, -2.0, -2.0),
        random_state=7,
    )


@pytest.fixture(scope="module")
def hier_fit(sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianUplift(model="hierarchical", **FAST).fit(
            sim.frame, treatment="treatment", outcome="outcome", segment="segment",
            covariates=["x0", "x1"],
        )


@pytest.mark.slow
def test_hierarchical_recovers_segment_uplifts(sim, hier_fit):
    eff = hier_fit.segment_effects()
    frame = eff.to_frame().set_index("segment").loc[list(sim.segments)]
    covered = (frame["uplift_lo"] <= sim.uplift) & (sim.uplift <= frame["uplift_hi"])
    # 95% intervals: with 6 segments at most one miss is expected
    assert covered.sum() >= 5, frame[["uplift_lo", "uplift_hi"]].assign(truth=sim.uplift)
    covered80 = (frame["uplift_q10"] <= sim.uplift) & (sim.uplift <= frame["uplift_q90"])
    assert covered80.sum() >= 3
    # the overall uplift over all rows is covered too
    overall = hier_fit.overall_effect().uplift
    assert overall["lo"] <= sim.overall_uplift <= overall["hi"]
    # the log-odds effects of the well-measured segments are ordered as the truth
    big = frame.iloc[:4]["effect_mean"].to_numpy()
    assert np.all(np.diff(big) > 0)
    d = hier_fit.diagnostics_
    assert d.rhat_max < 1.015 and d.divergences == 0


@pytest.mark.slow
def test_shrinkage_pulls_tiny_noisy_segment_toward_the_mean(sim, hier_fit):
    eff = hier_fit.segment_effects().to_frame().set_index("segment")
    tiny = eff.loc["s5"]
    overall = hier_fit.overall_effect().uplift["mean"]
    # the raw lift of 60 rows is noisy; partial pooling pulls the estimate toward the mean
    assert abs(tiny["uplift_mean"] - overall) < abs(tiny["raw_lift"] - overall)
    # and its posterior is narrower than the raw lift's own standard error would allow
    d = sim.frame[sim.frame["segment"] == "s5"]
    p1 = d.loc[d.treatment == 1, "outcome"].mean()
    p0 = d.loc[d.treatment == 0, "outcome"].mean()
    se_raw = np.sqrt(p1 * (1 - p1) / (d.treatment == 1).sum() + p0 * (1 - p0) / (d.treatment == 0).sum())
    assert tiny["uplift_sd"] < se_raw
    # the large segments keep close to their own data: within 2 raw standard errors
    for s in ("s0", "s3"):
        r = eff.loc[s]
        g = sim.frame[sim.frame["segment"] == s]
        se = g.groupby("treatment")["outcome"].agg(lambda v: v.var(ddof=1) / len(v)).sum() ** 0.5
        assert abs(r["uplift_mean"] - r["raw_lift"]) < 2 * se


@pytest.mark.slow
def test_prior_predictive_matches_independent_monte_carlo():
    # pooled model, no covariates: the implied rate per prior draw is
    # mean_i sigmoid(alpha + tau W_i); draw alpha, tau with numpy and compare
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"w": np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int)})
    df["y"] = (rng.random(n) < 0.1).astype(int)
    priors = BayesPriors(intercept_loc=-2.0, intercept_scale=1.0, effect_scale=0.5)
    fit = BayesianUplift(model="pooled", priors=priors, n_chains=1, n_warmup=50,
                         n_draws=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit.fit(df, treatment="w", outcome="y", allow_duplicates=True)
    check = fit.prior_predictive(n_draws=2000)
    # the intercept is the log-odds at the average treated share (here 1/2): the arms sit at
    # alpha - tau / 2 and alpha + tau / 2
    alpha = rng.normal(-2.0, 1.0, 4000)
    tau = rng.normal(0.0, 0.5, 4000)
    ref = 0.5 * (1 / (1 + np.exp(-(alpha - tau / 2))) + 1 / (1 + np.exp(-(alpha + tau / 2))))
    assert stats.ks_2samp(check.draws, ref).pvalue > 0.01
    assert check.observed == pytest.approx(df["y"].mean())
    assert set(check.groups["arm"]) == {"treated", "control"}


@pytest.mark.slow
def test_posterior_predictive_covers_observed_rates(sim, hier_fit):
    ppc = hier_fit.posterior_predictive(n_draws=300)
    assert ppc.covers_observed
    assert 0.025 < ppc.p_value < 0.975
    # per segment x arm: observed within the 95% predictive band for nearly all groups
    g = ppc.groups
    inside = (g["lo"] <= g["observed"]) & (g["observed"] <= g["hi"])
    assert inside.sum() >= len(g) - 1
    assert len(g) == 2 * len(sim.segments)


@pytest.mark.slow
def test_pooled_logit_agrees_with_statsmodels_mle():
    sim = simulate_segment_experiment(n_per_segment=(4000,), effects=(0.5,), random_state=11)
    df = sim.frame
    fit = BayesianUplift(model="pooled", **FAST).fit(
        df, treatment="treatment", outcome="outcome", covariates=["x0", "x1"])
    X = df[["treatment", "x0", "x1"]].copy()
    X[["x0", "x1"]] = (X[["x0", "x1"]] - X[["x0", "x1"]].mean()) / X[["x0", "x1"]].std(ddof=0)
    mle = sm.Logit(df["outcome"], sm.add_constant(X)).fit(disp=0)
    post = fit.samples_["effect"]
    # flat-ish priors and 4000 rows: posterior mean near the MLE, sd near the SE
    assert abs(post.mean() - mle.params["treatment"]) < 0.25 * mle.bse["treatment"]
    assert post.std() == pytest.approx(mle.bse["treatment"], rel=0.2)
    beta = fit.samples_["beta"].mean(axis=0)
    np.testing.assert_allclose(beta, mle.params[["x0", "x1"]], atol=0.3 * mle.bse["x0"] + 0.01)
    assert fit.diagnostics_.rhat_max < 1.015 and fit.diagnostics_.divergences == 0


@pytest.mark.slow
def test_gaussian_family_agrees_with_ols():
    sim = simulate_segment_experiment(n_per_segment=(1500, 1500), effects=(2.0, 2.0),
                                      baselines=(10.0, 10.0), family="gaussian",
                                      noise_sd=5.0, random_state=5)
    df = sim.frame
    fit = BayesianUplift(model="pooled", family="gaussian", **FAST).fit(
        df, treatment="treatment", outcome="outcome", covariates=["x0", "x1"])
    ols = sm.OLS(df["outcome"], sm.add_constant(df[["treatment", "x0", "x1"]])).fit()
    up = fit.overall_effect().uplift
    # uplift is reported in outcome units and equals the effect for the Gaussian family
    assert abs(up["mean"] - ols.params["treatment"]) < 0.25 * ols.bse["treatment"]
    assert up["sd"] == pytest.approx(ols.bse["treatment"], rel=0.2)
    seg = fit.segment_effects().to_frame()
    np.testing.assert_allclose(seg["uplift_mean"], up["mean"], rtol=1e-9)


# --------------------------------------------------------------------------
# Hillstrom: any e-mail vs none, conversion, by history segment
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hillstrom_sub():
    df = load_hillstrom()
    return df.sample(12000, random_state=2008).reset_index(drop=True)


def _diff_in_means(df):
    """Difference in conversion rates, any e-mail minus none, from the raw rows, with a normal
    95% CI."""
    treated = df["segment"] != "No E-Mail"
    y1, y0 = df.loc[treated, "conversion"], df.loc[~treated, "conversion"]
    est = y1.mean() - y0.mean()
    se = np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    return est, est - 1.96 * se, est + 1.96 * se


@pytest.mark.slow
def test_hillstrom_pooled_uplift_matches_raw_difference_in_means(hillstrom_sub):
    df = hillstrom_sub
    fit = BayesianUplift(model="pooled", n_chains=4, n_warmup=500, n_draws=500,
                         random_state=0).fit(
        df, treatment="segment", outcome="conversion",
        covariates=["recency", "history", "mens", "womens", "newbie"])
    assert fit.control_ == "No E-Mail"
    est, lo, hi = _diff_in_means(df)
    up = fit.overall_effect().uplift
    assert lo <= up["mean"] <= hi
    assert up["lo"] <= est <= up["hi"]
    # P(uplift > 0) agrees with the normal approximation of the raw difference
    se = (hi - lo) / (2 * 1.96)
    assert up["p_positive"] == pytest.approx(stats.norm.cdf(est / se), abs=0.05)
    d = fit.diagnostics_
    assert d.rhat_max < 1.01 and d.divergences == 0 and d.ess_bulk_min > 400


# --------------------------------------------------------------------------
# diagnostics, determinism, validation
# --------------------------------------------------------------------------
def _small(seed=0, n=300):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"w": rng.integers(0, 2, n), "seg": rng.choice(["a", "b"], n)})
    df["y"] = (rng.random(n) < 0.2 + 0.1 * df["w"]).astype(int)
    return df


@pytest.mark.slow
def test_too_short_run_warns_with_the_fix_and_seed_is_deterministic():
    df = _small()
    kw = dict(model="pooled", n_chains=2, n_warmup=10, n_draws=30, random_state=5)
    with pytest.warns(ConvergenceWarning, match="n_warmup.*target_accept"):
        a = BayesianUplift(**kw).fit(df, treatment="w", outcome="y", allow_duplicates=True)
    assert not a.diagnostics_.passed
    assert a.diagnostics_.problems
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b = BayesianUplift(**kw).fit(df, treatment="w", outcome="y", allow_duplicates=True)
    np.testing.assert_array_equal(a.samples_["effect"], b.samples_["effect"])


@pytest.mark.slow
def test_arviz_export_has_segment_dims(sim, hier_fit):
    post = hier_fit.posterior_.posterior
    assert post["effect"].dims == ("chain", "draw", "segment")
    assert list(post["effect"].coords["segment"].values) == list(sim.segments)
    assert post.sizes["chain"] == 4 and post.sizes["draw"] == 500


def test_resolve_control_rules():
    assert resolve_control([0, 1, 1]) == 0
    assert resolve_control([True, False]) is False
    assert resolve_control(["Mens E-Mail", "No E-Mail", "Womens E-Mail"]) == "No E-Mail"
    assert resolve_control(["A", "B"], control="B") == "B"
    with pytest.raises(DataError, match="Cannot tell which treatment value is the control"):
        resolve_control(["A", "B", "C"])
    with pytest.raises(DataError, match="'Z' is not in the treatment column"):
        resolve_control(["A", "B"], control="Z")


@pytest.mark.parametrize(
    "change, kwargs, error, pattern",
    [
        (None, dict(outcome="nope"), ColumnError, "outcome column 'nope' is not in the data"),
        ("y_counts", dict(family="bernoulli"), DataError, "only 0/1.*2 row"),
        ("nan_cov", dict(covariates=["x"]), DataError, "'x' has 1 missing"),
        ("one_arm", {}, DataError, "no control rows"),
        (None, dict(covariates=["w"]), DataError, "may not include the treatment"),
        (None, dict(covariates=["seg"]), ModelError, "segment column 'seg' is also a covariate"),
    ],
)
def test_bad_input_messages(change, kwargs, error, pattern):
    df = _small()
    df["x"] = np.arange(len(df), dtype=float)
    if change == "y_counts":
        df.loc[:1, "y"] = 2
    elif change == "nan_cov":
        df.loc[3, "x"] = np.nan
    elif change == "one_arm":
        df["w"] = 1
    args = dict(treatment="w", outcome="y", segment="seg", allow_duplicates=True) | kwargs
    family = args.pop("family", "auto")
    with pytest.raises(error, match=pattern):
        BayesianUplift(family=family).fit(df, **args)


def test_bad_parameters():
    with pytest.raises(ModelError, match="'effect_scale'.*positive"):
        BayesPriors(effect_scale=-1)
    with pytest.raises(ModelError, match="'model' parameter"):
        BayesianUplift(model="centred").fit(_small(), treatment="w", outcome="y",
                                            allow_duplicates=True)
    with pytest.raises(ModelError, match="not fitted"):
        BayesianUplift().segment_effects()


# --------------------------------------------------------------------------
# the counts collapse: the same posterior as an independent row-level model
# --------------------------------------------------------------------------
def _row_level_reference(df, covariates, segment, outcome, draws, seed):
    """The hierarchical model written independently, one Bernoulli term per row (NumPyro),
    on the design the docs define: standardized covariates, covariates and treatment centred
    within segment, intercept prior centred on logit(mean y)."""
    import jax
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    seg_codes, seg_names = pd.factorize(df[segment], sort=True)
    w = (df["segment"] != "No E-Mail").to_numpy(float)
    x = df[covariates].to_numpy(float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    g = pd.Series(seg_codes)
    x = x - pd.DataFrame(x).groupby(g).transform("mean").to_numpy()
    wc = w - pd.Series(w).groupby(g).transform("mean").to_numpy()
    y = df[outcome].to_numpy(float)
    loc = float(np.log(y.mean() / (1 - y.mean())))
    S = len(seg_names)

    def model(wc, x, seg, y):
        beta = numpyro.sample("beta", dist.Normal(0, 1).expand([x.shape[1]]).to_event(1))
        mu = numpyro.sample("effect_mean", dist.Normal(0, 1))
        sd = numpyro.sample("effect_sd", dist.HalfNormal(0.5))
        z = numpyro.sample("effect_z", dist.Normal(0, 1).expand([S]).to_event(1))
        tau = numpyro.deterministic("effect", mu + sd * z)
        base = numpyro.sample("baseline", dist.Normal(loc, 1.5).expand([S]).to_event(1))
        numpyro.sample("y", dist.BernoulliLogits(base[seg] + tau[seg] * wc + x @ beta), obs=y)

    mcmc = MCMC(NUTS(model, target_accept_prob=0.9), num_warmup=draws, num_samples=draws,
                num_chains=4, chain_method="vectorized", progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.run(jax.random.PRNGKey(seed), wc.astype(np.float32), x.astype(np.float32),
                 seg_codes.astype(np.int32), y.astype(np.float32))
    samples = {k: np.asarray(v, dtype=float) for k, v in mcmc.get_samples().items()}
    # uplift over all rows, per draw, from the reference draws
    tau, base, beta = samples["effect"], samples["baseline"], samples["beta"]
    eta0 = base[:, seg_codes] + tau[:, seg_codes] * (0 - (w - wc))[None, :] + beta @ x.T
    up = (1 / (1 + np.exp(-(eta0 + tau[:, seg_codes]))) - 1 / (1 + np.exp(-eta0))).mean(axis=1)
    return samples, up


@pytest.mark.slow
def test_counts_collapse_gives_the_row_level_posterior_on_a_hillstrom_subsample():
    import arviz as az

    df = load_hillstrom().sample(4000, random_state=11).reset_index(drop=True)
    cov = ["mens", "womens", "newbie"]
    fit = BayesianUplift(model="hierarchical", n_chains=4, n_warmup=600, n_draws=600,
                         random_state=2).fit(df, treatment="segment", outcome="visit",
                                             segment="history_segment", covariates=cov)
    assert fit.design_.collapsed and fit.design_.n_cells < 120 < 4000  # really collapsed
    ref, ref_up = _row_level_reference(df, cov, "history_segment", "visit", 600, seed=7)
    ours = fit.samples_
    checked = 0
    for site in ("effect_mean", "effect_sd", "effect", "baseline", "beta"):
        a = ours[site].reshape(ours[site].shape[0], -1)
        b = ref[site].reshape(ref[site].shape[0], -1)
        for j in range(a.shape[1]):
            ess_a = float(az.ess(a[:, j].reshape(4, -1)))
            ess_b = float(az.ess(b[:, j].reshape(4, -1)))
            se = np.sqrt(a[:, j].var() / ess_a + b[:, j].var() / ess_b)
            assert abs(a[:, j].mean() - b[:, j].mean()) < 4 * se, (site, j)
            assert a[:, j].std() == pytest.approx(b[:, j].std(), rel=0.15), (site, j)
            checked += 1
    assert checked == 2 + 2 * 7 + 3
    up = fit.overall_effect().uplift_draws
    assert abs(up.mean() - ref_up.mean()) < 4 * np.sqrt(up.var() / 600 + ref_up.var() / 600)
    # and the collapse is only a speed-up of the same code: collapse=False on the rows agrees
    rows = BayesianUplift(model="pooled", n_chains=2, n_warmup=200, n_draws=300, collapse=False,
                          random_state=3).fit(df, treatment="segment", outcome="visit",
                                              covariates=cov)
    cells = BayesianUplift(model="pooled", n_chains=2, n_warmup=200, n_draws=300,
                           random_state=3).fit(df, treatment="segment", outcome="visit",
                                               covariates=cov)
    assert rows.design_.n_cells == 4000 and cells.design_.n_cells < 20
    a, b = rows.samples_["effect"], cells.samples_["effect"]
    assert abs(a.mean() - b.mean()) < 4 * np.sqrt(a.var() / 150 + b.var() / 150)


def test_design_cells_hold_the_rows_sufficient_statistics():
    from manylift.single import SingleData
    from manylift.single.bayes import build_design

    df = load_hillstrom().sample(3000, random_state=4).reset_index(drop=True)
    data = SingleData.from_frame(df, "segment", "spend", ["mens", "womens", "zip_code"],
                                 segment="history_segment")
    d = build_design(data, hierarchical=True)
    assert d.family == "gaussian" and d.n.sum() == 3000
    # per segment and arm: rows, sum and sum of squares of the outcome equal the raw file's
    y = (df["spend"] - df["spend"].mean()) / df["spend"].std(ddof=0)
    w = (df["segment"] != "No E-Mail").astype(int)
    raw = pd.DataFrame({"s": df["history_segment"], "w": w, "y": y, "y2": y**2}).groupby(
        ["s", "w"]).agg(n=("y", "size"), y=("y", "sum"), y2=("y2", "sum"))
    cells = pd.DataFrame({"s": np.asarray(d.segments)[d.segment_index], "w": d.treated.astype(int),
                          "n": d.n, "y": d.y_sum, "y2": d.y_sumsq}).groupby(["s", "w"]).sum()
    np.testing.assert_allclose(cells.loc[raw.index].to_numpy(), raw.to_numpy(), rtol=1e-9)
    # the covariates are centred within segment (row-weighted)
    for k in range(d.X.shape[1]):
        sums = np.bincount(d.segment_index, weights=d.X[:, k] * d.n)
        np.testing.assert_allclose(sums, 0, atol=1e-8)
