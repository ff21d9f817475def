"""The Gibbs sampler of the pooled model: arrays in, draws out (never imports data).

- :mod:`~manylift.sampler.design`: the compact design (codes, segment sums, F'F).
- :mod:`~manylift.sampler.gibbs_numpy`: the readable numpy reference sweep.
- :mod:`~manylift.sampler.gibbs_jax`: the JAX fast path (CPU and GPU), one sweep for one
  device and for a mesh (:mod:`~manylift.sampler.sharding`).
- :mod:`~manylift.sampler.contract`: the backend protocol every backend implements.
- :mod:`~manylift.sampler.driver`: chains, warm-up, thinning, progress, checkpoints.
"""

from manylift.sampler.backends import NumpyBackend, get_backend
from manylift.sampler.contract import Backend, check_finite
from manylift.sampler.design import CategoricalTerm, Design, build_design, effect_coding
from manylift.sampler.driver import SamplerRun, SamplerSettings, run_sampler
from manylift.sampler.state import Info, ModelSpec, State

__all__ = [
    "Backend",
    "CategoricalTerm",
    "Design",
    "Info",
    "ModelSpec",
    "NumpyBackend",
    "SamplerRun",
    "SamplerSettings",
    "State",
    "build_design",
    "check_finite",
    "effect_coding",
    "get_backend",
    "run_sampler",
]
