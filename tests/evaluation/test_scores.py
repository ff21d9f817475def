"""IPW / AIPW scores: closed forms, unbiasedness on known truth, multi-arm reduction."""

import numpy as np
import pytest

from manylift._core.errors import DataError
from manylift.evaluation import (
    aipw_scores,
    ipw_scores,
    multiarm_aipw_scores,
    multiarm_ipw_scores,
)


def test_closed_form():
    y = np.array([3.0, 1.0, 2.0])
    w = np.array([1, 0, 1])
    e = np.array([0.5, 0.25, 0.8])
    np.testing.assert_allclose(ipw_scores(y, w, e), [6.0, -1 / 0.75, 2.5])
    mu0, mu1 = np.array([1.0, 1.0, 0.0]), np.array([2.0, 2.0, 1.0])
    expected = mu1 - mu0 + np.array([(3 - 2) / 0.5, -(1 - 1) / 0.75, (2 - 1) / 0.8])
    np.testing.assert_allclose(aipw_scores(y, w, e, mu0, mu1), expected)
    # bool treatment and scalar propensity are accepted
    np.testing.assert_allclose(ipw_scores(y, w.astype(bool), 0.5), [6.0, -2.0, 4.0])


def test_means_are_unbiased_for_the_ate(simulate):
    sim = simulate(20_000, seed=1)
    truth = sim.tau.mean()
    ipw = ipw_scores(sim.y, sim.w, sim.e)
    aipw = aipw_scores(sim.y, sim.w, sim.e, sim.mu0, sim.mu1)
    for s in (ipw, aipw):
        assert abs(s.mean() - truth) < 3 * s.std() / np.sqrt(s.size)
    assert aipw.std() < 0.7 * ipw.std()  # the outcome model removes most of the noise
    # Doubly robust: a wrong outcome model with the right propensity is still unbiased.
    wrong = aipw_scores(sim.y, sim.w, sim.e, sim.mu0 + 3.0, sim.mu1 - 2.0)
    assert abs(wrong.mean() - truth) < 3 * wrong.std() / np.sqrt(wrong.size)


def test_multiarm_with_two_arms_equals_binary(simulate):
    sim = simulate(500, seed=2)
    e = np.column_stack([1 - sim.e, sim.e])
    np.testing.assert_allclose(
        multiarm_ipw_scores(sim.y, sim.w, e)[:, 0], ipw_scores(sim.y, sim.w, sim.e), rtol=1e-14
    )
    mu = np.column_stack([sim.mu0, sim.mu1])
    np.testing.assert_allclose(
        multiarm_aipw_scores(sim.y, sim.w, e, mu)[:, 0],
        aipw_scores(sim.y, sim.w, sim.e, sim.mu0, sim.mu1),
        rtol=1e-13,
    )


def test_multiarm_recovers_each_arm_effect():
    rng = np.random.default_rng(3)
    n = 30_000
    x = rng.normal(size=n)
    probs = np.array([0.5, 0.3, 0.2])
    arm = rng.choice(3, size=n, p=probs)
    effects = np.array([0.0, 1.0, -0.5])
    mu = np.column_stack([x + effects[k] for k in range(3)])
    y = mu[np.arange(n), arm] + rng.normal(size=n)
    for scores in (multiarm_ipw_scores(y, arm, probs), multiarm_aipw_scores(y, arm, probs, mu)):
        assert scores.shape == (n, 2)
        se = scores.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(scores.mean(axis=0) - effects[1:]) < 3 * se)


def test_bad_inputs_have_clear_messages():
    y = np.ones(4)
    with pytest.raises(
        DataError, match=r"'treatment' must hold only 0 .* 2 row\(s\).*2 \(1 rows\)"
    ):
        ipw_scores(y, [0, 1, 2, 3], 0.5)
    with pytest.raises(DataError, match=r"'propensity' must be strictly between 0 and 1; got 2"):
        ipw_scores(y, [0, 1, 0, 1], [0.5, 0.0, 1.0, 0.5])
    with pytest.raises(DataError, match="'outcome' has 1 non-finite"):
        ipw_scores([1.0, np.nan, 1.0, 1.0], [0, 1, 0, 1], 0.5)
    with pytest.raises(DataError, match="'treatment' has 3 values; expected 4"):
        ipw_scores(y, [0, 1, 0], 0.5)
    with pytest.raises(DataError, match="'mu1' has 2 values"):
        aipw_scores(y, [0, 1, 0, 1], 0.5, 0.0, [1.0, 2.0])
    with pytest.raises(DataError, match="rows must sum to 1"):
        multiarm_ipw_scores(y, [0, 1, 2, 0], [0.5, 0.3, 0.3])
    with pytest.raises(DataError, match=r"integer arm codes 0..2"):
        multiarm_ipw_scores(y, [0, 1, 3, 0], [0.5, 0.3, 0.2])
