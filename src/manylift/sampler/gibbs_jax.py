"""The JAX backend of the pooled Gibbs sampler: the fast path on CPU and GPU.

The same conditionals as the numpy reference (:mod:`manylift.sampler.gibbs_numpy`),
as pure functions in the BlackJAX shape::

    state = init(key, sdesign, spec)
    state, info = step(key, state, sdesign, spec)

with the blocks theta | rest, sigma^2 | rest, Omega^-1 | u, every u_i | rest and
the interweaving move before the u block (``spec.interweave``, :func:`asis_from_sums`),
then (``spec.expansion``) the parameter-expanded scale move, with the same
math as :func:`manylift.sampler.gibbs_numpy.px_scale_step` (fixed-iteration
Newton in log-scale, independence Metropolis-Hastings from the Laplace
proposal).  :class:`JaxBackend` runs sweeps with ``jax.lax.scan`` and chains
with ``jax.vmap`` inside one jitted function per number of sweeps.

One sweep for one device and for many.  The rows are held as *logical shards of
whole customers* (:class:`ShardedDesign`; rows sorted by customer), and the sweep
(:func:`sweep_init`, :func:`sweep_step`) is written once as

    per-shard sums over rows and customers  ->  a reduction  ->  the small blocks

three times per sweep (``F'(y - R u)`` and ``S_u``; the sums of squares; the
interweaving and scale moves' sums).  The reduction is the identity on one
device (:class:`JaxBackend`: one logical shard) and ``psum`` over the mesh axis
inside ``shard_map`` (:mod:`manylift.sampler.sharding`, over the devices of one
or several processes).  The small blocks (theta, sigma^2, Omega^-1, the moves)
are computed from the reduced sums, replicated on every device.  One device is
a one-shard mesh: the same code, the reduction a no-op.

How the sweep is formulated (all exact; only rounding differs from numpy):

* Categorical terms are never expanded: ``F theta`` is a gather per code
  column, ``F' r`` a ``jax.ops.segment_sum`` per code column of ``(r, r w)``.
  Terms that share codes (a baseline effect and its interaction with W) share
  one gather and one segment sum.
* theta | rest: the prior precision is isotropic, so with ``F'F = Q diag(lam) Q'``
  (eigendecomposition done once, in float64) the posterior precision is
  ``Q diag(lam / sigma^2 + 1/v0) Q'`` and a draw costs two K x K matrix-vector
  products instead of a K x K Cholesky factorisation per sweep.
* u_i | rest: the q x q factorisations of all customers are written out
  element by element (q is small and static), so they vectorise over customers.
* The log-likelihood at the new state is assembled from per-customer sums
  (``sum ry^2 - 2 sigma^2 sum u'm + sum u' R'R u``), so a sweep makes two
  passes over the rows.

Precision: ``dtype="float64"`` (default) does everything in float64.
``dtype="float32"`` stores the row arrays (y, R, dense columns, W) in float32
and does per-row arithmetic in float32, but every reduction over rows (``F' r``,
the per-customer sums, the sums of squares) accumulates in float64, and the
low-dimensional state (theta, sigma^2, Omega^-1, u) and the K x K algebra stay in
float64.  Both need JAX's 64-bit mode: creating a :class:`JaxBackend` switches
it on for the process (``jax.config.update("jax_enable_x64", True)``) before it
makes any array.  This is process-wide: JAX code elsewhere in the same process
then gets float64 by default unless it asks for float32.

RNG: each chain has a base key derived from its ``numpy.random.SeedSequence``;
the key of sweep ``s`` is ``jax.random.fold_in(base_key, s)``.  Draws therefore
depend only on (seed, sweep index), never on how sweeps are split into calls
of :meth:`JaxBackend.run`, so a resumed run reproduces an uninterrupted one
bit for bit on the same backend and device.  With one logical shard all normals
of a sweep come from one call (the layout of the first one-device sampler, kept
so its draws are unchanged); with several, the u_i normals of logical shard s
come from ``fold_in(k_u, s)``, so they do not depend on how shards sit on
devices (:mod:`manylift.sampler.sharding`).

References
----------
Rossi, P. E., McCulloch, R. E. and Allenby, G. M. (1996). The value of purchase
history data in target marketing. Marketing Science 15(4), 321-340.
Liu, J. S. and Sabatti, C. (2000). Generalised Gibbs sampler and multigrid
Monte Carlo for Bayesian computation. Biometrika 87(2), 353-369.
Gelman, A., van Dyk, D. A., Huang, Z. and Boscardin, J. W. (2008). Using
redundant parameterizations to fit hierarchical models. Journal of
Computational and Graphical Statistics 17(1), 95-122.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from manylift._core.checks import check_in
from manylift._core.errors import SamplerError
from manylift.sampler.contract import check_finite
from manylift.sampler.design import Design, joint_cells
from manylift.sampler.state import Info, ModelSpec, State

__all__ = ["JaxBackend", "JaxDesign", "ShardLayout", "ShardedDesign", "to_jax_design",
           "host_encoding", "init", "step", "sweep_init", "sweep_step", "sample_wishart",
           "sample_gamma", "px_scale_step", "px_scale_from_sums", "asis_sums", "asis_from_sums",
           "enable_x64", "AXIS"]

#: Name of the mesh axis the logical shards are laid along (one device: no mesh).
AXIS = "shards"


def enable_x64() -> None:
    """Switch on JAX's 64-bit mode (process-wide); call before making any JAX array."""
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
# ---------------------------------------------------------------------------
# the design as a pytree: arrays are leaves, the layout is static aux data
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Static (hashable) shape of the design: what jit specialises on.

    ``groups``: one entry per group of code columns that share one joint
    code, ``(n_joint, members)``; each member is a distinct code column
    ``(n_levels, base_start, w_start)`` with the first index in theta of its
    baseline and of its W-interaction parameters (-1 where that term is absent).
    """

    n_rows: int
    n_customers: int
    K: int
    q: int
    d: int
    groups: tuple[tuple[int, tuple[tuple[int, int, int], ...]], ...]
    dtype: str


class JaxDesign:
    """The design's arrays on a device, as a JAX pytree (see :func:`to_jax_design`).

    Attributes (arrays, row arrays stored by column, which is what XLA on CPU
    streams fastest): ``y`` (N,), ``customer`` (N,) int32, ``R`` (q, N),
    ``dense`` (d, N), ``cells`` (G, N) int32: per group of categorical
    columns, ``2 * joint code + treated``; ``members`` a tuple of (m_g,
    n_joint_g) int32 arrays, the level of each member column at each joint
    code; ``w`` (N,), ``evecs`` and ``evals`` of F'F (float64), ``RtR``
    (n, q, q) float64.  ``layout`` is static.
    """

    _fields = ("y", "customer", "R", "dense", "cells", "members", "w", "evecs", "evals", "RtR")

    def __init__(self, layout: Layout, y, customer, R, dense, cells, members, w, evecs, evals,
                 RtR):
        self.layout = layout
        self.y, self.customer, self.R, self.dense = y, customer, R, dense
        self.cells, self.members = cells, members
        self.w, self.evecs, self.evals, self.RtR = w, evecs, evals, RtR

    def tree_flatten(self):
        return tuple(getattr(self, f) for f in self._fields), self.layout

    @classmethod
    def tree_unflatten(cls, layout, children):
        return cls(layout, *children)

    def __repr__(self) -> str:
        lo = self.layout
        return (f"JaxDesign(N={lo.n_rows:,}, customers={lo.n_customers:,}, K={lo.K}, q={lo.q}, "
                f"groups={[(g[0], len(g[1])) for g in lo.groups]}, dtype={lo.dtype})")


_registered = False


def _register() -> None:
    global _registered
    if not _registered:
        import jax

        for cls in (JaxDesign, ShardedDesign):
            jax.tree_util.register_pytree_node(cls, cls.tree_flatten, cls.tree_unflatten)
        _registered = True


@dataclass(frozen=True, repr=False)
class HostEncoding:
    """The compact encoding of a design on the host (numpy), before it is cut into shards.

    ``rows``: the row arrays stored by column, ``y`` (N,), ``customer`` (N,) int32,
    ``R`` (q, N), ``dense`` (d, N), ``cells`` (G, N) int32; ``members``, ``evecs``,
    ``evals`` and ``RtR`` (n, q, q) as in :class:`JaxDesign`.
    """

    layout: Layout
    rows: dict
    members: tuple
    evecs: np.ndarray
    evals: np.ndarray
    RtR: np.ndarray


def host_encoding(design: Design, dtype: str = "float64", max_joint_cells: int = 1 << 16,
                  jc=None, FtF: np.ndarray | None = None, n_rows: int | None = None,
                  n_customers: int | None = None) -> HostEncoding:
    """The compact encoding of :func:`to_jax_design`, on the host.

    ``jc`` (a :class:`~manylift.sampler.design.JointCells`), ``FtF``, ``n_rows`` and
    ``n_customers`` default to the design's own; a process that holds a part of the
    customers passes the global ones (so every process has the same layout).
    """
    check_in("dtype", dtype, ["float64", "float32"], "JaxBackend")
    d = design.dense.shape[1]
    jc = joint_cells(design, max_joint_cells) if jc is None else jc
    evals, evecs = np.linalg.eigh(design.FtF if FtF is None else FtF)
    layout = Layout(int(design.n_rows if n_rows is None else n_rows),
                    int(design.n_customers if n_customers is None else n_customers),
                    design.K, design.q, d,
                    tuple((int(lv.shape[1]), tuple(jc.columns[i] for i in g))
                          for g, lv in zip(jc.groups, jc.members, strict=True)), dtype)
    fd = np.dtype(dtype)
    rows = {"y": design.y.astype(fd), "customer": design.customer.astype(np.int32),
            "R": np.ascontiguousarray(design.R.T, fd),
            "dense": np.ascontiguousarray(design.dense.T, fd), "cells": jc.cells}
    return HostEncoding(layout, rows, tuple(jc.members), evecs.astype(np.float64),
                        np.maximum(evals, 0.0).astype(np.float64), design.RtR.astype(np.float64))


def to_jax_design(design: Design, dtype: str = "float64", device=None,
                  max_joint_cells: int = 1 << 16) -> JaxDesign:
    """Move a :class:`~manylift.sampler.design.Design` to a device in compact form.

    Code columns that are identical across terms (a categorical baseline and
    its interaction with W) are stored once.  Then consecutive code columns
    are merged into one joint code while the (occurring combinations x 2 arms)
    stay within ``max_joint_cells`` (campaign x week are the interventions;
    cell x activity a small table): ``F' r`` then needs one segment sum per
    group into ``2 x n_joint`` cells, folded onto each column's levels with
    tiny segment sums, and ``F theta`` one gather per group.  ``F'F`` is
    replaced by its eigendecomposition (float64), used for the theta draw.
    """
    import jax

    enable_x64()
    _register()
    enc = host_encoding(design, dtype, max_joint_cells)
    put = partial(jax.device_put, device=device)
    r = enc.rows
    return JaxDesign(enc.layout, put(r["y"]), put(r["customer"]), put(r["R"]), put(r["dense"]),
                     put(r["cells"]), tuple(put(m) for m in enc.members),
                     put(design.w.astype(np.dtype(dtype))), put(enc.evecs), put(enc.evals),
                     put(enc.RtR))


# ---------------------------------------------------------------------------
# the sweep's design: logical shards of whole customers (one device: one shard)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardLayout:
    """Static shape of a sharded design: the global layout plus the shard sizes.

    ``padded``: whether any shard has padded rows or customers (then the sweep masks
    them; one shard never has).
    """

    layout: Layout
    n_shards: int
    rows_per_shard: int
    customers_per_shard: int
    padded: bool = True


class ShardedDesign:
    """The design as logical shards of whole customers (a JAX pytree).

    Leading axis: the logical shards this device holds (all of them on one
    device).  ``y`` (S, Nl), ``customer`` (S, Nl) int32 index within the shard,
    ``R`` (S, q, Nl), ``dense`` (S, d, Nl), ``cells`` (S, G, Nl) (joint code and
    arm), ``RtR`` (S, nl, q, q), and where ``slayout.padded`` ``mask`` (S, Nl) 1
    for real rows and ``cmask`` (S, nl) 1 for real customers (else None).
    Replicated: ``members``, ``evecs``, ``evals`` (as in :class:`JaxDesign`).
    Padded rows have y = 0, R = 0 and point at the shard's last customer slot;
    padded customers have ``R_i'R_i = 0`` and their u_i is held at 0.
    """

    _sharded = ("y", "customer", "R", "dense", "cells", "mask", "RtR", "cmask")
    _replicated = ("members", "evecs", "evals")
    _fields = _sharded + _replicated

    def __init__(self, slayout: ShardLayout, y, customer, R, dense, cells, mask, RtR, cmask,
                 members, evecs, evals, plan=None):
        self.slayout = slayout
        self.y, self.customer, self.R, self.dense, self.cells = y, customer, R, dense, cells
        self.mask, self.RtR, self.cmask = mask, RtR, cmask
        self.members, self.evecs, self.evals = members, evecs, evals
        self.plan = plan

    def tree_flatten(self):
        return tuple(getattr(self, f) for f in self._fields), self.slayout

    @classmethod
    def tree_unflatten(cls, slayout, children):
        return cls(slayout, *children)

    @classmethod
    def partition_specs(cls, slayout: ShardLayout, n_groups: int):
        """The ``PartitionSpec`` of every leaf, as a ShardedDesign (for ``shard_map``)."""
        from jax.sharding import PartitionSpec as P

        sh = [None if (f in ("mask", "cmask") and not slayout.padded) else P(AXIS)
              for f in cls._sharded]
        return cls(slayout, *sh, tuple(P() for _ in range(n_groups)), P(), P())

    def __repr__(self) -> str:
        sl = self.slayout
        lo = sl.layout
        return (f"ShardedDesign(N={lo.n_rows:,}, customers={lo.n_customers:,}, K={lo.K}, "
                f"q={lo.q}, shards={sl.n_shards}, rows_per_shard={sl.rows_per_shard:,}, "
                f"dtype={lo.dtype})")


def one_shard_design(design: Design, dtype: str = "float64", device=None,
                     max_joint_cells: int = 1 << 16) -> ShardedDesign:
    """The whole design as one logical shard on one device (no padding, no masks)."""
    import jax

    enable_x64()
    _register()
    enc = host_encoding(design, dtype, max_joint_cells)
    put = partial(jax.device_put, device=device)
    slayout = ShardLayout(enc.layout, 1, enc.layout.n_rows, enc.layout.n_customers, False)
    r = enc.rows
    return ShardedDesign(slayout, *(put(r[k][None]) for k in ("y", "customer", "R", "dense",
                                                               "cells")),
                         None, put(enc.RtR[None]), None, tuple(put(m) for m in enc.members),
                         put(enc.evecs), put(enc.evals))
# ---------------------------------------------------------------------------
# products with F (no dense N x K matrix)
# ---------------------------------------------------------------------------
def _full_levels(params):
    """Effect coding: L-1 parameters -> L level effects summing to zero (last axis)."""
    import jax.numpy as jnp

    return jnp.concatenate([params, -params.sum(-1, keepdims=True)], -1)


def F_dot(jd: JaxDesign, theta):
    """``F @ theta`` by gathers (row dtype): one table of (joint code, arm) values per group."""
    import jax.numpy as jnp

    lo = jd.layout
    rt = jd.y.dtype
    th = theta.astype(rt)
    out = th[: lo.d] @ jd.dense
    half = jnp.asarray([-0.5, 0.5], rt)
    for g, (n_joint, cols) in enumerate(lo.groups):
        base = jnp.zeros(n_joint, rt)
        inter = jnp.zeros(n_joint, rt)
        for i, (L, b0, w0) in enumerate(cols):
            lev = jd.members[g][i]
            if b0 >= 0:
                base = base + _full_levels(th[b0:b0 + L - 1])[lev]
            if w0 >= 0:
                inter = inter + _full_levels(th[w0:w0 + L - 1])[lev]
        table = (base[:, None] + inter[:, None] * half[None]).reshape(-1)
        out = out + table[jd.cells[g]]
    return out


def Ft_dot(jd: JaxDesign, r):
    """``F' r`` by segment sums, accumulated in float64."""
    import jax
    import jax.numpy as jnp

    lo = jd.layout
    r64 = r.astype(jnp.float64)
    parts = [(0, jnp.sum(jd.dense.astype(jnp.float64) * r64, axis=1))]
    for g, (n_joint, cols) in enumerate(lo.groups):
        s = jax.ops.segment_sum(r64, jd.cells[g], num_segments=2 * n_joint).reshape(n_joint, 2)
        s_base = s[:, 0] + s[:, 1]  # sum of r
        s_w = 0.5 * (s[:, 1] - s[:, 0])  # sum of r w
        for i, (L, b0, w0) in enumerate(cols):
            lev = jd.members[g][i]
            for start, vals in ((b0, s_base), (w0, s_w)):
                if start >= 0:
                    t = jax.ops.segment_sum(vals, lev, num_segments=L)
                    parts.append((start, t[: L - 1] - t[L - 1]))  # A' t for effect coding
    parts.sort(key=lambda p: p[0])
    return jnp.concatenate([p[1] for p in parts])


