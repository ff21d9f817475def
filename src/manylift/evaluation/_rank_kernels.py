"""Compiled per-row kernels of the weighted rank metrics (one sort per priority vector).

The posterior functionals of a pooled fit evaluate AUTOC for hundreds of draws
of priorities over hundreds of thousands of holdout rows, with and without the
draw's Bayesian-bootstrap weights, plus the weighted TOC curve. The numpy
version (:func:`manylift.evaluation.rank._weighted_rate_many`) builds about ten
(draws x rows) temporaries per call and sorts once per metric; this kernel sorts
each row once, walks it once, and runs rows in parallel threads. It implements
the same definitions (docs/evaluation.md "Weights and the Bayesian bootstrap")
and is tested equal to the numpy version and to the definition by brute force.

The sort is numpy's (vectorised, and it releases the GIL, so rows are sorted in
threads): numba's ``np.argsort`` is a plain quicksort, 5-8x slower on 584,000
floats, and it was most of the time of the Shapley games at paper scale
(benchmarks/results/rank_kernels.json). Only the walk is compiled.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

__all__ = ["grouped_rows", "rank_rows"]


@njit(cache=True, nogil=True)
def _one_row(s, p, asc, w, grid, out_rates, out_toc):
    """Rates and TOC of one priority row. ``w`` empty: equal weights.

    ``asc``: the row's ascending argsort (walked from the end: highest priority
    first; the order inside a tie group does not matter, tied rows are averaged).
    out_rates: [autoc_weighted, qini_weighted, autoc_equal, qini_equal]; out_toc: the
    weighted TOC on ``grid`` (equal weights when ``w`` is empty).
    """
    n = s.size
    order = asc[::-1]
    weighted = w.size > 0
    wtot = 0.0
    stot_w = 0.0
    stot_u = 0.0
    for i in range(n):
        wi = w[i] if weighted else 1.0
        wtot += wi
        stot_w += wi * s[i]
        stot_u += s[i]
    stot_w /= wtot
    stot_u /= n
    inv_wtot = 1.0 / wtot
    inv_n = 1.0 / n
    aw = qw = au = qu = 0.0
    bw = 0.0  # cumulative weight share before the current tie group
    cw = 0.0  # cumulative weighted score (share) before the group
    bu = 0.0
    cu = 0.0
    k = 0
    gi = 0  # next grid point
    m_grid = grid.size
    while k < n:
        # the tie group [k, e)
        idx = order[k]
        pk = p[idx]
        e = k + 1
        while e < n and p[order[e]] == pk:
            e += 1
        m = e - k
        if m == 1:  # no tie (the usual case with continuous priorities): no inner loops
            gw = (w[idx] if weighted else 1.0) * inv_wtot
            su = s[idx]
            gs = gw * su
            a = su
            W = bw + gw
            toc = (cw + gs) / W - stot_w
            aw += gw * toc
            qw += gw * W * toc
            Wu = bu + inv_n
            tocu = (cu + su * inv_n) / Wu - stot_u
            au += tocu * inv_n
            qu += Wu * tocu * inv_n
        else:
            gw = 0.0
            gs = 0.0
            su = 0.0
            for j in range(k, e):
                jdx = order[j]
                wi = (w[jdx] if weighted else 1.0) * inv_wtot
                gw += wi
                gs += wi * s[jdx]
                su += s[jdx]
            a = gs / gw  # the group's weighted mean score
            sub = gw / m  # tied units share the group's mean weight
            au_mean = su / m
            for j in range(1, m + 1):
                W = bw + j * sub
                toc = (cw + j * sub * a) / W - stot_w
                aw += sub * toc
                qw += sub * W * toc
                Wu = bu + j * inv_n
                tocu = (cu + j * au_mean * inv_n) / Wu - stot_u
                au += tocu * inv_n
                qu += Wu * tocu * inv_n
        # TOC at the grid points inside this group's weight span (linear inside it)
        while gi < m_grid and (grid[gi] <= bw + gw + 1e-12 or e == n):
            q = grid[gi]
            out_toc[gi] = (cw + (q - bw) * a) / q - stot_w
            gi += 1
        bw += gw
        cw += gs
        bu += m * inv_n
        cu += su * inv_n
        k = e
    out_rates[0] = aw
    out_rates[1] = qw
    out_rates[2] = au
    out_rates[3] = qu


@njit(parallel=True, cache=True)
def _rows(s, p, orders, w, has_w, grid, rates, toc):
    for r in prange(p.shape[0]):
        wr = w[r] if has_w else np.empty(0)
        _one_row(s, p[r], orders[r], wr, grid, rates[r], toc[r])


def _argsort_rows(p: np.ndarray) -> np.ndarray:
    """Ascending argsort of each row of ``p``, rows in threads (numpy's sort releases the GIL)."""
    out = np.empty(p.shape, dtype=np.intp)

    def one(r):
        out[r] = np.argsort(p[r])

    n_threads = min(numba.get_num_threads(), p.shape[0])
    if n_threads <= 1:
        for r in range(p.shape[0]):
            one(r)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(one, range(p.shape[0])))
    return out


