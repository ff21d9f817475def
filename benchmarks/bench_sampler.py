"""Seconds per sweep and effective samples per second of the pooled Gibbs sampler.

Usage::

    python benchmarks/bench_sampler.py                     # 20,000 and 100,000 customers
    python benchmarks/bench_sampler.py --full              # also 584,000 (paper scale)
    python benchmarks/bench_sampler.py --sizes 20000 --out benchmarks/results/sampler_20k.json

For each size (simulated program, 140 campaigns, 96 weeks, about 28 rows per
customer, as in the source study) it measures

1. seconds per sweep of the numpy reference (one chain) and of the JAX backend
   on CPU (one chain; float64 and float32 rows), after compilation, and JAX's
   compile time;
2. effective samples per sweep (ArviZ bulk ESS over ``--ess-sweeps`` sweeps of
   ``--ess-chains`` chains after ``--ess-warmup``) of taubar and sigma_u with
   the parameter-expanded scale move on and off (``ModelSpec.expansion``),
   measured with the JAX backend.  The numpy reference samples the same
   conditionals (tested to agree in distribution), so its effective samples
   per second are its sweeps per second times the same ESS per sweep;
3. row-sweeps per core-second (the paper's was 1.74 million) and the distance
   to the memory-bandwidth floor (bytes of row data a sweep reads, two passes,
   over the copy bandwidth measured here);
4. peak resident memory of each phase (Linux ``VmHWM``).

The machine may be shared: the load average is recorded before and after.
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
from machine_info import GIB, copy_bandwidth_gbs, load_average, peak_bytes, reset_peak  # noqa: E402

from manylift._core.atomic import write_json
from manylift.pooled.build import build_inputs
from manylift.sampler.backends import NumpyBackend
from manylift.sampler.gibbs_jax import JaxBackend
from manylift.sampler.state import ModelSpec
from manylift.simulate.program import simulate_program

PAPER_ROW_SWEEPS_PER_CORE_SECOND = 16e6 * 25_000 / (8 * 3600 * 8)





def _machine() -> dict:
    import jax
    from machine_info import base_machine

    return {**base_machine(), "jax": jax.__version__,
            "jax_devices": [str(d) for d in jax.devices()]}




def _time_numpy(design, n_sweeps: int) -> dict:
    b = NumpyBackend(design, ModelSpec(), 1)
    b.init(np.random.SeedSequence(0).spawn(1))
    b.run(1)  # first sweep allocates
    reset_peak()
    t0 = time.perf_counter()
    b.run(n_sweeps)
    sec = (time.perf_counter() - t0) / n_sweeps
    return {"seconds_per_sweep": round(sec, 5), "sweeps_timed": n_sweeps,
            "peak_rss_gib": round(peak_bytes() / GIB, 3)}


def _time_jax(design, n_sweeps: int, dtype: str, chains: int = 1) -> dict:
    reset_peak()
    t0 = time.perf_counter()
    b = JaxBackend(design, ModelSpec(), chains, dtype=dtype)
    b.init(np.random.SeedSequence(0).spawn(chains))
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    b.run(n_sweeps)  # compiles
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    b.run(n_sweeps)
    sec = (time.perf_counter() - t0) / n_sweeps
    return {"seconds_per_sweep": round(sec, 5), "chains": chains, "sweeps_timed": n_sweeps,
            "setup_seconds": round(setup, 2),
            "compile_seconds": round(first - sec * n_sweeps, 2),
            "peak_rss_gib": round(peak_bytes() / GIB, 3)}


def _ess(design, expansion: bool, chains: int, warmup: int, sweeps: int,
         start: str = "default") -> dict:
    """ESS per sweep after ``warmup``; ``start="prior"`` redraws the initial u_i from
    N(0, Omega) of the initial state (see docs/performance.md: with the default start,
    u_i ~ N(0, 0.1^2) collapses Omega in the first sweep and sigma_u then climbs back
    slowly, so a short warm-up measures the transient, not the mixing)."""
    import arviz as az

    from manylift.sampler.state import State

    b = JaxBackend(design, ModelSpec(expansion=expansion), chains)
    b.init(np.random.SeedSequence(1).spawn(chains))
    if start == "prior":
        rng = np.random.default_rng(2)
        states = []
        for s in b.states():
            chol = np.linalg.cholesky(np.linalg.inv(s.omega_inv))
            u = rng.standard_normal((design.n_customers, design.q)) @ chol.T
            states.append(State(s.theta, s.sigma2, s.omega_inv, u))
        b.set_states(states)
    chunk = 64
    b.run(chunk)  # compiles the chunk length outside the timed part
    done = chunk
    while done < warmup:
        b.run(min(chunk, warmup - done))
        done += min(chunk, warmup - done)
    outs = []
    t0 = time.perf_counter()
    done = 0
    while done < sweeps:
        k = min(chunk, sweeps - done)
        outs.append(b.run(k))
        done += k
    sec = time.perf_counter() - t0
    theta = np.concatenate([o["theta"] for o in outs]).swapaxes(0, 1)
    omega = np.linalg.inv(np.concatenate([o["omega_inv"] for o in outs]).swapaxes(0, 1))
    sigma2 = np.concatenate([o["sigma2"] for o in outs]).swapaxes(0, 1)
    it = design.names.index("taubar")
    draws = {"taubar": theta[..., it], "sigma_u": np.sqrt(omega[..., 0, 0]),
             "sigma": np.sqrt(sigma2)}
    res = {"chains": chains, "warmup": warmup, "sweeps": sweeps, "start": start,
           "seconds_per_sweep_all_chains": round(sec / sweeps, 5)}
    for k, x in draws.items():
        ess = float(az.ess(x))
        lag1 = float(np.mean([np.corrcoef(c[:-1], c[1:])[0, 1] for c in x]))
        res[k] = {"mean": round(float(x.mean()), 4), "sd": round(float(x.std()), 4),
                  "ess": round(ess, 1), "ess_per_sweep": round(ess / (chains * sweeps), 4),
                  "lag1_autocorrelation": round(lag1, 3)}
    return res


def run_size(n_customers: int, args) -> dict:
    print(f"\n== {n_customers:,} customers ==", flush=True)
    load_before = load_average()
    reset_peak()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(n_customers, args.campaigns, args.weeks, random_state=args.seed)
        design = build_inputs(data).design
    del data
    build = {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_gib": round(peak_bytes() / GIB, 3)}
    print(f"{design!r}; simulate + build {build['seconds']} s", flush=True)
    N = design.n_rows
    out = {"size": {"customers": design.n_customers, "rows": N, "K": design.K, "q": design.q,
                    "campaigns": args.campaigns, "weeks": args.weeks},
           "simulate_and_build": build, "load_before": load_before}
    timings = {}
    if not args.skip_numpy:
        ns = args.numpy_sweeps or max(2, int(round(3e6 / N)))
        timings["numpy_float64"] = _time_numpy(design, ns)
        print(f"numpy: {timings['numpy_float64']}", flush=True)
    ns = args.jax_sweeps or int(max(8, min(64, 2e7 / N)))
    for dt in args.dtypes:
        timings[f"jax_cpu_{dt}"] = _time_jax(design, ns, dt)
        print(f"jax {dt}: {timings[f'jax_cpu_{dt}']}", flush=True)
    if args.chains_timing > 1:
        timings[f"jax_cpu_float64_{args.chains_timing}chains"] = _time_jax(
            design, ns, "float64", args.chains_timing)
        print(f"jax 4 chains: {timings[f'jax_cpu_float64_{args.chains_timing}chains']}",
              flush=True)
    nproc = os.cpu_count() or 1
    for k, v in timings.items():
        cores = 1 if k.startswith("numpy") else nproc  # XLA uses every core
        v["row_sweeps_per_core_second"] = round(N * v.get("chains", 1)
                                                / (v["seconds_per_sweep"] * cores))
        v["x_paper_per_core"] = round(v["row_sweeps_per_core_second"]
                                      / PAPER_ROW_SWEEPS_PER_CORE_SECOND, 1)
    if "numpy_float64" in timings:
        for k, v in timings.items():
            if k.startswith("jax") and "chains" not in k[-7:]:
                v["speedup_vs_numpy"] = round(timings["numpy_float64"]["seconds_per_sweep"]
                                              / v["seconds_per_sweep"], 1)
    out["timings"] = timings
    # floor: the row arrays a sweep reads (y, w, R, dense, customer, codes), two passes
    bw = args.bandwidth
    floors = {}
    G = 2  # joint code groups (interventions; cell x activity)
    for dt, size in (("float64", 8), ("float32", 4)):
        bytes_per_row = size * (2 + design.q + design.dense.shape[1]) + 4 * (1 + G)
        floor = 2 * N * bytes_per_row / (bw * 1e9)
        key = f"jax_cpu_{dt}"
        floors[dt] = {"bytes_per_row": bytes_per_row, "floor_seconds_per_sweep": round(floor, 5)}
        if key in timings:
            floors[dt]["x_over_floor"] = round(timings[key]["seconds_per_sweep"] / floor, 1)
    floors["compact_exact_schedule"] = {
        "bytes_per_row": 29, "floor_seconds_per_sweep": round(N * 29 / (bw * 1e9), 5),
        "note": "PERFORMANCE_NOTES.md: one pass, float32 values, 1-byte codes"}
    out["floor"] = floors
    if not args.skip_ess:
        ess = {}
        for exp in (True, False):
            key = "expansion" if exp else "plain_gibbs"
            ess[key] = _ess(design, exp, args.ess_chains, args.ess_warmup, args.ess_sweeps,
                            args.ess_start)
            print(f"ESS {key}: {ess[key]}", flush=True)
        for e in ess.values():
            for name in ("taubar", "sigma_u"):
                per = e[name]["ess_per_sweep"]
                e[name]["ess_per_second"] = {
                    t: round(per / timings[t]["seconds_per_sweep"], 2)
                    for t in timings if t in ("numpy_float64", "jax_cpu_float64")}
        ess["sigma_u_ess_per_sweep_gain"] = round(
            ess["expansion"]["sigma_u"]["ess_per_sweep"]
            / max(ess["plain_gibbs"]["sigma_u"]["ess_per_sweep"], 1e-12), 2)
        out["mixing"] = ess
    out["load_after"] = load_average()
    del design
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000],
                   help="numbers of customers (default 20000 100000)")
    p.add_argument("--full", action="store_true", help="add the paper scale, 584,000 customers")
    p.add_argument("--campaigns", type=int, default=140)
    p.add_argument("--weeks", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    p.add_argument("--numpy-sweeps", type=int, default=None)
    p.add_argument("--jax-sweeps", type=int, default=None)
    p.add_argument("--chains-timing", type=int, default=0,
                   help="also time this many chains at once (float64)")
    p.add_argument("--skip-numpy", action="store_true")
    p.add_argument("--skip-ess", action="store_true")
    p.add_argument("--ess-chains", type=int, default=2)
    p.add_argument("--ess-warmup", type=int, default=100)
    p.add_argument("--ess-sweeps", type=int, default=400)
    p.add_argument("--ess-start", choices=["default", "prior"], default="prior",
                   help="start of the ESS chains: the backend's init, or u_i redrawn from "
                        "N(0, Omega) of the initial state (default)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sampler.json"))
    args = p.parse_args(argv)
    sizes = list(args.sizes) + ([584_000] if args.full else [])
    args.bandwidth = round(copy_bandwidth_gbs(), 1)
    print(f"copy bandwidth (one thread): {args.bandwidth} GB/s", flush=True)
    result = {"benchmark": "bench_sampler", "command": " ".join(["python", *sys.argv]),
              "machine": _machine(), "copy_bandwidth_gbs": args.bandwidth,
              "paper_row_sweeps_per_core_second": round(PAPER_ROW_SWEEPS_PER_CORE_SECOND),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sizes": {}}
    for n in sizes:
        result["sizes"][str(n)] = run_size(n, args)
        write_json(args.out, result)  # after every size, so a killed run keeps what it has
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
