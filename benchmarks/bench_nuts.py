"""Mixing per second: the pooled Gibbs sampler (with and without its redundant moves) against NumPyro NUTS.

Usage::

    python benchmarks/bench_nuts.py                          # 2,000 customers, ~28 rows each
    python benchmarks/bench_nuts.py --customers 1000 --nuts-warmup 200 --nuts-draws 200
    python benchmarks/bench_nuts.py --out benchmarks/results/nuts.json

One simulated program (``simulate_program``), one ``Design`` (``build_inputs``),
and, in the same process, one after the other:

1. **NumPyro NUTS** on the pooled model of docs/pooled.md written in
   NumPyro (:func:`make_numpyro_model`): the same Design arrays, the same
   priors (theta ~ N(0, 1000 I); 1/sigma^2 ~ Gamma(0.1, scale 10);
   Omega^-1 ~ Wishart(q + 2, I), put on the Cholesky factor L of the precision
   with ``WishartCholesky``, whose density includes the Jacobian of
   L -> L L', so the prior on Omega^-1 is exactly that Wishart) and
   non-centred customer effects u_i = L^-T z_i, z_i ~ N(0, I), which have
   covariance (L L')^-1 = Omega.  float64, diagonal mass matrix.
2. **manylift Gibbs**, numba backend (the CPU fast path), four ways: the
   default (the scale move and the interweaving move, ``ModelSpec()``), the
   interweaving move alone (``ModelSpec(expansion=False)``), the scale move alone
   (``ModelSpec(interweave=False)``) and plain Gibbs
   (``ModelSpec(expansion=False, interweave=False)``).

For each: wall seconds (warm-up and sampling apart), ArviZ bulk ESS of taubar,
sigma_u (sd of uI, sqrt(Omega[0, 0])) and sigma, ESS per second, ESS per
sweep (Gibbs), and the posterior means with their Monte Carlo standard errors
so that agreement can be checked (z = difference / sqrt(mcse_a^2 + mcse_b^2)).
The machine, the load average before and after (``os.getloadavg``, what
``uptime`` prints) and the command are recorded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine_info, when imported
from machine_info import git_commit, load_average, numba_layer  # noqa: E402

# A multi-threaded OpenBLAS on this loaded 2-core machine took 38-59 ms for the 513 x 513
# Cholesky of the theta block (0.5 ms single-threaded), and numba's OpenMP threads, which
# spin after each parallel pass, starve OpenBLAS's (~10x slower sweeps on 2 cores): the
# small dense algebra of a sweep is faster on one BLAS thread. manylift's sampler driver
# sets that itself (threadpoolctl) around every fit; this script calls the backends
# directly, so it sets it here. numba keeps its default threading layer, as a user's fit
# does (recorded). XLA (NumPyro) does not use OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from manylift._core.atomic import write_json  # noqa: E402
from manylift.pooled.build import build_inputs  # noqa: E402
from manylift.sampler.design import Design  # noqa: E402
from manylift.sampler.state import ModelSpec  # noqa: E402
from manylift.simulate.program import simulate_program  # noqa: E402

PARAMS = ("taubar", "sigma_u", "sigma")


# --------------------------------------------------------------------------- the NumPyro model
def numpyro_arrays(design: Design, fixed: str = "gather") -> dict:
    """The Design arrays the NumPyro model reads, as jnp arrays (float64 if x64 is on).

    ``fixed="dense"`` adds the dense N x K matrix F (built column by column with
    :meth:`Design.F_dot`), for the matrix-product formulation of ``F theta``.
    """
    import jax.numpy as jnp

    a = {"dense": jnp.asarray(design.dense), "codes": jnp.asarray(design.codes),
         "w": jnp.asarray(design.w), "R": jnp.asarray(design.R),
         "customer": jnp.asarray(design.customer), "y": jnp.asarray(design.y)}
    if fixed == "dense":
        eye = np.eye(design.K)
        a["F"] = jnp.asarray(np.column_stack([design.F_dot(eye[k]) for k in range(design.K)]))
    return a


def make_numpyro_model(design: Design, spec: ModelSpec | None = None, fixed: str = "gather"):
    """The pooled model of docs/pooled.md as a NumPyro model ``model(arrays)``.

    ``F theta`` is computed as in :meth:`Design.F_dot`, by gathers: the dense
    columns times their coefficients plus, per categorical term, the
    sum-to-zero full level effects ``[p, -sum(p)]`` (the effect coding of
    :func:`manylift.sampler.design.effect_coding`) gathered by code and
    multiplied by W where the term interacts with treatment.  ``fixed="dense"``
    uses the dense F of :func:`numpyro_arrays` instead (one matrix-vector
    product; its gradient is another, which on this CPU is faster than the
    scatter-adds that are the gradient of the gathers).  ``R u`` is
    ``sum_k R[:, k] u[customer, k]``.

    Sites: ``theta`` (K), ``precision`` (1/sigma^2), ``omega_inv_chol`` (lower
    Cholesky factor of Omega^-1), ``z`` (n, q); deterministic ``taubar``,
    ``sigma``, ``sigma_u``.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.linalg import solve_triangular

    spec = spec or ModelSpec()
    d = design.dense.shape[1]
    K, q, n = design.K, design.q, design.n_customers
    offs = np.cumsum([d] + [L - 1 for L in design.n_levels]).tolist()
    times_w = design.times_w
    i_taubar = design.names.index("taubar")

    def fixed_part(theta, a):
        if fixed == "dense":
            return a["F"] @ theta
        out = a["dense"] @ theta[:d]
        for b, tw in enumerate(times_w):
            p = theta[offs[b]:offs[b + 1]]
            full = jnp.concatenate([p, -jnp.sum(p, keepdims=True)])
            g = full[a["codes"][:, b]]
            out = out + (g * a["w"] if tw else g)
        return out

    def model(a):
        theta = numpyro.sample("theta", dist.Normal(0.0, np.sqrt(spec.theta_prior_var))
                               .expand([K]).to_event(1))
        precision = numpyro.sample("precision",
                                   dist.Gamma(spec.sigma_shape, rate=1.0 / spec.sigma_scale))
        chol = numpyro.sample("omega_inv_chol", dist.WishartCholesky(
            spec.wishart_df(q), scale_matrix=jnp.asarray(spec.wishart_scale(q))))
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n, q]).to_event(2))
        # u_i = L^-T z_i  ~  N(0, (L L')^-1) = N(0, Omega)
        u = solve_triangular(chol, z.T, lower=True, trans="T").T
        u_rows = jnp.take(u, a["customer"], axis=0, indices_are_sorted=True,
                          mode="clip")
        mean = fixed_part(theta, a) + jnp.sum(a["R"] * u_rows, axis=1)
        numpyro.sample("y", dist.Normal(mean, 1.0 / jnp.sqrt(precision)), obs=a["y"])
        chol_inv = solve_triangular(chol, jnp.eye(q), lower=True)  # Omega = Linv' Linv
        numpyro.deterministic("taubar", theta[i_taubar])
        numpyro.deterministic("sigma", 1.0 / jnp.sqrt(precision))
        numpyro.deterministic("sigma_u", jnp.sqrt(jnp.sum(chol_inv[:, 0] ** 2)))

    return model


