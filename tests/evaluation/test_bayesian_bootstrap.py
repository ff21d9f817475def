"""Bayesian-bootstrap weights and the weighted rank metrics, TOC curves and policy values."""

import numpy as np
import pytest
from scipy import stats

from manylift._core.errors import DataError
from manylift.evaluation import (
    bayesian_bootstrap_weights,
    compare_policies_many,
    ipw_scores,
    policy_value,
    policy_value_many,
    random_assignment,
    rank_metric,
    rank_metric_many,
    toc_curve,
    toc_curve_many,
)


def test_weights_are_dirichlet_per_unit_and_do_not_depend_on_blocking():
    units = np.array([0, 0, 1, 2, 3, 4, 4])
    w = bayesian_bootstrap_weights(units, np.arange(4000), random_state=7)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 5] == w[:, 6])  # rows of one unit
    # every row of a unit carries the unit's Dirichlet(1, ..., 1) weight (as a cluster
    # bootstrap repeats all rows of a drawn customer): normalised over the U = 5 units, a
    # unit's weight is Beta(1, U - 1)
    unit_w = np.stack([w[:, 0], w[:, 2], w[:, 3], w[:, 4], w[:, 5]], axis=1)
    g = unit_w / unit_w.sum(axis=1, keepdims=True)
    for k in range(5):
        assert stats.kstest(g[:, k], stats.beta(1, 4).cdf).pvalue > 0.001
    # the same draw index gives the same weights in any block
    again = bayesian_bootstrap_weights(units, [17, 3], random_state=7)
    np.testing.assert_array_equal(again, w[[17, 3]])
    assert not np.array_equal(bayesian_bootstrap_weights(units, [3], random_state=8), w[[3]])
    with pytest.raises(DataError, match="integer codes"):
        bayesian_bootstrap_weights(np.array([0.5, 1.0]), [0])


def _weighted_rate_by_definition(scores, priority, weights, kind="autoc"):
    """sum_k w_k TOC(W_k) straight from the definition (distinct priorities)."""
    order = np.argsort(-priority)
    s, w = scores[order], weights[order] / weights.sum()
    total = np.sum(w * s)
    out = 0.0
    for k in range(s.size):
        wk = w[: k + 1].sum()
        toc = np.sum(w[: k + 1] * s[: k + 1]) / wk - total
        out += w[k] * (toc * wk if kind == "qini" else toc)
    return out


