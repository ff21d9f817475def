"""The CPU fast path: two looks at the rows per sweep (numba, all cores).

Same model, priors and blocks as :mod:`manylift.sampler.gibbs_numpy`.  A sweep:

    gather pass                   m_i = R_i'(y_i - F_i theta) for every customer (G lookups
                                  per row, G = 3 joint cells), and the statistics of the
                                  two moves (from u, R_i'R_i and m_i, no rows)
    (u, Omega) scale move         (spec.expansion, on the current u: from sum_i (u_i u_i') o
                                  R_i'R_i and sum_i u_i o m_i)
    (Omega, u) | z                interweaving (spec.interweave), Laplace + Metropolis-Hastings
    draw pass                     every u_i | theta, sigma^2, Omega, and the sufficient
                                  statistics the rest of the sweep needs (G scatter-adds per
                                  row into per-cell sums of R u)
    Omega^-1 | u                  (from S_u = sum_i u_i u_i')
    sigma^2 | theta, u            (SSE from ||y - F theta||^2 by F'F, and the two sums above)
    theta | sigma^2, u            (F'(y - R u) = F'y - M'(per-cell sums) - dense part;
                                   F'F = Q diag(lam) Q' once, so no K x K factorisation)

The interweaving move needs every m_i before any u_i is drawn, hence two passes (the
first one fused both; at 100,000 customers the split costs about 10% per sweep, see
docs/performance.md).  The scale move acts on (u, Omega) before the u block redraws u,
not after it as in the numpy reference: nothing rescales u after the draw pass, so theta
| u needs one per-cell sum of R u per row, not q (the per-coefficient sums cost the
sweep 15-25%).  A fixed scan order is a valid Gibbs sampler whatever the order; this one
(u first, theta last) differs from the numpy reference's (theta first), so the two agree
in distribution, not draw by draw (tested).  Written by hand with numba
because no library offers a segment-sum Gibbs pass over crossed random effects; numba
is already required by EconML's SHAP backend.  Designs under ``_SERIAL_ROWS`` rows with
several chains run them one per thread on single-threaded compiles of the same kernels.

All random numbers come from the chain's numpy Generator, so runs are deterministic and
resume bit-identically (for a given number of threads).
"""

from __future__ import annotations

import functools
import json

import numpy as np

from manylift._core.errors import SamplerError
from manylift.sampler.design import Design, joint_cells
from manylift.sampler.gibbs_numpy import (
    asis_accept,
    asis_draw,
    asis_laplace,
    numerical_failure,
    px_log_density,
)
from manylift.sampler.gibbs_numpy import init as numpy_init
from manylift.sampler.state import ModelSpec, State

__all__ = ["NumbaBackend", "gather_pass", "draw_pass", "px_draw_alpha_fast", "rtr_pairs",
           "asis_needed"]

try:  # numba is a dependency, but keep the import error readable
    import numba
    from numba import njit, prange
except ImportError as exc:  # pragma: no cover
    raise ImportError(f"The numba backend needs numba ({exc}).") from None


_NORMAL_BLOCKS = 8  # fixed, so the draws never depend on the number of threads
_ASIS_BLOCK = 256  # customers per block of the interweaving sums


@njit(cache=True, fastmath=False, inline="always")
def _chol_solve_draw(P, m, z, q, out, L, v):
    """out = P^-1 m + L^-T z with P = L L' (L, v: scratch buffers, no allocation)."""
    for a in range(q):
        for b in range(a + 1):
            s = P[a, b]
            for k in range(b):
                s -= L[a, k] * L[b, k]
            if a == b:
                if s <= 0.0:
                    s = 1e-300
                L[a, a] = np.sqrt(s)
            else:
                L[a, b] = s / L[b, b]
    # forward: L v = m
    for a in range(q):
        s = m[a]
        for k in range(a):
            s -= L[a, k] * v[k]
        v[a] = s / L[a, a]
    # back: L' x = v + z  (mean L'^-1 L^-1 m plus noise L'^-1 z)
    for a in range(q - 1, -1, -1):
        s = v[a] + z[a]
        for k in range(a + 1, q):
            s -= L[k, a] * out[k]
        out[a] = s / L[a, a]


@njit(fastmath={"reassoc", "contract"}, cache=True, nogil=True)
def _dot(x, y, n):
    """sum_k x[k] y[k], k < n, vectorised (reassociation allowed for this sum alone)."""
    s = 0.0
    for k in range(n):
        s += x[k] * y[k]
    return s


@njit(fastmath={"reassoc", "contract"}, cache=True, nogil=True)
def _sum(x, n):
    """sum_k x[k], k < n, vectorised like :func:`_dot`."""
    s = 0.0
    for k in range(n):
        s += x[k]
    return s


