"""``manylift demo``: simulate a program with known truth, fit it, analyse it, compare, and
score the week after the fitted weeks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from manylift.workflows.pooled import (
    Stages,
    finish_after_sampling,
    print_results,
    print_summary,
)

__all__ = ["DEMO_PROGRAM", "next_week_comparison", "run_demo", "split_next_week",
           "truth_comparison"]

# The demo's default program. Sized so that the holdout validation finds the heterogeneity
# the simulator put there (AUTOC interval above 0, P(model beats company) >= 0.9) in under a
# minute after the first compile on a 2-core machine: a customer effect sd of 2.5 outcome
# units around an average of 1 (real programs' customer spreads are several times their
# average effects), 20 interventions per customer over 40 weeks, noise sd 4. Measured in
# docs/pooled.md ("The demo").
DEMO_PROGRAM = {"customers": 6000, "campaigns": 20, "weeks": 40, "share_of_weeks": 0.5,
                "noise": 4.0, "sigma_u": 2.5}


def truth_comparison(fit, truth, rows=None) -> dict:
    """What the fit recovered next to the simulator's truth (the ``truth_comparison`` key).

    ``rows``: the truth's per-row frame of the fitted rows (default ``truth.rows``)."""
    post = fit.posterior.posterior
    cal = ~np.asarray(fit.inputs.holdout, bool)
    rows = (truth.rows if rows is None else rows)[cal]
    true_camp = rows.groupby(rows["campaign_id"].astype(str), observed=True)["tau"].mean()
    est = post["campaign_effect"].mean(("chain", "draw")).to_series()
    lo = post["campaign_effect"].quantile(0.025, ("chain", "draw")).to_series()
    hi = post["campaign_effect"].quantile(0.975, ("chain", "draw")).to_series()
    tc = true_camp.reindex(est.index)
    cust = fit.customers.merge(truth.customers[["customer_id", "u_I"]], on="customer_id")
    su = post["sigma_u"]
    return {
        "average_effect": {"estimate": float(post["average_effect"].mean()),
                           "truth": float(rows["tau"].mean())},
        "sigma_u": {"estimate": float(su.mean()), "lo": float(su.quantile(0.025)),
                    "hi": float(su.quantile(0.975)),
                    "truth": float(truth.params["sigma_u_sample"])},
        "campaign_effects": {"correlation": float(np.corrcoef(est, tc)[0, 1]),
                             "coverage": float(((lo <= tc) & (tc <= hi)).mean())},
        "customer_uI": {"correlation": float(np.corrcoef(cust["mean"], cust["u_I"])[0, 1])},
    }


def split_next_week(data, truth):
    """The simulated program without its last week (to fit) and that week's rows as a
    marketer would have them before sending: customer, campaign, week, covariates, activity;
    no outcome, no assignment. Returns ``(fit_data, next_rows, next_truth, fitted_truth_rows)``."""
    from manylift.data.experiment import ExperimentData

    f = data.frame
    last = f["week"].max()
    early = (f["week"] < last).to_numpy()
    fit_data = ExperimentData.from_frame(
        f[early].drop(columns=["propensity"], errors="ignore"), data.campaigns,
        covariates=list(data.covariates), activity_col=data.activity_col)
    keep = ["customer_id", "campaign_id", "week", *data.covariates]
    if data.activity_col:
        keep.append(data.activity_col)
    next_rows = f.loc[~early, keep].reset_index(drop=True)
    next_truth = truth.rows.loc[~early].reset_index(drop=True)
    # the truth of the fitted rows, row for row with fit_data.frame (one row per customer and
    # week in the simulator's truth)
    fitted_truth = fit_data.frame[["customer_id", "week"]].merge(
        truth.rows.loc[early], on=["customer_id", "week"], how="left", validate="one_to_one")
    return fit_data, next_rows, next_truth, fitted_truth


def next_week_comparison(scores, next_truth) -> dict:
    """The scored next week against the simulator's per-row true effects."""
    s = scores.rows
    true = next_truth["tau"].to_numpy(float)
    tgt = (s["decision"] == "target").to_numpy()
    cover = (s["tau_lo"].to_numpy() <= true) & (true <= s["tau_hi"].to_numpy())
    return {
        "rows": int(len(s)),
        "correlation": float(np.corrcoef(s["tau_mean"].to_numpy(float), true)[0, 1]),
        "coverage": float(cover.mean()),
        "targeted": int(tgt.sum()),
        "true_effect_targeted": float(true[tgt].mean()) if tgt.any() else None,
        "true_effect_not_targeted": float(true[~tgt].mean()) if (~tgt).any() else None,
        "true_effect_all": float(true.mean()),
    }