# --------------------------------------------------------------------------- runs
def _summaries(draws: dict, seconds_total: float, seconds_sampling: float,
               n_sweeps_per_chain: int | None = None) -> dict:
    """ESS, ESS/s, mean, MCSE per parameter; draws[name]: (chains, draws)."""
    import arviz as az

    out = {}
    for name in PARAMS:
        x = np.asarray(draws[name], float)
        ess = float(np.ravel(az.ess(x, method="bulk"))[0])
        mcse = float(np.ravel(az.mcse(x, method="mean"))[0])
        lag1 = float(np.mean([np.corrcoef(c[:-1], c[1:])[0, 1] for c in x]))
        rec = {"mean": float(x.mean()), "sd": float(x.std()), "mcse_mean": mcse,
               "ess_bulk": round(ess, 1), "lag1_autocorrelation": round(lag1, 3),
               "ess_per_second_total": ess / seconds_total,
               "ess_per_second_sampling": ess / seconds_sampling}
        if n_sweeps_per_chain is not None:
            rec["ess_per_sweep"] = ess / (x.shape[0] * n_sweeps_per_chain)
        out[name] = rec
    return out


def run_nuts(design: Design, chains: int, warmup: int, draws: int, max_tree_depth: int,
             seed: int, chain_method: str = "sequential") -> dict:
    import jax
    from numpyro.infer import MCMC, NUTS

    model = make_numpyro_model(design)
    arrays = numpyro_arrays(design)
    kernel = NUTS(model, max_tree_depth=max_tree_depth, target_accept_prob=0.8)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method=chain_method, progress_bar=False)
    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    mcmc.warmup(key, arrays, extra_fields=("num_steps", "diverging"), collect_warmup=False)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcmc.run(mcmc.post_warmup_state.rng_key, arrays, extra_fields=("num_steps", "diverging"))
    samples = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(samples["taubar"])
    t_samp = time.perf_counter() - t0
    extra = mcmc.get_extra_fields(group_by_chain=True)
    steps = np.asarray(extra["num_steps"])
    res = {"chains": chains, "warmup": warmup, "draws": draws,
           "max_tree_depth": max_tree_depth, "chain_method": chain_method,
           "seconds_warmup_incl_compile": round(t_warm, 2),
           "seconds_sampling": round(t_samp, 2), "seconds_total": round(t_warm + t_samp, 2),
           "mean_leapfrog_steps_per_draw": round(float(steps.mean()), 1),
           "share_draws_at_max_tree_depth": round(float(np.mean(steps >= 2**max_tree_depth - 1)),
                                                  3),
           "divergences": int(np.asarray(extra["diverging"]).sum())}
    res["seconds_per_gradient"] = t_samp / max(float(steps.sum()), 1.0)
    res["params"] = _summaries({k: samples[k] for k in PARAMS}, t_warm + t_samp, t_samp)
    return res