def rank_rows(scores: np.ndarray, priorities: np.ndarray, weights: np.ndarray | None,
              grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``priorities``: ``rates`` (D, 4) = weighted AUTOC, weighted Qini, equal-weight
    AUTOC, equal-weight Qini; and the weighted TOC (D, len(grid)). Inputs already checked."""
    p = np.ascontiguousarray(priorities)
    D = p.shape[0]
    has_w = weights is not None
    w = (np.zeros((1, 1)) if not has_w
         else np.ascontiguousarray(np.broadcast_to(weights, p.shape), dtype=np.float64))
    rates = np.empty((D, 4))
    toc = np.empty((D, grid.size))
    _rows(np.ascontiguousarray(scores, dtype=np.float64), p, _argsort_rows(p), w, has_w,
          np.ascontiguousarray(grid, dtype=np.float64), rates, toc)
    return rates, toc


@njit(cache=True, nogil=True)
def _one_grouped(s, g, v, w, n_groups, out):
    """Weighted AUTOC of a priority constant within groups: ``v[g[i]]`` for row i.

    The same definition as :func:`_one_row` (tied rows share their tie group's
    weighted mean score and mean weight), with the rows sorted by their group's
    value only: sums per group in one pass, then a sort of the groups.
    """
    n = s.size
    weighted = w.size > 0
    cnt = np.zeros(n_groups)
    gw = np.zeros(n_groups)
    gs = np.zeros(n_groups)
    wtot = 0.0
    for i in range(n):
        wi = w[i] if weighted else 1.0
        cnt[g[i]] += 1.0
        gw[g[i]] += wi
        gs[g[i]] += wi * s[i]
        wtot += wi
    stot = gs.sum() / wtot
    order = np.argsort(-v)
    aw = 0.0
    bw = 0.0
    cw = 0.0
    k = 0
    while k < n_groups:
        e = k + 1
        while e < n_groups and v[order[e]] == v[order[k]]:
            e += 1
        m = 0.0
        tw = 0.0
        ts = 0.0
        for j in range(k, e):
            m += cnt[order[j]]
            tw += gw[order[j]] / wtot
            ts += gs[order[j]] / wtot
        if m > 0:
            a = ts / tw
            sub = tw / m
            for j in range(1, int(m) + 1):
                W = bw + j * sub
                aw += sub * ((cw + j * sub * a) / W - stot)
            bw += tw
            cw += ts
        k = e
    out[0] = aw


@njit(parallel=True, cache=True)
def _grouped_rows(s, g, v, w, has_w, n_groups, out):
    for r in prange(v.shape[0]):
        wr = w[r] if has_w else np.empty(0)
        _one_grouped(s, g, v[r], wr, n_groups, out[r])


def grouped_rows(scores: np.ndarray, groups: np.ndarray, values: np.ndarray,
                 weights: np.ndarray | None) -> np.ndarray:
    """Weighted AUTOC per row of ``values`` (D, G): the priority of row i is values[:, g_i]."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    has_w = weights is not None
    w = (np.zeros((1, 1)) if not has_w
         else np.ascontiguousarray(weights, dtype=np.float64))
    out = np.empty((v.shape[0], 1))
    _grouped_rows(np.ascontiguousarray(scores, dtype=np.float64),
                  np.ascontiguousarray(groups, dtype=np.int64), v, w, has_w, v.shape[1], out)
    return out[:, 0]