@njit(parallel=True, cache=True)
def gather_pass(cells, R, starts, Rty, DtR, theta_d, table, u, RRT, need, Linv, with_asis,
                with_scale, m, n_chunks):
    """First look at the rows: ``m_i = R_i'(y_i - F_i theta)`` for every customer, (n, q),
    and (``with_asis``) the statistics of the interweaving move with z_i = L^-1 u_i:
    ``T[(b,d), (a,c)] = sum_i z_ib z_id R_i'R_i[a,c]`` over the pairs b <= d, a <= c
    listed in ``need`` (``RRT`` = :func:`rtr_pairs`, the R_i'R_i pairs by column), from
    which :func:`_asis_matrix` assembles ``P`` of gibbs_numpy.asis_stats, and ``h[a, b] =
    sum_i m_ia z_ib``; (``with_scale``) those of the scale move on the current u, ``Gu`` =
    sum_i (u_i u_i') o R_i'R_i over the pairs a <= b and ``cu`` = sum_i u_i o m_i.  The
    sums run over blocks of ``_ASIS_BLOCK`` customers as vectorised dot products (measured
    5x faster than the 100 products per customer in a loop, whose loads and stores of the
    accumulators bound it).  ``m`` (n, q) is written in place (a buffer kept across
    sweeps: fresh arrays of this size cost page faults every sweep).  Returns m, T, h, Gu,
    cu.

    ``cells`` (N, G) holds each row's joint cells (campaign, week, cell x activity, each
    with the arm; see :func:`manylift.sampler.design.joint_cells`) as indices into one
    ``table`` of the categorical part of ``F theta``, so a row costs G lookups.  The
    dense columns of F enter through per-customer precomputed ``R_i'y_i`` and ``D_i'R_i``.
    """
    n = starts.size - 1
    q = R.shape[1]
    d = theta_d.size
    n_groups = cells.shape[1]
    npair = q * (q + 1) // 2
    accT = np.zeros((n_chunks, npair, npair))
    acch = np.zeros((n_chunks, q, q))
    accG = np.zeros((n_chunks, npair))
    accc = np.zeros((n_chunks, q))
    per = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        mi = np.empty(q)
        zb = np.empty((q, _ASIS_BLOCK))
        ub = np.empty((q, _ASIS_BLOCK))
        mb = np.empty((q, _ASIS_BLOCK))
        zzb = np.empty((npair, _ASIS_BLOCK))
        Tl = accT[ch]
        hl = acch[ch]
        i_lo, i_hi = ch * per, min(n, (ch + 1) * per)
        nb = 0
        for i in range(i_lo, i_hi):
            for a in range(q):
                s = Rty[i, a]
                for k in range(d):
                    s -= DtR[i, k, a] * theta_d[k]
                mi[a] = s
            r0, r1 = starts[i], starts[i + 1]
            # q == 5 (intercept, W and three covariates: the default model) and q == 4
            # (without the intercept) written out: the sums stay in registers (measured 8%
            # faster per sweep than the loop over a)
            if q == 5:
                m0, m1, m2, m3, m4 = mi[0], mi[1], mi[2], mi[3], mi[4]
                for j in range(r0, r1):
                    g = 0.0
                    for b in range(n_groups):
                        g += table[cells[j, b]]
                    m0 -= R[j, 0] * g
                    m1 -= R[j, 1] * g
                    m2 -= R[j, 2] * g
                    m3 -= R[j, 3] * g
                    m4 -= R[j, 4] * g
                mi[0], mi[1], mi[2], mi[3], mi[4] = m0, m1, m2, m3, m4
            elif q == 4:
                m0, m1, m2, m3 = mi[0], mi[1], mi[2], mi[3]
                for j in range(r0, r1):
                    g = 0.0
                    for b in range(n_groups):
                        g += table[cells[j, b]]
                    m0 -= R[j, 0] * g
                    m1 -= R[j, 1] * g
                    m2 -= R[j, 2] * g
                    m3 -= R[j, 3] * g
                mi[0], mi[1], mi[2], mi[3] = m0, m1, m2, m3
            else:
                for j in range(r0, r1):
                    g = 0.0
                    for b in range(n_groups):
                        g += table[cells[j, b]]
                    for a in range(q):
                        mi[a] -= R[j, a] * g
            for a in range(q):
                m[i, a] = mi[a]
            if with_asis or with_scale:
                for a in range(q):
                    t = 0.0
                    for b in range(a + 1):
                        t += Linv[a, b] * u[i, b]
                    zb[a, nb] = t
                    ub[a, nb] = u[i, a]
                    mb[a, nb] = mi[a]
                nb += 1
                if nb == _ASIS_BLOCK or i == i_hi - 1:
                    i0 = i + 1 - nb
                    if with_asis:
                        k = 0
                        for a in range(q):
                            for b in range(a, q):
                                for t in range(nb):
                                    zzb[k, t] = zb[a, t] * zb[b, t]
                                k += 1
                        for p in range(need.shape[0]):
                            k1, k2 = need[p, 0], need[p, 1]
                            Tl[k1, k2] += _dot(zzb[k1], RRT[k2, i0:i0 + nb], nb)
                        for a in range(q):
                            for b in range(q):
                                hl[a, b] += _dot(mb[a], zb[b], nb)
                    if with_scale:
                        k = 0
                        for a in range(q):
                            for b in range(a, q):
                                for t in range(nb):
                                    zzb[0, t] = ub[a, t] * ub[b, t]
                                accG[ch, k] += _dot(zzb[0], RRT[k, i0:i0 + nb], nb)
                                k += 1
                            accc[ch, a] += _dot(ub[a], mb[a], nb)
                    nb = 0
    return m, accT.sum(axis=0), acch.sum(axis=0), accG.sum(axis=0), accc.sum(axis=0)


