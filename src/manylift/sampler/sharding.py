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
exchange.  The sweep is not copied here: it is
:func:`manylift.sampler.gibbs_jax.sweep_step`, written once as per-shard sums ->
a reduction -> the small blocks, run inside ``shard_map`` with the reduction
:func:`~manylift.sampler.gibbs_jax.psum_shards` (on one device,
:class:`~manylift.sampler.gibbs_jax.JaxBackend` runs it with the identity).

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

from dataclasses import dataclass

import numpy as np

from manylift._core.checks import check_in
from manylift._core.errors import SamplerError
from manylift.sampler import gibbs_jax as GJ
from manylift.sampler.contract import check_finite
from manylift.sampler.design import Design, combined_key, joint_layout, key_levels
from manylift.sampler.gibbs_jax import AXIS, ShardedDesign, ShardLayout, px_scale_from_sums
from manylift.sampler.state import ModelSpec, State

__all__ = ["AXIS", "ShardPlan", "ShardLayout", "ShardedDesign", "ShardedJaxBackend", "make_mesh",
           "plan_shards", "to_sharded_design", "px_scale_from_sums", "global_joint_cells"]

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
                      max_joint_cells: int = 1 << 16, comm=None) -> ShardedDesign:
    """Cut a :class:`~manylift.sampler.design.Design` into shards of whole customers on ``mesh``.

    The compact encoding (joint codes, eigendecomposition of F'F) is that of
    :func:`manylift.sampler.gibbs_jax.to_jax_design`, built once on the host
    (:func:`~manylift.sampler.gibbs_jax.host_encoding`); the row arrays are then cut at
    customer boundaries, padded and placed with ``NamedSharding(mesh, PartitionSpec(AXIS))``.

    Parameters
    ----------
    design : Design
    mesh : jax.sharding.Mesh with one axis named ``AXIS`` (see :func:`make_mesh`)
    n_shards : int, default=None
        Logical shards; a multiple of the mesh size.  None: one per device.
        Draws depend on ``n_shards`` but not on the number of devices.
    dtype : {"float64", "float32"}, default="float64"
    max_joint_cells : int, default=65536
    comm : manylift._core.distributed.Collectives, default=None
        Several processes (the mesh spans their devices): ``design`` holds this
        process's whole customers, with F'F already summed over processes
        (:func:`manylift.pooled.build.build_inputs` with ``comm``); see
        :func:`_to_sharded_design_processes`.
    """
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    if comm is not None and comm.n_processes > 1:
        return _to_sharded_design_processes(design, mesh, n_shards, dtype, max_joint_cells, comm)
    GJ.enable_x64()
    GJ._register()
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
    enc = GJ.host_encoding(design, dtype, max_joint_cells)
    local_customer = np.empty(design.n_rows, np.int32)
    for s in range(S):
        r0, r1 = plan.row_start[s], plan.row_start[s + 1]
        local_customer[r0:r1] = design.customer[r0:r1] - plan.customer_start[s]
    cmask = np.zeros((S, plan.customers_per_shard), np.float64)
    for s in range(S):
        cmask[s, : plan.customer_start[s + 1] - plan.customer_start[s]] = 1.0
    sharded = NamedSharding(mesh, P(AXIS))
    repl = NamedSharding(mesh, P())
    fd = np.dtype(dtype)
    rows = enc.rows
    host = {
        "y": _pad_rows(rows["y"], plan),
        # padded rows point at the shard's last customer slot (sorted) with R = 0
        "customer": _pad_rows(local_customer, plan, plan.customers_per_shard - 1),
        "R": _pad_rows(rows["R"], plan),
        "dense": _pad_rows(rows["dense"], plan),
        "cells": _pad_rows(rows["cells"], plan),
        "mask": _pad_rows(np.ones(design.n_rows, fd), plan),
        "RtR": _pad_customers(enc.RtR, plan),
        "cmask": cmask,
    }
    slayout = ShardLayout(enc.layout, S, plan.rows_per_shard, plan.customers_per_shard, True)
    return ShardedDesign(
        slayout, *(jax.device_put(host[k], sharded) for k in ShardedDesign._sharded),
        tuple(jax.device_put(np.asarray(m), repl) for m in enc.members),
        jax.device_put(enc.evecs, repl), jax.device_put(enc.evals, repl),
        plan=plan,
    )