VARIANTS = {"gibbs_default": ModelSpec(),
            "gibbs_interweave_only": ModelSpec(expansion=False),
            "gibbs_scale_move": ModelSpec(interweave=False),
            "gibbs_plain": ModelSpec(expansion=False, interweave=False)}


def run_gibbs(design: Design, spec: ModelSpec, chains: int, warmup: int, draws: int,
              seed: int) -> dict:
    from manylift.sampler.gibbs_numba import NumbaBackend

    it = design.names.index("taubar")
    backend = NumbaBackend(design, spec, chains)
    backend.init(np.random.SeedSequence(seed).spawn(chains))
    t0 = time.perf_counter()
    backend.run(warmup)
    t_warm = time.perf_counter() - t0
    tr = {k: np.empty((chains, draws)) for k in PARAMS}
    om = np.empty((chains, draws, design.q, design.q))
    t0 = time.perf_counter()
    for s in range(draws):
        backend.run(1)
        for c, st in enumerate(backend.states()):
            tr["taubar"][c, s] = st.theta[it]
            tr["sigma"][c, s] = np.sqrt(st.sigma2)
            om[c, s] = np.linalg.inv(st.omega_inv)
            tr["sigma_u"][c, s] = np.sqrt(om[c, s, 0, 0])
    t_samp = time.perf_counter() - t0
    import arviz as az

    omega_ess = [[float(az.ess(om[:, :, a, b])) / (chains * draws) for b in range(design.q)]
                 for a in range(design.q)]
    res = {"backend": "numba", "expansion": spec.expansion, "interweave": spec.interweave,
           "omega_ess_per_sweep": omega_ess, "chains": chains, "warmup": warmup,
           "draws": draws, "seconds_warmup": round(t_warm, 2),
           "seconds_sampling": round(t_samp, 2), "seconds_total": round(t_warm + t_samp, 2),
           "seconds_per_sweep_all_chains": t_samp / draws}
    res["params"] = _summaries(tr, t_warm + t_samp, t_samp, n_sweeps_per_chain=draws)
    return res


