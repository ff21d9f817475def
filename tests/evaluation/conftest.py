"""A small simulator with known truth for the evaluation tests (after grf's dgps.R)."""

from types import SimpleNamespace

import numpy as np
import pytest


def _simulate(n, seed, effect="heterogeneous", propensity="varying", noise=1.0):
    """Potential outcomes, propensities and true effects.

    effect: "heterogeneous" (tau = max(x1, 0) + 0.1), "null" (tau = 0) or "constant" (1.0).
    propensity: "varying" (0.2 .. 0.8 by x2) or "half" (0.5).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    if effect == "heterogeneous":
        tau = np.maximum(x[:, 0], 0.0) + 0.1
    elif effect == "null":
        tau = np.zeros(n)
    else:
        tau = np.ones(n)
    e = 0.2 + 0.6 / (1 + np.exp(-x[:, 1])) if propensity == "varying" else np.full(n, 0.5)
    mu0 = x[:, 1] + 0.5 * x[:, 2]
    mu1 = mu0 + tau
    y0 = mu0 + noise * rng.normal(size=n)
    y1 = y0 + tau
    w = (rng.random(n) < e).astype(int)
    y = np.where(w == 1, y1, y0)
    return SimpleNamespace(x=x, tau=tau, e=e, mu0=mu0, mu1=mu1, y0=y0, y1=y1, w=w, y=y, rng=rng)


@pytest.fixture
def simulate():
    return _simulate