# ---------------------------------------------------------------------------
# several processes: each holds whole customers, the layout is global
# ---------------------------------------------------------------------------
def global_joint_cells(design: Design, comm, max_joint_cells: int = 1 << 16):
    """:func:`manylift.sampler.design.joint_cells` with every decision global: code columns
    are shared where they are identical on every process, and joint codes run over the
    combinations that occur on any process (the union of each process's), so all
    processes have the same layout.  With one process it equals ``joint_cells``."""
    if design.w.size and not np.all(np.abs(np.abs(design.w) - 0.5) < 1e-12):
        raise SamplerError("The joint-cell layout needs the treatment effect-coded as -1/2, "
                           "+1/2; build the design with build_design.")

    def same_everywhere(same: bool) -> bool:  # a collective: every process calls it in turn
        return comm.sum(np.array([0 if same else 1], np.int64))[0] == 0

    def union_codes(cols, sizes):  # joint codes over the combinations on any process
        key = combined_key(cols, sizes)
        used = np.unique(np.concatenate(comm.gather(np.unique(key))))
        return np.searchsorted(used, key), key_levels(used, sizes)

    return joint_layout(design, max_joint_cells, same_column=same_everywhere,
                        joint_codes=union_codes)


def _global_array(mesh, spec, local: np.ndarray, global_shape):
    """A global array from this process's block (its devices' shards, in device order)."""
    import jax
    from jax.sharding import NamedSharding

    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), local, global_shape)