@pytest.mark.parametrize("kind", ["autoc", "qini"])
def test_weighted_rate_matches_definition_and_equal_weights_give_the_unweighted_rate(kind):
    rng = np.random.default_rng(0)
    n = 60
    scores, priority = rng.normal(size=n), rng.normal(size=n)
    w = rng.exponential(size=(3, n))
    got = rank_metric_many(scores, np.tile(priority, (3, 1)), kind, weights=w)
    want = [_weighted_rate_by_definition(scores, priority, w[d], kind) for d in range(3)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    tied = rng.integers(0, 6, size=(4, n)).astype(float)  # many ties
    np.testing.assert_allclose(rank_metric_many(scores, tied, kind, weights=np.ones(n)),
                               rank_metric_many(scores, tied, kind), rtol=0, atol=1e-12)


def test_weighted_rate_does_not_depend_on_the_order_of_tied_units():
    rng = np.random.default_rng(1)
    n = 80
    scores = rng.normal(size=n)
    priority = rng.integers(0, 5, n).astype(float)
    w = rng.exponential(size=n)
    base = rank_metric_many(scores, priority, weights=w)[0]
    for _ in range(5):
        perm = rng.permutation(n)
        again = rank_metric_many(scores[perm], priority[perm], weights=w[perm])[0]
        assert again == pytest.approx(base, abs=1e-12)


def test_weighted_toc_with_integer_weights_equals_the_toc_of_the_repeated_rows():
    rng = np.random.default_rng(2)
    n = 40
    scores = rng.normal(size=n)
    priority = rng.integers(0, 8, n).astype(float)
    counts = rng.integers(1, 4, n)
    q = np.array([0.05, 0.1, 0.33, 0.5, 0.77, 1.0])
    ours = toc_curve_many(scores, priority, q, weights=counts.astype(float))[0]
    expanded = toc_curve(np.repeat(scores, counts), np.repeat(priority, counts), q=q)[1]
    np.testing.assert_allclose(ours, expanded, rtol=0, atol=1e-12)
    np.testing.assert_allclose(toc_curve_many(scores, priority, q)[0],
                               toc_curve(scores, priority, q=q)[1], rtol=0, atol=0)


def test_bayesian_bootstrap_spread_of_autoc_matches_the_ordinary_bootstrap(simulate):
    sim = simulate(3000, seed=4)
    scores = ipw_scores(sim.y, sim.w, sim.e)
    w = bayesian_bootstrap_weights(np.arange(sim.y.size), np.arange(300), random_state=0)
    bb = rank_metric_many(scores, np.tile(sim.tau, (300, 1)), weights=w)
    ordinary = rank_metric(scores, sim.tau, n_bootstrap=300, bootstrap="ordinary")
    assert np.std(bb, ddof=1) == pytest.approx(ordinary.std_err, rel=0.2)
    assert np.mean(bb) == pytest.approx(ordinary.estimate, abs=0.2 * ordinary.std_err)


def test_weighted_policy_value_with_integer_weights_is_the_value_of_the_repeated_rows(simulate):
    sim = simulate(500, seed=5)
    counts = np.random.default_rng(0).integers(1, 4, sim.y.size)
    pi = (sim.tau > 0.5).astype(float)
    ours = policy_value_many(sim.y, sim.w, sim.e, pi[None, :], weights=counts.astype(float))[0]
    rep = policy_value(np.repeat(sim.y, counts), np.repeat(sim.w, counts),
                       np.repeat(sim.e, counts), np.repeat(pi, counts), n_bootstrap=0)
    assert ours == pytest.approx(rep.estimate, rel=1e-12)


def test_compare_policies_company_is_the_weighted_mean_outcome_and_random_matches_counts():
    rng = np.random.default_rng(3)
    n, D = 300, 4
    y, t = rng.normal(10, 3, n), rng.integers(0, 2, n)
    e = rng.uniform(0.3, 0.8, n)
    groups = rng.integers(0, 6, n)
    tau = rng.normal(size=(D, n))
    w = rng.exponential(size=(D, n))
    cost = rng.uniform(0, 0.5, n)
    r = compare_policies_many(y, t, e, tau, cost=cost, groups=groups, weights=w)
    # as randomized: E[IPW] is the outcome itself, so the value is the weighted mean of y
    np.testing.assert_allclose(r.value["company"], (w * y).sum(1) / w.sum(1), rtol=1e-12)
    pi = (tau > cost).astype(float)
    np.testing.assert_allclose(r.value["model"], policy_value_many(y, t, e, pi, weights=w))
    np.testing.assert_allclose(r.net_value["model"],
                               r.value["model"] - (w * pi * cost).sum(1) / w.sum(1))
    pr = random_assignment(pi, groups)
    for g in range(6):
        m = groups == g
        np.testing.assert_allclose(pr[:, m].sum(axis=1), pi[:, m].sum(axis=1))
        assert np.ptp(pr[:, m], axis=1).max() == 0  # uniform within the group
    np.testing.assert_allclose(r.value["random"], policy_value_many(y, t, e, pr, weights=w))
    np.testing.assert_allclose(r.share_targeted["model"], pi.mean(axis=1))


def test_bad_weights_are_rejected_with_the_fix():
    s = np.arange(4.0)
    with pytest.raises(DataError, match="positive"):
        rank_metric_many(s, [[1, 2, 3, 4]], weights=[1.0, 0.0, 1.0, 1.0])
    with pytest.raises(DataError, match="shape"):
        policy_value_many(s, [0, 1, 0, 1], 0.5, [[1, 1, 0, 0]], weights=np.ones((2, 4)))


def test_rank_summary_and_grouped_autoc_equal_the_one_metric_functions():
    from manylift.evaluation import grouped_autoc_many, rank_summary_many

    rng = np.random.default_rng(6)
    n, D, G = 1500, 5, 30
    s = rng.normal(size=n)
    groups = rng.integers(0, G, n)
    values = rng.normal(size=(D, G))
    values[:, 7] = values[:, 8]  # two groups tie
    prio = values[:, groups]
    w = rng.exponential(size=(D, n))
    q = np.linspace(0.05, 1, 20)
    r = rank_summary_many(s, prio, weights=w, q=q)
    np.testing.assert_allclose(r["autoc"], rank_metric_many(s, prio, weights=w), atol=1e-12)
    np.testing.assert_allclose(r["qini"], rank_metric_many(s, prio, "qini", weights=w),
                               atol=1e-12)
    # the equal-weight rates of the compiled kernel against the numpy implementation
    np.testing.assert_allclose(r["autoc_equal"], rank_metric_many(s, prio), atol=1e-12)
    np.testing.assert_allclose(r["qini_equal"], rank_metric_many(s, prio, "qini"), atol=1e-12)
    np.testing.assert_allclose(r["toc"], toc_curve_many(s, prio, q, weights=w), atol=1e-12)
    np.testing.assert_allclose(grouped_autoc_many(s, groups, values, weights=w), r["autoc"],
                               atol=1e-12)
    np.testing.assert_allclose(grouped_autoc_many(s, groups, values), r["autoc_equal"],
                               atol=1e-12)
    with pytest.raises(DataError, match="one priority per group"):
        grouped_autoc_many(s, groups, values[:, :5])
