"""Compiled per-draw sums of the policy comparison (one pass over the units per draw).

For every draw and every group of units (the interventions within which the random
policy matches the model's count), the kernel sums what the company's, the model's
and the random policy's (weighted) values need; any union of groups then gets its
values from these sums without another pass (docs/evaluation.md). It replaces about
thirty (draws x units) temporaries per call of the numpy version, which dominated the
policy stage at paper scale.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["group_sums", "N_SUMS"]

#: Per group: weight, w*Gamma0, w*pi*lift, w*pi*cost, count treated by the model,
#: w*lift, w*cost, w*y, w*e*cost (lift = Gamma1 - Gamma0; pi = priority > cost).
N_SUMS = 9


@njit(parallel=True, cache=True)
def _sums(tau, c, w, has_w, gamma0, lift, y, ec, groups, out):
    n = tau.shape[1]
    for d in prange(tau.shape[0]):
        o = out[d]
        for i in range(n):
            g = groups[i]
            wi = w[d, i] if has_w else 1.0
            o[g, 0] += wi
            o[g, 1] += wi * gamma0[i]
            o[g, 5] += wi * lift[i]
            o[g, 6] += wi * c[i]
            o[g, 7] += wi * y[i]
            o[g, 8] += wi * ec[i]
            if tau[d, i] > c[i]:
                o[g, 2] += wi * lift[i]
                o[g, 3] += wi * c[i]
                o[g, 4] += 1.0


def group_sums(tau, c, w, gamma0, lift, y, ec, groups, n_groups) -> np.ndarray:
    """(D, n_groups, N_SUMS) sums; ``w`` None for equal weights. Inputs already checked."""
    D = tau.shape[0]
    out = np.zeros((D, n_groups, N_SUMS))
    has_w = w is not None
    _sums(np.ascontiguousarray(tau), np.ascontiguousarray(c, dtype=np.float64),
          np.ascontiguousarray(w, dtype=np.float64) if has_w else np.zeros((1, 1)), has_w,
          np.ascontiguousarray(gamma0, dtype=np.float64),
          np.ascontiguousarray(lift, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64),
          np.ascontiguousarray(ec, dtype=np.float64), np.ascontiguousarray(groups, np.int64),
          out)
    return out