def run_demo(*, customers: int, campaigns: int, weeks: int, noise: float, mode: str,
             seed: int, out, model_kwargs: dict, rows_per_customer: float | None = None,
             sigma_u: float | None = None, log=print, describe=None) -> int:
    """The ``manylift demo`` command: every argument already parsed by the CLI.

    Simulates ``weeks + 1`` weeks, fits the first ``weeks`` and scores the last one (the
    "next week"), writing ``scores.parquet`` next to the report."""
    from manylift._core.atomic import write_json
    from manylift.data.io import write_csv, write_parquet
    from manylift.simulate.program import ProgramSpec, simulate_program
    from manylift.workflows.api import PooledModel
    from manylift.workflows.score import describe_scores, write_scores

    out = Path(out)
    st = Stages(log)
    log(f"Simulating a program: {customers:,} customers, {campaigns} campaigns, {weeks} weeks "
        f"and the week after them to score (seed {seed}) ...")
    t = time.perf_counter()
    spec = ProgramSpec(sigma=noise) if sigma_u is None else ProgramSpec(sigma=noise,
                                                                         sigma_u=sigma_u)
    if rows_per_customer is None:  # each customer in half the weeks (20 of the default 40)
        rows_per_customer = DEMO_PROGRAM["share_of_weeks"] * weeks
    rpc = rows_per_customer * (weeks + 1) / weeks
    data_all, truth = simulate_program(customers, campaigns, weeks + 1, spec=spec, mode=mode,
                                       rows_per_customer=rpc, random_state=seed)
    data, next_rows, next_truth, fitted_truth = split_next_week(data_all, truth)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "exposures.parquet", data.frame)
    write_csv(out / "campaigns.csv", data.campaigns)
    write_json(out / "truth.json", truth.to_dict())
    write_parquet(out / "next_week.parquet", next_rows)
    st.add("simulate", time.perf_counter() - t, "simulating the program")
    log(str(data))
    if describe is not None:
        log(describe(data))
    model = PooledModel(**model_kwargs)
    fit = model.fit(data, checkpoint=out / "checkpoint.npz", log=log)
    for w in fit.convergence_warnings():
        log(f"warning: {w}")
    cmp = truth_comparison(fit, truth, fitted_truth)
    t = time.perf_counter()
    scores = fit.predict_effect(next_rows, random_state=seed, progress=False)
    nxt = next_week_comparison(scores, next_truth)
    cmp["next_week"] = nxt
    st.add("score", time.perf_counter() - t, "scoring the next week")
    finish_after_sampling(fit, out, out / "checkpoint.npz", seed=model.random_state, stages=st,
                          progress=model.progress, log=log, extra={"truth_comparison": cmp})
    write_scores(scores, out, run=str(out), new_rows=str(out / "next_week.parquet"))
    print_summary(fit)
    print_results(out)
    log("\nRecovered vs truth (effects in outcome units, treated minus control):")
    ae, su = cmp["average_effect"], cmp["sigma_u"]
    log(f"  average effect     {ae['estimate']:8.3f}   truth {ae['truth']:8.3f}")
    log(f"  sigma_u            {su['estimate']:8.3f}   truth {su['truth']:8.3f}   (95% interval "
        f"{su['lo']:.3f} to {su['hi']:.3f}; sd of the simulated customers' uI)")
    ce = cmp["campaign_effects"]
    log(f"  campaign effects   correlation with truth {ce['correlation']:.2f}, 95% intervals "
        f"cover {100 * ce['coverage']:.0f}% of campaigns")
    log(f"  customer uI        correlation of posterior means with truth "
        f"{cmp['customer_uI']['correlation']:.2f}")
    log(f"\nNext week (week {int(next_rows['week'].max())}, {nxt['rows']:,} rows scored before "
        f"sending): {describe_scores(scores.summary)}")
    tt, tn = nxt["true_effect_targeted"], nxt["true_effect_not_targeted"]
    if tt is not None and tn is not None:
        log(f"  true effect of the rows it targets {tt:.3f} vs the others {tn:.3f}; correlation "
            f"of scored and true effects {nxt['correlation']:.2f}; 95% intervals cover "
            f"{100 * nxt['coverage']:.0f}% of the rows' true effects")
    log(f"\nWritten to {out}/: exposures.parquet, campaigns.csv, truth.json, results.json, "
        f"customers.parquet, posterior.nc, next_week.parquet, scores.parquet, scores.json")
    log(f"Report: {out / 'report.html'}")
    return 0
