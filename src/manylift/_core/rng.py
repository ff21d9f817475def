"""Random-state handling: ``random_state`` in the public API, one Generator inside."""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "seed_int"]


def as_generator(random_state=None) -> np.random.Generator:
    """Turn ``None``, an int, a SeedSequence or a Generator into a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def seed_int(random_state=None) -> int:
    """A 32-bit integer seed derived from ``random_state`` (for JAX keys, sklearn)."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return int(random_state) % (2**32)
    return int(as_generator(random_state).integers(0, 2**32 - 1))