def rtr_pairs(RtR: np.ndarray) -> np.ndarray:
    """``R_i'R_i[a, b]`` over the pairs a <= b (row-major order), by column: (q(q+1)/2, n),
    the right-hand factor of the interweaving sums of :func:`gather_pass`."""
    ia, ib = np.triu_indices(RtR.shape[1])
    return np.ascontiguousarray(RtR[:, ia, ib].T)


def asis_needed(q: int) -> np.ndarray:
    """The (z pair, R'R pair) entries of gather_pass's ``T`` that :func:`_asis_matrix`
    reads: 50 of 100 for q = 4."""
    zz, rr, _, _ = _asis_index(q)
    return np.array(sorted(set(zip(zz.ravel().tolist(), rr.ravel().tolist()))), np.int64)


def _asis_matrix(T, h, q):
    """``P`` and ``h`` of gibbs_numpy.asis_stats (lower-triangular order of L's entries)
    from the pair sums of :func:`gather_pass`."""
    zz, rr, ia, ib = _asis_index(q)
    return T[zz, rr], h[ia, ib]


@functools.lru_cache(maxsize=8)
def _asis_index(q: int):
    pair = {}
    k = 0
    for a in range(q):
        for b in range(a, q):
            pair[(a, b)] = pair[(b, a)] = k
            k += 1
    ia, ib = np.tril_indices(q)
    zz = np.array([[pair[(b, d)] for d in ib] for b in ib])  # (z_b z_d) pair of (a,b),(c,d)
    rr = np.array([[pair[(a, c)] for c in ia] for a in ia])  # R'R[a, c] pair
    return zz, rr, ia, ib


@njit(cache=True, inline="always")
def _draw4(omega_inv, RtR, m, z, i, inv_s2, out):
    """q = 4: u_i = P^-1 m_i + L^-T z_i with P = Omega^-1 + R_i'R_i / s2 = L L', written out
    (with the four reciprocals of L's diagonal, not twelve divisions)."""
    p00 = omega_inv[0, 0] + RtR[i, 0, 0] * inv_s2
    p10 = omega_inv[1, 0] + RtR[i, 1, 0] * inv_s2
    p20 = omega_inv[2, 0] + RtR[i, 2, 0] * inv_s2
    p30 = omega_inv[3, 0] + RtR[i, 3, 0] * inv_s2
    p11 = omega_inv[1, 1] + RtR[i, 1, 1] * inv_s2
    p21 = omega_inv[2, 1] + RtR[i, 2, 1] * inv_s2
    p31 = omega_inv[3, 1] + RtR[i, 3, 1] * inv_s2
    p22 = omega_inv[2, 2] + RtR[i, 2, 2] * inv_s2
    p32 = omega_inv[3, 2] + RtR[i, 3, 2] * inv_s2
    p33 = omega_inv[3, 3] + RtR[i, 3, 3] * inv_s2
    r0 = 1.0 / np.sqrt(max(p00, 1e-300))
    l10 = p10 * r0
    l20 = p20 * r0
    l30 = p30 * r0
    r1 = 1.0 / np.sqrt(max(p11 - l10 * l10, 1e-300))
    l21 = (p21 - l20 * l10) * r1
    l31 = (p31 - l30 * l10) * r1
    r2 = 1.0 / np.sqrt(max(p22 - l20 * l20 - l21 * l21, 1e-300))
    l32 = (p32 - l30 * l20 - l31 * l21) * r2
    r3 = 1.0 / np.sqrt(max(p33 - l30 * l30 - l31 * l31 - l32 * l32, 1e-300))
    v0 = m[i, 0] * inv_s2 * r0
    v1 = (m[i, 1] * inv_s2 - l10 * v0) * r1
    v2 = (m[i, 2] * inv_s2 - l20 * v0 - l21 * v1) * r2
    v3 = (m[i, 3] * inv_s2 - l30 * v0 - l31 * v1 - l32 * v2) * r3
    x3 = (v3 + z[i, 3]) * r3
    x2 = (v2 + z[i, 2] - l32 * x3) * r2
    x1 = (v1 + z[i, 1] - l21 * x2 - l31 * x3) * r1
    x0 = (v0 + z[i, 0] - l10 * x1 - l20 * x2 - l30 * x3) * r0
    out[0] = x0
    out[1] = x1
    out[2] = x2
    out[3] = x3


