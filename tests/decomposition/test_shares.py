"""Finite-population sds and their shares against closed-form cases (no fit)."""

import numpy as np
import pytest

from manylift.decomposition import heterogeneity_shares, variance_shares_from_arrays
from manylift.pooled.holdout import HoldoutArrays, HoldoutComponents


def _levels(codes, effects):
    return np.asarray(effects, float)[codes]


def _lambda_sd(codes, effects):
    """The source's s_p = sqrt(sum_j lambda_j (gamma_j - gamma_bar)^2), lambda_j the row shares."""
    lam = np.bincount(codes, minlength=len(effects)) / codes.size
    g = np.asarray(effects, float)
    gbar = lam @ g
    return np.sqrt(lam @ (g - gbar) ** 2)


def test_shares_are_the_normalised_component_sds():
    n = 12
    camp = np.array([0] * 6 + [1] * 3 + [2] * 3)  # lambda = 1/2, 1/4, 1/4
    week = np.array([0, 1] * 6)
    cell = np.array([0, 0, 0, 1] * 3)
    u = np.array([3.0, -1.0, 0.5, 2.0, -2.5, 1.0, 0.0, -0.5, 1.5, -3.0, 2.5, -1.5])
    camp_eff = [[1.0, -1.0, 3.0], [2.0, -2.0, 6.0]]  # draw 2 doubles draw 1
    week_eff = [[0.5, -0.5], [0.25, -0.25]]
    cell_eff = [[-1.0, 3.0], [0.0, 4.0]]
    comps = {
        "campaign": np.stack([_levels(camp, e) for e in camp_eff]),
        "week": np.stack([_levels(week, e) for e in week_eff]),
        "observed": np.stack([_levels(cell, e) for e in cell_eff]),
        "unobserved": np.stack([u, 2 * u]),
    }
    arrays = HoldoutArrays(outcome=np.zeros(n), treatment=np.arange(n) % 2,
                           propensity=np.full(n, 0.5), intervention=np.zeros(n, np.int64),
                           customer=np.arange(n, dtype=np.int64), campaign_id=np.array(["K"] * n),
                           campaign_share=np.full(n, 0.5))
    h = HoldoutComponents(arrays=arrays, taubar=np.zeros(2), **comps)
    r = heterogeneity_shares(None, h)
    want = {
        "campaign": [_lambda_sd(camp, e) for e in camp_eff],
        "week": [_lambda_sd(week, e) for e in week_eff],
        "observed": [_lambda_sd(cell, e) for e in cell_eff],
        # the random effect: the sample sd over customers, divisor n - 1
        "unobserved": [np.sqrt(np.sum((x - x.mean()) ** 2) / (n - 1)) for x in (u, 2 * u)],
    }
    # by hand: gamma_bar = 0.5 - 0.25 + 0.75 = 1, s = sqrt(0.25 * 4 + 0.25 * 4) = sqrt(2)
    assert want["campaign"] == pytest.approx([np.sqrt(2), 2 * np.sqrt(2)])
    total = sum(np.array(v) for v in want.values())
    total2 = sum(np.array(v) ** 2 for v in want.values())
    for k, s in want.items():
        np.testing.assert_allclose(r.sd[k], s, rtol=1e-12)
        np.testing.assert_allclose(r.sd_share[k], np.array(s) / total, rtol=1e-12)
        np.testing.assert_allclose(r.variance_share[k], np.array(s) ** 2 / total2, rtol=1e-12)
    np.testing.assert_allclose(sum(r.sd_share.values()), 1.0)
    d = r.to_dict()
    assert set(d) == {"sd_share", "sd", "variance_share", "sd_observed_parts"}
    assert set(d["sd_share"]["unobserved"]) == {"mean", "sd", "lo", "hi"}


def test_sd_share_and_variance_share_differ_as_the_source_says():
    # four components with sds 5.77, 2.84, 0.35, 0.54 (the source's Table 4): the sd shares
    # are 60.8 / 29.9 / 3.7 / 5.7 %, the variance shares 79.7 / 19.3 / 0.3 / 0.7 %
    rng = np.random.default_rng(0)
    base = rng.normal(size=200_000)
    base = (base - base.mean()) / base.std()
    comps = {k: (s * base)[None, :] for k, s in
             zip(("unobserved", "observed", "week", "campaign"), (5.77, 2.84, 0.35, 0.54))}
    r = variance_shares_from_arrays(comps)
    got = {k: float(v[0]) for k, v in r.sd_share.items()}
    assert got == pytest.approx({"unobserved": 0.608, "observed": 0.299, "week": 0.037,
                                 "campaign": 0.057}, abs=0.001)
    assert float(r.variance_share["unobserved"][0]) == pytest.approx(
        5.77**2 / (5.77**2 + 2.84**2 + 0.35**2 + 0.54**2), abs=1e-4)
