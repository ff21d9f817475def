"""Time and memory of the program simulator and the exposure features.

Usage::

    python benchmarks/bench_simulate.py                 # small (20,000 customers), seconds
    python benchmarks/bench_simulate.py --full          # paper scale: 584,000 x 140 x 96
    python benchmarks/bench_simulate.py --customers 584000 --campaigns 140 --weeks 96 \
        --out benchmarks/results/simulate.json

Measures wall time and peak resident memory (Linux ``VmHWM``, reset between
phases through ``/proc/self/clear_refs``; ``resource.getrusage`` where that is
not available) of

1. ``simulate_program`` (including ``ExperimentData`` validation),
2. ``ExposureFeatures().fit(...)`` + ``.transform(...)`` on all rows,
3. ``holdout_split``,

and checks, so that speed never trades away correctness, that the features
computed from the data equal the simulator's own recency and stock.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from manylift._core.atomic import write_json
from manylift.features.exposure import ExposureFeatures
from manylift.features.holdout import holdout_split
from manylift.simulate.program import simulate_program

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine_info, when imported
from machine_info import GIB, peak_bytes, reset_peak, status_bytes  # noqa: E402


def _phase(fn):
    reset_peak()
    rss0 = status_bytes("VmRSS") or 0
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    return out, {
        "seconds": round(sec, 2),
        "peak_rss_gib": round(peak_bytes() / GIB, 3),
        "rss_before_gib": round(rss0 / GIB, 3),
        "rss_after_gib": round((status_bytes("VmRSS") or 0) / GIB, 3),
    }


def _machine() -> dict:
    from machine_info import base_machine

    try:
        load = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared
    except OSError:
        load = None
    return {**base_machine(), "load_average_1_5_15": load}


def run(n_customers: int, n_campaigns: int, n_weeks: int, seed: int = 0) -> dict:
    (data, truth), sim = _phase(
        lambda: simulate_program(n_customers, n_campaigns, n_weeks, random_state=seed))
    print(f"simulate_program: {sim['seconds']} s, peak {sim['peak_rss_gib']} GiB; {data!r}",
          flush=True)

    def features():
        fe = ExposureFeatures().fit(data.frame, data.covariates, data.activity_col)
        return fe, fe.transform(data.frame)

    (fe, arrays), feat = _phase(features)
    print(f"ExposureFeatures fit+transform: {feat['seconds']} s, peak {feat['peak_rss_gib']} GiB",
          flush=True)
    holdout, hold = _phase(lambda: holdout_split(data.frame["customer_id"].to_numpy(),
                                                 random_state=seed))
    print(f"holdout_split: {hold['seconds']} s", flush=True)

    rec_truth = truth.rows["recency"].to_numpy()
    stock_truth = truth.rows["stock"].to_numpy()
    checks = {
        "recency_equal_to_truth": bool(np.array_equal(arrays.recency, rec_truth)),
        "stock_max_abs_diff": float(np.max(np.abs(arrays.stock - stock_truth))),
        "rows_per_customer": round(data.n_rows / data.n_customers, 2),
        "never_treated_share": round(float(np.mean(arrays.cell == fe.n_cells - 1)), 4),
        "holdout_rows": int(holdout.sum()),
        "treated_share_min": round(float(truth.campaigns["treated_share"].min()), 3),
        "treated_share_max": round(float(truth.campaigns["treated_share"].max()), 3),
    }
    return {
        "benchmark": "bench_simulate",
        "size": {"customers": data.n_customers, "campaigns": data.n_campaigns,
                 "weeks": data.n_weeks, "rows": data.n_rows,
                 "interventions": data.n_interventions, "seed": seed},
        "simulate_program": sim,
        "exposure_features": feat,
        "holdout_split": hold,
        # the peak counter is reset between phases, so the process peak is the largest phase peak
        "process_peak_rss_gib": max(sim["peak_rss_gib"], feat["peak_rss_gib"],
                                    hold["peak_rss_gib"]),
        "checks": checks,
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--campaigns", type=int, default=40)
    p.add_argument("--weeks", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full", action="store_true",
                   help="paper scale: 584,000 customers, 140 campaigns, 96 weeks")
    p.add_argument("--out", type=Path, default=None,
                   help="write the result as JSON here (e.g. benchmarks/results/simulate.json)")
    a = p.parse_args(argv)
    if a.full:
        a.customers, a.campaigns, a.weeks = 584_000, 140, 96
    result = run(a.customers, a.campaigns, a.weeks, a.seed)
    if a.out:
        write_json(a.out, result)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