@njit(cache=True, inline="always")
def _draw5(omega_inv, RtR, m, z, i, inv_s2, out):
    """q = 5 (the default model: intercept, W, three covariates): as :func:`_draw4`."""
    p00 = omega_inv[0, 0] + RtR[i, 0, 0] * inv_s2
    p10 = omega_inv[1, 0] + RtR[i, 1, 0] * inv_s2
    p20 = omega_inv[2, 0] + RtR[i, 2, 0] * inv_s2
    p30 = omega_inv[3, 0] + RtR[i, 3, 0] * inv_s2
    p40 = omega_inv[4, 0] + RtR[i, 4, 0] * inv_s2
    p11 = omega_inv[1, 1] + RtR[i, 1, 1] * inv_s2
    p21 = omega_inv[2, 1] + RtR[i, 2, 1] * inv_s2
    p31 = omega_inv[3, 1] + RtR[i, 3, 1] * inv_s2
    p41 = omega_inv[4, 1] + RtR[i, 4, 1] * inv_s2
    p22 = omega_inv[2, 2] + RtR[i, 2, 2] * inv_s2
    p32 = omega_inv[3, 2] + RtR[i, 3, 2] * inv_s2
    p42 = omega_inv[4, 2] + RtR[i, 4, 2] * inv_s2
    p33 = omega_inv[3, 3] + RtR[i, 3, 3] * inv_s2
    p43 = omega_inv[4, 3] + RtR[i, 4, 3] * inv_s2
    p44 = omega_inv[4, 4] + RtR[i, 4, 4] * inv_s2
    r0 = 1.0 / np.sqrt(max(p00, 1e-300))
    l10 = p10 * r0
    l20 = p20 * r0
    l30 = p30 * r0
    l40 = p40 * r0
    r1 = 1.0 / np.sqrt(max(p11 - l10 * l10, 1e-300))
    l21 = (p21 - l20 * l10) * r1
    l31 = (p31 - l30 * l10) * r1
    l41 = (p41 - l40 * l10) * r1
    r2 = 1.0 / np.sqrt(max(p22 - l20 * l20 - l21 * l21, 1e-300))
    l32 = (p32 - l30 * l20 - l31 * l21) * r2
    l42 = (p42 - l40 * l20 - l41 * l21) * r2
    r3 = 1.0 / np.sqrt(max(p33 - l30 * l30 - l31 * l31 - l32 * l32, 1e-300))
    l43 = (p43 - l40 * l30 - l41 * l31 - l42 * l32) * r3
    r4 = 1.0 / np.sqrt(max(p44 - l40 * l40 - l41 * l41 - l42 * l42 - l43 * l43, 1e-300))
    v0 = m[i, 0] * inv_s2 * r0
    v1 = (m[i, 1] * inv_s2 - l10 * v0) * r1
    v2 = (m[i, 2] * inv_s2 - l20 * v0 - l21 * v1) * r2
    v3 = (m[i, 3] * inv_s2 - l30 * v0 - l31 * v1 - l32 * v2) * r3
    v4 = (m[i, 4] * inv_s2 - l40 * v0 - l41 * v1 - l42 * v2 - l43 * v3) * r4
    x4 = (v4 + z[i, 4]) * r4
    x3 = (v3 + z[i, 3] - l43 * x4) * r3
    x2 = (v2 + z[i, 2] - l32 * x3 - l42 * x4) * r2
    x1 = (v1 + z[i, 1] - l21 * x2 - l31 * x3 - l41 * x4) * r1
    x0 = (v0 + z[i, 0] - l10 * x1 - l20 * x2 - l30 * x3 - l40 * x4) * r0
    out[0] = x0
    out[1] = x1
    out[2] = x2
    out[3] = x3
    out[4] = x4


