"""``manylift fit``: the arguments of fitting the pooled model to an exposure file.

The work (read, validate, fit, analyse, save, report) is :func:`manylift.workflows.fit.run_fit`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from manylift._core.distributed import ENV_COORDINATOR, ENV_PROCESS_ID, ENV_PROCESSES
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


def add_scale_options(p: argparse.ArgumentParser) -> None:
    """--devices, --processes, --process-id, --coordinator (docs/scaling.md)."""
    g = p.add_argument_group("past one machine (docs/scaling.md)")
    g.add_argument("--devices", type=int, default=None, metavar="N",
                   help="run the sharded JAX sweep over N local devices (GPUs, or N CPU "
                        "devices: the XLA host-device flag is set before JAX starts)")
    g.add_argument("--processes", type=int, default=None, metavar="P",
                   help=f"fit over P processes (this machine or several), each holding whole "
                        f"customers (env {ENV_PROCESSES}); give EXPOSURES as a folder written by "
                        f"`manylift partition` so each reads only its buckets")
    g.add_argument("--process-id", dest="process_id", type=int, default=None, metavar="I",
                   help=f"this process's index, 0..P-1 (env {ENV_PROCESS_ID}); process 0 "
                        f"hosts the coordinator and writes the outputs")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help=f"address of process 0 that every process can reach (env "
                        f"{ENV_COORDINATOR})")
    g.add_argument("--checkpoint-every", dest="checkpoint_every", type=int, default=250,
                   metavar="K", help="sweeps between checkpoints (default 250)")
    g.add_argument("--heartbeat-timeout", dest="heartbeat_timeout", type=int, default=60,
                   metavar="S", help="a process silent this long stops the others (JAX's "
                                     "heartbeat; default 60 s)")
    g.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="row storage of the JAX sweep with --devices or --processes (default "
                        "float64; float32 halves the memory of the rows)")


def set_host_devices(n: int) -> None:
    """Ask XLA for ``n`` CPU devices; works only before JAX starts its backend."""
    import os
    import sys

    flag = f"--xla_force_host_platform_device_count={int(n)}"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count=")]
    os.environ["XLA_FLAGS"] = " ".join([*flags, flag])
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            from manylift._core.errors import SamplerError

            raise SamplerError("--devices must be set before JAX starts; it had already "
                               "started in this process. Set XLA_FLAGS="
                               f"{flag} in the environment instead.")


def spec_from_args(args):
    """The sampler's ModelSpec: both redundant moves (the default), or plain Gibbs with
    ``--plain-gibbs``."""
    from manylift.sampler.state import ModelSpec

    return ModelSpec(expansion=False, interweave=False) if args.plain_gibbs else ModelSpec()


def model_kwargs(args) -> dict:
    """The PooledModel keyword arguments of the sampler options (and of --devices, --dtype,
    --checkpoint-every)."""
    return dict(n_chains=args.chains, n_warmup=args.warmup, n_draws=args.draws, thin=args.thin,
                random_state=args.seed, backend=args.backend, spec=spec_from_args(args),
                random_intercept=args.random_intercept, progress=not args.quiet,
                devices=getattr(args, "devices", None), dtype=getattr(args, "dtype", "float64"),
                checkpoint_every=getattr(args, "checkpoint_every", 250))


def _run_processes(args, n_processes: int) -> int:
    """One process of a fit over several (docs/scaling.md): join the others, read this
    process's customers, sample together; process 0 writes the outputs."""
    from manylift._core.distributed import env_int, start
    from manylift.pooled.distributed import load_process_data
    from manylift.pooled.model import PooledModel

    pid = args.process_id if args.process_id is not None else env_int(ENV_PROCESS_ID)
    if pid is None:
        if n_processes > 1:
            from manylift._core.distributed import DistributedError

            raise DistributedError(f"--processes {n_processes} needs --process-id (or "
                                   f"{ENV_PROCESS_ID}): 0 on the process that hosts the "
                                   f"coordinator, 1..{n_processes - 1} on the others.")
        pid = 0
    coordinator = args.coordinator or os.environ.get(ENV_COORDINATOR)
    comm = start(n_processes, pid, coordinator, heartbeat_timeout=args.heartbeat_timeout)
    tag = f"process {comm.process_id} of {comm.n_processes}"
    data = [load_process_data(args.exposures, args.campaigns, comm,
                              drop_incomplete=args.drop_incomplete, **pooled_data_kwargs(args))]
    frame = data[0].frame
    print(f"{tag}: {len(frame):,} rows of {frame['customer_id'].nunique():,} "
          f"customers" + (f"; if another process dies, JAX stops this one within about "
                          f"{args.heartbeat_timeout} s" if n_processes > 1 else ""), flush=True)
    del frame
    if comm.is_main:
        print(describe_pooled_covariates(data[0]))
    model = PooledModel(n_chains=args.chains, n_warmup=args.warmup, n_draws=args.draws,
                        thin=args.thin, random_state=args.seed, spec=spec_from_args(args),
                        random_intercept=args.random_intercept,
                        progress=not args.quiet and comm.is_main, dtype=args.dtype,
                        checkpoint_every=args.checkpoint_every)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ck = out / "checkpoint.npz"
    # handed over, not kept (no frame of this function holds it): the fit frees the
    # rows once they are on the devices (PooledModel.fit(data, comm=...) is the same fit)
    from manylift.pooled.distributed import fit_processes

    fit = fit_processes(model, data.pop(), comm, checkpoint=ck, resume=args.resume)
    if comm.is_main:
        for w in fit.convergence_warnings():
            print(f"warning: {w}")
        fit.save(out)
        from manylift.workflows.pooled import print_summary

        print_summary(fit)
        print(f"Results written to {args.out}/ (results.json, customers.parquet, posterior.nc) "
              f"by process 0 of {comm.n_processes}. Not computed over several processes: "
              f"the holdout validation, policies, decomposition, scoring model and report "
              f"(docs/scaling.md).")
    else:
        print(f"{tag}: done; process 0 wrote the results.")
    for p in getattr(fit, "_checkpoints", []):  # complete and saved
        if Path(p).exists():
            Path(p).unlink()
    return 0


def _run(args) -> int:
    from manylift._core.distributed import env_int

    if args.devices is not None:
        if args.devices < 1:
            from manylift._core.errors import ModelError

            raise ModelError(f"--devices must be at least 1; got {args.devices}.")
        set_host_devices(args.devices)
    n_processes = args.processes if args.processes is not None else env_int(ENV_PROCESSES)
    if n_processes is not None:
        if n_processes < 1:
            from manylift._core.errors import ModelError

            raise ModelError(f"--processes must be at least 1; got {n_processes}.")
        return _run_processes(args, n_processes)
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
    add_scale_options(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_run)
