"""Scoring speed and memory: rows scored per second and peak memory for new rows.

    python benchmarks/bench_score.py                        # 1,000,000 new rows, 400 draws
    python benchmarks/bench_score.py --rows 100000 --draws 100

Fits a small simulated program (the fit is not what is timed), saves the run, then scores
``--rows`` new rows of later weeks (customers of the fit and new ones, seen and unseen
campaigns) read back from the run folder with ``load_run``, as ``manylift score`` does. In the
same run it times a baseline: the same rows scored in one block (no chunking), so the ratio
shows what streaming costs. Peak memory is the process's VmHWM, measured in a child process
per variant (so one variant's peak does not hide the other's). Writes
benchmarks/results/score.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import GIB, base_machine, git_commit, load_average, peak_bytes  # noqa: E402


def _new_rows(data, n_rows: int, seed: int):
    """``n_rows`` rows of weeks after the fit: real customers' usage, later weeks, some new
    customers and one new campaign; no outcome, no treatment."""
    rng = np.random.default_rng(seed)
    f = data.frame
    last = int(f["week"].max())
    take = f.iloc[rng.integers(0, len(f), n_rows)].drop(columns=["outcome", "treated",
                                                                  "propensity"]).copy()
    take["campaign_id"] = take["campaign_id"].astype(str)
    cust = take["customer_id"].to_numpy().copy()
    new_c = rng.random(n_rows) < 0.05
    cust[new_c] = -1 - np.arange(new_c.sum())
    take["customer_id"] = cust
    # one row per customer per week: spread each customer's rows over later weeks
    order = np.argsort(cust, kind="stable")
    rank = np.empty(n_rows, np.int64)
    c_sorted = cust[order]
    starts = np.r_[0, np.flatnonzero(np.diff(c_sorted)) + 1]
    rank[order] = np.arange(n_rows) - np.repeat(starts, np.diff(np.r_[starts, n_rows]))
    take["week"] = last + 1 + rank
    camp = take["campaign_id"].to_numpy().astype(object)
    camp[rng.random(n_rows) < 0.05] = "NEW"
    take["campaign_id"] = camp
    return take.reset_index(drop=True)


def _score_child(run_dir: str, rows_path: str, draws: int, chunk: int, q) -> None:
    import pandas as pd

    from manylift.pooled.scoring import load_run

    rows = pd.read_parquet(rows_path)
    base = peak_bytes()
    t0 = time.perf_counter()
    fitted = load_run(run_dir)
    s = fitted.predict_effect(rows, n_draws=draws, cost=0.3, chunk_rows=chunk)
    sec = time.perf_counter() - t0
    q.put({"seconds": sec, "rows_per_second": len(rows) / sec,
           "targeted": s.summary["targeted"], "draws": s.summary["draws"],
           "peak_rss_GiB": peak_bytes() / GIB, "peak_rss_before_scoring_GiB": base / GIB})


def _run_child(*args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_score_child, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument("--out", default="benchmarks/results/score.json")
    args = ap.parse_args()

    from manylift._core.atomic import write_json
    from manylift.pooled.model import PooledModel
    from manylift.simulate.program import simulate_program

    load_before = load_average()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(20000, 20, 30, random_state=0)
    fit = PooledModel(n_chains=4, n_warmup=100, n_draws=100, backend="numba", progress=False,
                      max_functional_draws=args.draws).fit(data)
    with tempfile.TemporaryDirectory(prefix="manylift_score_") as tmp:
        fit.save(tmp)
        rows = _new_rows(data, args.rows, 1)
        rows_path = str(Path(tmp) / "new.parquet")
        rows.to_parquet(rows_path)
        del fit
        streamed = _run_child(tmp, rows_path, args.draws, args.chunk)
        print(f"streamed ({args.chunk:,} rows per block): {streamed}", flush=True)
        one_block = _run_child(tmp, rows_path, args.draws, args.rows)
        print(f"one block: {one_block}", flush=True)
    result = {
        "benchmark": "bench_score", "command": " ".join(["python", *sys.argv]),
        "rows": args.rows, "draws": args.draws, "chunk_rows": args.chunk,
        "streamed": streamed, "one_block_baseline": one_block,
        "streamed_over_one_block_seconds": streamed["seconds"] / one_block["seconds"],
        "machine": base_machine(), "git_commit": git_commit(),
        "load_before": load_before, "load_after": load_average(),
    }
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("rows", "draws", "streamed_over_one_block_seconds")}))


if __name__ == "__main__":
    main()