# ---------------------------------------------------------------------------
# small batched linear algebra, written out (q is static and small)
# ---------------------------------------------------------------------------
def _chol_small(P):
    """Cholesky factor of a batch (..., q, q) as nested lists of (...) arrays."""
    import jax.numpy as jnp

    q = P.shape[-1]
    L = [[None] * q for _ in range(q)]
    for j in range(q):
        s = P[..., j, j]
        for k in range(j):
            s = s - L[j][k] * L[j][k]
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, q):
            t = P[..., i, j]
            for k in range(j):
                t = t - L[i][k] * L[j][k]
            L[i][j] = t / L[j][j]
    return L


def _solve_lower(L, b):
    """Solve L x = b; b is a list of q arrays."""
    q = len(b)
    x = [None] * q
    for i in range(q):
        t = b[i]
        for k in range(i):
            t = t - L[i][k] * x[k]
        x[i] = t / L[i][i]
    return x


def _solve_upper_t(L, b):
    """Solve L' x = b (L lower)."""
    q = len(b)
    x = [None] * q
    for i in reversed(range(q)):
        t = b[i]
        for k in range(i + 1, q):
            t = t - L[k][i] * x[k]
        x[i] = t / L[i][i]
    return x


def _chol(P):
    """Cholesky factor of one small SPD matrix, written out (NaN where P is not SPD)."""
    import jax.numpy as jnp

    q = P.shape[-1]
    L = _chol_small(P)
    zero = jnp.zeros_like(P[..., 0, 0])
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(q)], -1)
                      for i in range(q)], -2)


