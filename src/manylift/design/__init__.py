"""design layer of manylift (see the import-linter layers in pyproject.toml): planning and checking the
design of a program of experiments.

- :func:`overlap_network` (``manylift.design.overlap``): the campaign-customer
  overlap network, its density, modularity by campaign attribute and communities.
- ``manylift.design.power``: sample size, power and MDE for a mean difference or a
  proportion, with a CUPED-style variance reduction factor.
"""

from manylift.design.overlap import OVERLAP_METHODS, OverlapResult, overlap_network
from manylift.design.power import (
    PowerResult,
    cuped_factor,
    mde_mean,
    mde_proportion,
    power_mean,
    power_proportion,
    sample_size_mean,
    sample_size_proportion,
    simulate_power,
)

__all__ = [
    "OVERLAP_METHODS",
    "OverlapResult",
    "PowerResult",
    "cuped_factor",
    "mde_mean",
    "mde_proportion",
    "overlap_network",
    "power_mean",
    "power_proportion",
    "sample_size_mean",
    "sample_size_proportion",
    "simulate_power",
]
