"""Posterior summaries (the results.json summary object)."""

from __future__ import annotations

import numpy as np

from manylift.pooled.fit import posterior_summary


def summary(draws) -> dict:
    """``{"mean", "sd", "lo", "hi"}`` over the finite draws (nan when there are none)."""
    x = np.asarray(draws, float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "lo": float("nan"), "hi": float("nan")}
    return posterior_summary(x)
