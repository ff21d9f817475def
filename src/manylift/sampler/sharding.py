"""The JAX sweep sharded across devices: customers partitioned, theta's statistics summed.

The pooled model's sweep (:mod:`manylift.sampler.gibbs_jax`) has one big
dimension, the rows, and everything that touches rows is either per customer
(the u_i block) or a sum over rows (the sufficient statistics of theta,
sigma^2, Omega and the scale move).  So the rows are cut into **shards of
whole customers** (rows are sorted by customer): each shard holds its
customers' rows, their ``R_i'R_i`` and their u_i, and never needs another
shard's.  Per sweep the shards exchange only sums:

1. ``F'(y - R u)`` (K floats) and ``S_u = sum_i u_i u_i'`` (q x q) for
   theta | rest and Omega^-1 | u;
2. the residual sum of squares at the new theta and ``sum (y - F theta)^2``
   (2 floats) for sigma^2 | rest and the log-likelihood;
3. the scale move's ``A = sum_i (u_i u_i') o R_i'R_i / sigma^2`` and
   ``b = sum_i u_i o m_i`` (q x q + q floats), which also give the
   log-likelihood at the new state.

The small blocks (theta, sigma^2, Omega^-1, the scale move) are then computed
**replicated**: every device runs the same code on the same sums with the same
key, so all devices hold the same theta, sigma^2 and Omega^-1 without another
exchange.  The math is that of :func:`manylift.sampler.gibbs_jax.step`, block
for block (theta, sigma^2, Omega^-1, u, scale move).

The same random numbers on any number of devices.  The data are cut into
``n_shards`` *logical* shards, a number fixed independently of the devices; a
mesh of D devices (D dividing ``n_shards``) holds ``n_shards / D`` of them
per device.  The normals of the u_i of logical shard s come from
``fold_in(sweep_key, s)`` and the small blocks' variates from the sweep key,
so a run with the same seed and ``n_shards`` uses the same random numbers on
1, 2 or 4 devices, and the draws differ only by floating-point rounding
(tested with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``: after 16
sweeps they agree to about 1e-14 of each quantity's spread; over long runs
rounding differences grow as in any chaotic map, so long runs agree in
distribution).
They are not bit-identical: a ``psum`` adds shards in the runtime's order,
and XLA's algebraic simplifier rewrites ``x / sqrt(y)`` into
``x * rsqrt(y)`` and ``x / s`` into ``x * (1 / s)`` depending on the
surrounding program, which differs with the device count (a one-device
``shard_map`` is inlined).  We checked that a fixed-order sum
(``all_gather`` then adding in shard order) and per-shard loops do not
remove the second cause.

The shards are padded to equal size (rows with a zero mask, customers with
``R_i'R_i = 0`` whose u_i is held at 0), because ``shard_map`` needs equal
shapes; :func:`plan_shards` balances the rows so padding stays small.

References
----------
Rossi, P. E., McCulloch, R. E. and Allenby, G. M. (1996). The value of purchase
history data in target marketing. Marketing Science 15(4), 321-340.
Gelman, A., van Dyk, D. A., Huang, Z. and Boscardin, J. W. (2008). Using
redundant parameterizations to fit hierarchical models. Journal of
Computational and Graphical Statistics 17(1), 95-122.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from manylift._core.checks import check_in
from manylift._core.errors import SamplerError
from manylift.sampler import gibbs_jax as GJ
from manylift.sampler.backends import check_finite
from manylift.sampler.design import Design
from manylift.sampler.state import Info, ModelSpec, State

__all__ = ["AXIS", "ShardPlan", "ShardedDesign", "ShardedJaxBackend", "make_mesh", "plan_shards",
           "to_sharded_design", "px_scale_from_sums"]

#: Name of the mesh axis the customers are sharded along.
AXIS = "shards"


# ---------------------------------------------------------------------------
# the plan: which customers (and rows) each logical shard holds
# ---------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ShardPlan:
    """Contiguous blocks of customers, balanced by rows.

    Attributes
    ----------
    n_shards : int
    customer_start : (n_shards + 1,) int64, first customer of each shard (and n)
    row_start : (n_shards + 1,) int64, first row of each shard (and N)
    rows_per_shard : int, padded row count of every shard
    customers_per_shard : int, padded customer count of every shard
    """

    n_shards: int
    customer_start: np.ndarray
    row_start: np.ndarray
    rows_per_shard: int
    customers_per_shard: int

    @property
    def n_rows(self) -> int:
        return int(self.row_start[-1])

    @property
    def n_customers(self) -> int:
        return int(self.customer_start[-1])

    @property
    def padding(self) -> float:
        """Share of padded rows: ``1 - N / (n_shards * rows_per_shard)``."""
        return 1.0 - self.n_rows / (self.n_shards * self.rows_per_shard)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({
            "shard": np.arange(self.n_shards),
            "first_customer": self.customer_start[:-1],
            "customers": np.diff(self.customer_start),
            "rows": np.diff(self.row_start),
            "padded_rows": self.rows_per_shard - np.diff(self.row_start),
        })

    def __repr__(self) -> str:
        return (f"ShardPlan(shards={self.n_shards}, customers={self.n_customers:,}, "
                f"rows={self.n_rows:,}, rows_per_shard={self.rows_per_shard:,}, "
                f"customers_per_shard={self.customers_per_shard:,}, "
                f"padding={100 * self.padding:.2f}%)")


def plan_shards(customer: np.ndarray, n_customers: int, n_shards: int) -> ShardPlan:
    """Cut customers (rows sorted by customer) into ``n_shards`` contiguous blocks of
    about ``N / n_shards`` rows each, never splitting a customer.

    Parameters
    ----------
    customer : (N,) int, sorted customer index 0..n_customers-1 of every row
    n_customers : int
    n_shards : int, at most ``n_customers``
    """
    customer = np.asarray(customer)
    n_shards = int(n_shards)
    if n_shards < 1 or n_shards > n_customers:
        raise SamplerError(f"The 'n_shards' parameter must be between 1 and the number of "
                           f"customers ({n_customers:,}); got {n_shards}.")
    if customer.size and np.any(np.diff(customer) < 0):
        raise SamplerError("plan_shards needs rows sorted by customer (build_design sorts them).")
    counts = np.bincount(customer, minlength=n_customers)
    cum = np.concatenate([[0], np.cumsum(counts)])  # row start of each customer
    N = int(cum[-1])
    targets = np.arange(1, n_shards) * (N / n_shards)
    cuts = np.searchsorted(cum, targets, side="left")
    # at least one customer per shard, cuts increasing
    cuts = np.maximum(cuts, np.arange(1, n_shards))
    cuts = np.minimum(cuts, n_customers - n_shards + np.arange(1, n_shards))
    cuts = np.maximum.accumulate(cuts)
    cstart = np.concatenate([[0], cuts, [n_customers]]).astype(np.int64)
    rstart = cum[cstart].astype(np.int64)
    return ShardPlan(n_shards, cstart, rstart, int(max(np.diff(rstart).max(), 1)),
                     int(np.diff(cstart).max()))


# ---------------------------------------------------------------------------
# the sharded design (a pytree; row arrays carry a leading logical-shard axis)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardLayout:
    """Static shape of a sharded design: the global layout plus the shard sizes."""

    layout: GJ.Layout
    n_shards: int
    rows_per_shard: int
    customers_per_shard: int


class ShardedDesign:
    """The design cut into logical shards, placed on a mesh (see :func:`to_sharded_design`).

    Sharded along ``AXIS`` (leading axis ``n_shards``): ``y`` (S, Nl), ``customer``
    (S, Nl) int32 index within the shard, ``R`` (S, q, Nl), ``dense`` (S, d, Nl),
    ``cells`` (S, G, Nl) (joint code and arm), ``mask`` (S, Nl) 1 for real rows, ``RtR``
    (S, nl, q, q), ``cmask`` (S, nl) 1 for real customers.  Replicated:
    ``members``, ``evecs``, ``evals`` (as in :class:`~manylift.sampler.gibbs_jax.JaxDesign`).
    """

    _sharded = ("y", "customer", "R", "dense", "cells", "mask", "RtR", "cmask")
    _replicated = ("members", "evecs", "evals")
    _fields = _sharded + _replicated

    def __init__(self, slayout: ShardLayout, y, customer, R, dense, cells, mask, RtR, cmask,
                 members, evecs, evals, plan: ShardPlan | None = None):
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

        return cls(slayout, *([P(AXIS)] * len(cls._sharded)), tuple(P() for _ in range(n_groups)),
                   P(), P())

    def __repr__(self) -> str:
        sl = self.slayout
        lo = sl.layout
        return (f"ShardedDesign(N={lo.n_rows:,}, customers={lo.n_customers:,}, K={lo.K}, "
                f"q={lo.q}, shards={sl.n_shards}, rows_per_shard={sl.rows_per_shard:,}, "
                f"dtype={lo.dtype})")


_registered = False


def _register() -> None:
    global _registered
    if not _registered:
        import jax

        jax.tree_util.register_pytree_node(ShardedDesign, ShardedDesign.tree_flatten,
                                           ShardedDesign.tree_unflatten)
        _registered = True


def make_mesh(n_devices: int | None = None, platform: str | None = None):
    """A one-axis mesh (``AXIS``) over the first ``n_devices`` devices of ``platform``."""
    import jax
    from jax.sharding import Mesh

    devices = jax.devices(platform) if platform else jax.devices()
    if n_devices is None:
        n_devices = len(devices)
    if not 1 <= int(n_devices) <= len(devices):
        raise SamplerError(f"The 'n_devices' parameter must be between 1 and the {len(devices)} "
                           f"devices JAX sees; got {n_devices}. On CPU, set XLA_FLAGS="
                           f"--xla_force_host_platform_device_count=N before JAX starts.")
    return Mesh(np.array(devices[: int(n_devices)]), (AXIS,))


def _pad_rows(a: np.ndarray, plan: ShardPlan, fill=0) -> np.ndarray:
    """(..., N) -> (S, ..., Nl): each shard's rows, padded at the end."""
    S, Nl = plan.n_shards, plan.rows_per_shard
    out = np.full((S, *a.shape[:-1], Nl), fill, a.dtype)
    for s in range(S):
        r0, r1 = plan.row_start[s], plan.row_start[s + 1]
        out[s, ..., : r1 - r0] = a[..., r0:r1]
    return out


