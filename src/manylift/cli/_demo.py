"""``manylift demo``: the arguments of simulating a program with known truth, fitting it,
comparing and scoring the next week (the work is :func:`manylift.workflows.demo.run_demo`)."""

from __future__ import annotations

from manylift.cli._common import describe_pooled_covariates
from manylift.cli._fit import add_sampler_options, model_kwargs


def _run(args) -> int:
    from manylift.workflows.demo import run_demo

    return run_demo(customers=args.customers, campaigns=args.campaigns, weeks=args.weeks,
                    noise=args.noise, mode=args.mode, seed=args.seed, out=args.out,
                    rows_per_customer=args.rows_per_customer, sigma_u=args.sigma_u,
                    model_kwargs=model_kwargs(args), describe=describe_pooled_covariates)


def register(sub) -> None:
    from manylift.workflows.demo import DEMO_PROGRAM as D

    p = sub.add_parser(
        "demo", help="simulate a marketing program, fit the pooled model, compare with the "
                     "truth, score the next week",
        description="Simulate a repeated-experiment program with known truth, fit the pooled "
                    "model to all weeks but the last, print what it recovered next to the "
                    "truth, and score the last week's rows as a marketer would before sending "
                    "(scores.parquet next to the report). The defaults take under a minute "
                    "after the first compile on a 2-core machine.",
    )
    p.add_argument("--customers", type=int, default=D["customers"],
                   help=f"customers (default {D['customers']})")
    p.add_argument("--campaigns", type=int, default=D["campaigns"],
                   help=f"campaigns (default {D['campaigns']})")
    p.add_argument("--weeks", type=int, default=D["weeks"],
                   help=f"weeks to fit (default {D['weeks']}); one more week is simulated and "
                        f"scored")
    p.add_argument("--rows-per-customer", dest="rows_per_customer", type=float, default=None,
                   help=f"mean interventions per customer over the fitted weeks (default: "
                        f"{D['share_of_weeks']:g} x weeks, "
                        f"{D['share_of_weeks'] * D['weeks']:g} at the default weeks)")
    p.add_argument("--noise", type=float, default=D["noise"],
                   help=f"noise sd in outcome units (default {D['noise']:g})")
    p.add_argument("--sigma-u", dest="sigma_u", type=float, default=D["sigma_u"],
                   help=f"sd of the customers' unobserved effects in outcome units (default "
                        f"{D['sigma_u']:g}; the average effect is 1)")
    p.add_argument("--mode", choices=["realistic", "model"], default="realistic",
                   help="outcome model of the simulated program (default realistic: 0/1 "
                        "treatment, customer baselines, treated shares 0.58-0.86; see "
                        "`manylift simulate --help`)")
    add_sampler_options(p, draws=1500, warmup=1000, chains=2)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_run)