@njit(parallel=True, cache=True)
def draw_pass(cells, R, starts, RtR, RRT, DtRT, m, omega_inv, sigma2, z, n_cells, n_chunks):
    """Second look at the rows: draw every u_i given ``m`` (from :func:`gather_pass`)
    and accumulate the sufficient statistics the rest of the sweep needs.

    Returns u (n, q), c (q) = sum_i u_i o m_i, G (q, q) = sum_i (u_i u_i') o R_i'R_i,
    S (q, q) = sum_i u_i u_i', Fd (q, d) = dense'(R_k u_k) and Fc (n_cells,) = per-cell
    sums of R u (one scatter-add per group and row; nothing rescales the u_k after this
    pass, so theta | u needs no per-coefficient sums, which cost 2-3x more).  ``RRT`` are the
    R_i'R_i pairs by column (:func:`rtr_pairs`) and ``DtRT`` (d, q, n) the per-customer
    sums D_i'R_i by column: the per-customer sums c, G, S and Fd run over blocks of
    ``_ASIS_BLOCK`` customers as vectorised dot products (accumulating them customer by
    customer was bound by the loads and stores of 60 accumulators).
    """
    n = starts.size - 1
    q = R.shape[1]
    d = DtRT.shape[0]
    n_groups = cells.shape[1]
    npair = q * (q + 1) // 2
    u = np.empty((n, q))
    acc_c = np.zeros((n_chunks, q))
    acc_G = np.zeros((n_chunks, npair))
    acc_S = np.zeros((n_chunks, npair))
    acc_Fd = np.zeros((n_chunks, q, d))
    acc_Fc = np.zeros((n_chunks, n_cells))
    per = (n + n_chunks - 1) // n_chunks
    inv_s2 = 1.0 / sigma2
    for ch in prange(n_chunks):
        P = np.empty((q, q))
        mi = np.empty(q)
        ui = np.empty(q)
        Lbuf = np.zeros((q, q))
        vbuf = np.empty(q)
        ub = np.empty((q, _ASIS_BLOCK))
        mb = np.empty((q, _ASIS_BLOCK))
        uub = np.empty(_ASIS_BLOCK)
        Fd = acc_Fd[ch]
        Fc = acc_Fc[ch]
        i_lo, i_hi = ch * per, min(n, (ch + 1) * per)
        nb = 0
        for i in range(i_lo, i_hi):
            # q == 5 and q == 4 written out (per-customer work measured 1.65x faster at
            # q = 4, same numbers)
            if q == 5:
                _draw5(omega_inv, RtR, m, z, i, inv_s2, ui)
            elif q == 4:
                _draw4(omega_inv, RtR, m, z, i, inv_s2, ui)
            else:
                for a in range(q):
                    for b2 in range(q):
                        P[a, b2] = omega_inv[a, b2] + RtR[i, a, b2] * inv_s2
                    mi[a] = m[i, a] * inv_s2
                _chol_solve_draw(P, mi, z[i], q, ui, Lbuf, vbuf)
            for a in range(q):
                u[i, a] = ui[a]
                ub[a, nb] = ui[a]
                mb[a, nb] = m[i, a]
            nb += 1
            # per-cell sums of R u: one scatter-add per group and row
            r0, r1 = starts[i], starts[i + 1]
            if q == 5:
                u0, u1, u2, u3, u4 = ui[0], ui[1], ui[2], ui[3], ui[4]
                for j in range(r0, r1):
                    sj = (R[j, 0] * u0 + R[j, 1] * u1 + R[j, 2] * u2 + R[j, 3] * u3
                          + R[j, 4] * u4)
                    for b in range(n_groups):
                        Fc[cells[j, b]] += sj
            elif q == 4:
                u0, u1, u2, u3 = ui[0], ui[1], ui[2], ui[3]
                for j in range(r0, r1):
                    sj = R[j, 0] * u0 + R[j, 1] * u1 + R[j, 2] * u2 + R[j, 3] * u3
                    for b in range(n_groups):
                        Fc[cells[j, b]] += sj
            else:
                for j in range(r0, r1):
                    sj = 0.0
                    for a in range(q):
                        sj += R[j, a] * ui[a]
                    for b in range(n_groups):
                        Fc[cells[j, b]] += sj
            if nb == _ASIS_BLOCK or i == i_hi - 1:
                i0 = i + 1 - nb
                k = 0
                for a in range(q):
                    for b2 in range(a, q):
                        for t in range(nb):
                            uub[t] = ub[a, t] * ub[b2, t]
                        acc_S[ch, k] += _sum(uub, nb)
                        acc_G[ch, k] += _dot(uub, RRT[k, i0:i0 + nb], nb)
                        k += 1
                    acc_c[ch, a] += _dot(ub[a], mb[a], nb)
                    for kk in range(d):
                        Fd[a, kk] += _dot(ub[a], DtRT[kk, a, i0:i0 + nb], nb)
                nb = 0
    return (u, acc_c.sum(axis=0), _sym_from_pairs(acc_G.sum(axis=0), q),
            _sym_from_pairs(acc_S.sum(axis=0), q), acc_Fd.sum(axis=0), acc_Fc.sum(axis=0))


@njit(cache=True, nogil=True)
def _coo_matvec(row, col, data, x, n_rows):
    """M x for M given by its nonzeros (row, col, data): (n_rows,).  M' x is
    ``_coo_matvec(col, row, data, x, n_cols)``."""
    out = np.zeros(n_rows)
    for k in range(row.size):
        out[row[k]] += data[k] * x[col[k]]
    return out


@njit(cache=True, nogil=True)
def _sym_from_pairs(v, q):
    """The symmetric (q, q) matrix whose pairs a <= b (row-major order, as in
    :func:`rtr_pairs`) are ``v``."""
    out = np.empty((q, q))
    k = 0
    for a in range(q):
        for b in range(a, q):
            out[a, b] = out[b, a] = v[k]
            k += 1
    return out


@njit(cache=True, nogil=True)
def _tail(S, c, G, Fc, Fd, theta, Q, lam, Fty, yty, M_row, M_col, M_data, dd, N, wscale_inv,
          inv_sigma_scale, inv_v0, chi, nz, g_std, z_theta):
    """The blocks after the draw pass, from their random numbers (one compiled call: at
    2,000 customers their numpy calls took a sixth of the sweep, holding the GIL).

    Omega^-1 | u ~ Wishart(df, (S0^-1 + S_u)^-1) by Bartlett's construction as in
    gibbs_numpy.sample_wishart (``chi`` the chi-square draws, ``nz`` the normals below the
    diagonal); 1/sigma^2 ~ Gamma(shape, rate = 1/scale + SSE/2) as ``g_std`` (a standard
    gamma draw of that shape) / rate, with SSE from ||y - F theta||^2 = y'y - 2 theta'F'y
    + theta'Q diag(lam) Q'theta and the draw pass's sums; theta ~ N(P^-1 b, P^-1) with
    P = Q diag(lam / s2 + 1 / v0) Q' and b = F'(y - R u) / s2, ``z_theta`` its normals.
    Returns theta, sigma^2, Omega^-1 and the log-likelihood at (theta of the start of the
    sweep, u, the new sigma^2).
    """
    q = S.shape[0]
    scale = np.linalg.inv(wscale_inv + S)
    scale = (scale + scale.T) / 2
    Lw = np.linalg.cholesky(scale)
    A = np.zeros((q, q))
    k = 0
    for a in range(q):
        A[a, a] = np.sqrt(chi[a])
    for a in range(1, q):  # np.tril_indices(q, -1) order
        for b in range(a):
            A[a, b] = nz[k]
            k += 1
    LA = Lw @ A
    omega_inv = LA @ LA.T
    Qt_theta = Q.T @ theta
    rr = yty - 2.0 * (theta @ Fty) + np.sum(lam * Qt_theta * Qt_theta)
    sse = rr - 2.0 * np.sum(c) + np.sum(G)
    sigma2 = (inv_sigma_scale + sse / 2.0) / g_std
    FtRu = _coo_matvec(M_col, M_row, M_data, Fc, theta.size)  # M' Fc
    for j in range(dd):
        for a in range(q):
            FtRu[j] += Fd[a, j]
    b_ = (Fty - FtRu) / sigma2
    prec = lam / sigma2 + inv_v0
    theta_new = Q @ ((Q.T @ b_) / prec + z_theta / np.sqrt(prec))
    loglik = -0.5 * N * np.log(2 * np.pi * sigma2) - 0.5 * sse / sigma2
    return theta_new, sigma2, omega_inv, loglik


