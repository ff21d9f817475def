"""The pooled model: PooledModel (features + sampler) -> PooledFit."""

from manylift.pooled.fit import PooledFit, posterior_summary
from manylift.pooled.model import PooledModel

__all__ = ["PooledFit", "PooledModel", "posterior_summary"]