def _pad_customers(a: np.ndarray, plan: ShardPlan) -> np.ndarray:
    """(n, ...) -> (S, nl, ...) with zeros for padded customers."""
    S, nl = plan.n_shards, plan.customers_per_shard
    out = np.zeros((S, nl, *a.shape[1:]), a.dtype)
    for s in range(S):
        c0, c1 = plan.customer_start[s], plan.customer_start[s + 1]
        out[s, : c1 - c0] = a[c0:c1]
    return out


def _unpad_customers(a: np.ndarray, plan: ShardPlan) -> np.ndarray:
    """(..., S, nl, q) -> (..., n, q)."""
    return np.concatenate([a[..., s, : plan.customer_start[s + 1] - plan.customer_start[s], :]
                           for s in range(plan.n_shards)], axis=-2)


def to_sharded_design(design: Design, mesh, n_shards: int | None = None, dtype: str = "float64",
                      max_joint_cells: int = 1 << 16) -> ShardedDesign:
    """Cut a :class:`~manylift.sampler.design.Design` into shards of whole customers on ``mesh``.

    The compact encoding (joint codes, eigendecomposition of F'F) is that of
    :func:`manylift.sampler.gibbs_jax.to_jax_design`, built once on the host;
    the row arrays are then cut at customer boundaries, padded and placed
    with ``NamedSharding(mesh, PartitionSpec(AXIS))``.

    Parameters
    ----------
    design : Design
    mesh : jax.sharding.Mesh with one axis named ``AXIS`` (see :func:`make_mesh`)
    n_shards : int, default=None
        Logical shards; a multiple of the mesh size.  None: one per device.
        Draws depend on ``n_shards`` but not on the number of devices.
    dtype : {"float64", "float32"}, default="float64"
    max_joint_cells : int, default=65536
    """
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    GJ.enable_x64()
    _register()
    check_in("dtype", dtype, ["float64", "float32"], "ShardedJaxBackend")
    if tuple(mesh.axis_names) != (AXIS,):
        raise SamplerError(f"The mesh must have one axis named {AXIS!r} (use make_mesh); got axes "
                           f"{tuple(mesh.axis_names)}.")
    D = int(mesh.devices.size)
    S = D if n_shards is None else int(n_shards)
    if S < 1 or S % D:
        raise SamplerError(f"The 'n_shards' parameter must be a positive multiple of the {D} "
                           f"devices in the mesh; got {n_shards}.")
    plan = plan_shards(design.customer, design.n_customers, S)
    # the compact encoding on the host CPU (the row arrays are cut below)
    jd = GJ.to_jax_design(design, dtype, jax.devices("cpu")[0], max_joint_cells)
    fd = np.dtype(dtype)
    local_customer = np.empty(design.n_rows, np.int32)
    for s in range(S):
        r0, r1 = plan.row_start[s], plan.row_start[s + 1]
        local_customer[r0:r1] = design.customer[r0:r1] - plan.customer_start[s]
    cmask = np.zeros((S, plan.customers_per_shard), np.float64)
    for s in range(S):
        cmask[s, : plan.customer_start[s + 1] - plan.customer_start[s]] = 1.0
    sharded = NamedSharding(mesh, P(AXIS))
    repl = NamedSharding(mesh, P())
    host = {
        "y": _pad_rows(design.y.astype(fd), plan),
        # padded rows point at the shard's last customer slot (sorted) with R = 0
        "customer": _pad_rows(local_customer, plan, plan.customers_per_shard - 1),
        "R": _pad_rows(np.ascontiguousarray(design.R.T, fd), plan),
        "dense": _pad_rows(np.ascontiguousarray(design.dense.T, fd), plan),
        "cells": _pad_rows(np.asarray(jd.cells), plan),
        "mask": _pad_rows(np.ones(design.n_rows, fd), plan),
        "RtR": _pad_customers(design.RtR.astype(np.float64), plan),
        "cmask": cmask,
    }
    slayout = ShardLayout(jd.layout, S, plan.rows_per_shard, plan.customers_per_shard)
    return ShardedDesign(
        slayout, *(jax.device_put(host[k], sharded) for k in ShardedDesign._sharded),
        tuple(jax.device_put(np.asarray(m), repl) for m in jd.members),
        jax.device_put(np.asarray(jd.evecs), repl), jax.device_put(np.asarray(jd.evals), repl),
        plan=plan,
    )


