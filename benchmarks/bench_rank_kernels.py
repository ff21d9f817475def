"""The weighted rank kernel of the posterior functionals: sorting inside numba vs numpy's sort.

    python benchmarks/bench_rank_kernels.py                    # 584,000 rows x 16 draws
    python benchmarks/bench_rank_kernels.py --rows 100000 --draws 32

The Shapley games (AUTOC payoff) and the holdout validation sort every draw's
priorities over the holdout rows. Until December 2026 the compiled kernel sorted each
row with numba's ``np.argsort`` (a plain quicksort); it now sorts with numpy (vectorised,
and it releases the GIL, so rows are sorted in threads) and compiles only the walk.
This benchmark times, in one run and on the same arrays (float32 priorities, as the
functionals' blocks are; Bayesian-bootstrap weights per draw):

- ``sort_numba``: the former sort, ``np.argsort`` inside a numba ``prange`` over rows;
- ``sort_numpy_threads``: the current sort (``_argsort_rows``);
- ``rank_rows``: the whole current kernel (sort + walk): weighted AUTOC, Qini and
  equal-weight rates;
- ``rank_rows_former``: sort with numba then the current walk (what the kernel cost
  before, up to the walk's small changes).

Best of ``--repeats``; writes benchmarks/results/rank_kernels.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import base_machine, git_commit, load_average  # noqa: E402

from manylift.evaluation._rank_kernels import _argsort_rows, _rows, rank_rows  # noqa: E402


@njit(parallel=True, cache=True)
def _numba_argsort_rows(p, out):
    for r in prange(p.shape[0]):
        out[r] = np.argsort(p[r])


def _best(fn, repeats: int) -> float:
    fn()  # compile / warm the caches
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=584_000)
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "rank_kernels.json"))
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    n, D = args.rows, args.draws
    s = rng.normal(size=n)
    p = rng.normal(size=(D, n)).astype(np.float32)
    w = rng.exponential(size=(D, n))
    grid = np.ones(0)
    rates = np.full((D, 4), np.nan)
    toc = np.empty((D, 0))

    def former():
        order = np.empty(p.shape, np.intp)
        _numba_argsort_rows(p, order)
        _rows(s, p, order, w, True, grid, rates, toc)

    order = np.empty(p.shape, np.intp)
    times = {
        "sort_numba": _best(lambda: _numba_argsort_rows(p, order), args.repeats),
        "sort_numpy_threads": _best(lambda: _argsort_rows(p), args.repeats),
        "rank_rows_former": _best(former, args.repeats),
        "rank_rows": _best(lambda: rank_rows(s, p, w, grid), args.repeats),
    }
    # the two sorts give the same rates (ties are averaged, so any sort will do)
    a, _ = rank_rows(s, p, w, grid)
    former()
    same = bool(np.allclose(a, rates, rtol=1e-12, atol=1e-15))
    out = {
        "machine": {**base_machine(), "numba_threads": numba.get_num_threads()},
        "git_commit": git_commit(),
        "command": "python benchmarks/bench_rank_kernels.py " + " ".join(argv or sys.argv[1:]),
        "load_start": load_average(),
        "rows": n, "draws": D, "repeats": args.repeats,
        "seconds": times,
        "per_draw_ms": {k: 1000 * v / D for k, v in times.items()},
        "ratio_sort_numba_over_numpy": times["sort_numba"] / times["sort_numpy_threads"],
        "ratio_rank_rows_former_over_current": times["rank_rows_former"] / times["rank_rows"],
        "same_rates": same,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for k, v in times.items():
        print(f"{k:24s} {v:7.3f} s  ({1000 * v / D:6.1f} ms per draw)")
    print(f"sort: numba / numpy = {out['ratio_sort_numba_over_numpy']:.2f}x; kernel: former / "
          f"current = {out['ratio_rank_rows_former_over_current']:.2f}x; same rates: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
