"""Fixtures of the sampler tests."""

import pytest


class FixedRng:
    """Feeds a numpy move (scale or interweaving) the same random numbers the JAX one gets."""

    def __init__(self, z, uniform):
        self.z, self.u = z, uniform

    def standard_normal(self, q):
        return self.z

    def uniform(self):
        return self.u


@pytest.fixture
def fixed_rng():
    """``fixed_rng(z, uniform)``: a generator stand-in returning these numbers."""
    return FixedRng