# ---------------------------------------------------------------------------
# the sweep, written for one device's block of logical shards (inside shard_map)
# ---------------------------------------------------------------------------
def _local_jd(lo: GJ.Layout, sd: ShardedDesign, s_arrays) -> GJ.JaxDesign:
    """One logical shard as a JaxDesign, so F_dot / Ft_dot apply unchanged."""
    y, customer, R, dense, cells = s_arrays
    # w is not stored: the arm is folded into the joint codes (cells)
    return GJ.JaxDesign(lo, y, customer, R, dense, cells, sd.members, None, sd.evecs, sd.evals,
                        None)


def _gsum(parts):
    """Sum per-logical-shard parts over all shards: (S_local, M) per device -> (M,),
    the same on every device (an all-reduce of M floats)."""
    import jax

    return jax.lax.psum(parts.sum(0), AXIS)


def px_scale_from_sums(z, A, b, omega_inv, spec: ModelSpec, n_newton: int = 12):
    """The scale move of :func:`manylift.sampler.gibbs_jax.px_scale_step` from its sums.

    ``A = sum_i (u_i u_i') o R_i'R_i / sigma^2`` and ``b = sum_i u_i o m_i`` are
    all the move needs from the customers, so a sharded sweep sums them over
    shards and runs the move replicated.  Returns ``(alpha, omega_inv,
    accepted)``: the new u is ``u * alpha``.
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import log_ndtr

    q = A.shape[0]
    nu, c = spec.wishart_df(q), spec.wishart_scale_diag
    lam = jnp.diag(omega_inv)

    def newton(_, beta):
        _, g, H = GJ._px_log_density(beta, lam, A, b, nu, c)
        return beta - jnp.clip(jnp.linalg.solve(H, g), -1.0, 1.0)

    beta = jax.lax.fori_loop(0, n_newton, newton, jnp.zeros(q, jnp.float64))
    _, _, H = GJ._px_log_density(beta, lam, A, b, nu, c)
    Lp = GJ._chol(-H)
    prop = beta + jnp.stack(GJ._solve_upper_t(GJ._chol_small(-H), [z[k] for k in range(q)]))
    log_u = log_ndtr(z[q])

    def logq(x):
        dd = Lp.T @ (x - beta)
        return -0.5 * dd @ dd

    zero = jnp.zeros(q, jnp.float64)
    f_prop = GJ._px_log_density(prop, lam, A, b, nu, c)[0]
    f_cur = GJ._px_log_density(zero, lam, A, b, nu, c)[0]
    log_ratio = (f_prop - logq(prop)) - (f_cur - logq(zero))
    accept = jnp.isfinite(log_ratio) & (log_u < log_ratio) & jnp.all(jnp.isfinite(Lp))
    a = jnp.where(accept, jnp.exp(jnp.where(jnp.isfinite(prop), prop, 0.0)), 1.0)
    return a, omega_inv / jnp.outer(a, a), accept


def _per_shard(fn, *args):
    """``fn`` on each of this device's logical shards (vmapped: one batch per device)."""
    import jax

    return jax.vmap(fn)(*args)


