"""Several processes, one fit: the collectives every layer uses, on JAX's runtime.

A fit over P processes (``manylift fit --processes P``) starts JAX's distributed
runtime (:func:`start`: ``jax.distributed.initialize``, with gloo collectives on
CPU), and every process holds whole customers.  The global quantities of the
model (bin edges, level codes, the outcome mean, F'F, level merging) are computed
from per-process summaries through :class:`Collectives`:

* :meth:`Collectives.sum`: element-wise sums (counts are exact; float sums are
  added in process order, so every process gets the same bits);
* :meth:`Collectives.gather`: every process's 1-d array, in process order
  (variable lengths); :meth:`Collectives.gather_strings` for text;
* :func:`exact_quantiles`: ``numpy.quantile`` (linear) of the values of all
  processes, exactly, without gathering them: each order statistic is found by
  bisection over the 64-bit order-preserving codes of the floats, one small sum of
  counts per step (64 steps), then numpy's interpolation formula.

The transport is JAX's: ``jax.experimental.multihost_utils.process_allgather``
over the same runtime the sampler's ``psum`` uses.  :class:`LocalCollectives` is
the one-process case (no JAX needed).  Layers pass a ``Collectives`` down; none of
them imports JAX for it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from manylift._core.errors import ManyliftError

__all__ = ["Collectives", "LocalCollectives", "JaxCollectives", "DistributedError", "start",
           "exact_quantiles", "ENV_PROCESSES", "ENV_PROCESS_ID", "ENV_COORDINATOR"]

#: Environment variables read by ``manylift fit`` when the options are not given.
ENV_PROCESSES, ENV_PROCESS_ID, ENV_COORDINATOR = (
    "MANYLIFT_PROCESSES", "MANYLIFT_PROCESS_ID", "MANYLIFT_COORDINATOR")


class DistributedError(ManyliftError, RuntimeError):
    """The processes of a multi-process fit could not start or disagree."""


class Collectives:
    """The collectives of a multi-process fit (every process calls each, in the same order)."""

    process_id: int = 0
    n_processes: int = 1

    @property
    def is_main(self) -> bool:
        """Process 0 writes the outputs."""
        return self.process_id == 0

    def gather(self, x: np.ndarray) -> list[np.ndarray]:
        """Every process's 1-d array (any length), in process order."""
        raise NotImplementedError

    def sum(self, x) -> np.ndarray:
        """Element-wise sum over processes (added in process order: the same bits everywhere)."""
        x = np.asarray(x)
        parts = self.gather(x.ravel())
        out = parts[0].copy()
        for p in parts[1:]:
            out = out + p
        return out.reshape(x.shape)

    def max(self, x) -> np.ndarray:
        x = np.asarray(x)
        return np.max(np.stack(self.gather(x.ravel())), axis=0).reshape(x.shape)

    def gather_strings(self, values: Sequence[str]) -> list[list[str]]:
        """Every process's list of strings, in process order."""
        enc = [str(v).encode() for v in values]
        lens = self.gather(np.array([len(b) for b in enc], np.int64))
        blobs = self.gather(np.frombuffer(b"".join(enc), np.uint8))
        out = []
        for ln, bl in zip(lens, blobs, strict=True):
            cut = np.concatenate([[0], np.cumsum(ln)])
            data = bl.tobytes()
            out.append([data[cut[i]:cut[i + 1]].decode() for i in range(ln.size)])
        return out


class LocalCollectives(Collectives):
    """One process: every collective is the identity."""

    def gather(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(x).ravel()]

    def __repr__(self) -> str:
        return "LocalCollectives()"


class JaxCollectives(Collectives):
    """Collectives over JAX's distributed runtime (started by :func:`start`)."""

    def __init__(self):
        import jax

        self.process_id = int(jax.process_index())
        self.n_processes = int(jax.process_count())

    def gather(self, x: np.ndarray) -> list[np.ndarray]:
        from jax.experimental import multihost_utils as mh

        x = np.ascontiguousarray(np.asarray(x).ravel())
        if self.n_processes == 1:
            return [x]
        # process_allgather needs equal shapes: lengths first, then padded arrays
        lens = np.asarray(mh.process_allgather(np.array([x.size], np.int64))).ravel()
        width = max(int(lens.max()), 1)
        dtype = x.dtype
        # float and integer arrays travel as their bytes' 64-bit words (no dtype changes)
        pad = np.zeros(width, dtype)
        pad[: x.size] = x
        words = pad.view(np.uint8)
        allw = np.asarray(mh.process_allgather(words))
        return [allw[p].view(dtype)[: int(lens[p])].copy() for p in range(self.n_processes)]

    def __repr__(self) -> str:
        return f"JaxCollectives(process {self.process_id} of {self.n_processes})"


