"""``manylift demo``: simulate a program with known truth, fit it, analyse it, compare."""

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

__all__ = ["run_demo", "truth_comparison"]


def truth_comparison(fit, truth) -> dict:
    """What the fit recovered next to the simulator's truth (the ``truth_comparison`` key)."""
    post = fit.posterior.posterior
    cal = ~np.asarray(fit.inputs.holdout, bool)
    rows = truth.rows[cal]
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


def run_demo(*, customers: int, campaigns: int, weeks: int, noise: float, mode: str,
             seed: int, out, model_kwargs: dict, log=print, describe=None) -> int:
    """The ``manylift demo`` command: every argument already parsed by the CLI."""
    from manylift._core.atomic import write_json
    from manylift.data.io import write_csv, write_parquet
    from manylift.simulate.program import ProgramSpec, simulate_program
    from manylift.workflows.api import PooledModel

    out = Path(out)
    st = Stages(log)
    log(f"Simulating a program: {customers:,} customers, {campaigns} campaigns, {weeks} weeks "
        f"(seed {seed}) ...")
    t = time.perf_counter()
    data, truth = simulate_program(customers, campaigns, weeks, spec=ProgramSpec(sigma=noise),
                                   mode=mode, random_state=seed)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "exposures.parquet", data.frame)
    write_csv(out / "campaigns.csv", data.campaigns)
    write_json(out / "truth.json", truth.to_dict())
    st.add("simulate", time.perf_counter() - t, "simulating the program")
    log(str(data))
    if describe is not None:
        log(describe(data))
    model = PooledModel(**model_kwargs)
    fit = model.fit(data, checkpoint=out / "checkpoint.npz", log=log)
    for w in fit.convergence_warnings():
        log(f"warning: {w}")
    cmp = truth_comparison(fit, truth)
    finish_after_sampling(fit, out, out / "checkpoint.npz", seed=model.random_state, stages=st,
                          progress=model.progress, log=log, extra={"truth_comparison": cmp})
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
    log(f"\nWritten to {out}/: exposures.parquet, campaigns.csv, truth.json, results.json, "
        f"customers.parquet, posterior.nc")
    log(f"Report: {out / 'report.html'}")
    return 0
