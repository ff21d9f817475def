"""TOC / AUTOC / Qini: exact identities, known truth, and agreement with EconML."""

import itertools

import numpy as np
import pytest

from manylift._core.errors import DataError, ModelError
from manylift.evaluation import (
    aipw_scores,
    ipw_scores,
    rank_metric,
    rank_metric_many,
    toc_curve,
)
from manylift.evaluation import rank as rank_module


def _brute_force_toc(scores, priority):
    """TOC(i/n) straight from the definition, for distinct priorities."""
    order = np.argsort(-priority)
    top = scores[order]
    return np.array([top[:i].mean() - scores.mean() for i in range(1, len(scores) + 1)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_toc_at_one_is_exactly_zero(seed):
    rng = np.random.default_rng(seed)
    n = 997
    scores = rng.standard_cauchy(n) * 1e3  # heavy tails make rounding errors likely
    priority = rng.integers(0, 20, n)  # many ties
    q, toc = toc_curve(scores, priority)
    assert q[-1] == 1.0 and toc[-1] == 0.0
    r = rank_metric(scores, priority, n_bootstrap=20, random_state=seed)
    assert r.q[-1] == 1.0 and r.toc[-1] == 0.0 and r.toc_std_err[-1] == 0.0
    assert toc_curve(scores, priority, q=[0.5, 1.0])[1][-1] == 0.0


def test_small_example_by_hand():
    scores = np.array([4.0, 0.0, 2.0, 2.0])
    priority = np.array([3.0, 0.0, 2.0, 1.0])
    # sorted scores 4, 2, 2, 0; mean 2; TOC = 2, 1, 2/3, 0
    q, toc = toc_curve(scores, priority)
    np.testing.assert_allclose(toc, [2.0, 1.0, 2 / 3, 0.0], atol=1e-15)
    r = rank_metric(scores, priority, n_bootstrap=0)
    assert r.estimate == pytest.approx((2 + 1 + 2 / 3) / 4, abs=1e-15)
    assert np.isnan(r.std_err)
    qini = rank_metric(scores, priority, kind="qini", n_bootstrap=0)
    assert qini.estimate == pytest.approx((0.25 * 2 + 0.5 * 1 + 0.75 * 2 / 3) / 4, abs=1e-15)
    # Interpolation: TOC(0.375) counts the top unit and half of the next (grf).
    assert toc_curve(scores, priority, q=[0.375])[1][0] == pytest.approx((4 + 0.5 * 2) / 1.5 - 2)


def test_matches_definition_for_distinct_priorities():
    rng = np.random.default_rng(3)
    n = 300
    scores, priority = rng.normal(size=n), rng.normal(size=n)
    expected = _brute_force_toc(scores, priority)
    q, toc = toc_curve(scores, priority)
    np.testing.assert_allclose(toc, expected, atol=1e-12)
    np.testing.assert_allclose(q, np.arange(1, n + 1) / n)
    r = rank_metric(scores, priority, n_bootstrap=0, q=q)
    np.testing.assert_allclose(r.toc, expected, atol=1e-12)  # grid at i/n: no interpolation
    assert r.estimate == pytest.approx(expected.mean(), abs=1e-12)
    k = np.arange(1, n + 1) / n
    qini = rank_metric(scores, priority, kind="qini", n_bootstrap=0)
    assert qini.estimate == pytest.approx(np.mean(k * expected), abs=1e-12)


def test_ties_average_scores_within_groups():
    """grf's rule: tied units share their group's mean score (order-free)."""
    rng = np.random.default_rng(4)
    n = 60
    scores = rng.normal(size=n)
    priority = rng.integers(0, 6, n).astype(float)
    group_mean = {p: scores[priority == p].mean() for p in np.unique(priority)}
    averaged = np.array([group_mean[p] for p in priority])
    # With scores replaced by group means, any order of tied rows gives the same curve.
    order = np.lexsort((rng.random(n), -priority))
    expected = np.cumsum(averaged[order]) / np.arange(1, n + 1) - scores.mean()
    np.testing.assert_allclose(toc_curve(scores, priority)[1], expected, atol=1e-12)
    # ... and permuting the rows changes nothing.
    perm = rng.permutation(n)
    a = rank_metric(scores, priority, n_bootstrap=0).estimate
    b = rank_metric(scores[perm], priority[perm], n_bootstrap=0).estimate
    assert a == pytest.approx(b, abs=1e-13)


def test_ties_equal_average_over_all_orderings():
    """Averaging scores within ties equals averaging the TOC over every tie-break order."""
    scores = np.array([3.0, -1.0, 5.0, 0.5, 2.0])
    priority = np.array([1.0, 1.0, 1.0, 2.0, 0.0])
    curves = []
    for perm in itertools.permutations([0, 1, 2]):
        order = [3, *np.array([0, 1, 2])[list(perm)], 4]
        curves.append(np.cumsum(scores[order]) / np.arange(1, 6) - scores.mean())
    # TOC(i/n) is linear in the scores, so its mean over tie-break orders is the TOC
    # of the group-averaged scores, at every point (and hence the AUTOC and Qini too).
    np.testing.assert_allclose(toc_curve(scores, priority)[1], np.mean(curves, axis=0), atol=1e-12)


def test_null_simulation_autoc_within_three_se(simulate):
    sim = simulate(4000, seed=10, effect="null")
    scores = aipw_scores(sim.y, sim.w, sim.e, sim.mu0, sim.mu1)
    random_priority = np.random.default_rng(11).normal(size=sim.y.size)
    for kind in ("autoc", "qini"):
        r = rank_metric(scores, random_priority, kind=kind, n_bootstrap=200, random_state=0)
        assert abs(r.estimate) < 3 * r.std_err, r
        assert r.std_err > 0


def test_true_effect_priority_is_clearly_positive(simulate):
    sim = simulate(4000, seed=12)
    scores = ipw_scores(sim.y, sim.w, sim.e)
    for kind in ("autoc", "qini"):
        r = rank_metric(scores, sim.tau, kind=kind, n_bootstrap=200, random_state=0)
        assert r.z > 2.5, r
    # The truth: TOC with the true effects as scores is a population quantity we can
    # approximate on a large sample; the estimate must be within 3 SE of it.
    big = simulate(200_000, seed=13)
    truth = rank_metric_many(big.tau, big.tau[None, :])[0]
    r = rank_metric(scores, sim.tau, n_bootstrap=200, random_state=0)
    assert abs(r.estimate - truth) < 3 * r.std_err


def test_rank_metric_many_equals_one_at_a_time_exactly(monkeypatch):
    rng = np.random.default_rng(5)
    n = 501
    scores = rng.normal(size=n)
    priorities = np.vstack(
        [
            rng.normal(size=(4, n)),
            rng.integers(0, 7, size=(3, n)),  # ties
            np.ones((1, n)),  # all tied
        ]
    )
    monkeypatch.setattr(rank_module, "_CHUNK_ELEMENTS", 3 * n)  # several blocks
    for kind in ("autoc", "qini"):
        many = rank_metric_many(scores, priorities, kind=kind)
        single = [rank_metric(scores, p, kind=kind, n_bootstrap=0).estimate for p in priorities]
        np.testing.assert_array_equal(many, single)
    assert many[-1] == pytest.approx(0.0, abs=1e-12)  # a constant priority: no gain


def test_toc_agrees_with_econml_drtester_curve():
    """EconML's validation TOC (econml.validate.utils.calc_uplift) on the same scores."""
    from econml.validate.utils import calc_uplift

    rng = np.random.default_rng(6)
    n = 2000
    scores, priority = rng.normal(size=n) + 0.3, rng.normal(size=n)
    percentiles = np.linspace(5, 95, 19)
    # (Only its uniform critical values use the unseeded global RNG; we compare the rest.)
    _, _, curve = calc_uplift(priority, priority, scores, percentiles, "toc", 50)
    thresholds = np.percentile(priority, percentiles)
    shares = np.array([(priority >= t).mean() for t in thresholds])
    ours = toc_curve(scores, priority, q=shares[::-1])[1][::-1]
    np.testing.assert_allclose(ours, curve["value"].to_numpy(), rtol=1e-10, atol=1e-12)
    # EconML's influence-function SE of each TOC point agrees with our bootstrap SE.
    r = rank_metric(scores, priority, q=shares[::-1], n_bootstrap=400, random_state=1)
    ratio = r.toc_std_err[::-1] / curve["err"].to_numpy()
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio


@pytest.mark.slow
def test_bootstrap_se_matches_sampling_sd(simulate):
    """Half-sample and ordinary bootstrap SEs match the spread over fresh samples."""
    estimates, se_half, se_ord = [], [], []
    for seed in range(150):
        sim = simulate(400, seed=100 + seed)
        scores = ipw_scores(sim.y, sim.w, sim.e)
        r = rank_metric(scores, sim.tau, n_bootstrap=100, random_state=seed)
        estimates.append(r.estimate)
        se_half.append(r.std_err)
        if seed < 40:
            se_ord.append(
                rank_metric(
                    scores, sim.tau, n_bootstrap=100, random_state=seed, bootstrap="ordinary"
                ).std_err
            )
    sd = np.std(estimates, ddof=1)
    assert 0.8 < np.mean(se_half) / sd < 1.25
    assert 0.8 < np.mean(se_ord) / sd < 1.25


def test_cluster_bootstrap_accounts_for_repeated_units():
    rng = np.random.default_rng(7)
    n = 1500
    scores, priority = rng.normal(size=n), rng.normal(size=n)
    once = rank_metric(scores, priority, n_bootstrap=200, random_state=0)
    # Every unit twice: ignoring the clusters understates the SE by about sqrt(2).
    twice_s, twice_p = np.tile(scores, 2), np.tile(priority, 2)
    naive = rank_metric(twice_s, twice_p, n_bootstrap=200, random_state=0)
    clustered = rank_metric(
        twice_s, twice_p, n_bootstrap=200, random_state=0, clusters=np.tile(np.arange(n), 2)
    )
    # (Duplicates are ties, evaluated at both positions, so the point estimate moves a little.)
    assert abs(naive.estimate - once.estimate) < 0.05 * once.std_err
    assert 0.8 < clustered.std_err / once.std_err < 1.25
    assert 1.2 < clustered.std_err / naive.std_err < 1.7


def test_versus_priority_gives_paired_difference(simulate):
    sim = simulate(3000, seed=14)
    scores = ipw_scores(sim.y, sim.w, sim.e)
    noisy = sim.tau + np.random.default_rng(15).normal(scale=0.3, size=sim.y.size)
    alone = rank_metric(scores, sim.tau, random_state=0)
    paired = rank_metric(scores, sim.tau, random_state=0, versus=noisy)
    other = rank_metric(scores, noisy, random_state=0)
    # Adding 'versus' changes neither the estimate nor its bootstrap replicates.
    assert paired.estimate == alone.estimate and paired.std_err == alone.std_err
    assert paired.difference == pytest.approx(alone.estimate - other.estimate, abs=1e-12)
    # Two similar rankings: the paired SE is far below the unpaired one.
    assert paired.difference_std_err < 0.5 * np.hypot(alone.std_err, other.std_err)
    assert paired.to_dict()["difference"] == paired.difference
    # Two random priorities on a null simulation: difference within 3 SE of 0.
    null = simulate(3000, seed=16, effect="null")
    rng = np.random.default_rng(17)
    r = rank_metric(
        ipw_scores(null.y, null.w, null.e), rng.normal(size=3000), versus=rng.normal(size=3000)
    )
    assert abs(r.difference) < 3 * r.difference_std_err
    lo, hi = r.difference_ci()
    assert lo < r.difference < hi


def test_deterministic_given_random_state():
    rng = np.random.default_rng(8)
    scores, priority = rng.normal(size=300), rng.normal(size=300)
    a = rank_metric(scores, priority, n_bootstrap=30, random_state=3)
    b = rank_metric(scores, priority, n_bootstrap=30, random_state=3)
    c = rank_metric(scores, priority, n_bootstrap=30, random_state=4)
    assert a.std_err == b.std_err and a.std_err != c.std_err
    np.testing.assert_array_equal(a.toc_std_err, b.toc_std_err)


def test_result_object():
    rng = np.random.default_rng(9)
    r = rank_metric(rng.normal(size=200), rng.normal(size=200), n_bootstrap=20)
    assert "RankResult(kind='autoc'" in repr(r)
    frame = r.to_frame()
    assert list(frame.columns) == ["kind", "estimate", "std_err", "lo", "hi", "z", "p_value", "n"]
    assert frame.loc[0, "lo"] < r.estimate < frame.loc[0, "hi"]
    curve = r.curve_frame()
    assert list(curve.columns) == ["q", "toc", "std_err", "lo", "hi"]
    q, toc = r.curve
    assert q.shape == toc.shape == (100,)
    with pytest.raises(ValueError):
        r.toc[0] = 1.0  # read-only
    with pytest.raises(AttributeError):
        r.estimate = 0.0  # frozen


def test_bad_inputs_have_clear_messages():
    s = np.zeros(10)
    with pytest.raises(ModelError, match="'kind' parameter of rank_metric must be one of"):
        rank_metric(s, np.arange(10), kind="auuc")
    with pytest.raises(DataError, match="'priority' has 1 non-finite"):
        rank_metric(s, np.r_[np.arange(9.0), np.nan])
    with pytest.raises(DataError, match=r"'scores' has 9 values; expected 10|'priority' must"):
        rank_metric(np.zeros(9), np.arange(10))
    with pytest.raises(DataError, match=r"shape \(D, 10\)"):
        rank_metric_many(s, np.zeros((10, 3)))
    with pytest.raises(ModelError, match="'q' parameter of rank_metric must be strictly"):
        rank_metric(s, np.arange(10), q=[0.5, 0.2])
    with pytest.raises(ModelError, match="'n_bootstrap' parameter"):
        rank_metric(s, np.arange(10), n_bootstrap=1)
    with pytest.raises(DataError, match="at least 4 independent units"):
        rank_metric(np.zeros(3), np.arange(3))


def test_float32_priorities_rank_exactly_as_their_float64_values():
    """The posterior functionals pass float32 blocks through without a copy; every float32
    is a float64 exactly, so sorts, ties and rates must be the same bits."""
    from manylift.evaluation import compare_policies_many, rank_summary_many

    rng = np.random.default_rng(7)
    n, D = 3000, 4
    s = rng.normal(size=n)
    p32 = rng.normal(size=(D, n)).astype(np.float32)
    p32[1] = np.round(p32[1], 1)  # many ties in one row
    p64 = p32.astype(np.float64)
    w = rng.exponential(size=(D, n))
    for kind in ("autoc", "qini"):
        np.testing.assert_array_equal(rank_metric_many(s, p32, kind), rank_metric_many(s, p64, kind))
        np.testing.assert_array_equal(rank_metric_many(s, p32, kind, weights=w),
                                      rank_metric_many(s, p64, kind, weights=w))
    a, b = (rank_summary_many(s, p, weights=w, q=[0.2, 0.5, 1.0]) for p in (p32, p64))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    y = rng.normal(size=n)
    t = (rng.random(n) < 0.5).astype(int)
    a, b = (compare_policies_many(y, t, 0.5, p, cost=0.1, weights=w) for p in (p32, p64))
    for k in ("model", "random", "company"):
        np.testing.assert_array_equal(a.net_value[k], b.net_value[k])
    p32[2, 5] = np.nan
    with pytest.raises(DataError, match="'priorities' has 1 non-finite value.*row\\(s\\) 2"):
        rank_metric_many(s, p32, weights=w)
    w[3, 0] = 0.0
    with pytest.raises(DataError, match="'weights' must be finite and positive; got 1 bad"):
        rank_metric_many(s, p64, weights=w)
