"""Shapley values and variance shares on games and arrays with known answers (no fit)."""

import numpy as np
import pytest

from manylift.decomposition import (
    shapley_decomposition,
    shapley_values,
    variance_shares_from_arrays,
)
from manylift.pooled.holdout import HoldoutComponents


def test_shapley_sums_to_v_all_minus_v_none_exactly():
    rng = np.random.default_rng(0)
    players = ["a", "b", "c", "d"]
    table = {}

    def v(s):
        if s not in table:
            table[s] = rng.normal(size=7) if s else np.zeros(7) + 0.3
        return table[s]

    phi, games = shapley_values(v, players)
    total = sum(phi.values())
    np.testing.assert_allclose(total, games[frozenset(players)] - games[frozenset()],
                               rtol=0, atol=1e-12)


def test_shapley_of_additive_game_is_each_players_own_worth():
    worth = {"a": 2.0, "b": -1.0, "c": 0.5}
    phi, _ = shapley_values(lambda s: np.array([sum(worth[p] for p in s)]), list(worth))
    for p, w in worth.items():
        assert phi[p][0] == pytest.approx(w, abs=1e-12)


def test_shapley_symmetric_interaction_is_split_equally():
    # v = 1 only when both a and b are in: the textbook answer is 1/2 each, 0 for c
    phi, _ = shapley_values(lambda s: np.array([float({"a", "b"} <= s)]), ["a", "b", "c"])
    assert phi["a"][0] == pytest.approx(0.5)
    assert phi["b"][0] == pytest.approx(0.5)
    assert phi["c"][0] == pytest.approx(0.0)


def _components(n=20000, draws=4, seed=0, noise_sd=0.05):
    """Synthetic holdout: tau = 0.2 + campaign + customer; the week player is pure noise."""
    rng = np.random.default_rng(seed)
    campaign = rng.choice([-1.5, 1.5], size=n)
    unobserved = rng.normal(0, 1.5, n)
    observed = rng.normal(0, 1.0, n)
    tau = 0.2 + campaign + unobserved + observed
    y0 = rng.normal(0, 1.0, n)
    w = rng.integers(0, 2, n)
    y = y0 + w * tau
    week_noise = rng.normal(0, noise_sd, (draws, n))  # carries no signal about tau
    rep = lambda x: np.repeat(x[None, :], draws, axis=0)  # noqa: E731
    return HoldoutComponents(
        taubar=np.full(draws, 0.2), campaign=rep(campaign), week=week_noise,
        observed=rep(observed), unobserved=rep(unobserved), outcome=y, treatment=w,
        propensity=np.full(n, 0.5), intervention=np.zeros(n, np.int64),
        campaign_id=np.array(["K1"] * n), draws=np.zeros((draws, 2), np.int64)), tau


@pytest.mark.parametrize("payoff", ["ipw", "autoc"])
def test_player_without_signal_gets_about_zero(payoff):
    h, tau = _components()
    r = shapley_decomposition(None, payoff, components=h)
    total = sum(r.values[k] for k in ("customer", "campaign", "week"))
    np.testing.assert_allclose(total, r.v_all - r.v_none, rtol=0, atol=1e-10)
    share = {k: float(np.mean(v)) for k, v in r.shares.items()}
    assert abs(share["week"]) < 0.03
    assert share["customer"] > 0.3 and share["campaign"] > 0.1
    # within the customer, unobserved (sd 1.5) carries more than observed (sd 1.0)
    assert share["unobserved"] > share["observed"] > 0


def test_ipw_payoff_of_none_is_treat_all_value():
    h, tau = _components(draws=1)
    r = shapley_decomposition(None, "ipw", components=h)
    y, w = h.outcome, h.treatment
    treat_all = np.mean(w * y / 0.5)  # IPW value of treating everyone (taubar > 0)
    assert r.v_none[0] == pytest.approx(treat_all)


def test_variance_shares_closed_form():
    a = np.array([[1.0, -1.0, 1.0, -1.0], [2.0, -2.0, 2.0, -2.0]])
    b = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    c = np.zeros((2, 4))
    r = variance_shares_from_arrays({"a": a, "b": b, "c": c})
    # var(a) = 4/3, 16/3 ; var(b) = 1/3 (ddof=1)
    np.testing.assert_allclose(r.shares["a"], [0.8, 16 / 17])
    np.testing.assert_allclose(r.shares["c"], [0.0, 0.0])
    np.testing.assert_allclose(sum(r.shares.values()), 1.0)
    assert set(r.to_dict()["a"]) == {"mean", "sd", "lo", "hi"}
