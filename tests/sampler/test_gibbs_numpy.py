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
    data, _ = simulate_program(300, 5, 10, mode="model", random_state=3)
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


@pytest.mark.parametrize("max_joint_cells", [1 << 16, 64, 1])
def test_joint_cells_reproduce_the_dense_design(design, rng, max_joint_cells):
    """The joint-cell layout (one lookup per group and row) gives the same F theta and
    F' r as an independent dense F, however the code columns are grouped."""
    from manylift.sampler.design import joint_cells

    des, _ = design
    F = _dense_F(des)
    d = des.dense.shape[1]
    jc = joint_cells(des, max_joint_cells)
    M = jc.cell_matrix(des.K)
    cells = jc.cells + jc.cell_offsets[:-1, None]
    assert cells.shape[0] == len(jc.groups) and cells.max() < M.shape[0]
    assert all(2 * nj <= max(max_joint_cells, 2 * max(des.n_levels)) for nj in jc.n_joint)
    theta = rng.normal(size=des.K)
    table = M @ theta
    np.testing.assert_allclose(des.dense @ theta[:d] + table[cells].sum(0), F @ theta,
                               atol=1e-10)
    r = rng.normal(size=des.n_rows)
    per_cell = np.bincount(cells.ravel(), weights=np.tile(r, cells.shape[0]),
                           minlength=M.shape[0])
    Ftr = M.T @ per_cell
    Ftr[:d] += des.dense.T @ r
    np.testing.assert_allclose(Ftr, F.T @ r, atol=1e-9)


def test_joint_cells_need_effect_coded_treatment(design):
    from manylift._core.errors import ModelError
    from manylift.sampler.design import joint_cells

    des, _ = design
    bad = dataclasses.replace(des, w=des.w * 2)
    with pytest.raises(ModelError, match="-1/2, \\+1/2"):
        joint_cells(bad)


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


@pytest.mark.parametrize("moves", [(True, False), (False, True), (True, True)],
                         ids=["scale", "interweave", "both"])
def test_redundant_moves_leave_the_posterior_unchanged(moves):
    """Plain Gibbs and the sweeps with the scale move and/or the interweaving move sample
    the same posterior: sigma_u and Omega's slope variance agree within Monte Carlo error."""
    import arviz as az

    data, _ = simulate_program(400, 5, 12, mode="model", random_state=5)
    des = build_inputs(data).design
    out = {}
    for key, (expansion, interweave) in (("plain", (False, False)), ("moves", moves)):
        spec = ModelSpec(expansion=expansion, interweave=interweave)
        st = G.init(np.random.default_rng(1), des, spec)
        r = np.random.default_rng(2)
        draws = []
        for s in range(2500 if key == "plain" else 1500):
            st, _ = G.step(r, st, des, spec)
            if s >= 300:
                Om = np.linalg.inv(st.omega_inv)
                draws.append([np.sqrt(Om[0, 0]), Om[1, 1]])
        out[key] = np.array(draws)
    for k in range(2):
        xa, xb = out["plain"][:, k], out["moves"][:, k]
        se = np.hypot(xa.std() / np.sqrt(az.ess(xa[None])), xb.std() / np.sqrt(az.ess(xb[None])))
        assert abs(xa.mean() - xb.mean()) < 4 * se, k


def _asis_problem(seed, q=3, n=60, rows=12):
    """Small simulated customers: rows R_i, residuals r_i, z_i, for the interweaving move."""
    gen = np.random.default_rng(seed)
    R = gen.normal(size=(n, rows, q))
    L_true = np.tril(gen.normal(0, 0.4, (q, q)), -1) + np.diag(gen.uniform(0.5, 1.5, q))
    Z = gen.normal(size=(n, q))
    sigma2 = 1.5
    r = np.einsum("ntq,nq->nt", R, Z @ L_true.T) + gen.normal(0, np.sqrt(sigma2), (n, rows))
    RtR = np.einsum("nta,ntb->nab", R, R)
    m = np.einsum("nta,nt->na", R, r) / sigma2
    return R, r, Z, RtR, m, sigma2


