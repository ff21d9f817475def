"""CPU fast path (numba fused sweep) at paper scale: seconds per sweep, throughput, floor, memory.

    python benchmarks/bench_cpu.py                      # 584k customers, 140 campaigns, 96 weeks
    python benchmarks/bench_cpu.py --customers 20000    # quick

Measures, in one process: the numba sweep with 1 thread and with all cores (minimum and median
over repeated sweeps, excluding the JIT compile), the numpy reference sweep (the baseline, same
data, same run), the copy bandwidth of this machine, the bytes a sweep of this layout must read,
and peak memory (VmHWM).  Writes benchmarks/results/cpu.json.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine_info, when imported
from machine_info import GIB, copy_bandwidth_gbs, git_commit, load_average, peak_bytes  # noqa: E402

PAPER_ROW_SWEEPS_PER_CORE_SECOND = 16e6 * 25_000 / (8 * 3600 * 8)  # 1.74 million




def time_sweeps(backend, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        backend.run(1)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=584_000)
    ap.add_argument("--campaigns", type=int, default=140)
    ap.add_argument("--weeks", type=int, default=96)
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--numpy-sweeps", type=int, default=2)
    ap.add_argument("--max-joint-cells", type=int, nargs="+", default=[1024, 1 << 16],
                    help="joint-cell layouts of the numba pass to time (the first is the default)")
    ap.add_argument("--random-intercept", choices=["on", "off", "both"], default="both",
                    help="time the default model (customer random intercept, q = k + 2), the "
                         "source study's (off, q = k + 1) or both on the same data (default)")
    ap.add_argument("--out", default="benchmarks/results/cpu.json")
    args = ap.parse_args()

    import numba
    from machine_info import base_machine
    from threadpoolctl import threadpool_limits

    from manylift._core.atomic import write_json
    from manylift.pooled.build import build_inputs
    from manylift.sampler.backends import NumpyBackend
    from manylift.sampler.gibbs_numba import NumbaBackend
    from manylift.sampler.state import ModelSpec
    from manylift.simulate.program import simulate_program

    load_before = load_average()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(args.customers, args.campaigns, args.weeks, random_state=0)
        design = build_inputs(data, random_intercept=args.random_intercept == "on").design
        if args.random_intercept == "both":  # the source study's model on the same data too
            design = build_inputs(data, random_intercept=True).design
            other = build_inputs(data, random_intercept=False).design
    del data
    t_build = time.perf_counter() - t0
    N, n = design.n_rows, design.n_customers
    print(f"{design}  (simulate + build {t_build:.1f} s)")
    spec = ModelSpec()
    results: dict = {"rows": N, "customers": n, "K": design.K, "q": design.q,
                     "build_seconds": t_build}
    with threadpool_limits(1, user_api="blas"):
        threads_all = numba.config.NUMBA_NUM_THREADS
        for i, mjc in enumerate(args.max_joint_cells):
            nb = NumbaBackend(design, spec, 1, max_joint_cells=mjc)
            nb.init(np.random.SeedSequence(0).spawn(1))
            t = time.perf_counter()
            nb.run(1)  # JIT compile (cached on disk after the first run)
            results.setdefault("numba_first_sweep_seconds", time.perf_counter() - t)
            key = "" if i == 0 else f"_max_joint_cells_{mjc}"
            results[f"numba_cells_per_row{key}"] = int(nb._cells.shape[1])
            for threads in sorted({1, threads_all}):
                numba.set_num_threads(threads)
                ts = time_sweeps(nb, args.sweeps)
                results[f"numba_{threads}_threads{key}"] = {
                    "max_joint_cells": mjc,
                    "seconds_min": min(ts), "seconds_median": float(np.median(ts)),
                    "row_sweeps_per_core_second": N / min(ts) / threads,
                    "vs_paper_per_core": N / min(ts) / threads / PAPER_ROW_SWEEPS_PER_CORE_SECOND,
                }
                print(f"numba (max_joint_cells={mjc}, {nb._cells.shape[1]} cells per row), "
                      f"{threads} thread(s): {min(ts) * 1e3:.1f} ms per sweep (min), "
                      f"{N / min(ts) / threads / 1e6:.1f} M row-sweeps per core-second",
                      flush=True)
            if i == 0:
                nb_default = nb
            else:
                del nb
        nb = nb_default
        numba.set_num_threads(threads_all)
        npb = NumpyBackend(design, spec, 1)
        npb.init(np.random.SeedSequence(0).spawn(1))
        ts = time_sweeps(npb, args.numpy_sweeps)
        results["numpy_1_thread"] = {"seconds_min": min(ts),
                                     "row_sweeps_per_core_second": N / min(ts)}
        print(f"numpy reference: {min(ts):.3f} s per sweep")
        best_numba = results["numba_1_threads"]["seconds_min"]
        results["numba_vs_numpy_one_core"] = min(ts) / best_numba
    bw = copy_bandwidth_gbs()
    # bytes a sweep of this layout reads: the joint cells (uint32 each), q columns of R
    # (float64), plus per-customer arrays (RtR q x q, Rty q, DtR d x q, z q, u q written)
    d = design.dense.shape[1]
    per_row = nb._cells.shape[1] * nb._cells.itemsize + design.q * 8
    per_customer = (design.q * design.q + design.q + d * design.q + 2 * design.q) * 8
    bytes_sweep = N * per_row + n * per_customer
    results.update({
        "copy_bandwidth_GBps": bw,
        "bytes_per_sweep": bytes_sweep,
        "bandwidth_floor_seconds": bytes_sweep / (bw * 1e9),
        # the sampler looks at the rows twice (gather pass, then draw pass)
        "bytes_per_sweep_two_row_reads": 2 * N * per_row + n * per_customer,
        "two_row_reads_floor_seconds": (2 * N * per_row + n * per_customer) / (bw * 1e9),
        "peak_rss_GiB": peak_bytes() / GIB,
        "paper_row_sweeps_per_core_second": PAPER_ROW_SWEEPS_PER_CORE_SECOND,
        "machine": {**base_machine(), "numba": numba.__version__},
        "load_before": load_before, "load_after": load_average(),
        "command": " ".join(["python", *sys.argv]), "git_commit": git_commit(),
    })
    best = min(results[f"numba_{t}_threads"]["seconds_min"] for t in sorted({1, threads_all}))
    results["distance_to_floor"] = best / results["bandwidth_floor_seconds"]
    print(f"floor {results['bandwidth_floor_seconds'] * 1e3:.1f} ms ({bytes_sweep / 1e9:.2f} GB at "
          f"{bw:.1f} GB/s); peak RSS {results['peak_rss_GiB']:.1f} GiB")
    if args.random_intercept == "both":
        # the cost of the extra coordinate: the same sweeps on the design without it
        with threadpool_limits(1, user_api="blas"):
            nb4 = NumbaBackend(other, spec, 1, max_joint_cells=args.max_joint_cells[0])
            nb4.init(np.random.SeedSequence(0).spawn(1))
            nb4.run(1)
            base = {}
            for threads in sorted({1, threads_all}):
                numba.set_num_threads(threads)
                ts = time_sweeps(nb4, args.sweeps)
                base[f"numba_{threads}_threads"] = {"seconds_min": min(ts),
                                                     "seconds_median": float(np.median(ts))}
                print(f"without the intercept (q = {other.q}), {threads} thread(s): "
                      f"{min(ts) * 1e3:.1f} ms per sweep (min)", flush=True)
            numba.set_num_threads(threads_all)
        results["without_intercept"] = {"q": other.q, **base}
        results["intercept_cost"] = {
            f"numba_{t}_threads_seconds_ratio": results[f"numba_{t}_threads"]["seconds_min"]
            / base[f"numba_{t}_threads"]["seconds_min"] for t in sorted({1, threads_all})}
        print(f"cost of the intercept (q = {design.q} over q = {other.q}): "
              f"{results['intercept_cost']}", flush=True)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
