"""End to end: ``manylift fit`` on simulated programs, stage by stage, with its peak memory.

For each size the script simulates a program (``manylift simulate``, cached in
``--data``), runs the real command line ``manylift fit`` in a subprocess and
reads back the stage timings and peak memory that the run wrote to
``results.json`` (``timings``, ``memory``), together with the child's peak
resident set from ``getrusage`` and its wall time. It also times the
standalone CPU sweep on the same data and chains in the same run (as
``bench_cpu.py`` does), so the sampler's throughput inside ``manylift fit`` is
compared with it directly.

The targets (issue 16, docs/performance.md "End to end: manylift fit stage by stage"):

- post-sampling stages <= 20% of the sampling time at 100k customers and paper
  scale (4 chains, 1000 + 1000 sweeps; paper scale may run fewer sweeps, which
  the results say);
- peak resident memory of a paper-scale fit with 4 x 1000 draws <= 12 GiB;
- at 20k customers total wall time <= 2 x the sampling time;
- the sampler inside ``manylift fit`` at 20k customers >= 80% of the standalone
  sweep's throughput (its best timed block: on a shared machine the median block is
  also recorded).

``--before SRC`` runs the same commands with another checkout's ``src`` folder
on ``PYTHONPATH`` (e.g. an export of the commit before this work) for the
before/after table; such runs have no ``timings`` key, so only the wall time,
the sampler's seconds and the peak memory are compared.

Usage::

    python benchmarks/bench_fit_e2e.py --sizes 20000 100000 --out benchmarks/results/fit_e2e.json
    python benchmarks/bench_fit_e2e.py --sizes 584000 --chains 4 --warmup 250 --draws 250 \\
        --out benchmarks/results/fit_e2e_paper.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

POST = ("holdout", "policies", "decomposition", "overlap", "report")
POST_ALL = ("holdout", "policies", "decomposition", "effects", "overlap", "save", "report")
COVARIATES = "usage_7d,usage_8_14d,usage_15_30d"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def simulate(n: int, data_dir: Path, campaigns: int, weeks: int) -> Path:
    out = data_dir / f"program_{n}"
    if not (out / "exposures.parquet").exists():
        subprocess.run([sys.executable, "-m", "manylift.cli.main", "simulate", "--customers",
                        str(n), "--campaigns", str(campaigns), "--weeks", str(weeks), "--seed",
                        "0", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def run_cli(args: list[str], src: str | None) -> dict:
    """Run ``manylift`` in a child process; its wall time and peak RSS (getrusage)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "manylift.cli.main", *args], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise RuntimeError(f"manylift {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return {"wall_seconds": wall,
            # ru_maxrss of children is the largest child so far: only trust a new maximum
            "child_peak_rss_gib": peak / 2**20 if peak > before else None,
            "stdout_tail": proc.stdout[-2500:]}


def load_program(program: Path):
    """The simulated program's ExperimentData and its sampler design (as ``manylift fit``
    reads it: the three usage covariates, ``usage_30d`` as the activity column)."""
    import warnings

    from manylift.data.experiment import ExperimentData
    from manylift.pooled.build import build_inputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ExperimentData.from_files(program / "exposures.parquet",
                                         program / "campaigns.csv",
                                         covariates=COVARIATES.split(","),
                                         activity_col="usage_30d")
        return data, build_inputs(data).design


def standalone_sweeps(program: Path, chains: int, sweeps: int, blocks: int = 5) -> dict:
    """Seconds per sweep of the numba backend alone on the same data (all chains)."""

    import numpy as np

    from manylift.sampler.gibbs_numba import NumbaBackend
    from manylift.sampler.state import ModelSpec

    data, design = load_program(program)
    del data
    nb = NumbaBackend(design, ModelSpec(), chains)
    nb.init(np.random.SeedSequence(0).spawn(chains))
    nb.run(2)  # compile / load the cache, warm the buffers
    times = []
    for _ in range(blocks):
        t = time.perf_counter()
        nb.run(sweeps)
        times.append((time.perf_counter() - t) / sweeps)
    return {"seconds_per_sweep_min": min(times),
            "seconds_per_sweep_median": float(np.median(times)),
            "sweeps_per_second": 1 / float(np.median(times)), "sweeps_timed": blocks * sweeps,
            "rows": int(design.n_rows), "customers": int(design.n_customers)}


def throughput(program: Path, chains: int, sweeps: int, reps: int) -> dict:
    """The sampler's sweeps/s inside ``PooledModel.fit`` (with a checkpoint and the holdout
    spool, as ``manylift fit`` runs it) against the standalone sweep, interleaved ``reps``
    times so that both see the same machine load; BLAS on one thread in both (as the
    driver and bench_cpu.py set it)."""
    import tempfile
    import warnings

    import numpy as np
    from threadpoolctl import threadpool_limits

    from manylift.pooled.model import PooledModel
    from manylift.sampler.gibbs_numba import NumbaBackend
    from manylift.sampler.state import ModelSpec

    data, design = load_program(program)
    out = []
    for _ in range(reps):
        nb = NumbaBackend(design, ModelSpec(), chains)
        nb.init(np.random.SeedSequence(0).spawn(chains))
        nb.run(1)
        with threadpool_limits(1, user_api="blas"):
            t = time.perf_counter()
            nb.run(2 * sweeps)
            alone = 2 * sweeps / (time.perf_counter() - t)
        del nb
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = PooledModel(n_chains=chains, n_warmup=sweeps, n_draws=sweeps,
                              backend="numba", progress=False).fit(
                data, checkpoint=Path(tmp) / "checkpoint.npz")
        out.append({"standalone_sweeps_per_second": alone,
                    "fit_sweeps_per_second": fit.run.sweeps_per_second,
                    "ratio": fit.run.sweeps_per_second / alone, "load": load_average()})
        del fit
    ratios = [r["ratio"] for r in out]
    return {"chains": chains, "sweeps": 2 * sweeps, "reps": out,
            "ratio_median": float(np.median(ratios)), "ratio_min": min(ratios),
            "ratio_max": max(ratios)}


