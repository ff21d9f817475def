"""Seconds per sweep: manylift's pooled Gibbs sampler next to bayesm::rhierLinearModel.

Usage::

    python benchmarks/bench_bayesm.py                               # 2k, 10k, 20k customers
    python benchmarks/bench_bayesm.py --sizes 20000 --bayesm-iterations 300
    python benchmarks/bench_bayesm.py --out benchmarks/results/bayesm.json

Needs R with bayesm (Debian: ``apt-get install r-cran-bayesm``) and ``Rscript`` on
the PATH.  For each size, in the same run and one after the other:

1. a simulated program (140 campaigns, 96 weeks, about 28 rows per customer, as
   in the source study) and its ``Design`` (``build_inputs``: holdout rows out);
2. manylift's seconds per sweep of the full pooled model (docs/pooled.md: crossed
   campaign and week effects and their treatment interactions, cells, activity
   bins, customer effects on [1, W, X] (the default, with the customer random
   intercept) and on [W, X] (the source study's, without it), each timed in the same
   run; one chain, default moves) with the
   numba backend (all cores; the median of 3 blocks' mean seconds per sweep, after
   10 warm-up sweeps) and with the numpy reference (one core);
3. bayesm's ``rhierLinearModel`` on the nearest comparable problem: one
   regression per customer of the same centred outcome on the same q columns
   that carry manylift's customer effects (R_i = [1, W, X_i] or [W, X_i]), same customers and
   rows, beta_i ~ N(Delta' z_i, Vbeta) with z_i = 1, Vbeta ~ IW, per-customer
   error variances, bayesm's default priors.  The data go to R through a
   temporary CSV; ``benchmarks/bayesm_peer.R`` times only the sampler call
   (``system.time`` around ``rhierLinearModel``), twice (``--bayesm-iterations``
   and ``--bayesm-short``), and reports the difference per iteration (without the
   call's per-regression setup in R) and the long call's time per iteration.

The ratio reported is bayesm's seconds per iteration over manylift's seconds per
sweep.  bayesm is single-threaded (its C++ loop; the BLAS is recorded), the numba
backend uses every core of the machine: both are per-sweep wall times on the
same machine, and the per-core ratio is recorded too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# one BLAS thread for the K x K algebra of the sweep, as manylift's sampler driver sets
# (threadpoolctl) around every fit; this script calls the backends directly, so it sets it
# here (see bench_nuts.py). R inherits it. numba keeps its default threading layer (OpenMP
# where present), as a user's fit does.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine_info, when imported
from machine_info import git_commit, load_average, numba_layer  # noqa: E402

from manylift._core.atomic import write_json  # noqa: E402
from manylift.pooled.build import build_inputs  # noqa: E402
from manylift.sampler.backends import NumpyBackend  # noqa: E402
from manylift.sampler.state import ModelSpec  # noqa: E402
from manylift.simulate.program import simulate_program  # noqa: E402

HERE = Path(__file__).resolve().parent


def _time_backend(backend, n_sweeps: int, warm: int = 10, blocks: int = 3) -> tuple:
    """Median over ``blocks`` blocks of the mean seconds per sweep of ``n_sweeps`` sweeps
    (after ``warm`` sweeps: compile, allocation, the chain's first moves), and the block
    means: this shared machine's noise moves single blocks by 10-30%."""
    backend.init(np.random.SeedSequence(0).spawn(1))
    backend.run(warm)
    means = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        backend.run(n_sweeps)
        means.append((time.perf_counter() - t0) / n_sweeps)
    return float(np.median(means)), means


def _machine() -> dict:
    import numba
    from machine_info import base_machine

    return {**base_machine(),
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
            "numba_threading_layer": numba_layer(),
            "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS")}