def test_interweaving_density_matches_an_independent_computation():
    """log p(L | z, ...) differences equal those of the Gaussian likelihood over the rows
    plus scipy's inverse-Wishart density of L L' plus the Jacobian of L -> L L'."""
    from scipy.stats import invwishart

    q = 3
    R, r, Z, RtR, m, sigma2 = _asis_problem(0, q)
    spec = ModelSpec(wishart_scale_diag=2.0)
    nu, s_inv = spec.wishart_df(q), 1 / spec.wishart_scale_diag
    P, h = G.asis_stats(Z, m, RtR)
    ia, ib = np.tril_indices(q)

    def independent(L):
        U = Z @ L.T
        resid = r - np.einsum("ntq,nq->nt", R, U)
        loglik = -0.5 * np.sum(resid**2) / sigma2
        # Omega^-1 ~ Wishart(nu, S)  <=>  Omega ~ InvWishart(nu, S^-1), S = scale_diag * I
        prior = invwishart(df=nu, scale=np.eye(q) * s_inv).logpdf(L @ L.T)
        jac = sum((q - k) * np.log(abs(L[k, k])) for k in range(q))
        return loglik + prior + jac

    gen = np.random.default_rng(1)
    Ls = [np.tril(gen.normal(0, 0.3, (q, q)), -1) + np.diag(gen.uniform(0.4, 1.6, q) *
                                                            gen.choice([-1, 1], q))
          for _ in range(4)]
    f = [G.asis_log_density(L[ia, ib], P / sigma2, h, q, nu, s_inv)[0] for L in Ls]
    ref = [independent(L) for L in Ls]
    np.testing.assert_allclose(np.diff(f), np.diff(ref), rtol=1e-9, atol=1e-8)
    # and the analytic gradient against central differences
    ell = Ls[0][ia, ib]
    _, grad = G.asis_log_density(ell, P / sigma2, h, q, nu, s_inv)
    num = [(G.asis_log_density(ell + e, P / sigma2, h, q, nu, s_inv)[0]
            - G.asis_log_density(ell - e, P / sigma2, h, q, nu, s_inv)[0]) / 2e-6
           for e in np.eye(ell.size) * 1e-6]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-5)


def test_interweaving_kernel_has_the_exact_conditional_as_its_stationary_law():
    """q = 1: the conditional of L given z is a 1-D density; repeating the move (z fixed)
    must reproduce its mean and sd, computed by quadrature."""
    q = 1
    _, _, Z, RtR, m, sigma2 = _asis_problem(3, q, n=8, rows=3)
    spec = ModelSpec()
    nu, s_inv = spec.wishart_df(q), 1 / spec.wishart_scale_diag
    P, h = G.asis_stats(Z, m, RtR)
    P = P / sigma2
    grid = np.concatenate([-np.geomspace(8, 1e-3, 40000), np.geomspace(1e-3, 8, 40000)])
    logf = np.array([G.asis_log_density(np.array([x]), P, h, q, nu, s_inv)[0] for x in grid])
    w = np.exp(logf - logf.max()) * np.gradient(grid)
    mean = np.sum(w * grid) / w.sum()
    sd = np.sqrt(np.sum(w * (grid - mean) ** 2) / w.sum())
    rng = np.random.default_rng(4)
    L = np.array([[1.0]])
    draws, accepted = [], 0
    for _ in range(6000):
        new = G.asis_draw(rng, L, P, h, spec)
        if new is not None:
            L, accepted = new, accepted + 1
        draws.append(L[0, 0])
    draws = np.array(draws[500:])
    import arviz as az

    mcse = draws.std() / np.sqrt(az.ess(draws[None]))
    assert accepted > 1000
    assert abs(draws.mean() - mean) < 4 * mcse
    assert abs(draws.std() / sd - 1) < 0.08


def test_interweaving_hessian_equals_finite_differences_of_the_gradient():
    """The analytic Hessian of log p(L | z, ...) in the entries of L equals central
    differences of its gradient (asis_log_density's, itself tested against an independent
    density), at random lower-triangular L with either sign on the diagonal."""
    from manylift.sampler import gibbs_numpy as G

    gen = np.random.default_rng(4)
    for q in (1, 2, 4):
        p = q * (q + 1) // 2
        ia, ib = np.tril_indices(q)
        for _ in range(4):
            L = np.tril(gen.normal(size=(q, q)))
            L[np.diag_indices(q)] = gen.choice([-1, 1], q) * gen.uniform(0.5, 2.5, q)
            ell = L[ia, ib]
            B = gen.normal(size=(p, p))
            P, h = B @ B.T + np.eye(p), gen.normal(size=p)
            nu, s_inv = q + 2.0, gen.uniform(0.5, 2.0)
            H = G._asis_hessian(ell, P, q, nu, s_inv)
            fd = np.empty((p, p))
            for j in range(p):
                eps = 1e-6 * max(1.0, abs(ell[j]))
                e = np.zeros(p)
                e[j] = eps
                fd[:, j] = (G.asis_log_density(ell + e, P, h, q, nu, s_inv)[1]
                            - G.asis_log_density(ell - e, P, h, q, nu, s_inv)[1]) / (2 * eps)
            np.testing.assert_allclose(H, (fd + fd.T) / 2, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_failing_block_is_named_not_a_numpy_traceback(design, backend):
    """An outcome whose square overflows (here bypassing ExperimentData, which refuses it)
    stops the sampler with a SamplerError that names the block, never a LinAlgError or
    ValueError from inside numpy."""
    from manylift._core.errors import SamplerError
    from manylift.sampler.backends import get_backend
    from manylift.sampler.driver import SamplerSettings, run_sampler

    des, _ = design
    y = des.y.copy()
    y[3] = 1e300
    bad = dataclasses.replace(des, y=y)
    with np.errstate(all="ignore"), pytest.raises(SamplerError, match=r"block [A-Za-z^\-1 ,]+"):
        run_sampler(get_backend(backend, bad, ModelSpec(), 1),
                    SamplerSettings(n_chains=1, n_warmup=3, n_draws=3), progress=False)
