"""Shapley / XPER decomposition of targeting performance over the effect components.

The players are the components of tau_hat: ``customer`` (observed + unobserved
heterogeneity), ``campaign`` and ``week``; a coalition S predicts

    tau_hat(S) = taubar + sum of the components in S + holdout mean of the others

(the others integrated out at their holdout mean: XPER's expectation over an
excluded feature, exact for an additive tau_hat). Two payoffs, per posterior
draw and with the draw's Bayesian-bootstrap weights of the holdout customers:

- ``ipw``: the value of the reported model policy's rule applied to
  tau_hat(S) (treat when tau_hat(S) > cost; cost 0 without a cost column),
  net of cost, estimated exactly as the policy evaluation does (IPW of the
  outcome centred at the intervention's calibration mean by default, raw IPW
  with ``scores="ipw"``; :mod:`manylift.pooled.holdout`);
- ``autoc``: the AUTOC of ranking by tau_hat(S).

The empty coalition knows nothing about who responds: its payoff is the
source's baseline phi_0, the random-targeting policy (as many rows treated as
the model policy within each intervention, chosen uniformly) for ``ipw`` and a
random ranking (AUTOC 0) for ``autoc``. The Shapley values then add up to
v(all) - baseline in every draw (efficiency). Inside the customer, a second
game with players ``observed`` and ``unobserved`` (campaign and week always
in) splits the customer's part; its baseline is v({campaign, week}).

References
----------
Shapley, L. S. (1953). A value for n-person games. Hue, S., Hurlin, C.,
Perignon, C. and Saurin, S. (2023). Measuring the driving forces of predictive
performance: application to credit scoring (XPER). "Learning from Many
Experiments: A Hierarchical Bayesian Framework for Decomposing Marketing
Treatment Heterogeneity", section 7.2 and Web Appendix B.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from manylift._core.checks import check_in
from manylift.decomposition._summary import summary
from manylift.evaluation import compare_policies_many, grouped_autoc_many, rank_metric_many
from manylift.pooled.holdout import HoldoutComponents, holdout_components, progress_blocks

__all__ = ["ShapleyResult", "shapley_decomposition", "shapley_decompositions", "shapley_values",
           "P_SHARES"]

PAYOFFS = ("ipw", "autoc")
PLAYERS = ("customer", "campaign", "week")
WITHIN = ("observed", "unobserved")
#: Shares of the targeting value are reported only when P(v(all) - baseline > 0) reaches this.
P_SHARES = 0.9


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
    Shapley, L. S. (1953). A value for n-person games.

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


def _shares(values: dict, total: np.ndarray) -> tuple[dict | None, float]:
    """Shares of ``total`` = v(all) - baseline, or None when it is not clearly positive.

    Each draw's values are divided by the posterior mean of ``total`` (a draw
    whose targeting value is near 0 would otherwise blow its ratio up); the
    posterior means of the shares then add up to 1.
    """
    p_positive = float(np.mean(total > 0))
    if p_positive < P_SHARES:
        return None, p_positive
    denom = float(np.mean(total))
    return {k: v / denom for k, v in values.items()}, p_positive


@dataclass(frozen=True, repr=False)
class ShapleyResult:
    """Shapley values of the effect components for one payoff, per draw.

    Attributes
    ----------
    payoff : {"ipw", "autoc"}
    values : dict of ndarray (D,)
        Raw Shapley values (payoff units: outcome units per row) of ``customer``,
        ``campaign``, ``week``; they add up to ``v_all - baseline`` in every draw.
    within_values : dict of ndarray (D,)
        Raw values of ``observed`` and ``unobserved`` in the within-customer game
        (campaign and week always in); they add up to ``v_all - within_baseline``.
    v_all, baseline, within_baseline : ndarray (D,)
        Payoff of tau_hat; of random targeting (``ipw``) or a random ranking
        (``autoc``, 0); and of tau_hat without the customer (campaign and week only).
    shares, within_shares : dict of ndarray (D,) or None
        Values divided by the posterior mean of ``v_all - baseline`` (resp.
        ``v_all - within_baseline``), only when that difference is positive with
        posterior probability >= :data:`P_SHARES`; else None (no targeting value
        to divide).
    p_positive, within_p_positive : float
        Posterior P(v_all - baseline > 0) and P(v_all - within_baseline > 0).
    """

    payoff: str
    values: dict
    within_values: dict
    v_all: np.ndarray
    baseline: np.ndarray
    within_baseline: np.ndarray
    shares: dict | None
    within_shares: dict | None
    p_positive: float
    within_p_positive: float

    @property
    def unobserved_of_total(self) -> np.ndarray | None:
        """Per draw, customer share x within-customer unobserved share (the paper's
        83.4% = 0.888 x 0.939), or None when either share is not reported."""
        if self.shares is None or self.within_shares is None:
            return None
        return self.shares["customer"] * self.within_shares["unobserved"]

    def to_dict(self) -> dict:
        """The ``decomposition.shapley_<payoff>`` section of results.json."""
        sh = self.shares or {}
        wsh = self.within_shares or {}
        u = self.unobserved_of_total
        return {
            **{k: (summary(sh[k]) if k in sh else None) for k in PLAYERS},
            **{k: (summary(wsh[k]) if k in wsh else None) for k in WITHIN},
            "shares_reported": self.shares is not None,
            "p_positive": self.p_positive,
            "within_shares_reported": self.within_shares is not None,
            "within_p_positive": self.within_p_positive,
            "unobserved_of_total": None if u is None else summary(u),
            "values": {k: summary(v) for k, v in {**self.values, **self.within_values}.items()},
            "v_all": summary(self.v_all),
            "baseline": summary(self.baseline),
            "targeting_value": summary(self.v_all - self.baseline),
            "within_baseline": summary(self.within_baseline),
        }

    def to_frame(self) -> pd.DataFrame:
        rows = {}
        for k in (*PLAYERS, *WITHIN):
            v = self.values.get(k, self.within_values.get(k))
            sh = (self.shares or {}).get(k, (self.within_shares or {}).get(k))
            rows[k] = {"value_mean": float(np.mean(v)),
                       "share_mean": float(np.mean(sh)) if sh is not None else np.nan}
        return pd.DataFrame(rows).T

    def __repr__(self) -> str:
        if self.shares is None:
            return (f"ShapleyResult(payoff={self.payoff!r}, no targeting value to divide: "
                    f"P(v_all > baseline) = {self.p_positive:.2f})")
        inner = ", ".join(f"{k}={float(np.mean(v)):.3f}" for k, v in self.shares.items())
        return f"ShapleyResult(payoff={self.payoff!r}, shares: {inner})"


def _group_codes(h: HoldoutComponents) -> dict:
    """For the coalitions without the customer: the rows' group (0..G-1) within which
    tau_hat(S) is constant, and one row of each group."""
    a = h.arrays
    has_codes = "campaign" in a.codes and "week" in a.codes
    keys = {frozenset({"campaign"}): a.codes.get("campaign"),
            frozenset({"week"}): a.codes.get("week"),
            # an intervention is one campaign in one week
            frozenset({"campaign", "week"}): a.intervention if has_codes else None}
    out = {}
    for s, codes in keys.items():
        if codes is None:  # components given as arrays (no level codes): one group per row
            codes = np.arange(a.n_rows)
        g, _ = pd.factorize(np.asarray(codes))
        _, first = np.unique(g, return_index=True)
        out[s] = (g.astype(np.int64), first)
    return out


def _payoffs(h: HoldoutComponents, payoffs, cost, sl: slice, groups: dict) -> dict:
    """Payoff of every coalition needed, for the draws in ``sl``:
    ``{payoff: {frozenset: ndarray (b,)}}``. Each coalition's tau_hat is built once
    and used by every payoff."""
    a = h.arrays
    w = h.weights(sl)
    block = h.block(sl)
    out = {p: {} for p in payoffs}
    coalitions = [frozenset(s) for r in range(1, 4) for s in combinations(PLAYERS, r)]
    coalitions += [frozenset({"campaign", "week", x}) for x in WITHIN]
    scores = a.scores() if "autoc" in payoffs else None
    args = (a.outcome, a.treatment, a.propensity)
    kw = {"cost": cost, "groups": a.intervention, "weights": w, "mu": a.baseline}
    for s in coalitions:
        tau = block.tau_hat(s, impute_mean=True)
        if "autoc" in payoffs:
            if "customer" in s or s & set(WITHIN):
                out["autoc"][s] = rank_metric_many(scores, tau, "autoc", weights=w)
            else:  # constant within campaigns, weeks or interventions: sort the groups only
                codes, first = groups[s]
                out["autoc"][s] = grouped_autoc_many(scores, codes, tau[:, first], weights=w)
        if "ipw" in payoffs:
            full = len(s) == 3 and "customer" in s
            r = compare_policies_many(*args, tau, **kw,
                                      policies=("random", "model") if full else ("model",))
            out["ipw"][s] = r.net_value["model"]
            if full:  # phi_0: random targeting at the model's share
                out["ipw"][frozenset()] = r.net_value["random"]
        del tau
    if "autoc" in payoffs:
        out["autoc"][frozenset()] = np.zeros(w.shape[0])
    return out


def _result(payoff: str, games: dict) -> ShapleyResult:
    values, _ = shapley_values(lambda s: games[s], PLAYERS)
    cw = frozenset({"campaign", "week"})

    def within_game(s):  # observed + unobserved together are the customer
        return games[frozenset(PLAYERS)] if s == frozenset(WITHIN) else games[cw | s]

    within, _ = shapley_values(within_game, WITHIN)
    v_all = games[frozenset(PLAYERS)]
    baseline = games[frozenset()]
    within_baseline = games[cw]
    shares, p_pos = _shares(values, v_all - baseline)
    wshares, wp_pos = _shares(within, v_all - within_baseline)
    return ShapleyResult(payoff, values, within, v_all, baseline, within_baseline, shares,
                         wshares, p_pos, wp_pos)


def shapley_decompositions(fit, payoffs=PAYOFFS, components: HoldoutComponents | None = None,
                           cost="auto", *, progress: bool = False) -> dict:
    """:func:`shapley_decomposition` for several payoffs in one pass over the draws.

    Each block of draws and each coalition's tau_hat is built once for all the
    payoffs (the same numbers as one call per payoff).

    Returns
    -------
    dict
        ``{payoff: ShapleyResult}`` in the order of ``payoffs``.
    """
    payoffs = tuple(dict.fromkeys(payoffs))
    for p in payoffs:
        check_in("payoff", p, PAYOFFS, "shapley_decomposition")
    h = components if components is not None else holdout_components(fit)
    c = h.arrays.cost if cost == "auto" else (None if cost is None
                                                else np.full(h.n_rows, float(cost)))
    games: dict = {p: {} for p in payoffs}
    groups = _group_codes(h) if "autoc" in payoffs else {}
    label = f"Shapley values ({', '.join(payoffs)})"
    for sl in progress_blocks(h.blocks(), h, progress, label):
        for p, block_games in _payoffs(h, payoffs, c, sl, groups).items():
            for k, v in block_games.items():
                games[p].setdefault(k, []).append(v)
    return {p: _result(p, {k: np.concatenate(v) for k, v in games[p].items()})
            for p in payoffs}


def shapley_decomposition(fit, payoff: str = "ipw",
                          components: HoldoutComponents | None = None,
                          cost="auto", *, progress: bool = False) -> ShapleyResult:
    """Shapley (XPER) decomposition of a targeting payoff over the effect components.

    See the module docstring for the game. Values are always returned; shares
    only when the targeting value v(all) - baseline is positive with posterior
    probability at least 0.9. For both payoffs at once (one pass over the draws)
    use :func:`shapley_decompositions`.

    Parameters
    ----------
    fit : PooledFit or None
        Only used to build the components when ``components`` is None.
    payoff : {"ipw", "autoc"}, default="ipw"
    components : HoldoutComponents, optional
    cost : "auto", float or None, default="auto"
        ``"auto"``: the holdout's campaign costs when there are any (the rule of
        the reported model policy); a constant; None: no cost.

    Returns
    -------
    ShapleyResult
    """
    return shapley_decompositions(fit, (payoff,), components, cost, progress=progress)[payoff]
