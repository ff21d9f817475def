"""The numpy reference sweep against closed forms and an independent dense design."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from manylift.pooled.build import build_inputs
from manylift.sampler import gibbs_numpy as G
from manylift.sampler.state import ModelSpec, State
from manylift.simulate.program import simulate_program


@pytest.fixture(scope="module")
def design():
    data, _ = simulate_program(300, 5, 10, random_state=3)
    return build_inputs(data).design, data


def _dense_F(design):
    """An independent dense F: one-hot columns via pandas, effect-coded by hand."""
    cols = [design.dense]
    for b in range(len(design.n_levels)):
        L = design.n_levels[b]
        oh = pd.get_dummies(pd.Categorical(design.codes[:, b], categories=range(L))).to_numpy(float)
        eff = oh[:, : L - 1] - oh[:, [L - 1]]
        if design.times_w[b]:
            eff = eff * design.w[:, None]
        cols.append(eff)
    return np.column_stack(cols)


def test_products_match_a_dense_design(design, rng):
    des, _ = design
    F = _dense_F(des)
    np.testing.assert_allclose(des.FtF, F.T @ F, atol=1e-9)
    theta = rng.normal(size=des.K)
    np.testing.assert_allclose(des.F_dot(theta), F @ theta, atol=1e-10)
    r = rng.normal(size=des.n_rows)
    np.testing.assert_allclose(des.Ft_dot(r), F.T @ r, atol=1e-9)


def test_theta_block_matches_the_conjugate_posterior(design, rng):
    """Fixed effects only (u = 0), known sigma: the theta draws have the closed-form
    posterior N((F'F/s2 + I/v)^-1 F'y/s2, (F'F/s2 + I/v)^-1)."""
    des, _ = design
    F = _dense_F(des)
    sigma2, v = 4.0, 1000.0
    theta_true = rng.normal(0, 1, des.K)
    y = F @ theta_true + rng.normal(0, 2.0, des.n_rows)
    des2 = dataclasses.replace(des, y=y)
    P = F.T @ F / sigma2 + np.eye(des.K) / v
    cov = np.linalg.inv(P)
    mean = cov @ (F.T @ y) / sigma2
    spec = ModelSpec(expansion=False)
    state = State(np.zeros(des.K), sigma2, np.eye(des.q) * 1e12, np.zeros((des.n_customers, des.q)))
    draws = []
    for _ in range(2000):
        # only the theta block is used: reset sigma2 and u after every sweep
        new, _ = G.step(rng, state, des2, spec)
        draws.append(new.theta)
    draws = np.array(draws)
    z = (draws.mean(0) - mean) / np.sqrt(np.diag(cov) / len(draws))
    assert np.abs(z).max() < 4.5
    sd_ratio = draws.std(0) / np.sqrt(np.diag(cov))
    assert np.all(np.abs(sd_ratio - 1) < 0.12)


def test_wishart_draws_have_the_right_mean(rng):
    scale = np.array([[1.0, 0.3], [0.3, 0.5]])
    draws = np.array([G.sample_wishart(rng, 7.0, scale) for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(0), 7.0 * scale, rtol=0.05, atol=0.05)


def test_scale_move_leaves_a_gaussian_posterior_unchanged(rng):
    """Plain Gibbs and the parameter-expanded sweep sample the same posterior."""
    data, _ = simulate_program(400, 5, 12, random_state=5)
    des = build_inputs(data).design
    out = {}
    for expansion in (False, True):
        spec = ModelSpec(expansion=expansion)
        st = G.init(np.random.default_rng(1), des, spec)
        r = np.random.default_rng(2)
        su = []
        for s in range(1500):
            st, _ = G.step(r, st, des, spec)
            if s >= 300:
                su.append(np.sqrt(np.linalg.inv(st.omega_inv)[0, 0]))
        out[expansion] = np.array(su)
    import arviz as az

    se = [x.std() / np.sqrt(az.ess(x[None])) for x in out.values()]
    diff = out[True].mean() - out[False].mean()
    assert abs(diff) < 4 * np.hypot(*se)