def run_bayesm(design, iterations: int, short: int, tmpdir: Path) -> dict:
    """Write the per-customer regressions to CSV and time rhierLinearModel in R."""
    csv = tmpdir / f"regressions_{design.n_customers}.csv"
    out = tmpdir / f"bayesm_{design.n_customers}.json"
    q = design.q
    header = "customer,y," + ",".join(f"x{k + 1}" for k in range(q))
    table = np.column_stack([design.customer, design.y, design.R])
    np.savetxt(csv, table, delimiter=",", header=header, comments="",
               fmt=["%d"] + ["%.10g"] * (1 + q))
    cmd = ["Rscript", str(HERE / "bayesm_peer.R"), str(csv), str(iterations), str(short),
           str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    res = json.loads(out.read_text())
    res["wall_seconds_of_rscript"] = round(time.perf_counter() - t0, 2)
    return res


def run_model(design, args, tmpdir: Path) -> dict:
    """manylift (numba, numpy) and bayesm on one design."""
    from manylift.sampler.gibbs_numba import NumbaBackend

    res = {"q": design.q, "random_coefficients": list(design.r_names),
           "load_before": load_average()}
    ns = args.numba_sweeps or int(max(20, min(200, 4e7 / design.n_rows)))
    numba_s, blocks = _time_backend(NumbaBackend(design, ModelSpec(), 1), ns)
    res["manylift_numba"] = {"seconds_per_sweep": numba_s, "sweeps_timed": ns,
                             "seconds_per_sweep_blocks": blocks,
                             "threads": int(__import__("numba").get_num_threads())}
    print(f"manylift numba (q = {design.q}): {numba_s * 1e3:.2f} ms/sweep", flush=True)
    if not args.skip_numpy:
        nn = args.numpy_sweeps or int(max(3, min(30, 5e6 / design.n_rows)))
        numpy_s, _ = _time_backend(NumpyBackend(design, ModelSpec(), 1), nn, warm=1, blocks=1)
        res["manylift_numpy"] = {"seconds_per_sweep": numpy_s, "sweeps_timed": nn}
        print(f"manylift numpy (q = {design.q}): {numpy_s * 1e3:.2f} ms/sweep", flush=True)
    if not args.skip_bayesm:
        b = run_bayesm(design, args.bayesm_iterations, args.bayesm_short, tmpdir)
        res["bayesm"] = b
        print(f"bayesm (q = {design.q}): {b['seconds_per_iteration'] * 1e3:.2f} ms/iteration "
              f"({b['seconds_per_iteration_incl_setup'] * 1e3:.2f} incl. setup)", flush=True)
        per = b["seconds_per_iteration"]
        nthreads = res["manylift_numba"]["threads"]
        res["ratio"] = {"bayesm_over_numba": per / numba_s,
                        "bayesm_over_numba_per_core": per / (numba_s * nthreads),
                        "bayesm_incl_setup_over_numba": b["seconds_per_iteration_incl_setup"]
                        / numba_s}
        if "manylift_numpy" in res:
            res["ratio"]["bayesm_over_numpy"] = per / res["manylift_numpy"]["seconds_per_sweep"]
        print(f"ratios (q = {design.q}): {res['ratio']}", flush=True)
    res["load_after"] = load_average()
    return res


def run_size(n_customers: int, args, tmpdir: Path) -> dict:
    print(f"\n== {n_customers:,} customers ==", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(n_customers, args.campaigns, args.weeks,
                                   random_state=args.seed)
    res: dict = {}
    # the default model (customer random intercept, q = k + 2) and the source study's
    # (q = k + 1), on the same data in the same run: the cost of the extra coordinate
    for label, ri in (("with_intercept", True), ("without_intercept", False)):
        design = build_inputs(data, random_intercept=ri).design
        print(repr(design), flush=True)
        res.setdefault("size", {"customers": design.n_customers, "rows": design.n_rows,
                                "K": design.K, "rows_per_customer": round(
                                    design.n_rows / design.n_customers, 2),
                                "campaigns": args.campaigns, "weeks": args.weeks})
        res[label] = run_model(design, args, tmpdir)
        del design
    del data
    a, b = res["with_intercept"], res["without_intercept"]
    res["intercept_cost"] = {
        "numba_seconds_ratio": a["manylift_numba"]["seconds_per_sweep"]
        / b["manylift_numba"]["seconds_per_sweep"]}
    if "bayesm" in a:
        res["intercept_cost"]["bayesm_seconds_ratio"] = (a["bayesm"]["seconds_per_iteration"]
                                                         / b["bayesm"]["seconds_per_iteration"])
    print(f"cost of the intercept: {res['intercept_cost']}", flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 10_000, 20_000])
    p.add_argument("--campaigns", type=int, default=140)
    p.add_argument("--weeks", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bayesm-iterations", type=int, default=300)
    p.add_argument("--bayesm-short", type=int, default=20)
    p.add_argument("--numba-sweeps", type=int, default=None)
    p.add_argument("--numpy-sweeps", type=int, default=None)
    p.add_argument("--skip-numpy", action="store_true")
    p.add_argument("--skip-bayesm", action="store_true",
                   help="time manylift only (both models), without R")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bayesm.json"))
    args = p.parse_args(argv)
    if shutil.which("Rscript") is None and not args.skip_bayesm:
        print("Rscript not found: install R and bayesm (apt-get install r-cran-bayesm).",
              file=sys.stderr)
        return 2
    result = {"benchmark": "bench_bayesm", "command": " ".join(["python", *sys.argv]),
              "machine": _machine(), "git_commit": git_commit(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="manylift_bayesm_") as tmp:
        for n in args.sizes:
            result["sizes"][str(n)] = run_size(n, args, Path(tmp))
            write_json(args.out, result)  # after every size, so a killed run keeps what it has
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