def _shard_ids(S_local):
    import jax
    import jax.numpy as jnp

    return (jax.lax.axis_index(AXIS) * S_local + jnp.arange(S_local)).astype(jnp.uint32)


def _local_init(key, sd: ShardedDesign, sd_y):
    """As :func:`manylift.sampler.gibbs_jax.init`; the u_i of logical shard s from
    ``fold_in(key_u, s)``."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import ndtr

    lo = sd.slayout.layout
    K, q, nl = lo.K, lo.q, sd.slayout.customers_per_shard
    k_small, k_u = jax.random.split(key)
    z = jax.random.normal(k_small, (K + 2,), jnp.float64)
    theta = 0.1 * sd_y * z[:K]
    s0 = 0.2 * sd_y * jnp.sqrt(0.5 + 1.5 * ndtr(z[-1]))
    sigma2 = sd_y**2 * (0.5 + ndtr(z[-2]))
    S_local = sd.y.shape[0]
    zu = _per_shard(lambda s: jax.random.normal(jax.random.fold_in(k_u, s), (nl, q), jnp.float64),
                    _shard_ids(S_local))
    u = s0 * zu * sd.cmask[..., None]
    return State(theta, sigma2, jnp.eye(q) / s0**2, u)


def _local_step(key, state: State, sd: ShardedDesign, spec: ModelSpec):
    """One sweep on this device's logical shards; the small blocks replicated."""
    import jax
    import jax.numpy as jnp

    lo = sd.slayout.layout
    f64 = jnp.float64
    rt = sd.y.dtype
    theta, sigma2, omega_inv, u = state  # u: (S_local, nl, q)
    N, q, n, K = lo.n_rows, lo.q, lo.n_customers, lo.K
    nl = sd.slayout.customers_per_shard
    S_local = sd.y.shape[0]
    n_wish = q * (q - 1) // 2
    k_normal, k_gamma, k_u = jax.random.split(key, 3)
    df_post = spec.wishart_df(q) + n
    shapes = np.concatenate([[spec.sigma_shape + N / 2], (df_post - np.arange(q)) / 2.0])
    gam = GJ.sample_gamma(k_gamma, shapes)
    n_asis = q * (q + 1) // 2 + 1 if spec.interweave else 0
    znorm = jax.random.normal(k_normal, (K + n_wish + q + 1 + n_asis,), f64)
    z_theta, z_wish = znorm[:K], znorm[K:K + n_wish]
    z_px, z_asis = znorm[K + n_wish:K + n_wish + q + 1], znorm[K + n_wish + q + 1:]
    z_u = _per_shard(lambda s: jax.random.normal(jax.random.fold_in(k_u, s), (nl, q), f64),
                     _shard_ids(S_local))
    rows = (sd.y, sd.customer, sd.R, sd.dense, sd.cells)

    # pass 1 (per shard): F'(y - R u) and S_u, summed over shards
    def pass1(arrays, mask, u_s):
        jd = _local_jd(lo, sd, arrays)
        ut = u_s.astype(rt)
        ru = sum(jd.R[k] * ut[:, k][jd.customer] for k in range(q))
        yr = (jd.y - ru) * mask
        return yr, jnp.concatenate([GJ.Ft_dot(jd, yr), (u_s.T @ u_s).ravel()])

    yr, p1 = _per_shard(pass1, rows, sd.mask, u)
    t1 = _gsum(p1)

    # theta | rest (replicated)
    inv_s2 = 1.0 / sigma2
    b = t1[:K] * inv_s2
    dvec = sd.evals * inv_s2 + 1.0 / spec.theta_prior_var
    theta = sd.evecs @ ((sd.evecs.T @ b) / dvec + z_theta / jnp.sqrt(dvec))

    # pass 2 (per shard): SSE at the new theta, sum (y - F theta)^2, R_i'(y_i - F_i theta)
    def pass2(arrays, mask, yr_s):
        jd = _local_jd(lo, sd, arrays)
        fixed = GJ.F_dot(jd, theta)
        e = ((yr_s - fixed) * mask).astype(f64)
        ry = (jd.y - fixed) * mask
        m_raw = jax.ops.segment_sum((jd.R * ry[None]).T.astype(f64), jd.customer,
                                    num_segments=nl, indices_are_sorted=True)
        return m_raw, jnp.stack([e @ e, jnp.sum(jnp.square(ry.astype(f64)))])

    m_raw, p2 = _per_shard(pass2, rows, sd.mask, yr)
    sse, ry2 = _gsum(p2)

    # 1/sigma^2 | rest and Omega^-1 | u (replicated)
    sigma2 = 1.0 / (gam[0] / (1.0 / spec.sigma_scale + sse / 2))
    inv_s2 = 1.0 / sigma2
    S = t1[K:].reshape(q, q)
    scale = GJ._spd_inv(jnp.eye(q) / spec.wishart_scale_diag + S)
    omega_inv = GJ.sample_wishart(None, df_post, (scale + scale.T) / 2, chi2=2.0 * gam[1:],
                                  normals=z_wish)

    # u_i | rest (per shard; padded customers held at 0), then the scale move's sums
    m = m_raw * inv_s2
    if spec.interweave:  # (Omega, u) | z from sums over shards (gibbs_jax.asis_from_sums)
        L_cur = GJ._chol(GJ._spd_inv(omega_inv))  # Omega = L L', replicated

        def asis_part(m_s, u_s, RtR):
            P_raw, h = GJ.asis_sums(u_s, m_s, RtR, L_cur)
            return jnp.concatenate([P_raw.ravel(), h])

        pq = q * (q + 1) // 2
        ta = _gsum(_per_shard(asis_part, m, u, sd.RtR))
        omega_inv, _ = GJ.asis_from_sums(z_asis, ta[: pq * pq].reshape(pq, pq) * inv_s2,
                                         ta[pq * pq:], L_cur, omega_inv, spec)

    def draw_u(RtR, cmask, m_s, z_s):
        Pi = omega_inv[None] + RtR * inv_s2
        Li = GJ._chol_small(Pi)
        mu = GJ._solve_upper_t(Li, GJ._solve_lower(Li, [m_s[:, k] for k in range(q)]))
        dev = GJ._solve_upper_t(Li, [z_s[:, k] for k in range(q)])
        u_s = jnp.stack([mu[k] + dev[k] for k in range(q)], -1) * cmask[:, None]
        A = jnp.einsum("ni,nj,nij->ij", u_s, u_s, RtR) * inv_s2
        return u_s, jnp.concatenate([A.ravel(), jnp.einsum("ni,ni->i", u_s, m_s)])

    u, p3 = _per_shard(draw_u, sd.RtR, sd.cmask, m, z_u)
    t3 = _gsum(p3)
    A, bu = t3[: q * q].reshape(q, q), t3[q * q:]
    if spec.expansion:
        alpha, omega_inv, _ = px_scale_from_sums(z_px, A, bu, omega_inv, spec)
        u = u * alpha
    else:
        alpha = jnp.ones(q, f64)
    # ||ry - R u||^2 from the sums: u_new = alpha o u, so sum u_new'm = alpha'b and
    # sum u_new' R'R u_new = sigma^2 alpha'A alpha
    sse2 = ry2 - 2.0 * sigma2 * (alpha @ bu) + sigma2 * (alpha @ A @ alpha)
    loglik = -0.5 * N * jnp.log(2 * jnp.pi * sigma2) - 0.5 * sse2 / sigma2
    return State(theta, sigma2, omega_inv, u), Info(loglik=loglik, sse=sse2)