def _serial(kernel, name: str):
    """A single-threaded compile of a parallel kernel (prange runs as range).

    Below ``_SERIAL_ROWS`` rows, with several chains, the chains run one per thread on these
    (nogil) compiles: the thread pool's start-up per kernel costs more than it saves there
    (0.1-0.3 ms with the workqueue layer: at 2,000 customers, 54,000 rows, the kernels took
    0.86 ms serial against 1.45 ms parallel).  A copy of the function under its own name
    keeps numba's on-disk caches of the two compiles apart.
    """
    import types

    f = kernel.py_func
    g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    g.__doc__ = f.__doc__
    return njit(cache=True, nogil=True)(g)


_SERIAL_ROWS = 250_000
_gather_serial = _serial(gather_pass, "_gather_serial")
_draw_serial = _serial(draw_pass, "_draw_serial")
_asis_laplace = njit(cache=True, nogil=True)(asis_laplace)
_asis_accept = njit(cache=True, nogil=True)(asis_accept)


@njit(cache=True)
def _px_laplace(lam, A, b, nu, c, n_newton):
    """Newton to the mode in beta = log alpha and the Cholesky factor of -Hessian there."""
    beta = np.zeros(b.size)
    for _ in range(n_newton):
        _, g, H = px_log_density(beta, lam, A, b, nu, c)
        beta = beta - np.clip(np.linalg.solve(H, g), -1.0, 1.0)
    _, _, H = px_log_density(beta, lam, A, b, nu, c)
    return beta, np.linalg.cholesky(-H)


@njit(cache=True)
def _px_log_ratio(beta, Lp, z, lam, A, b, nu, c):
    """Proposal beta + Lp^-T z and its independence Metropolis-Hastings log ratio."""
    step = np.linalg.solve(Lp.T, z)
    prop = beta + step
    f_prop = px_log_density(prop, lam, A, b, nu, c)[0]
    f_cur = px_log_density(np.zeros(b.size), lam, A, b, nu, c)[0]
    d_prop = Lp.T @ (prop - beta)
    d_cur = Lp.T @ (-beta)
    return prop, (f_prop + 0.5 * (d_prop @ d_prop)) - (f_cur + 0.5 * (d_cur @ d_cur))


def px_draw_alpha_fast(rng, A, b, lam, spec, n_newton: int = 12):
    """:func:`manylift.sampler.gibbs_numpy.px_draw_alpha` with its small algebra jitted.

    The same Newton iterations, proposal and acceptance, drawing the same random
    numbers from ``rng`` in the same order (tested equal); the numpy version spent
    about 0.4 ms per sweep in Python calls, a third of a sweep at 2,000 customers.
    """
    q = b.shape[0]
    nu, c = float(spec.wishart_df(q)), float(spec.wishart_scale_diag)
    try:
        beta, Lp = _px_laplace(lam, A, b, nu, c, n_newton)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(Lp)):
        return None
    z = rng.standard_normal(q)
    log_u = np.log(rng.uniform())
    prop, log_ratio = _px_log_ratio(beta, Lp, z, lam, A, b, nu, c)
    if np.isfinite(log_ratio) and log_u < log_ratio:
        return np.exp(prop)
    return None


