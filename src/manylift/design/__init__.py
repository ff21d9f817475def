"""design layer of manylift (see DESIGN.md section 3): planning and checking the
design of a program of experiments.

- :func:`overlap_network` (``manylift.design.overlap``): the campaign-customer
  overlap network, its density, modularity by campaign attribute and communities.
"""

from manylift.design.overlap import OVERLAP_METHODS, OverlapResult, overlap_network

__all__ = [
    # overlap network
    "OVERLAP_METHODS",
    "OverlapResult",
    "overlap_network",
    # power / MDE / sample size: added by the power-analysis module
]