# ---------------------------------------------------------------------------
# compiled init / run under shard_map
# ---------------------------------------------------------------------------
TRACE_COUNT: Counter = Counter()
_JITTED: dict = {}


def _state_specs():
    from jax.sharding import PartitionSpec as P

    return State(P(), P(), P(), P(None, AXIS))


def _compiled(kind: str, mesh, slayout: ShardLayout, n_groups: int, spec: ModelSpec,
              length: int = 0):
    import jax
    from jax.sharding import PartitionSpec as P

    cache_key = (kind, mesh, slayout, spec, length)
    if cache_key in _JITTED:
        return _JITTED[cache_key]
    dspec = ShardedDesign.partition_specs(slayout, n_groups)

    if kind == "init":
        def init_impl(keys, sd, sd_y):
            ikeys = jax.vmap(lambda k: jax.random.split(k)[0])(keys)
            return jax.vmap(lambda k: _local_init(k, sd, sd_y))(ikeys)

        fn = jax.shard_map(init_impl, mesh=mesh, in_specs=(P(), dspec, P()),
                           out_specs=_state_specs(), check_vma=False)
        _JITTED[cache_key] = jax.jit(fn)
        return _JITTED[cache_key]

    def run_impl(keys, states, sd, start, n):
        TRACE_COUNT[(slayout, spec, keys.shape[0], length, mesh)] += 1  # only while tracing
        return GJ.scan_sweeps(lambda k, s: _local_step(k, s, sd, spec), keys, states, start,
                              n, length)

    fn = jax.shard_map(run_impl, mesh=mesh, in_specs=(P(), _state_specs(), dspec, P(), P()),
                       out_specs=(_state_specs(), (P(), P(), P(), P())), check_vma=False)
    _JITTED[cache_key] = jax.jit(fn, donate_argnums=(1,))
    return _JITTED[cache_key]