def _spd_inv(P):
    """Inverse of one small SPD matrix through its written-out Cholesky factor."""
    import jax.numpy as jnp

    q = P.shape[-1]
    L = _chol_small(P)
    cols = []
    for j in range(q):
        e = [jnp.ones_like(P[..., 0, 0]) if i == j else jnp.zeros_like(P[..., 0, 0])
             for i in range(q)]
        cols.append(jnp.stack(_solve_upper_t(L, _solve_lower(L, e)), -1))
    return jnp.stack(cols, -1)


def sample_gamma(key, shape):
    """Gamma(shape, 1) draws by Marsaglia and Tsang's method (exact: a loop until accepted).

    Used instead of ``jax.random.gamma`` because that one takes seconds to
    compile.  Each round draws its normals with one call (uniforms as
    ``Phi(z)`` of a normal); shapes below 1 use the boost
    ``Gamma(a) = Gamma(a + 1) U^(1/a)``.

    References
    ----------
    Marsaglia, G. and Tsang, W. W. (2000). A simple method for generating gamma
    variables. ACM Transactions on Mathematical Software 26(3), 363-372.
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import log_ndtr

    a = jnp.asarray(shape, jnp.float64)
    boost = a < 1.0
    aa = jnp.where(boost, a + 1.0, a)
    d = aa - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    inv_a = 1.0 / jnp.where(boost, a, 1.0)

    def cond(carry):
        return ~jnp.all(carry[1])

    def body(carry):
        i, done, val = carry
        zz = jax.random.normal(jax.random.fold_in(key, i), (3, *a.shape), jnp.float64)
        x = zz[0]
        v = (1.0 + c * x) ** 3
        vpos = jnp.where(v > 0, v, 1.0)
        ok = (v > 0) & (log_ndtr(zz[1]) < 0.5 * x * x + d - d * vpos + d * jnp.log(vpos))
        draw = d * vpos * jnp.where(boost, jnp.exp(log_ndtr(zz[2]) * inv_a), 1.0)
        val = jnp.where(~done & ok, draw, val)
        return i + 1, done | ok, val

    init = (jnp.uint32(0), jnp.zeros(a.shape, bool), jnp.zeros(a.shape, jnp.float64))
    return jax.lax.while_loop(cond, body, init)[2]


def sample_wishart(key, df, scale, chi2=None, normals=None):
    """One draw of Wishart(df, scale) by Bartlett's method (as the numpy reference).

    ``chi2`` (q,) chi-square draws with ``df - k`` degrees of freedom and
    ``normals`` (q(q-1)/2,) standard normals, if the caller has drawn them
    already (the sweep draws all its variates in two calls); else from ``key``.
    """
    import jax
    import jax.numpy as jnp

    q = scale.shape[0]
    il = np.tril_indices(q, -1)
    if chi2 is None or normals is None:
        k1, k2 = jax.random.split(key)
        chi2 = 2.0 * sample_gamma(k1, (df - jnp.arange(q)) / 2.0)
        normals = jax.random.normal(k2, (len(il[0]),), jnp.float64)
    L = _chol(scale)
    A = jnp.zeros((q, q), jnp.float64)
    A = A.at[np.diag_indices(q)].set(jnp.sqrt(chi2))
    A = A.at[il].set(normals)
    LA = L @ A
    return LA @ LA.T


# ---------------------------------------------------------------------------
# the parameter-expanded scale move
# ---------------------------------------------------------------------------
def _px_log_density(beta, lam, A, b, nu, c):
    import jax.numpy as jnp

    a = jnp.exp(beta)
    Aa = A @ a
    t = lam / c * jnp.exp(-2 * beta)
    f = -nu * beta.sum() - 0.5 * t.sum() - 0.5 * a @ Aa + a @ b
    g = -nu + t - a * Aa + a * b
    H = jnp.diag(-2 * t - a * Aa + a * b) - A * jnp.outer(a, a)
    return f, g, H




def px_scale_from_sums(z, A, b, omega_inv, spec: ModelSpec, n_newton: int = 12):
    """The scale move of :func:`manylift.sampler.gibbs_numpy.px_scale_step` from its sums.

    ``A = sum_i (u_i u_i') o R_i'R_i / sigma^2`` and ``b = sum_i u_i o m_i`` are all
    the move needs from the customers (so a sharded sweep sums them over shards and
    runs the move replicated).  ``z``: q + 1 standard normals (the proposal's q, and
    one turned into the acceptance uniform as ``Phi(z)``).  Returns ``(alpha,
    omega_inv, accepted)``: the new u is ``u * alpha``.  A failed Laplace
    factorisation or a non-finite ratio rejects (alpha = 1), as in the reference.
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import log_ndtr

    q = A.shape[0]
    nu, c = spec.wishart_df(q), spec.wishart_scale_diag
    lam = jnp.diag(omega_inv)

    def newton(_, beta):
        _, g, H = _px_log_density(beta, lam, A, b, nu, c)
        return beta - jnp.clip(jnp.linalg.solve(H, g), -1.0, 1.0)

    beta = jax.lax.fori_loop(0, n_newton, newton, jnp.zeros(q, jnp.float64))
    _, _, H = _px_log_density(beta, lam, A, b, nu, c)
    Lp = _chol(-H)
    prop = beta + jnp.stack(_solve_upper_t(_chol_small(-H), [z[k] for k in range(q)]))
    log_u = log_ndtr(z[q])

    def logq(x):
        dd = Lp.T @ (x - beta)
        return -0.5 * dd @ dd

    zero = jnp.zeros(q, jnp.float64)
    f_prop = _px_log_density(prop, lam, A, b, nu, c)[0]
    f_cur = _px_log_density(zero, lam, A, b, nu, c)[0]
    log_ratio = (f_prop - logq(prop)) - (f_cur - logq(zero))
    accept = jnp.isfinite(log_ratio) & (log_u < log_ratio) & jnp.all(jnp.isfinite(Lp))
    a = jnp.where(accept, jnp.exp(jnp.where(jnp.isfinite(prop), prop, 0.0)), 1.0)
    return a, omega_inv / jnp.outer(a, a), accept


def px_scale_step(z, u, omega_inv, RtR, m, sigma2, spec: ModelSpec, n_newton: int = 12):
    """The scale move on all customers at once: :func:`px_scale_from_sums` of their sums.

    Returns ``(u, omega_inv, accepted)``.
    """
    import jax.numpy as jnp

    A = jnp.einsum("ni,nj,nij->ij", u, u, RtR) / sigma2
    b = jnp.einsum("ni,ni->i", u, m)
    alpha, omega_inv, accept = px_scale_from_sums(z, A, b, omega_inv, spec, n_newton)
    return u * alpha, omega_inv, accept


def asis_sums(u, m, RtR, L):
    """The sums the interweaving move needs (gibbs_numpy.asis_stats): with Omega = L L' and
    z_i = L^-1 u_i, ``P_raw[(a,b),(c,d)] = sum_i z_ib z_id R_i'R_i[a,c]`` and
    ``h[(a,b)] = sum_i m_ia z_ib`` (lower-triangular order).  Customers with u = 0
    (a sharded sweep's padding) add nothing."""
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular

    q = u.shape[1]
    Z = solve_triangular(L, u.T, lower=True).T
    ia, ib = np.tril_indices(q)
    full = jnp.einsum("nb,nd,nac->abcd", Z, Z, RtR)
    return full[ia, ib][:, ia, ib], (m.T @ Z)[ia, ib]


def _asis_prior(ell, q: int, nu: float, s_inv: float):
    """gibbs_numpy._prior_part in JAX (value only; JAX differentiates it)."""
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular

    ia, ib = np.tril_indices(q)
    L = jnp.zeros((q, q), jnp.float64).at[ia, ib].set(ell)
    M = solve_triangular(L, jnp.eye(q, dtype=jnp.float64), lower=True)
    ck = (q - np.arange(q)) - (nu + q + 1)
    return jnp.sum(ck * jnp.log(jnp.abs(jnp.diag(L)))) - 0.5 * s_inv * jnp.sum(M * M)


def asis_from_sums(z, P, h, L, omega_inv, spec: ModelSpec, n_newton: int = 4):
    """The interweaving move of :func:`manylift.sampler.gibbs_numpy.asis_step` from its sums.

    ``P`` (already divided by sigma^2) and ``h`` are the statistics of :func:`asis_sums`,
    ``z`` q(q+1)/2 + 1 standard normals (the proposal's, and one turned into the
    acceptance uniform as ``Phi(z)``).  Newton uses JAX's Hessian (automatic
    differentiation) where the numpy reference has it written out, so the two proposals
    agree to rounding, not bit for bit; each is an exact Metropolis-Hastings step.
    Returns ``(omega_inv, accepted)`` (u is redrawn next, so it is not returned).
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular
    from jax.scipy.special import log_ndtr

    q = L.shape[0]
    p = q * (q + 1) // 2
    nu, s_inv = float(spec.wishart_df(q)), 1.0 / float(spec.wishart_scale_diag)
    ia, ib = np.tril_indices(q)

    def f(ell):
        return -0.5 * ell @ (P @ ell) + h @ ell + _asis_prior(ell, q, nu, s_inv)

    grad, hess = jax.grad(f), jax.hessian(f)
    mode = jax.lax.fori_loop(0, n_newton, lambda _, x: x - jnp.linalg.solve(hess(x), grad(x)),
                             jnp.linalg.solve(P, h))
    Lp = jnp.linalg.cholesky(-hess(mode))  # NaN unless -H is positive definite: rejected
    prop = mode + solve_triangular(Lp.T, z[:p], lower=False)
    cur = L[ia, ib]
    dp, dc = Lp.T @ (prop - mode), Lp.T @ (cur - mode)
    log_ratio = (f(prop) + 0.5 * dp @ dp) - (f(cur) + 0.5 * dc @ dc)
    accept = jnp.isfinite(log_ratio) & (log_ndtr(z[p]) < log_ratio)
    L_new = jnp.zeros((q, q), jnp.float64).at[ia, ib].set(jnp.where(accept, prop, cur))
    M = solve_triangular(L_new, jnp.eye(q, dtype=jnp.float64), lower=True)
    return jnp.where(accept, M.T @ M, omega_inv), accept


# ---------------------------------------------------------------------------
# the sweep, written once: per-shard sums -> a reduction -> the small blocks
# ---------------------------------------------------------------------------
def sum_shards(parts):
    """The one-device reduction: this device's logical shards' sums, (S_local, M) -> (M,)."""
    return parts.sum(0)


def psum_shards(parts):
    """The mesh reduction (inside ``shard_map``): every shard's sums, the same on every
    device (an all-reduce of M floats)."""
    import jax

    return jax.lax.psum(parts.sum(0), AXIS)


def _per_shard(fn, *args):
    """``fn`` on each logical shard this device holds (vmapped; called directly when
    there is one, so a one-shard sweep has no batch axis)."""
    import jax

    leaves = [x for x in jax.tree_util.tree_leaves(args)]
    if leaves[0].shape[0] == 1:
        out = fn(*jax.tree_util.tree_map(lambda x: x[0], args))
        return jax.tree_util.tree_map(lambda x: x[None], out)
    return jax.vmap(fn)(*args)


def _shard_jd(lo: Layout, sd: ShardedDesign, arrays) -> JaxDesign:
    """One logical shard as a JaxDesign, so F_dot / Ft_dot apply unchanged."""
    y, customer, R, dense, cells = arrays
    # w is not needed: the arm is folded into the joint codes (cells)
    return JaxDesign(lo, y, customer, R, dense, cells, sd.members, None, sd.evecs, sd.evals, None)


def _shard_ids(S_local: int, first_shard):
    import jax.numpy as jnp

    return (first_shard + jnp.arange(S_local)).astype(jnp.uint32)


def sweep_init(key, sd: ShardedDesign, reduce: Callable = sum_shards, first_shard=0) -> State:
    """Dispersed starting values, as the numpy reference: theta near 0, sigma^2 from y,
    u ~ N(0, s0^2 I) and Omega = s0^2 I with s0 = 0.2 sd(y) times a random factor.

    ``reduce`` sums per-shard parts over all shards (:func:`sum_shards` on one device,
    :func:`psum_shards` on a mesh); ``first_shard`` is the index of this device's first
    logical shard.  u has shape (S_local, nl, q).
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import ndtr

    sl = sd.slayout
    lo = sl.layout
    K, n, q, N, nl = lo.K, lo.n_customers, lo.q, lo.n_rows, sl.customers_per_shard
    f64 = jnp.float64
    S_local = sd.y.shape[0]
    # sd(y) in two passes over the shards (padded rows hold y = 0 and are masked)
    y = sd.y.astype(f64)
    mean = reduce(jnp.sum(y, axis=1, keepdims=True))[0] / N
    dev = y - mean
    if sl.padded:
        dev = dev * sd.mask
    sd_y = jnp.sqrt(reduce(jnp.sum(dev * dev, axis=1, keepdims=True))[0] / N)
    sd_y = jnp.where(sd_y > 0, sd_y, 1.0)
    if sl.n_shards == 1:  # one call for all normals: the first one-device sampler's layout
        z = jax.random.normal(key, (K + n * q + 2,), f64)
        zu = z[K:K + n * q].reshape(1, n, q)
    else:
        k_small, k_u = jax.random.split(key)
        z = jax.random.normal(k_small, (K + 2,), f64)
        zu = _per_shard(lambda s: jax.random.normal(jax.random.fold_in(k_u, s), (nl, q), f64),
                        _shard_ids(S_local, first_shard))
    theta = 0.1 * sd_y * z[:K]
    s0 = 0.2 * sd_y * jnp.sqrt(0.5 + 1.5 * ndtr(z[-1]))
    u = s0 * zu
    if sl.padded:
        u = u * sd.cmask[..., None]
    sigma2 = sd_y**2 * (0.5 + ndtr(z[-2]))
    return State(theta, sigma2, jnp.eye(q) / s0**2, u)


def _sweep_variates(key, sl: ShardLayout, spec: ModelSpec, S_local: int, first_shard):
    """All random numbers of a sweep: the gamma variates (1/sigma^2 and the Bartlett
    chi-squares) and the normals of theta, the u_i, the Wishart, the scale move and the
    interweaving move (few random call sites keep the compile short)."""
    import jax
    import jax.numpy as jnp

    lo = sl.layout
    K, q, n, N, nl = lo.K, lo.q, lo.n_customers, lo.n_rows, sl.customers_per_shard
    f64 = jnp.float64
    n_wish = q * (q - 1) // 2
    n_asis = q * (q + 1) // 2 + 1 if spec.interweave else 0
    df_post = spec.wishart_df(q) + n
    shapes = np.concatenate([[spec.sigma_shape + N / 2], (df_post - np.arange(q)) / 2.0])
    if sl.n_shards == 1:  # one vector of normals: the first one-device sampler's layout
        k_normal, k_gamma = jax.random.split(key)
        znorm = jax.random.normal(k_normal, (K + n * q + n_wish + q + 1 + n_asis,), f64)
        z_u = znorm[K:K + n * q].reshape(1, n, q)
        z_small = jnp.concatenate([znorm[:K], znorm[K + n * q:]])
    else:  # the u_i normals per logical shard: the same on any number of devices
        k_normal, k_gamma, k_u = jax.random.split(key, 3)
        z_small = jax.random.normal(k_normal, (K + n_wish + q + 1 + n_asis,), f64)
        z_u = _per_shard(lambda s: jax.random.normal(jax.random.fold_in(k_u, s), (nl, q), f64),
                         _shard_ids(S_local, first_shard))
    gam = sample_gamma(k_gamma, shapes)
    cut = np.cumsum([K, n_wish, q + 1])
    return gam, z_small[:cut[0]], z_small[cut[0]:cut[1]], z_small[cut[1]:cut[2]], \
        z_small[cut[2]:], z_u, df_post


def sweep_step(key, state: State, sd: ShardedDesign, spec: ModelSpec,
               reduce: Callable = sum_shards, first_shard=0):
    """One sweep (the blocks of :func:`manylift.sampler.gibbs_numpy.step`).

    Rows and customers are touched only per logical shard; the small blocks see only
    ``reduce``-d sums (three reductions per sweep, four with the interweaving move).
    ``state.u`` has shape (S_local, nl, q).
    """
    import jax
    import jax.numpy as jnp

    sl = sd.slayout
    lo = sl.layout
    f64 = jnp.float64
    rt = sd.y.dtype
    theta, sigma2, omega_inv, u = state
    N, q, K, nl = lo.n_rows, lo.q, lo.K, sl.customers_per_shard
    S_local = sd.y.shape[0]
    gam, z_theta, z_wish, z_px, z_asis, z_u, df_post = _sweep_variates(key, sl, spec, S_local,
                                                                       first_shard)
    rows = (sd.y, sd.customer, sd.R, sd.dense, sd.cells)
    padded = sl.padded

    # pass 1 (per shard): F'(y - R u) and S_u = sum_i u_i u_i'.  Padded rows have
    # y = 0 and R = 0, so y - R u is 0 there without a mask.
    def pass1(arrays, u_s):
        jd = _shard_jd(lo, sd, arrays)
        ut = u_s.astype(rt)
        ru = sum(jd.R[k] * ut[:, k][jd.customer] for k in range(q))
        yr = jd.y - ru
        return yr, jnp.concatenate([Ft_dot(jd, yr), (u_s.T @ u_s).ravel()])

    yr, p1 = _per_shard(pass1, rows, u)
    t1 = reduce(p1)

    # 1. theta | rest ~ N(P^-1 b, P^-1), P = Q diag(lam / s2 + 1/v0) Q', b = F'(y - Ru) / s2
    b = t1[:K] / sigma2
    dvec = sd.evals / sigma2 + 1.0 / spec.theta_prior_var
    theta = sd.evecs @ ((sd.evecs.T @ b) / dvec + z_theta / jnp.sqrt(dvec))

    # pass 2 (per shard): the SSE at the new theta, sum (y - F theta)^2, and
    # m_i = R_i'(y_i - F_i theta) (padded rows masked: F theta is not 0 there)
    def pass2(arrays, mask, yr_s):
        jd = _shard_jd(lo, sd, arrays)
        fixed = F_dot(jd, theta)
        e = yr_s - fixed
        ry = jd.y - fixed
        if padded:
            e, ry = e * mask, ry * mask
        e = e.astype(f64)
        m_raw = jax.ops.segment_sum((jd.R * ry[None]).T.astype(f64), jd.customer,
                                    num_segments=nl, indices_are_sorted=True)
        return m_raw, jnp.stack([e @ e, jnp.sum(jnp.square(ry.astype(f64)))])

    m_raw, p2 = _per_shard(pass2, rows, sd.mask, yr)
    sse, ry2 = reduce(p2)

    # 2. 1/sigma^2 | rest ~ Gamma(a0 + N/2, scale = 1 / (1/b0 + SSE/2))
    sigma2 = 1.0 / (gam[0] / (1.0 / spec.sigma_scale + sse / 2))

    # 3. Omega^-1 | u ~ Wishart(df0 + n, (B0^-1 + S_u)^-1)
    S = t1[K:].reshape(q, q)
    scale = _spd_inv(jnp.eye(q) / spec.wishart_scale_diag + S)
    omega_inv = sample_wishart(None, df_post, (scale + scale.T) / 2, chi2=2.0 * gam[1:],
                               normals=z_wish)

    m = m_raw / sigma2
    if spec.interweave:  # 3b. (Omega, u) through z = L^-1 u; u is redrawn next
        L_cur = _chol(_spd_inv(omega_inv))  # Omega = L L'

        def asis_part(m_s, u_s, RtR):
            P_raw, h = asis_sums(u_s, m_s, RtR, L_cur)
            return jnp.concatenate([P_raw.ravel(), h])

        pq = q * (q + 1) // 2
        ta = reduce(_per_shard(asis_part, m, u, sd.RtR))
        omega_inv, _ = asis_from_sums(z_asis, ta[: pq * pq].reshape(pq, pq) / sigma2,
                                      ta[pq * pq:], L_cur, omega_inv, spec)

    # 4. u_i | rest ~ N(P_i^-1 m_i, P_i^-1), P_i = Omega^-1 + R_i'R_i / s2 (padded
    # customers held at 0), then the scale move's sums A and b
    def draw_u(RtR, cmask, m_s, z_s):
        Pi = omega_inv[None] + RtR / sigma2
        Li = _chol_small(Pi)
        mu = _solve_upper_t(Li, _solve_lower(Li, [m_s[:, k] for k in range(q)]))
        dev = _solve_upper_t(Li, [z_s[:, k] for k in range(q)])
        u_s = jnp.stack([mu[k] + dev[k] for k in range(q)], -1)
        if padded:
            u_s = u_s * cmask[:, None]
        A = jnp.einsum("ni,nj,nij->ij", u_s, u_s, RtR)
        return u_s, jnp.concatenate([A.ravel(), jnp.einsum("ni,ni->i", u_s, m_s)])

    u, p3 = _per_shard(draw_u, sd.RtR, sd.cmask, m, z_u)
    t3 = reduce(p3)
    A, bu = t3[: q * q].reshape(q, q) / sigma2, t3[q * q:]
    if spec.expansion:
        alpha, omega_inv, _ = px_scale_from_sums(z_px, A, bu, omega_inv, spec)
        u = u * alpha
    else:
        alpha = jnp.ones(q, f64)

    # log-likelihood kernel at the new state from the sums: u_new = alpha o u, so
    # ||ry - R u_new||^2 = ry'ry - 2 sigma^2 alpha'b + sigma^2 alpha'A alpha
    sse2 = ry2 - 2.0 * sigma2 * (alpha @ bu) + sigma2 * (alpha @ A @ alpha)
    loglik = -0.5 * N * jnp.log(2 * jnp.pi * sigma2) - 0.5 * sse2 / sigma2
    return State(theta, sigma2, omega_inv, u), Info(loglik=loglik, sse=sse2)


def init(key, sd: ShardedDesign, spec: ModelSpec | None = None) -> State:
    """:func:`sweep_init` on one device (all logical shards here)."""
    return sweep_init(key, sd)


def step(key, state: State, sd: ShardedDesign, spec: ModelSpec):
    """:func:`sweep_step` on one device (all logical shards here)."""
    return sweep_step(key, state, sd, spec)


# ---------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------
def _chain_key(seed: np.random.SeedSequence):
    """A threefry key from a SeedSequence (two 32-bit words of its entropy pool)."""
    import jax.numpy as jnp

    return jnp.asarray(seed.generate_state(2, np.uint32), dtype=jnp.uint32)


# How often each compiled run function was traced, keyed by (shard layout, spec, chains,
# length, placement): tests check that repeated run(k) calls trace once.
TRACE_COUNT: Counter = Counter()


def scan_sweeps(step_fn, keys, states, start, n, length: int):
    """``length`` sweeps of every chain (scan over sweeps, vmap of ``step_fn(key, state)``
    over chains); steps at or past ``n`` are skipped by ``lax.cond`` outside the chain
    vmap, so one compiled length serves every ``n <= length`` at no cost."""
    import jax
    import jax.numpy as jnp

    C = keys.shape[0]
    sweep_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
    one = jax.vmap(step_fn)

    def body(st, i):
        def sweep(st):
            ks = jax.vmap(lambda k: jax.random.fold_in(k, start + i))(sweep_keys)
            st, info = one(ks, st)
            return st, (info.loglik, st.theta, st.sigma2, st.omega_inv)

        def skip(st):
            return st, (jnp.zeros(C, jnp.float64), st.theta, st.sigma2, st.omega_inv)

        return jax.lax.cond(i < n, sweep, skip, st)

    return jax.lax.scan(body, states, jnp.arange(length, dtype=jnp.uint32))


def init_chains(keys, sd: ShardedDesign, reduce: Callable = sum_shards, first_shard=0):
    """Starting states of every chain (vmap of :func:`sweep_init` over chains)."""
    import jax

    ikeys = jax.vmap(lambda k: jax.random.split(k)[0])(keys)
    return jax.vmap(lambda k: sweep_init(k, sd, reduce, first_shard))(ikeys)


def run_chains(keys, states, sd: ShardedDesign, start, n, *, length: int, spec: ModelSpec,
               reduce: Callable = sum_shards, first_shard=0, placement=None):
    """``length`` sweeps of every chain (:func:`scan_sweeps` of :func:`sweep_step`)."""
    TRACE_COUNT[(sd.slayout, spec, keys.shape[0], length, placement)] += 1  # while tracing
    return scan_sweeps(lambda k, s: sweep_step(k, s, sd, spec, reduce, first_shard), keys,
                       states, start, n, length)


_JITTED: dict = {}


def _one_device_fn(kind: str):
    """The jitted one-device init / run (JAX caches one compilation per shard layout,
    spec, chain count and length)."""
    import jax

    if kind not in _JITTED:
        if kind == "init":
            _JITTED[kind] = jax.jit(init_chains)
        else:
            _JITTED[kind] = jax.jit(run_chains, static_argnames=("length", "spec"),
                                    donate_argnums=(1,))
    return _JITTED[kind]


class JaxBackend:
    """Runs all chains with JAX on one device: ``lax.scan`` over sweeps, ``vmap`` over
    chains, one jit; the design is one logical shard (the reduction is the identity).

    Parameters
    ----------
    design : Design
    spec : ModelSpec
    n_chains : int
    platform : {"cpu", "gpu"} or None, default=None
        Where to run; None takes JAX's default device.
    dtype : {"float64", "float32"}, default="float64"
        Storage and per-row arithmetic of the row arrays; reductions, the
        K x K algebra and the chain states stay in float64 either way.

    Notes
    -----
    Creating the backend switches on JAX's 64-bit mode for the process.
    The compiled run function is cached per number of sweeps (rounded up
    to a power of two, see :meth:`bucket`) and per design layout, spec and
    chain count, so the driver's repeated ``run(k)`` calls compile once, and
    so do new backends on a design of the same shape.
    :class:`manylift.sampler.sharding.ShardedJaxBackend` runs the same sweep with the
    customers cut into shards over the devices of a mesh.
    """

    name = "jax"
    _placement = None  # the TRACE_COUNT tag of where the run function runs

    def __init__(self, design: Design, spec: ModelSpec, n_chains: int, platform: str | None = None,
                 dtype: str = "float64"):
        enable_x64()
        import jax

        check_in("dtype", dtype, ["float64", "float32"], "JaxBackend")
        if platform is not None:
            check_in("platform", platform, ["cpu", "gpu"], "JaxBackend")
        self.design, self.spec, self.n_chains = design, spec, int(n_chains)
        self.platform, self.dtype = platform, dtype
        self.device = jax.devices(platform)[0] if platform else jax.devices()[0]
        self.sdesign = one_shard_design(design, dtype, self.device)
        self._reset()

    def _reset(self) -> None:
        self.sweep = 0
        self._states = None
        self._keys = None

    # -- where arrays live (overridden by the sharded backend) -------------------
    def _put(self, x):
        """A replicated (small) array: keys, theta, sigma^2, Omega^-1."""
        import jax

        return jax.device_put(x, self.device)

    def _put_u(self, u: np.ndarray):
        """(C, n, q) host u -> the device layout (C, S_local, nl, q)."""
        import jax

        return jax.device_put(u[:, None], self.device)

    def _host_u(self, u) -> np.ndarray:
        """The device u -> (C, n, q) on the host, in the design's customer order."""
        return np.asarray(u)[:, 0]

    def _init_fn(self):
        return _one_device_fn("init")

    def _run_fn(self, length: int):
        return partial(_one_device_fn("run"), length=length, spec=self.spec)

    @staticmethod
    def bucket(n_sweeps: int) -> int:
        """The compiled length serving ``run(n_sweeps)``: the next power of two."""
        return 1 << max(int(n_sweeps) - 1, 0).bit_length()

    @property
    def n_traces(self) -> int:
        """How many times this backend's run function was traced (compiled)."""
        tag = (self.sdesign.slayout, self.spec, self.n_chains)
        return sum(v for k, v in TRACE_COUNT.items() if k[:3] == tag and k[4] == self._placement)

    # -- protocol ----------------------------------------------------------
    def init(self, seeds: list[np.random.SeedSequence]) -> None:
        import jax.numpy as jnp

        if len(seeds) != self.n_chains:
            raise SamplerError(f"{type(self).__name__}.init needs one SeedSequence per chain "
                               f"({self.n_chains}); got {len(seeds)}.")
        self._keys = self._put(np.asarray(jnp.stack([_chain_key(s) for s in seeds])))
        self._states = self._init_fn()(self._keys, self.sdesign)
        self.sweep = 0

    def run(self, n_sweeps: int) -> dict:
        """Advance every chain by ``n_sweeps`` sweeps.

        Returns per-sweep traces: ``loglik`` (n_sweeps, chains) as the
        protocol asks, and also the low-dimensional draws ``theta``
        (n_sweeps, chains, K), ``sigma2`` (n_sweeps, chains) and ``omega_inv``
        (n_sweeps, chains, q, q), so callers that need every sweep's draw do
        not have to call :meth:`states` after each sweep.
        """
        import jax.numpy as jnp

        if self._states is None or self._keys is None:
            raise SamplerError(f"{type(self).__name__}.run was called before init(seeds).")
        n_sweeps = int(n_sweeps)
        if n_sweeps < 1:
            raise SamplerError(f"{type(self).__name__}.run needs n_sweeps >= 1; got {n_sweeps}.")
        start = self.sweep
        states, out = self._run_fn(self.bucket(n_sweeps))(
            self._keys, self._states, self.sdesign, jnp.uint32(start), jnp.uint32(n_sweeps))
        self._states = states
        ll, theta, sigma2, omega_inv = (np.asarray(x)[:n_sweeps] for x in out)
        self.sweep = start + n_sweeps
        self._check(ll, start)
        return {"loglik": ll, "theta": theta, "sigma2": sigma2, "omega_inv": omega_inv}

    def _check(self, ll: np.ndarray, start: int) -> None:
        import jax.numpy as jnp

        u = self._states.u
        ok = np.asarray(jnp.stack([
            jnp.all(jnp.isfinite(self._states.theta), axis=1),
            jnp.isfinite(self._states.sigma2),
            jnp.all(jnp.isfinite(self._states.omega_inv), axis=(1, 2)),
            jnp.all(jnp.isfinite(u), axis=tuple(range(1, u.ndim))),
        ]))
        if ok.all() and np.all(np.isfinite(ll)):
            return
        bad = ~np.isfinite(ll)
        first = int(np.argmax(bad.any(axis=1))) if bad.any() else ll.shape[0] - 1
        sweep = start + first + 1
        states = self.states()
        for c in range(self.n_chains):
            check_finite(states[c], sweep, c)
        c = int(np.argmax(bad[first]))
        raise SamplerError(
            f"Non-finite log-likelihood at sweep {sweep} of chain {c}. This usually means the "
            f"outcome or covariates have extreme values; check the data (manylift validate) or "
            f"rescale the outcome.")

    def states(self) -> list[State]:
        """Per-chain states on the host, u in the design's customer order."""
        st = [np.asarray(x) for x in self._states[:3]]
        u = self._host_u(self._states.u)
        return [State(st[0][c], float(st[1][c]), st[2][c], u[c]) for c in range(self.n_chains)]

    def set_states(self, states: list[State]) -> None:
        if len(states) != self.n_chains:
            raise SamplerError(f"set_states needs {self.n_chains} states; got {len(states)}.")
        self._states = State(
            self._put(np.stack([np.asarray(s.theta, np.float64) for s in states])),
            self._put(np.array([float(s.sigma2) for s in states], np.float64)),
            self._put(np.stack([np.asarray(s.omega_inv, np.float64) for s in states])),
            self._put_u(np.stack([np.asarray(s.u, np.float64) for s in states])),
        )

    def get_rng(self) -> np.ndarray:
        """The RNG position: ``[sweep, then the chains' base keys]`` as uint32.

        The sweep counter is part of it because the key of a sweep is
        ``fold_in(base_key, sweep)``.
        """
        if self._keys is None:
            raise SamplerError(f"{type(self).__name__}.get_rng was called before init(seeds).")
        keys = np.asarray(self._keys, np.uint32).ravel()
        return np.concatenate([np.array([self.sweep], np.uint32), keys])

    def set_rng(self, blob: np.ndarray) -> None:
        blob = np.asarray(blob)
        if blob.dtype != np.uint32 or blob.size != 1 + 2 * self.n_chains:
            raise SamplerError(
                f"This RNG state does not belong to a JAX run with {self.n_chains} chains "
                f"(got {blob.size} values of type {blob.dtype}); it was written by another "
                f"backend or chain count. Resume with the same backend and chains, or start afresh.")
        self.sweep = int(blob[0])
        self._keys = self._put(blob[1:].reshape(self.n_chains, 2))

    def __repr__(self) -> str:
        return (f"JaxBackend(chains={self.n_chains}, device={self.device}, dtype={self.dtype}, "
                f"sweep={self.sweep})")