class NumbaBackend:
    """Fused single-pass sweeps on all CPU cores (numba); same protocol as NumpyBackend."""

    name = "numba"

    def __init__(self, design: Design, spec: ModelSpec, n_chains: int, n_threads: int | None = None,
                 max_joint_cells: int = 1024):
        self.design, self.spec, self.n_chains = design, spec, n_chains
        self.sweep = 0
        d = design
        if np.any(np.diff(d.customer) < 0):
            raise SamplerError("The numba backend needs rows sorted by customer.")
        counts = np.bincount(d.customer, minlength=d.n_customers)
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # the categorical part of F as G joint cells per row (a lookup each), stored
        # row-major with the group offsets added, so one table serves every group
        # max_joint_cells=1024 keeps every table in L1/L2 (campaign, week and cell x
        # activity as three lookups at paper scale): measured faster than one table of
        # campaign x week interventions (benchmarks/bench_cpu.py --max-joint-cells)
        jc = joint_cells(d, max_joint_cells)
        # unsigned, so numba's indexing has no negative-index wrap-around to test: 15-25%
        # faster row loops (measured)
        self._cells = np.ascontiguousarray((jc.cells + jc.cell_offsets[:-1, None]).T,
                                           dtype=np.uint32)
        self._M = jc.cell_matrix(d.K).tocsr()  # (total cells, K), sparse
        Mc = self._M.tocoo()
        self._M_coo = (Mc.row.astype(np.int64), Mc.col.astype(np.int64), Mc.data.astype(float))
        self._R = np.ascontiguousarray(d.R)
        # theta | rest without a K x K factorisation per sweep: the prior precision is
        # isotropic, so with F'F = Q diag(lam) Q' (once) the posterior precision is
        # Q diag(lam / sigma^2 + 1 / v0) Q'
        lam, self._Q = np.linalg.eigh(d.FtF)
        self._lam = np.maximum(lam, 0.0)
        self._Fty = d.Ft_dot(d.y)
        self._yty = float(d.y @ d.y)
        n, q, dd = d.n_customers, d.q, d.dense.shape[1]
        # per-customer products with the dense columns (they never change)
        self._Rty = np.column_stack([np.bincount(d.customer, weights=d.R[:, a] * d.y,
                                                 minlength=n) for a in range(q)])
        self._DtR = np.empty((n, dd, q))
        for k in range(dd):
            for a in range(q):
                self._DtR[:, k, a] = np.bincount(d.customer, weights=d.dense[:, k] * d.R[:, a],
                                                 minlength=n)
        self._dd = d.dense.shape[1]
        self._DtRT = np.ascontiguousarray(self._DtR.transpose(1, 2, 0))  # (d, q, n)
        # R_i'R_i[a, b] over the pairs a <= b, (n, q(q+1)/2), for the interweaving sums
        self._RRT = rtr_pairs(d.RtR)
        self._need = asis_needed(q)
        self._n_threads = n_threads or numba.get_num_threads()
        self._n_chunks = max(1, 8 * self._n_threads)
        # accepted proposals of the two Metropolis-Hastings moves, over all chains (a
        # diagnostic: compare with self.sweep * n_chains)
        self.accepted = {"interweave": 0, "scale": 0}
        # small designs with several chains: one chain per thread, single-threaded kernels
        # (one chain alone is faster on the parallel kernels with numba's default OpenMP
        # layer: 0.73 against 0.87 ms per sweep at 2,000 customers, measured)
        small = self._small = (d.n_rows < _SERIAL_ROWS and n_chains > 1
                               and self._n_threads > 1)
        self._chain_pool = None
        self._gather = _gather_serial if small else gather_pass
        self._draw = _draw_serial if small else draw_pass
        if small:  # one thread: one chunk, one set of per-chunk sums to zero and add
            self._n_chunks = 1
        self._pool = None
        self._bufs = {}
        self._wscale_inv = np.linalg.inv(spec.wishart_scale(q))

    # -- protocol ---------------------------------------------------------
    def init(self, seeds):
        self._bufs = {}
        self._rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
        self._states = [numpy_init(r, self.design, self.spec) for r in self._rngs]

    def _buffers(self, rng, n: int, q: int):
        """This chain's (n, q) work arrays (normals, m_i), kept across sweeps: fresh ones
        cost page faults every sweep (measured 10-30% of a sweep from 100,000 customers)."""
        buf = self._bufs.get(id(rng))
        if buf is None:
            buf = self._bufs[id(rng)] = (np.empty((n, q)), np.empty((n, q)))
        return buf

    def _normals(self, rng, z: np.ndarray) -> np.ndarray:
        """Fill z (n, q) with the standard normals of the u block, on all cores at scale.

        One 64-bit seed from the chain's Generator keys a fixed number of blocks (never
        the thread count), each drawn by its own PCG64 from ``SeedSequence([seed, block])``
        in a thread pool (numpy's generators release the GIL).  The chain's Generator
        alone determines every draw, so checkpoints and resume are unchanged.  At paper
        scale these 2.3 million normals took about a tenth of a sweep on one thread.
        """
        n = z.shape[0]
        n_blocks = int(min(_NORMAL_BLOCKS, max(1, n // 50_000)))
        if n_blocks == 1:
            return rng.standard_normal(out=z)
        seed = int(rng.integers(0, 2**63 - 1))
        bounds = np.linspace(0, n, n_blocks + 1).astype(np.int64)

        def fill(k: int) -> None:
            g = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, k])))
            g.standard_normal(out=z[bounds[k]:bounds[k + 1]])

        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self._n_threads)
        list(self._pool.map(fill, range(n_blocks)))
        return z

    def _step(self, rng, state: State):
        block = ["u (gather pass)"]  # the block being drawn, named in the error if one fails
        try:
            return self._sweep(rng, state, block)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError, ZeroDivisionError) as exc:
            raise numerical_failure(block[0], exc) from None

    def _sweep(self, rng, state: State, block: list):
        d, spec = self.design, self.spec
        theta, sigma2, omega_inv, _ = state
        N, q, n = d.n_rows, d.q, d.n_customers
        n_cells = self._M.shape[0]
        z, m_buf = self._buffers(rng, n, q)
        z = self._normals(rng, z)
        block[0] = "Omega^-1"
        L = np.linalg.cholesky(np.linalg.inv(omega_inv)) if spec.interweave else np.eye(q)
        block[0] = "u (gather pass)"
        m, T, hh, Gp, cu = self._gather(self._cells, self._R, self._starts, self._Rty,
                                        self._DtR, theta[: self._dd],
                                        _coo_matvec(*self._M_coo, theta, n_cells), state.u,
                                        self._RRT, self._need, np.linalg.inv(L),
                                        bool(spec.interweave), bool(spec.expansion),
                                        m_buf, self._n_chunks)
        block[0] = "scale move"
        if spec.expansion:
            # scale move on the current (u, Omega) (same density as gibbs_numpy.px_scale_step:
            # A = G / s2, b = c / s2), before the u block redraws u: u -> alpha o u leaves
            # z = L^-1 u unchanged and L -> diag(alpha) L, so the interweaving sums stand
            drawn = px_draw_alpha_fast(rng, _sym_from_pairs(Gp, q) / sigma2, cu / sigma2,
                                       np.diag(omega_inv).copy(), spec)
            if drawn is not None:
                self.accepted["scale"] += 1
                omega_inv = omega_inv / np.outer(drawn, drawn)
                L = drawn[:, None] * L
        block[0] = "interweaving move"
        if spec.interweave:  # (Omega, u) | z, then u is redrawn (gibbs_numpy.asis_step)
            P, h = _asis_matrix(T, hh, q)
            L_new = asis_draw(rng, L, P / sigma2, h / sigma2, spec,
                              laplace=_asis_laplace, accept=_asis_accept)
            if L_new is not None:
                Minv = np.linalg.inv(L_new)
                omega_inv = Minv.T @ Minv
                self.accepted["interweave"] += 1
        block[0] = "u"
        u, c, G, S, Fd, Fc = self._draw(self._cells, self._R, self._starts, d.RtR, self._RRT,
                                       self._DtRT, m, omega_inv, float(sigma2), z,
                                       n_cells, self._n_chunks)
        # Omega^-1 | u, sigma^2 | theta (start of sweep), u and theta | sigma^2, u: their random
        # numbers drawn here, in the order gibbs_numpy.sample_wishart and the numpy
        # reference draw them, the algebra compiled in one call (_tail)
        block[0] = "Omega^-1, sigma^2 and theta"
        q_df = spec.wishart_df(q) + n
        chi = rng.chisquare(q_df - np.arange(q))
        nz = rng.standard_normal(q * (q - 1) // 2)
        g_std = rng.standard_gamma(spec.sigma_shape + N / 2)
        z_theta = rng.standard_normal(d.K)
        theta, sigma2, omega_inv, loglik = _tail(
            S, c, G, Fc, Fd, theta, self._Q, self._lam, self._Fty, self._yty, *self._M_coo,
            self._dd, N, self._wscale_inv, 1.0 / spec.sigma_scale,
            1.0 / spec.theta_prior_var, chi, nz, g_std, z_theta)
        return State(theta, sigma2, omega_inv, u), loglik

    def run(self, n_sweeps: int) -> dict:
        """``n_sweeps`` sweeps of every chain.  Small designs (single-threaded kernels, which
        release the GIL) run their chains at once, one per thread; the draws are the same
        either way, since each chain has its own Generator."""
        from manylift.sampler.backends import check_finite

        ll = np.empty((n_sweeps, self.n_chains))

        def chain(c: int) -> None:
            for s in range(n_sweeps):
                st, ll[s, c] = self._step(self._rngs[c], self._states[c])
                self._states[c] = st
                if not np.isfinite(ll[s, c]):  # stop this chain; reported below
                    ll[s + 1:, c] = np.nan
                    break

        if self._small and self.n_chains > 1 and self._n_threads > 1:
            if self._chain_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._chain_pool = ThreadPoolExecutor(max_workers=self._n_threads)
            list(self._chain_pool.map(chain, range(self.n_chains)))
        else:
            for c in range(self.n_chains):
                chain(c)
        start = self.sweep
        self.sweep += n_sweeps
        bad = np.flatnonzero(~np.all(np.isfinite(ll), axis=1))
        if bad.size:
            for c in range(self.n_chains):
                check_finite(self._states[c], start + int(bad[0]) + 1, c)
        return {"loglik": ll}

    def states(self):
        return list(self._states)

    def set_states(self, states):
        self._states = [State(np.asarray(s.theta, float), float(s.sigma2),
                              np.asarray(s.omega_inv, float), np.asarray(s.u, float))
                        for s in states]

    def get_rng(self):
        blob = json.dumps([r.bit_generator.state for r in self._rngs])
        return np.frombuffer(blob.encode(), dtype=np.uint8)

    def set_rng(self, blob):
        states = json.loads(bytes(np.asarray(blob, np.uint8)).decode())
        for r, st in zip(self._rngs, states, strict=True):
            r.bit_generator.state = st
