"""Cost-aware targeting rules: whom to treat given estimated effects, a cost and a margin.

Profit of treating one customer = margin x effect - cost, so treating pays
when the effect exceeds the **breakeven effect** cost / margin.  Every rule
returns a boolean assignment (binary treatment) or an arm code per customer
(0 = control, several arms).

=================  ===========================================================
rule               treat when
=================  ===========================================================
positive_effect    effect > 0
breakeven          effect > cost / margin
top_k              effect among the top ``k`` share (a budget)
conservative       lower interval bound > cost / margin
risk_adjusted      (1 - lambda) effect + lambda lower > cost / margin
best_arm           the arm with the largest margin x effect - cost, if positive
=================  ===========================================================
"""

from __future__ import annotations

import numpy as np

from manylift._core.checks import as_1d_float
from manylift._core.errors import DataError, ModelError

__all__ = [
    "best_arm_rule",
    "breakeven_effect",
    "breakeven_rule",
    "conservative_rule",
    "positive_effect_rule",
    "risk_adjusted_effect",
    "risk_adjusted_rule",
    "top_k_rule",
]


def breakeven_effect(cost: float, margin: float) -> float:
    """The effect at which treating one customer breaks even: ``cost / margin``.

    Examples
    --------
    >>> round(breakeven_effect(12.73, 0.30), 2)
    42.43
    """
    cost, margin = float(cost), float(margin)
    if not np.isfinite(cost) or cost < 0:
        raise ModelError(f"The 'cost' parameter must be a non-negative number; got {cost!r} instead.")
    if not np.isfinite(margin) or margin <= 0:
        raise ModelError(f"The 'margin' parameter must be positive (profit per unit of outcome); "
                         f"got {margin!r} instead.")
    return cost / margin


def positive_effect_rule(effect) -> np.ndarray:
    """Treat every customer with a positive estimated effect."""
    return as_1d_float("effect", effect) > 0


def breakeven_rule(effect, cost: float, margin: float) -> np.ndarray:
    """Treat when the estimated effect exceeds ``cost / margin``.

    Examples
    --------
    >>> breakeven_rule([10, 50, 42], cost=12.73, margin=0.3).tolist()
    [False, True, False]
    """
    return as_1d_float("effect", effect) > breakeven_effect(cost, margin)


def top_k_rule(effect, k: float) -> np.ndarray:
    """Treat the ``k`` share (0 < k <= 1) of customers with the largest effects.

    ``round(k n)`` customers are chosen; ties at the cut-off are broken by
    position (stable sort), so exactly that many are treated.

    Examples
    --------
    >>> top_k_rule([3.0, 1.0, 2.0, 0.5], k=0.5).tolist()
    [True, False, True, False]
    """
    tau = as_1d_float("effect", effect)
    if not (0 < float(k) <= 1):
        raise ModelError(f"The 'k' parameter of top_k_rule must be a share in (0, 1]; "
                         f"got {k!r} instead (use 0.2 for 20%).")
    m = int(round(float(k) * tau.size))
    out = np.zeros(tau.size, dtype=bool)
    out[np.argsort(-tau, kind="stable")[:m]] = True
    return out


def conservative_rule(lower, cost: float, margin: float) -> np.ndarray:
    """Treat only when the lower interval bound of the effect exceeds ``cost / margin``."""
    return as_1d_float("lower", lower) > breakeven_effect(cost, margin)


def risk_adjusted_effect(effect, lower, risk_aversion: float) -> np.ndarray:
    """Certainty-equivalent effect ``(1 - lambda) effect + lambda lower``."""
    tau = as_1d_float("effect", effect)
    lo = as_1d_float("lower", lower, n=tau.size)
    lam = float(risk_aversion)
    if not 0 <= lam <= 1:
        raise ModelError(f"The 'risk_aversion' (lambda) parameter must be in [0, 1]; "
                         f"got {risk_aversion!r} instead.")
    return (1 - lam) * tau + lam * lo


def risk_adjusted_rule(effect, lower, cost: float, margin: float,
                       risk_aversion: float = 0.3) -> np.ndarray:
    """Treat when ``(1 - lambda) effect + lambda lower`` exceeds ``cost / margin``.

    ``risk_aversion=0`` is the breakeven rule, ``1`` the conservative rule.
    """
    return risk_adjusted_effect(effect, lower, risk_aversion) > breakeven_effect(cost, margin)


def best_arm_rule(effects, costs, margin: float, *, lower=None, risk_aversion: float = 0.0,
                  threshold: float = 0.0) -> np.ndarray:
    """For several arms: the arm with the largest net profit, or control if none pays.

    Net profit of arm k for customer i = margin x effect_ik - cost_k, with the
    effect optionally risk-adjusted by ``lower`` and ``risk_aversion``.

    Parameters
    ----------
    effects : array (n, K)
        Effect of arm k + 1 versus control.
    costs : float or array (K,)
        Cost per treated customer of each arm.
    margin : float
    lower : array (n, K), default=None
        Lower interval bounds (for a risk-adjusted choice).
    risk_aversion : float, default=0
    threshold : float, default=0
        Minimum net profit for treating (0 = break even).

    Returns
    -------
    ndarray of int (n,)
        0 = control, k = arm k.

    Examples
    --------
    >>> best_arm_rule([[1.0, 3.0], [2.0, 0.5], [-1.0, 0.1]], costs=[0.5, 1.0], margin=1.0).tolist()
    [2, 1, 0]
    """
    tau = np.asarray(effects, dtype=float)
    if tau.ndim == 1:
        tau = tau[:, None]
    if tau.ndim != 2 or not np.all(np.isfinite(tau)):
        raise DataError("'effects' must be a finite (n, K) array: one column per treated arm.")
    k = tau.shape[1]
    c = np.broadcast_to(np.asarray(costs, dtype=float), (k,)) if np.ndim(costs) else np.full(k, float(costs))
    if c.shape != (k,):
        raise ModelError(f"'costs' must be one number or one per arm ({k}); got {np.shape(costs)}.")
    for cost in c:
        breakeven_effect(cost, margin)  # validates
    if lower is not None and risk_aversion > 0:
        lo = np.asarray(lower, dtype=float).reshape(tau.shape)
        tau = (1 - risk_aversion) * tau + risk_aversion * lo
    net = margin * tau - c[None, :]
    best = np.argmax(net, axis=1)
    return np.where(net[np.arange(tau.shape[0]), best] > threshold, best + 1, 0)
