"""Program-level sections of a pooled run that lower layers compute: the decomposition of
heterogeneity and the campaign overlap network.

``PooledFit.save`` writes what the pooled layer knows; ``manylift fit`` / ``demo`` and
``PooledFit.report`` add these sections (they live in layers below ``pooled``, so the
pooled layer reaches them only through the hook registry of ``manylift._core.hooks``).
"""

from __future__ import annotations

import manylift.decomposition as dec
from manylift.design.overlap import overlap_network

__all__ = ["pooled_extra_results"]


def pooled_extra_results(fit, overlap: bool = True, random_state: int = 0) -> dict:
    """``{"decomposition": ..., "overlap": ...}`` for ``results.json``."""
    out: dict = {}
    if hasattr(dec, "results_section"):
        out["decomposition"] = dec.results_section(fit)
    if overlap:
        f = fit.data.frame
        res = overlap_network(f["customer_id"].to_numpy(), f["campaign_id"].astype(str).to_numpy(),
                              fit.data.campaigns.assign(
                                  campaign_id=fit.data.campaigns["campaign_id"].astype(str))
                              if fit.data.campaigns is not None else None,
                              random_state=random_state)
        out["overlap"] = res.to_dict()
    return out
