"""``manylift fit``: the arguments of fitting the pooled model to an exposure file.

The work (read, validate, fit, analyse, save, report) is :func:`manylift.workflows.fit.run_fit`.
"""

from __future__ import annotations

import argparse

from manylift.cli._common import (
    add_pooled_column_options,
    describe_pooled_covariates,
    pooled_data_kwargs,
)


def add_sampler_options(p: argparse.ArgumentParser, draws: int = 1000, warmup: int = 1000,
                        chains: int = 4) -> None:
    g = p.add_argument_group("sampler")
    g.add_argument("--chains", type=int, default=chains, help=f"number of chains (default {chains})")
    g.add_argument("--draws", type=int, default=draws, help=f"retained draws per chain (default {draws})")
    g.add_argument("--warmup", type=int, default=warmup, help=f"warm-up sweeps (default {warmup})")
    g.add_argument("--thin", type=int, default=1, help="keep every k-th sweep (default 1)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba", "jax", "cpu", "gpu"],
                   help="sampler backend (default auto: JAX on a GPU if there is one, else the "
                        "compiled CPU sweep; numpy is the readable reference)")
    g.add_argument("--plain-gibbs", dest="plain_gibbs", action="store_true",
                   help="turn off the scale move and the interweaving move (plain Gibbs, for "
                        "comparisons)")
    g.add_argument("--no-random-intercept", dest="random_intercept", action="store_false",
                   help="no customer random intercept: the source study's exact specification "
                        "(u_i = (uI_i, ubeta_i)); by default each customer also gets a random "
                        "intercept, which keeps sigma_u unbiased when the treated share is not "
                        "1/2 (docs/pooled.md)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def spec_from_args(args):
    """The sampler's ModelSpec: both redundant moves (the default), or plain Gibbs with
    ``--plain-gibbs``."""
    from manylift.sampler.state import ModelSpec

    return ModelSpec(expansion=False, interweave=False) if args.plain_gibbs else ModelSpec()


def model_kwargs(args) -> dict:
    """The PooledModel keyword arguments of the sampler options."""
    return dict(n_chains=args.chains, n_warmup=args.warmup, n_draws=args.draws, thin=args.thin,
                random_state=args.seed, backend=args.backend, spec=spec_from_args(args),
                random_intercept=args.random_intercept, progress=not args.quiet)


def _run(args) -> int:
    from manylift.workflows.fit import run_fit

    return run_fit(args.exposures, args.campaigns, args.out, data_kwargs=pooled_data_kwargs(args),
                   drop_incomplete=args.drop_incomplete, model_kwargs=model_kwargs(args),
                   resume=args.resume, describe=describe_pooled_covariates)


def register(sub) -> None:
    p = sub.add_parser(
        "fit", help="fit the pooled model to repeated experiments",
        description="Fit the pooled hierarchical Bayesian model (docs/pooled.md) by Gibbs "
                    "sampling and write results.json, customers.parquet and posterior.nc to --out. "
                    "A checkpoint is written every 250 sweeps; --resume continues from it with the "
                    "same draws as an uninterrupted run.",
    )
    p.add_argument("exposures", help="CSV (optionally gzipped) or Parquet: one row per customer "
                                     "per intervention")
    p.add_argument("--campaigns", default=None, help="campaign table (campaign_id, attributes, cost)")
    add_pooled_column_options(p)
    p.add_argument("--drop-incomplete", action="store_true",
                   help="drop interventions without a treated or a control row (with a warning)")
    add_sampler_options(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_run)
