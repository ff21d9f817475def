"""Shapley / XPER values: games with known answers, brute force, efficiency and the share guard."""

from itertools import permutations

import numpy as np
import pytest

from manylift.decomposition import shapley_decomposition, shapley_decompositions, shapley_values
from manylift.evaluation import bayesian_bootstrap_weights, ipw_scores
from manylift.pooled.holdout import HoldoutArrays, HoldoutComponents, evaluate_policies

PLAYERS = ("customer", "campaign", "week")


def _permutation_shapley(v, players):
    """Average marginal contribution over every order of the players (the definition)."""
    orders = list(permutations(players))
    out = {p: 0.0 for p in players}
    for order in orders:
        s = frozenset()
        for p in order:
            out[p] = out[p] + (v(s | {p}) - v(s)) / len(orders)
            s = s | {p}
    return out


def test_subset_formula_equals_the_average_over_orders():
    rng = np.random.default_rng(0)
    players = ["a", "b", "c", "d"]
    table = {}

    def v(s):
        if s not in table:
            table[s] = rng.normal(size=5)
        return table[s]

    phi, games = shapley_values(v, players)
    brute = _permutation_shapley(v, players)
    for p in players:
        np.testing.assert_allclose(phi[p], brute[p], rtol=0, atol=1e-12)
    # efficiency: the values add up to v(all) - v(none)
    np.testing.assert_allclose(sum(phi.values()), games[frozenset(players)] - games[frozenset()],
                               rtol=0, atol=1e-12)


def test_textbook_games():
    worth = {"a": 2.0, "b": -1.0, "c": 0.5}
    phi, _ = shapley_values(lambda s: np.array([sum(worth[p] for p in s)]), list(worth))
    for p, w in worth.items():  # additive game: each player's own worth
        assert phi[p][0] == pytest.approx(w, abs=1e-12)
    # v = 1 only when both a and b are in: 1/2 each, 0 for the null player c
    phi, _ = shapley_values(lambda s: np.array([float({"a", "b"} <= s)]), ["a", "b", "c"])
    assert [phi[p][0] for p in "abc"] == pytest.approx([0.5, 0.5, 0.0])


def _holdout(n=40, draws=3, seed=0, signal=1.0, cost=None, n_interventions=4, stable=True,
             baseline=False):
    """A small synthetic holdout whose true effect is ``signal`` x the sum of the components.

    ``stable``: the draws share the components (plus a little posterior noise); else each
    draw has components of its own (a model that has learned nothing).
    """
    rng = np.random.default_rng(seed)
    campaign = rng.choice([-1.0, 1.0], size=n)
    unobserved = rng.normal(0, 1.5, n)
    observed = rng.normal(0, 1.0, n)
    week = rng.normal(0, 0.3, n)
    tau = 0.2 + signal * (campaign + unobserved + observed + week)
    e = rng.uniform(0.3, 0.8, n)
    w = (rng.random(n) < e).astype(np.int64)
    y = rng.normal(0, 1.0, n) + w * tau
    noise = lambda: rng.normal(0, 0.2, (draws, n)).astype(np.float32)  # noqa: E731
    rep = lambda x: (np.repeat(x[None, :], draws, axis=0) * stable  # noqa: E731
                     + noise() * (1 if stable else 5)).astype(np.float32)
    arrays = HoldoutArrays(
        outcome=y, treatment=w, propensity=e,
        intervention=rng.integers(0, n_interventions, n).astype(np.int64),
        customer=np.arange(n, dtype=np.int64), campaign_id=np.array(["K1"] * n),
        campaign_share=np.full(n, 0.6), cost=cost if cost is None else np.full(n, cost),
        baseline=rng.normal(0.5, 1.0, n) if baseline else None)
    return HoldoutComponents(arrays=arrays, taubar=np.full(draws, 0.2) + rng.normal(0, .05, draws),
                             campaign=rep(campaign), week=rep(week), observed=rep(observed),
                             unobserved=rep(unobserved), draw_index=np.arange(draws) + 11,
                             random_state=5)


def _brute_force_games(h, payoff, cost):
    """Every coalition's payoff per draw, by loops over rows (independent of the package)."""
    a = h.arrays
    comps = {"campaign": h.campaign, "week": h.week, "observed": h.observed,
             "unobserved": h.unobserved}
    c = np.zeros(h.n_rows) if cost is None else np.full(h.n_rows, cost)
    m = np.zeros(h.n_rows) if a.baseline is None else a.baseline  # AIPW with mu0 = mu1 = m
    weights = bayesian_bootstrap_weights(a.customer, h.draw_index, h.random_state)
    scores = ipw_scores(a.outcome - m, a.treatment, a.propensity)
    games = {}
    for d in range(h.n_draws):
        wd = weights[d] / weights[d].sum()

        def tau_of(parts, d=d):
            t = np.full(h.n_rows, float(h.taubar[d]))
            for name, x in comps.items():
                xd = x[d].astype(np.float64)
                t = t + (xd if name in parts else xd.mean())
            return t

        def ipw_net(pi, wd=wd):
            val = 0.0
            for i in range(h.n_rows):
                r = a.outcome[i] - m[i]
                gamma1 = m[i] + a.treatment[i] * r / a.propensity[i]
                gamma0 = m[i] + (1 - a.treatment[i]) * r / (1 - a.propensity[i])
                val += wd[i] * (pi[i] * gamma1 + (1 - pi[i]) * gamma0 - pi[i] * c[i])
            return val

        def weighted_autoc(t, wd=wd):  # distinct priorities here: sum_k w_k TOC(W_k)
            order = np.argsort(-t)
            s, ww = scores[order], wd[order]
            total = np.sum(ww * s)
            return sum(ww[k] * (np.sum(ww[: k + 1] * s[: k + 1]) / ww[: k + 1].sum() - total)
                       for k in range(s.size))

        def value(parts):
            t = tau_of(parts)
            return ipw_net((t > c).astype(float)) if payoff == "ipw" else weighted_autoc(t)

        coalitions = {frozenset(): set(), frozenset({"customer"}): {"observed", "unobserved"}}
        for s in ({"campaign"}, {"week"}, {"campaign", "week"}):
            coalitions[frozenset(s)] = set(s)
            coalitions[frozenset(s | {"customer"})] = set(s) | {"observed", "unobserved"}
        for x in ("observed", "unobserved"):
            coalitions[frozenset({"campaign", "week", x})] = {"campaign", "week", x}
        for key, parts in coalitions.items():
            games.setdefault(key, []).append(value(parts) if key else None)
        full = tau_of({"campaign", "week", "observed", "unobserved"})
        if payoff == "ipw":  # baseline: random targeting, the model's count per intervention
            pi_model = (full > c).astype(float)
            pi_random = np.empty(h.n_rows)
            for j in np.unique(a.intervention):
                rows = a.intervention == j
                pi_random[rows] = pi_model[rows].sum() / rows.sum()
            games[frozenset()][-1] = ipw_net(pi_random)
        else:
            games[frozenset()][-1] = 0.0  # a random ranking
    return {k: np.array(v, float) for k, v in games.items()}


