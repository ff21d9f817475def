"""What a sampler backend is: the :class:`Backend` protocol and the shared finite-check.

The driver (:func:`manylift.sampler.driver.run_sampler`) runs any object with this
shape; :class:`~manylift.sampler.backends.NumpyBackend`,
:class:`~manylift.sampler.gibbs_numba.NumbaBackend`,
:class:`~manylift.sampler.gibbs_jax.JaxBackend` and
:class:`~manylift.sampler.sharding.ShardedJaxBackend` implement it.  This module
imports no backend, so every backend can import it (no import circle).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from manylift._core.errors import SamplerError
from manylift.sampler.design import Design
from manylift.sampler.state import ModelSpec, State

__all__ = ["Backend", "check_finite"]


@runtime_checkable
class Backend(Protocol):
    """The contract between a backend and the driver.

    The RNG stream of a chain depends only on its seed and the sweep index, never on
    how the sweeps are split into calls of :meth:`run`, so a resumed run reproduces an
    uninterrupted one exactly.
    """

    #: short name, recorded in results and checkpoint fingerprints
    name: str
    design: Design
    spec: ModelSpec
    n_chains: int
    #: sweeps done so far (the driver sets it on resume)
    sweep: int

    def init(self, seeds: list[np.random.SeedSequence]) -> None:
        """Start every chain (one ``SeedSequence`` per chain); ``sweep`` becomes 0."""
        ...

    def run(self, n_sweeps: int) -> dict:
        """Advance every chain by ``n_sweeps`` sweeps; return per-sweep traces, at least
        ``{"loglik": (n_sweeps, chains)}``.  Raises ``SamplerError`` naming the block on
        a non-finite draw."""
        ...

    def states(self) -> list[State]:
        """The current per-chain states as numpy ``State`` tuples (u in the design's
        customer order)."""
        ...

    def set_states(self, states: list[State]) -> None:
        """Replace the per-chain states (from a checkpoint)."""
        ...

    def get_rng(self) -> np.ndarray:
        """The RNG position as a numpy array (saved in checkpoints)."""
        ...

    def set_rng(self, blob: np.ndarray) -> None:
        """Restore an RNG position from :meth:`get_rng` (of the same backend and chains)."""
        ...


def check_finite(state: State, sweep: int, chain: int) -> None:
    """Stop with a clear error naming the block if a draw is not finite."""
    for name, block in (("theta", state.theta), ("sigma^2", state.sigma2),
                        ("Omega^-1", state.omega_inv), ("u", state.u)):
        if not np.all(np.isfinite(np.asarray(block))):
            raise SamplerError(
                f"Non-finite values in block {name} at sweep {sweep} of chain {chain}. This "
                f"usually means the outcome or covariates have extreme values or an "
                f"unidentified design; check the data (manylift validate) or rescale the outcome."
            )