def _replicated_array(mesh, x: np.ndarray):
    """A global array replicated on every device of every process (same value everywhere)."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, NamedSharding(mesh, P()), lambda idx: x[idx])


def _to_sharded_design_processes(design: Design, mesh, n_shards, dtype, max_joint_cells, comm):
    """The sharded design of a fit over several processes.

    Each process cuts its own customers into ``n_shards * local devices / devices``
    logical shards (:func:`plan_shards`), pads them to the largest shard of any process
    (sizes agreed through ``comm``), and contributes them as its devices' blocks of
    global arrays (``jax.make_array_from_process_local_data``); the layout (global N,
    n, joint codes, F'F) is the same on every process.
    """
    from dataclasses import replace

    from jax.sharding import PartitionSpec as P

    GJ.enable_x64()
    GJ._register()
    check_in("dtype", dtype, ["float64", "float32"], "ShardedJaxBackend")
    if tuple(mesh.axis_names) != (AXIS,):
        raise SamplerError(f"The mesh must have one axis named {AXIS!r} (use make_mesh); got "
                           f"axes {tuple(mesh.axis_names)}.")
    D = int(mesh.devices.size)
    D_local = len(mesh.local_devices)
    S = D if n_shards is None else int(n_shards)
    if S < 1 or S % D:
        raise SamplerError(f"The 'n_shards' parameter must be a positive multiple of the {D} "
                           f"devices in the mesh; got {n_shards}.")
    S_proc = S // D * D_local
    if design.n_customers < S_proc:
        raise SamplerError(f"Process {comm.process_id} holds {design.n_customers} customers, "
                           f"fewer than its {S_proc} shards; use fewer devices or processes.")
    N, n = (int(v) for v in comm.sum(np.array([design.n_rows, design.n_customers], np.int64)))
    jc = global_joint_cells(design, comm, max_joint_cells)
    enc = GJ.host_encoding(design, dtype, max_joint_cells, jc=jc, n_rows=N, n_customers=n)
    plan = plan_shards(design.customer, design.n_customers, S_proc)
    sizes = comm.max(np.array([plan.rows_per_shard, plan.customers_per_shard], np.int64))
    plan = replace(plan, rows_per_shard=int(sizes[0]), customers_per_shard=int(sizes[1]))
    local_customer = np.empty(design.n_rows, np.int32)
    cmask = np.zeros((S_proc, plan.customers_per_shard), np.float64)
    for s in range(S_proc):
        r0, r1 = plan.row_start[s], plan.row_start[s + 1]
        local_customer[r0:r1] = design.customer[r0:r1] - plan.customer_start[s]
        cmask[s, : plan.customer_start[s + 1] - plan.customer_start[s]] = 1.0
    fd = np.dtype(dtype)
    rows = enc.rows
    # one array at a time: pad, place, free (the host never holds two padded copies)
    make = {
        "y": lambda: _pad_rows(rows.pop("y"), plan),
        "customer": lambda: _pad_rows(local_customer, plan, plan.customers_per_shard - 1),
        "R": lambda: _pad_rows(rows.pop("R"), plan),
        "dense": lambda: _pad_rows(rows.pop("dense"), plan),
        "cells": lambda: _pad_rows(rows.pop("cells"), plan),
        "mask": lambda: _pad_rows(np.ones(design.n_rows, fd), plan),
        "RtR": lambda: _pad_customers(enc.RtR, plan),
        "cmask": lambda: cmask,
    }
    slayout = ShardLayout(enc.layout, S, plan.rows_per_shard, plan.customers_per_shard, True)
    arrays = []
    for k in ShardedDesign._sharded:
        host = make[k]()
        arrays.append(_global_array(mesh, P(AXIS), host, (S, *host.shape[1:])))
        del host
    return ShardedDesign(
        slayout, *arrays, tuple(_replicated_array(mesh, m) for m in enc.members),
        _replicated_array(mesh, enc.evecs), _replicated_array(mesh, enc.evals), plan=plan)


# ---------------------------------------------------------------------------
# the sweep of gibbs_jax under shard_map, the reduction a psum over the mesh
# ---------------------------------------------------------------------------
_JITTED: dict = {}


def _state_specs():
    from jax.sharding import PartitionSpec as P

    return State(P(), P(), P(), P(None, AXIS))


def _first_shard(sd: ShardedDesign):
    """Index of this device's first logical shard (inside ``shard_map``)."""
    import jax

    return jax.lax.axis_index(AXIS) * sd.y.shape[0]


def _compiled(kind: str, mesh, slayout: ShardLayout, n_groups: int, spec: ModelSpec,
              length: int = 0):
    import jax
    from jax.sharding import PartitionSpec as P

    cache_key = (kind, mesh, slayout, spec, length)
    if cache_key in _JITTED:
        return _JITTED[cache_key]
    dspec = ShardedDesign.partition_specs(slayout, n_groups)
    if kind == "init":
        def init_impl(keys, sd):
            return GJ.init_chains(keys, sd, GJ.psum_shards, _first_shard(sd))

        fn = jax.shard_map(init_impl, mesh=mesh, in_specs=(P(), dspec),
                           out_specs=_state_specs(), check_vma=False)
        _JITTED[cache_key] = jax.jit(fn)
        return _JITTED[cache_key]

    def run_impl(keys, states, sd, start, n):
        return GJ.run_chains(keys, states, sd, start, n, length=length, spec=spec,
                             reduce=GJ.psum_shards, first_shard=_first_shard(sd), placement=mesh)

    fn = jax.shard_map(run_impl, mesh=mesh, in_specs=(P(), _state_specs(), dspec, P(), P()),
                       out_specs=(_state_specs(), (P(), P(), P(), P())), check_vma=False)
    _JITTED[cache_key] = jax.jit(fn, donate_argnums=(1,))
    return _JITTED[cache_key]


class ShardedJaxBackend(GJ.JaxBackend):
    """The JAX sweep with customers sharded across the devices of a mesh.

    The sweep of :class:`~manylift.sampler.gibbs_jax.JaxBackend` (the same code) inside
    ``shard_map``, its reductions a ``psum``; the same protocol, so
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
    With ``n_shards`` > 1 the u_i normals are drawn per logical shard, so the draws
    agree with ``JaxBackend``'s in distribution, not draw for draw; with one logical
    shard (one device) they are ``JaxBackend``'s draws.

    Examples
    --------
    >>> backend = ShardedJaxBackend(design, ModelSpec(), n_chains=2,
    ...                             mesh=make_mesh(4))          # doctest: +SKIP
    >>> backend.init(np.random.SeedSequence(0).spawn(2))        # doctest: +SKIP
    >>> out = backend.run(100)                                  # doctest: +SKIP
    """

    name = "jax-sharded"

    def __init__(self, design: Design, spec: ModelSpec, n_chains: int, mesh=None,
                 n_shards: int | None = None, dtype: str = "float64", comm=None):
        GJ.enable_x64()
        self.design, self.spec, self.n_chains = design, spec, int(n_chains)
        self.mesh = make_mesh() if mesh is None else mesh
        self.dtype = dtype
        self.comm = comm if comm is not None and comm.n_processes > 1 else None
        self.sdesign = to_sharded_design(design, self.mesh, n_shards, dtype, comm=self.comm)
        self.plan = self.sdesign.plan  # this process's shards (all of them with one process)
        self.n_shards = self.sdesign.slayout.n_shards
        self._n_groups = len(self.sdesign.members)
        self._placement = self.mesh
        self._reset()

    def _put(self, x):
        import jax
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        if self.comm is not None:
            return _replicated_array(self.mesh, x)
        return jax.device_put(x, NamedSharding(self.mesh, P()))

    def _put_u(self, u: np.ndarray):
        import jax
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        padded = np.stack([_pad_customers(uc, self.plan) for uc in u])
        if self.comm is not None:  # this process's customers: its block of the global u
            shape = (padded.shape[0], self.n_shards, *padded.shape[2:])
            return _global_array(self.mesh, P(None, AXIS), padded, shape)
        return jax.device_put(padded, NamedSharding(self.mesh, P(None, AXIS)))

    def _host_u(self, u) -> np.ndarray:
        """This process's customers' u (all customers with one process)."""
        if self.comm is not None:
            blocks = sorted(u.addressable_shards, key=lambda sh: sh.index[1].start)
            return _unpad_customers(np.concatenate([np.asarray(b.data) for b in blocks], axis=1),
                                    self.plan)
        return _unpad_customers(np.asarray(u), self.plan)

    def _check(self, ll: np.ndarray, start: int) -> None:
        """The log-likelihood, built from the sums of every shard, is finite unless a block
        is; then name the block from this process's states (u: its own customers)."""
        if np.all(np.isfinite(ll)):
            return
        for c, st in enumerate(self.states()):
            check_finite(st, self.sweep, c)
        raise SamplerError(
            f"Non-finite log-likelihood in sweeps {start + 1}-{self.sweep}"
            + (" (a block of another process's customers; see its message)" if self.comm
               else "")
            + ". This usually means the outcome or covariates have extreme values; check the "
              "data (manylift validate) or rescale the outcome.")

    def _init_fn(self):
        return _compiled("init", self.mesh, self.sdesign.slayout, self._n_groups, self.spec)

    def _run_fn(self, length: int):
        return _compiled("run", self.mesh, self.sdesign.slayout, self._n_groups, self.spec,
                         length)

    def __repr__(self) -> str:
        return (f"ShardedJaxBackend(chains={self.n_chains}, devices={self.mesh.devices.size}, "
                f"shards={self.n_shards}, dtype={self.dtype}, sweep={self.sweep})")
