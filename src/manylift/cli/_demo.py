"""``manylift demo``: the arguments of simulating a program with known truth, fitting it and
comparing (the work is :func:`manylift.workflows.demo.run_demo`)."""

from __future__ import annotations

from manylift.cli._common import describe_pooled_covariates
from manylift.cli._fit import add_sampler_options, model_kwargs


def _run(args) -> int:
    from manylift.workflows.demo import run_demo

    return run_demo(customers=args.customers, campaigns=args.campaigns, weeks=args.weeks,
                    noise=args.noise, mode=args.mode, seed=args.seed, out=args.out,
                    model_kwargs=model_kwargs(args), describe=describe_pooled_covariates)


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="simulate a marketing program, fit the pooled model, compare with the truth",
        description="Simulate a repeated-experiment program with known truth, fit the pooled "
                    "model and print what it recovered next to the truth.",
    )
    p.add_argument("--customers", type=int, default=3000, help="customers (default 3000)")
    p.add_argument("--campaigns", type=int, default=20, help="campaigns (default 20)")
    p.add_argument("--weeks", type=int, default=30, help="weeks (default 30)")
    p.add_argument("--noise", type=float, default=4.0, help="noise sd in outcome units (default 4)")
    p.add_argument("--mode", choices=["realistic", "model"], default="realistic",
                   help="outcome model of the simulated program (default realistic: 0/1 "
                        "treatment, customer baselines, treated shares 0.58-0.86; see "
                        "`manylift simulate --help`)")
    add_sampler_options(p, draws=500, warmup=500, chains=2)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_run)