def start(n_processes: int, process_id: int, coordinator: str | None, *,
          heartbeat_timeout: int = 60, init_timeout: int = 120) -> Collectives:
    """Join the ``n_processes`` processes of a fit through ``jax.distributed.initialize``.

    CPU collectives go through gloo (where there is no GPU JAX has no other); process 0
    hosts the coordinator at ``coordinator`` (``HOST:PORT``, reachable by every process).
    A process that stops sending heartbeats for ``heartbeat_timeout`` seconds makes JAX
    terminate the others (its message: "Terminating process because the JAX
    distributed service detected fatal errors"); processes that do not all arrive
    within ``init_timeout`` seconds fail to start.  One process needs no coordinator.
    """
    if n_processes < 1 or not 0 <= process_id < n_processes:
        raise DistributedError(f"The process id must be between 0 and {n_processes - 1} for "
                               f"{n_processes} processes; got {process_id}.")
    if n_processes == 1:
        return LocalCollectives()
    if not coordinator or ":" not in coordinator:
        raise DistributedError(
            f"{n_processes} processes need a coordinator address HOST:PORT that every process "
            f"can reach (--coordinator or {ENV_COORDINATOR}); got {coordinator!r}.")
    import jax

    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=n_processes,
                                   process_id=process_id, initialization_timeout=init_timeout,
                                   heartbeat_timeout_seconds=heartbeat_timeout,
                                   shutdown_timeout_seconds=max(10, heartbeat_timeout))
    except Exception as exc:  # noqa: BLE001 - any failure to join: one clear message
        raise DistributedError(
            f"Process {process_id} of {n_processes} could not join the fit at {coordinator}: "
            f"{exc}. Start all {n_processes} processes within {init_timeout} s with the same "
            f"--processes and --coordinator (process 0 listens there) and distinct "
            f"--process-id.") from None
    return JaxCollectives()


def env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else None


# ---------------------------------------------------------------------------
# exact quantiles of the values of all processes
# ---------------------------------------------------------------------------
def _order_keys(v: np.ndarray) -> np.ndarray:
    """uint64 codes with the order of the float64 values (-0.0 counted as 0.0)."""
    bits = (np.asarray(v, np.float64) + 0.0).view(np.uint64)
    neg = (bits >> np.uint64(63)).astype(bool)
    return np.where(neg, ~bits, bits | np.uint64(1 << 63))


def _from_keys(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.uint64)
    pos = (k >> np.uint64(63)).astype(bool)
    return np.where(pos, k & ~np.uint64(1 << 63), ~k).view(np.float64)


def exact_quantiles(comm: Collectives | None, values: np.ndarray, qs) -> np.ndarray:
    """``numpy.quantile(all values, qs)`` (method "linear") over the values every process
    holds, exactly (the same bits as numpy on the concatenated values), with 64 rounds of
    a small sum of counts instead of gathering the values.  Values must be finite."""
    qs = np.asarray(qs, np.float64)
    v = np.asarray(values, np.float64).ravel()
    if comm is None or comm.n_processes == 1:
        return np.quantile(v, qs) if v.size else np.full(qs.shape, np.nan)
    n = int(comm.sum(np.array([v.size], np.int64))[0])
    if n == 0:
        return np.full(qs.shape, np.nan)
    keys = np.sort(_order_keys(v))
    # numpy's linear method: virtual index (n - 1) q, its floor and the next order statistic
    virtual = (n - 1) * qs
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above], nxt[above] = n - 1, n - 1
    gamma = virtual - np.where(above, -1.0, prev)  # as numpy: the index -1 past the end
    ranks = np.unique(np.concatenate([prev, nxt]).astype(np.int64))
    # the smallest key k with #{key <= k} > rank, by bisection on [0, 2^64)
    lo = np.zeros(ranks.size, np.uint64)
    hi = np.full(ranks.size, np.iinfo(np.uint64).max, np.uint64)
    for _ in range(64):
        mid = lo + (hi - lo) // np.uint64(2)
        below = comm.sum(np.searchsorted(keys, mid, side="right").astype(np.int64))
        ok = below > ranks
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + np.uint64(1))
    stats = dict(zip(ranks.tolist(), _from_keys(hi).tolist(), strict=True))
    a = np.array([stats[int(i)] for i in prev])
    b = np.array([stats[int(i)] for i in nxt])
    diff = b - a
    out = a + diff * gamma
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), out)