@pytest.mark.parametrize("payoff,cost,baseline", [("ipw", None, False), ("ipw", 0.4, False),
                                                  ("ipw", 0.4, True), ("autoc", None, False),
                                                  ("autoc", None, True)])
def test_decomposition_equals_brute_force_enumeration(payoff, cost, baseline):
    h = _holdout(cost=cost, baseline=baseline)
    r = shapley_decomposition(None, payoff, components=h)
    games = _brute_force_games(h, payoff, cost)
    brute = _permutation_shapley(lambda s: games[s], PLAYERS)
    for p in PLAYERS:
        np.testing.assert_allclose(r.values[p], brute[p], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r.baseline, games[frozenset()], rtol=1e-4, atol=1e-4)
    # efficiency (the source's property): the values add up to v(all) - baseline
    np.testing.assert_allclose(sum(r.values[p] for p in PLAYERS), r.v_all - r.baseline,
                               rtol=0, atol=1e-9)
    # the within-customer game: campaign and week always in
    cw = frozenset({"campaign", "week"})
    within = _permutation_shapley(
        lambda s: games[frozenset(PLAYERS)] if len(s) == 2 else games[cw | s],
        ("observed", "unobserved"))
    for p in ("observed", "unobserved"):
        np.testing.assert_allclose(r.within_values[p], within[p], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cost,baseline", [(None, False), (0.4, True)])
def test_both_payoffs_in_one_pass_equal_brute_force(cost, baseline):
    """decompose() computes both games in one pass over the draws, each coalition's
    tau_hat built once for both payoffs; over several blocks of draws each game must
    still be the definition's."""
    h = _holdout(n=60, draws=5, seed=4, cost=cost, baseline=baseline)
    h.block_size = 2  # three blocks: 2 + 2 + 1 draws
    both = shapley_decompositions(None, ("ipw", "autoc"), components=h)
    assert list(both) == ["ipw", "autoc"]
    for payoff, r in both.items():
        assert r.payoff == payoff
        games = _brute_force_games(h, payoff, cost)
        brute = _permutation_shapley(lambda s, g=games: g[s], PLAYERS)
        for p in PLAYERS:
            np.testing.assert_allclose(r.values[p], brute[p], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(r.baseline, games[frozenset()], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(r.within_baseline, games[frozenset({"campaign", "week"})],
                                   rtol=1e-4, atol=1e-4)


def test_ipw_payoff_is_the_reported_model_policy_cost_aware():
    h = _holdout(n=400, draws=4, cost=0.5, seed=3, baseline=True)
    r = shapley_decomposition(None, "ipw", components=h)
    p = evaluate_policies(None, components=h)
    assert p.cost_aware
    np.testing.assert_allclose(r.v_all, p.overall["model"]["net_value"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.baseline, p.overall["random"]["net_value"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("payoff", ["ipw", "autoc"])
def test_shares_only_when_there_is_targeting_value(payoff):
    strong = shapley_decomposition(None, payoff, components=_holdout(n=4000, draws=8, seed=1))
    assert strong.shares is not None and strong.p_positive >= 0.9
    total = sum(np.mean(strong.shares[k]) for k in PLAYERS)
    assert total == pytest.approx(1.0, abs=1e-9)
    # the week carries little (sd 0.3 against 1.5 and 1 for the customer's parts)
    assert np.mean(strong.shares["customer"]) > 3 * abs(np.mean(strong.shares["week"]))
    d = strong.to_dict()
    assert d["shares_reported"] and d["customer"]["mean"] == pytest.approx(
        np.mean(strong.shares["customer"]))
    u = strong.unobserved_of_total
    assert u is not None
    np.testing.assert_allclose(u, strong.shares["customer"] * strong.within_shares["unobserved"])
    # no signal: the outcome does not depend on the components at all
    none = shapley_decomposition(None, payoff,
                                 components=_holdout(n=4000, draws=40, seed=2, signal=0.0,
                                                     stable=False))
    assert none.p_positive < 0.9 and none.shares is None
    d = none.to_dict()
    assert not d["shares_reported"] and d["customer"] is None and d["unobserved_of_total"] is None
    assert set(d["values"]) == {"customer", "campaign", "week", "observed", "unobserved"}