class ShardedJaxBackend:
    """The JAX sweep with customers sharded across the devices of a mesh.

    Same protocol as :class:`~manylift.sampler.gibbs_jax.JaxBackend` (``init``,
    ``run``, ``states``, ``set_states``, ``get_rng``, ``set_rng``), so
    :func:`~manylift.sampler.driver.run_sampler` runs it, checkpoints included.

    Parameters
    ----------
    design : Design
    spec : ModelSpec
    n_chains : int
    mesh : jax.sharding.Mesh, default=None
        One axis named ``"shards"`` (:func:`make_mesh`); None: all devices of
        JAX's default platform.
    n_shards : int, default=None
        Logical shards, a multiple of the mesh size; None: one per device.  The
        draws depend on (seed, ``n_shards``), not on the number of devices.
    dtype : {"float64", "float32"}, default="float64"

    Notes
    -----
    The draws follow the same conditionals as ``JaxBackend`` but use the random
    numbers differently (the u_i normals per logical shard), so the two agree
    in distribution, not draw for draw.

    Examples
    --------
    >>> backend = ShardedJaxBackend(design, ModelSpec(), n_chains=2,
    ...                             mesh=make_mesh(4))          # doctest: +SKIP
    >>> backend.init(np.random.SeedSequence(0).spawn(2))        # doctest: +SKIP
    >>> out = backend.run(100)                                  # doctest: +SKIP
    """

    name = "jax-sharded"

    def __init__(self, design: Design, spec: ModelSpec, n_chains: int, mesh=None,
                 n_shards: int | None = None, dtype: str = "float64"):
        GJ.enable_x64()
        self.design, self.spec, self.n_chains = design, spec, int(n_chains)
        self.mesh = make_mesh() if mesh is None else mesh
        self.dtype = dtype
        self.sdesign = to_sharded_design(design, self.mesh, n_shards, dtype)
        self.plan = self.sdesign.plan
        self.n_shards = self.plan.n_shards
        self._n_groups = len(self.sdesign.members)
        sd_y = float(np.std(design.y))
        self._sd_y = sd_y if sd_y > 0 else 1.0
        self.sweep = 0
        self._states = None
        self._keys = None

    bucket = staticmethod(GJ.JaxBackend.bucket)

    @property
    def n_traces(self) -> int:
        tag = (self.sdesign.slayout, self.spec, self.n_chains)
        return sum(v for k, v in TRACE_COUNT.items() if k[:3] == tag and k[4] == self.mesh)

    def _replicated(self, x):
        import jax
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        return jax.device_put(x, NamedSharding(self.mesh, P()))

    def init(self, seeds: list[np.random.SeedSequence]) -> None:
        import jax.numpy as jnp

        if len(seeds) != self.n_chains:
            raise SamplerError(f"ShardedJaxBackend.init needs one SeedSequence per chain "
                               f"({self.n_chains}); got {len(seeds)}.")
        self._keys = self._replicated(jnp.stack([GJ._chain_key(s) for s in seeds]))
        fn = _compiled("init", self.mesh, self.sdesign.slayout, self._n_groups, self.spec)
        self._states = fn(self._keys, self.sdesign, jnp.float64(self._sd_y))
        self.sweep = 0

    def run(self, n_sweeps: int) -> dict:
        """Advance every chain by ``n_sweeps`` sweeps; returns the traces of
        :meth:`manylift.sampler.gibbs_jax.JaxBackend.run`."""
        import jax.numpy as jnp

        if self._states is None or self._keys is None:
            raise SamplerError("ShardedJaxBackend.run was called before init(seeds).")
        n_sweeps = int(n_sweeps)
        if n_sweeps < 1:
            raise SamplerError(f"ShardedJaxBackend.run needs n_sweeps >= 1; got {n_sweeps}.")
        length = self.bucket(n_sweeps)
        fn = _compiled("run", self.mesh, self.sdesign.slayout, self._n_groups, self.spec, length)
        start = self.sweep
        states, out = fn(self._keys, self._states, self.sdesign, jnp.uint32(start),
                         jnp.uint32(n_sweeps))
        self._states = states
        ll, theta, sigma2, omega_inv = (np.asarray(x)[:n_sweeps] for x in out)
        self.sweep = start + n_sweeps
        if not np.all(np.isfinite(ll)):
            for c, st in enumerate(self.states()):
                check_finite(st, self.sweep, c)
            raise SamplerError(
                f"Non-finite log-likelihood in sweeps {start + 1}-{self.sweep}. This usually means "
                f"the outcome or covariates have extreme values; check the data (manylift "
                f"validate) or rescale the outcome.")
        return {"loglik": ll, "theta": theta, "sigma2": sigma2, "omega_inv": omega_inv}

    def states(self) -> list[State]:
        """Per-chain states, u gathered to the host in the design's customer order."""
        st = [np.asarray(x) for x in self._states]
        u = _unpad_customers(st[3], self.plan)
        return [State(st[0][c], float(st[1][c]), st[2][c], u[c]) for c in range(self.n_chains)]

    def set_states(self, states: list[State]) -> None:
        import jax
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        if len(states) != self.n_chains:
            raise SamplerError(f"set_states needs {self.n_chains} states; got {len(states)}.")
        u = np.stack([_pad_customers(np.asarray(s.u, np.float64), self.plan) for s in states])
        self._states = State(
            self._replicated(np.stack([np.asarray(s.theta, np.float64) for s in states])),
            self._replicated(np.array([float(s.sigma2) for s in states], np.float64)),
            self._replicated(np.stack([np.asarray(s.omega_inv, np.float64) for s in states])),
            jax.device_put(u, NamedSharding(self.mesh, P(None, AXIS))),
        )

    def get_rng(self) -> np.ndarray:
        """``[sweep, then the chains' base keys]`` as uint32 (as JaxBackend)."""
        if self._keys is None:
            raise SamplerError("ShardedJaxBackend.get_rng was called before init(seeds).")
        keys = np.asarray(self._keys, np.uint32).ravel()
        return np.concatenate([np.array([self.sweep], np.uint32), keys])

    def set_rng(self, blob: np.ndarray) -> None:
        blob = np.asarray(blob)
        if blob.dtype != np.uint32 or blob.size != 1 + 2 * self.n_chains:
            raise SamplerError(
                f"This RNG state does not belong to a JAX run with {self.n_chains} chains "
                f"(got {blob.size} values of type {blob.dtype}); resume with the same backend "
                f"and chains, or start afresh.")
        self.sweep = int(blob[0])
        self._keys = self._replicated(blob[1:].reshape(self.n_chains, 2))

    def __repr__(self) -> str:
        return (f"ShardedJaxBackend(chains={self.n_chains}, devices={self.mesh.devices.size}, "
                f"shards={self.n_shards}, dtype={self.dtype}, sweep={self.sweep})")