# --------------------------------------------------------------------------- machine
def _machine() -> dict:
    import jax
    import numba
    import numpyro
    from machine_info import base_machine

    return {**base_machine(), "jax": jax.__version__,
            "numpyro": numpyro.__version__, "numba": numba.__version__,
            "numba_threads": numba.get_num_threads(),
            "numba_threading_layer": numba_layer(),
            "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "jax_devices": [str(d) for d in jax.devices()]}




def _agreement(a: dict, b: dict) -> dict:
    out = {}
    for name in PARAMS:
        pa, pb = a["params"][name], b["params"][name]
        se = float(np.hypot(pa["mcse_mean"], pb["mcse_mean"]))
        out[name] = {"difference": pa["mean"] - pb["mean"], "combined_mcse": se,
                     "z": (pa["mean"] - pb["mean"]) / se if se > 0 else float("nan")}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--campaigns", type=int, default=20)
    p.add_argument("--weeks", type=int, default=48)
    p.add_argument("--rows-per-customer", type=float, default=28.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nuts-chains", type=int, default=2)
    p.add_argument("--nuts-warmup", type=int, default=300)
    p.add_argument("--nuts-draws", type=int, default=300)
    p.add_argument("--max-tree-depth", type=int, default=8)
    p.add_argument("--nuts-chain-method", default="sequential",
                   choices=["sequential", "parallel", "vectorized"],
                   help="how NumPyro runs several chains; 'parallel' makes one CPU device per "
                        "chain (numpyro.set_host_device_count), so chains run on separate cores")
    p.add_argument("--gibbs-chains", type=int, default=2)
    p.add_argument("--gibbs-warmup", type=int, default=500)
    p.add_argument("--gibbs-draws", type=int, default=3000)
    p.add_argument("--skip-nuts", action="store_true", help="Gibbs only (for quick checks)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nuts.json"))
    args = p.parse_args(argv)
    if args.nuts_chain_method == "parallel":
        import numpyro  # before JAX starts its CPU backend

        numpyro.set_host_device_count(args.nuts_chains)

    import jax

    jax.config.update("jax_enable_x64", True)
    result = {"benchmark": "bench_nuts", "command": " ".join(["python", *sys.argv]),
              "machine": _machine(), "git_commit": git_commit(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "load_before": load_average()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(args.customers, args.campaigns, args.weeks,
                                   rows_per_customer=args.rows_per_customer,
                                   random_state=args.seed)
        design = build_inputs(data).design
    result["size"] = {"customers": design.n_customers, "rows": design.n_rows, "K": design.K,
                      "q": design.q, "campaigns": args.campaigns, "weeks": args.weeks,
                      "nuts_dimension": design.K + 1 + design.q * (design.q + 1) // 2
                      + design.n_customers * design.q}
    print(f"{design!r}", flush=True)
    # compile the numba pass and start its thread pool outside the timed runs: the first run
    # in a process was measured 3-6x slower per sweep than later ones, whichever went first
    from manylift.sampler.gibbs_numba import NumbaBackend

    for spec in VARIANTS.values():
        b = NumbaBackend(design, spec, args.gibbs_chains)
        b.init(np.random.SeedSequence(99).spawn(args.gibbs_chains))
        b.run(100)

    runs = {}
    for key, spec in VARIANTS.items():
        runs[key] = run_gibbs(design, spec, args.gibbs_chains, args.gibbs_warmup,
                              args.gibbs_draws, args.seed)
        print(key, {k: v for k, v in runs[key].items() if k not in ("params", "omega_ess_per_sweep")},
              {k: (round(v["mean"], 4), v["ess_bulk"]) for k, v in runs[key]["params"].items()},
              flush=True)
    if not args.skip_nuts:
        runs["nuts"] = run_nuts(design, args.nuts_chains, args.nuts_warmup, args.nuts_draws,
                                args.max_tree_depth, args.seed, args.nuts_chain_method)
        print("nuts", {k: v for k, v in runs["nuts"].items() if k != "params"},
              {k: (round(v["mean"], 4), v["ess_bulk"]) for k, v in runs["nuts"]["params"].items()},
              flush=True)
    result["runs"] = runs
    result["load_after"] = load_average()

    g, pl = runs["gibbs_default"], runs["gibbs_plain"]
    ess = {k: runs[k]["params"]["sigma_u"]["ess_per_sweep"] for k in VARIANTS}
    summary = {"sigma_u_ess_per_sweep": {
        **ess, "gain_default_over_plain": ess["gibbs_default"] / max(ess["gibbs_plain"], 1e-12),
        "gain_interweave_only_over_plain": ess["gibbs_interweave_only"] / max(ess["gibbs_plain"], 1e-12),
        "gain_scale_move_over_plain": ess["gibbs_scale_move"] / max(ess["gibbs_plain"], 1e-12)},
        "omega_min_ess_per_sweep": {k: float(np.min(runs[k]["omega_ess_per_sweep"]))
                                    for k in VARIANTS},
        "agreement_default_vs_plain": _agreement(g, pl),
        "agreement_interweave_only_vs_plain": _agreement(runs["gibbs_interweave_only"], pl),
        "agreement_scale_move_vs_plain": _agreement(runs["gibbs_scale_move"], pl)}
    if "nuts" in runs:
        nu = runs["nuts"]
        ratios = {}
        for name in ("taubar", "sigma_u"):
            for kind in ("total", "sampling"):
                k = f"ess_per_second_{kind}"
                for gk in VARIANTS:
                    ratios[f"{name}_{kind}_{gk}_over_nuts"] = (
                        runs[gk]["params"][name][k] / nu["params"][name][k])
        summary["ess_per_second_ratio"] = ratios
        for gk in VARIANTS:
            summary[f"agreement_{gk}_vs_nuts"] = _agreement(runs[gk], nu)
    result["summary"] = summary
    write_json(args.out, result)
    print(f"summary: {summary}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
