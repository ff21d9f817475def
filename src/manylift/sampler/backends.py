"""Backends run sweeps for all chains; the driver handles warm-up, thinning and checkpoints.

What a backend implements is the :class:`~manylift.sampler.contract.Backend` protocol
(``init``, ``run``, ``states``, ``set_states``, ``get_rng``, ``set_rng``).  This module
holds the numpy reference backend and :func:`get_backend`, which picks one.
"""

from __future__ import annotations

import json

import numpy as np

from manylift._core.errors import SamplerError
from manylift.sampler import gibbs_numpy
from manylift.sampler.contract import check_finite
from manylift.sampler.design import Design
from manylift.sampler.state import ModelSpec, State

__all__ = ["NumpyBackend", "get_backend"]


class NumpyBackend:
    """The readable reference: one Generator per chain, sweeps in Python."""

    name = "numpy"

    def __init__(self, design: Design, spec: ModelSpec, n_chains: int):
        self.design, self.spec, self.n_chains = design, spec, n_chains
        self.sweep = 0

    def init(self, seeds: list[np.random.SeedSequence]) -> None:
        self._rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
        self._states = [gibbs_numpy.init(r, self.design, self.spec) for r in self._rngs]

    def run(self, n_sweeps: int) -> dict:
        C = self.n_chains
        ll = np.empty((n_sweeps, C))
        for s in range(n_sweeps):
            for c in range(C):
                st, info = gibbs_numpy.step(self._rngs[c], self._states[c], self.design, self.spec)
                self._states[c] = st
                ll[s, c] = info.loglik
            self.sweep += 1
            if not np.all(np.isfinite(ll[s])):
                for c in range(C):
                    check_finite(self._states[c], self.sweep, c)
        return {"loglik": ll}

    def states(self) -> list[State]:
        return list(self._states)

    def set_states(self, states: list[State]) -> None:
        self._states = [State(np.asarray(s.theta, float), float(s.sigma2),
                              np.asarray(s.omega_inv, float), np.asarray(s.u, float))
                        for s in states]

    def get_rng(self) -> np.ndarray:
        blob = json.dumps([r.bit_generator.state for r in self._rngs])
        return np.frombuffer(blob.encode(), dtype=np.uint8)

    def set_rng(self, blob: np.ndarray) -> None:
        states = json.loads(bytes(np.asarray(blob, np.uint8)).decode())
        for r, st in zip(self._rngs, states, strict=True):
            r.bit_generator.state = st


def get_backend(name: str, design: Design, spec: ModelSpec, n_chains: int, **options):
    """Pick a backend.

    ``"numpy"``: the readable reference. ``"numba"`` / ``"cpu"``: the compiled two-pass CPU
    sweep on all cores. ``"jax"``: JAX on whatever device it finds; ``"gpu"``: JAX, and fail if
    there is no GPU. ``"auto"``: JAX on a GPU if there is one, else the numba CPU path.
    """
    from manylift._core.checks import check_in

    check_in("backend", name, ["numpy", "numba", "jax", "cpu", "gpu", "auto"], "PooledModel")
    if name == "numpy":
        return NumpyBackend(design, spec, n_chains)
    if name in ("numba", "cpu"):
        from manylift.sampler.gibbs_numba import NumbaBackend

        return NumbaBackend(design, spec, n_chains)
    has_gpu = False
    try:
        import jax

        has_gpu = any(d.platform == "gpu" for d in jax.devices())
    except Exception:  # noqa: BLE001 - no usable JAX installation: fall back below
        if name in ("jax", "gpu"):
            raise SamplerError("The JAX backend is not available; use backend='cpu'.") from None
    if name == "auto" and not has_gpu:
        from manylift.sampler.gibbs_numba import NumbaBackend

        return NumbaBackend(design, spec, n_chains)
    if name == "gpu" and not has_gpu:
        raise SamplerError("backend='gpu' was asked for but JAX finds no GPU; use "
                           "backend='cpu' or 'auto'.")
    from manylift.sampler.gibbs_jax import JaxBackend

    return JaxBackend(design, spec, n_chains, **options)
