"""Shapley / XPER decomposition of targeting performance over effect components."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from manylift._core.checks import check_in
from manylift.decomposition._summary import summary
from manylift.evaluation import policy_value_many, rank_metric_many
from manylift.pooled.holdout import HoldoutComponents, holdout_components

__all__ = ["ShapleyResult", "shapley_decomposition", "shapley_values"]

PAYOFFS = ("ipw", "autoc")


def shapley_values(value_fn, players) -> tuple[dict, dict]:
    """Exact Shapley values of ``players`` for a vector-valued game.

    Parameters
    ----------
    value_fn : callable
        ``value_fn(frozenset_of_players) -> ndarray (D,)`` (one game per draw).
    players : sequence of str

    Returns
    -------
    values : dict
        ``{player: ndarray (D,)}``; they sum to v(all) - v(none) exactly (up to
        floating-point rounding).
    games : dict
        ``{frozenset: ndarray (D,)}`` the payoff of every coalition.

    References
    ----------
    Shapley, L. S. (1953). A value for n-person games. Hurlin, C., Perignon, C.
    and Saurin, S. (2022). The fairness of credit scoring models (XPER).

    Examples
    --------
    >>> v = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 0.0, frozenset("ab"): 3.0}
    >>> phi, _ = shapley_values(lambda s: np.array([v[s]]), ["a", "b"])
    >>> [float(phi["a"][0]), float(phi["b"][0])]
    [2.0, 1.0]
    """
    players = list(players)
    n = len(players)
    games = {}
    for r in range(n + 1):
        for s in combinations(players, r):
            games[frozenset(s)] = np.asarray(value_fn(frozenset(s)), float)
    values = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for r in range(n):
            weight = factorial(r) * factorial(n - r - 1) / factorial(n)
            for s in combinations(others, r):
                s = frozenset(s)
                total = total + weight * (games[s | {p}] - games[s])
        values[p] = total
    return values, games


@dataclass(frozen=True, repr=False)
class ShapleyResult:
    """Shapley values of the effect components for one payoff, per draw.

    Attributes
    ----------
    payoff : {"ipw", "autoc"}
    values : dict of ndarray (D,)
        Raw Shapley values (payoff units) of ``customer``, ``campaign``, ``week``
        (three-player game) and of ``observed``, ``unobserved`` (two-player game
        inside the customer, campaign and week always in).
    shares : dict of ndarray (D,)
        ``values / mean(v(all) - v(none))``: each draw's Shapley value divided by
        the posterior mean of v(all) - v(none). (Dividing draw by draw is
        unstable when the targeting value is near 0 in some draws; with this
        normaliser the posterior means of the three shares sum to 1.)
    v_all, v_none : ndarray (D,)
        Payoff of tau_hat with all components, and of taubar alone.
    """

    payoff: str
    values: dict
    shares: dict
    v_all: np.ndarray
    v_none: np.ndarray

    @property
    def unobserved_share_of_customer(self) -> np.ndarray:
        """Share of the within-customer value due to unobserved heterogeneity, per draw."""
        o, u = self.values["observed"], self.values["unobserved"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return u / (o + u)

    def to_dict(self) -> dict:
        out = {k: summary(v) for k, v in self.shares.items()}
        out["raw"] = {k: summary(v) for k, v in self.values.items()}
        out["v_all"] = summary(self.v_all)
        out["v_none"] = summary(self.v_none)
        out["unobserved_share_of_customer"] = summary(self.unobserved_share_of_customer)
        return out

    def to_frame(self) -> pd.DataFrame:
        rows = {k: {"share_" + a: b for a, b in summary(self.shares[k]).items()}
                | {"value_mean": float(np.nanmean(self.values[k]))} for k in self.shares}
        return pd.DataFrame(rows).T

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={float(np.nanmedian(v)):.3f}" for k, v in self.shares.items())
        return f"ShapleyResult(payoff={self.payoff!r}, median shares: {inner})"


def _payoff_fn(h: HoldoutComponents, payoff: str):
    if payoff == "ipw":
        return lambda tau: policy_value_many(h.outcome, h.treatment, h.propensity,
                                             (tau > 0).astype(float))
    scores = h.scores()
    return lambda tau: rank_metric_many(scores, tau, kind="autoc")


def shapley_decomposition(fit, payoff: str = "ipw",
                          components: HoldoutComponents | None = None) -> ShapleyResult:
    """Shapley (XPER) decomposition of a targeting payoff over the effect components.

    v(S) is the payoff on the holdout of tau_hat built from taubar plus the
    components in S: players {customer, campaign, week} (customer = observed +
    unobserved), and inside the customer {observed, unobserved} with campaign and
    week always in. Payoffs: ``"ipw"``, the IPW policy value of treating when
    tau_hat > 0 (outcome units per row); ``"autoc"``, the AUTOC of ranking by
    tau_hat. Shares divide by the posterior mean of v(all) - v(none) (v(none) is
    the payoff of taubar alone: treat all or none, or AUTOC 0 for a constant
    ranking).

    Parameters
    ----------
    fit : PooledFit
    payoff : {"ipw", "autoc"}, default="ipw"
    components : HoldoutComponents, optional

    Returns
    -------
    ShapleyResult
    """
    check_in("payoff", payoff, PAYOFFS, "shapley_decomposition")
    h = components if components is not None else holdout_components(fit)
    v = _payoff_fn(h, payoff)
    cache: dict = {}

    def game(parts):
        key = frozenset(parts)
        if key not in cache:
            cache[key] = v(h.tau_hat(sorted(key)))
        return cache[key]

    three, g3 = shapley_values(lambda s: game(s), ["customer", "campaign", "week"])
    two, _ = shapley_values(
        lambda s: game(set(s) | {"campaign", "week"}), ["observed", "unobserved"])
    values = {**three, **two}
    v_all = g3[frozenset({"customer", "campaign", "week"})]
    v_none = g3[frozenset()]
    denom = float(np.mean(v_all - v_none))
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = {k: x / denom for k, x in values.items()}
    return ShapleyResult(payoff=payoff, values=values, shares=shares, v_all=v_all, v_none=v_none)