def one(n: int, args, src: str | None, label: str) -> dict:
    program = simulate(n, Path(args.data), args.campaigns, args.weeks)
    run_dir = Path(args.data) / f"run_{label}_{n}"
    cmd = ["fit", str(program / "exposures.parquet"), "--campaigns",
           str(program / "campaigns.csv"), "--covariates", COVARIATES, "--activity-col",
           "usage_30d", "--chains", str(args.chains), "--warmup", str(args.warmup),
           "--draws", str(args.draws), "--seed", "0", "--quiet", "--out", str(run_dir)]
    load_before = load_average()
    res = run_cli(cmd, src)
    r = json.loads((run_dir / "results.json").read_text())
    s = r["sampler"]
    out = {"customers": n, "rows": r["data"]["rows"], "label": label,
           "command": "manylift " + " ".join(cmd), "load_before": load_before,
           "load_after": load_average(), **{k: v for k, v in res.items() if k != "stdout_tail"},
           "sampler_seconds": s["seconds"], "sweeps_per_second": s["sweeps_per_second"],
           "compile_seconds": s.get("compile_seconds"), "backend": s["backend"],
           "timings": r.get("timings"), "memory": r.get("memory"),
           "stdout_tail": res["stdout_tail"]}
    t = r.get("timings")
    if t:
        post = sum(t.get(k, 0.0) for k in POST)
        post_all = sum(t.get(k, 0.0) for k in POST_ALL)
        out.update({
            "post_sampling_seconds": post, "post_sampling_all_seconds": post_all,
            "post_over_sampling": post / t["sampling"],
            "post_all_over_sampling": post_all / t["sampling"],
            "total_over_sampling": t["total"] / t["sampling"]})
    else:
        out["total_over_sampling"] = res["wall_seconds"] / s["seconds"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--campaigns", type=int, default=140)
    ap.add_argument("--weeks", type=int, default=96)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--standalone-sweeps", type=int, default=20,
                    help="sweeps per timed block of the standalone sampler")
    ap.add_argument("--standalone-blocks", type=int, default=5,
                    help="timed blocks of the standalone sampler (min and median reported)")
    ap.add_argument("--throughput-reps", type=int, default=0,
                    help="interleaved fit / standalone throughput repetitions (first size)")
    ap.add_argument("--throughput-chains", type=int, default=1)
    ap.add_argument("--throughput-sweeps", type=int, default=150,
                    help="warm-up = draws = this in each throughput repetition")
    ap.add_argument("--skip-cli", action="store_true", help="only the throughput comparison")
    ap.add_argument("--before", default=None, help="another checkout's src folder: run it too")
    ap.add_argument("--data", default="/tmp/manylift_bench")
    ap.add_argument("--out", default="benchmarks/results/fit_e2e.json")
    args = ap.parse_args()

    from machine_info import base_machine, git_commit

    results = {"machine": base_machine(), "git_commit": git_commit(),
               "command": " ".join(["python", *sys.argv]),
               "settings": {"chains": args.chains, "warmup": args.warmup, "draws": args.draws,
                            "campaigns": args.campaigns, "weeks": args.weeks},
               "load_start": load_average(), "sizes": {}}
    if args.throughput_reps:
        n = args.sizes[0]
        results["throughput"] = {"customers": n, **throughput(
            simulate(n, Path(args.data), args.campaigns, args.weeks), args.throughput_chains,
            args.throughput_sweeps, args.throughput_reps)}
        print(json.dumps(results["throughput"], indent=1), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    for n in ([] if args.skip_cli else args.sizes):
        entry: dict = {}
        if args.before:
            entry["before"] = one(n, args, args.before, "before")
            print(json.dumps({k: v for k, v in entry["before"].items() if k != "stdout_tail"},
                             indent=1), flush=True)
        entry["after"] = one(n, args, None, "after")
        print(json.dumps({k: v for k, v in entry["after"].items() if k != "stdout_tail"},
                         indent=1), flush=True)
        alone = standalone_sweeps(Path(args.data) / f"program_{n}", args.chains,
                                  args.standalone_sweeps, args.standalone_blocks)
        entry["standalone"] = alone
        # the fit's sweeps/s is an average over the whole run; against the standalone sweep's
        # best block (conservative on a busy machine) and its median block
        fit_sps = entry["after"]["sweeps_per_second"]
        entry["fit_over_standalone_throughput"] = fit_sps * alone["seconds_per_sweep_min"]
        entry["fit_over_standalone_median_throughput"] = fit_sps / alone["sweeps_per_second"]
        print(json.dumps(entry["standalone"], indent=1),
              f"\nthroughput inside fit / standalone best block: "
              f"{entry['fit_over_standalone_throughput']:.2f}", flush=True)
        results["sizes"][str(n)] = entry
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    results["load_end"] = load_average()
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
