"""The fused numba sweep samples the same posterior as the numpy reference."""

import numpy as np
import pytest

from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def data():
    d, _ = simulate_program(600, 6, 16, spec=ProgramSpec(sigma=3.0), mode="model",
                            random_state=4)
    return d


def _fit(data, backend, seed):
    # no holdout: random_state also draws the holdout split, which would change the data
    return PooledModel(n_chains=2, n_warmup=200, n_draws=800, backend=backend, progress=False,
                       random_state=seed, holdout=False).fit(data)


@pytest.mark.slow
def test_numba_and_numpy_agree_in_distribution(data):
    import arviz as az

    a, b = _fit(data, "numba", 1), _fit(data, "numpy", 2)
    for name in ("average_effect", "taubar", "sigma", "sigma_u"):
        xa = a.posterior.posterior[name].values
        xb = b.posterior.posterior[name].values
        se = np.hypot(xa.std() / np.sqrt(az.ess(xa)), xb.std() / np.sqrt(az.ess(xb)))
        assert abs(xa.mean() - xb.mean()) < 4.5 * se, name
        assert 0.75 < xa.std() / xb.std() < 1.33, name


def test_numba_runs_are_deterministic_and_resume_exactly(data, tmp_path):
    kw = dict(n_chains=2, n_warmup=20, n_draws=10, backend="numba", progress=False,
              checkpoint_every=15, random_state=3)
    full = PooledModel(**kw).fit(data)
    again = PooledModel(**kw).fit(data)
    np.testing.assert_array_equal(full.run.theta, again.run.theta)
    ck = tmp_path / "ck.npz"
    PooledModel(**kw).fit(data, checkpoint=ck, stop_after=15)
    resumed = PooledModel(**kw).fit(data, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(full.run.theta, resumed.run.theta)
    np.testing.assert_array_equal(full.customers["mean"], resumed.customers["mean"])


def test_jitted_scale_move_equals_the_numpy_reference():
    """px_draw_alpha_fast draws the same alpha as gibbs_numpy.px_draw_alpha from the same
    random stream, accepted or not (sufficient statistics of simulated customers)."""
    from manylift.sampler.gibbs_numba import px_draw_alpha_fast
    from manylift.sampler.gibbs_numpy import px_draw_alpha
    from manylift.sampler.state import ModelSpec

    spec = ModelSpec()
    gen = np.random.default_rng(0)
    outcomes = set()
    for trial in range(40):
        q, n = 4, 300
        u = gen.normal(0, gen.uniform(0.2, 2.0), (n, q))
        R = gen.normal(size=(n, 20, q))
        RtR = np.einsum("nta,ntb->nab", R, R)
        m = np.einsum("nab,nb->na", RtR, u * gen.uniform(0.3, 3.0)) + gen.normal(size=(n, q))
        A = np.einsum("ni,nj,nij->ij", u, u, RtR)
        b = np.einsum("ni,ni->i", u, m)
        lam = gen.uniform(0.2, 5.0, q)
        a_ref = px_draw_alpha(np.random.default_rng(trial), A, b, lam, spec)
        a_fast = px_draw_alpha_fast(np.random.default_rng(trial), A, b, lam, spec)
        assert (a_ref is None) == (a_fast is None)
        if a_ref is not None:
            np.testing.assert_allclose(a_fast, a_ref, rtol=1e-10)
        outcomes.add(a_ref is None)
    assert outcomes == {True, False}  # both accepted and rejected proposals were compared


@pytest.mark.parametrize("q", [5, 4])
def test_interweaving_statistics_and_algebra_match_the_numpy_reference(q):
    """The interweaving statistics of gather_pass (threads, z = L^-1 u inside) equal
    gibbs_numpy.asis_stats, and the compiled Laplace/acceptance give the numpy reference's
    draw from the same random stream."""
    from manylift.sampler import gibbs_numba as GN
    from manylift.sampler import gibbs_numpy as G
    from manylift.sampler.state import ModelSpec

    gen = np.random.default_rng(5)
    n = 500
    u = gen.normal(size=(n, q))
    X = gen.normal(size=(n, 15, q))
    RtR = np.einsum("nta,ntb->nab", X, X)
    m = np.einsum("nab,nb->na", RtR, u) / 2.0 + gen.normal(size=(n, q))  # sigma^2 = 2
    L = np.linalg.cholesky(np.cov(u.T))
    Linv = np.linalg.inv(L)
    P_ref, h_ref = G.asis_stats(u @ Linv.T, m, RtR)
    # no rows and no fixed effects: gather_pass's m_i is then R_i'y_i, given here as m
    starts = np.zeros(n + 1, np.int64)
    for kernel in (GN.gather_pass, GN._gather_serial):
        m_out, T, hh, Gp, cu = kernel(np.zeros((0, 1), np.uint32), np.zeros((0, q)), starts,
                                      m, np.zeros((n, 0, q)), np.zeros(0), np.zeros(1), u,
                                      GN.rtr_pairs(RtR), GN.asis_needed(q), Linv, True, True,
                                      np.empty((n, q)), 7)
        np.testing.assert_array_equal(m_out, m)
        # the scale move's sums on the current u
        G_ref = np.einsum("ni,nj,nij->ij", u, u, RtR)
        np.testing.assert_allclose(Gp, G_ref[np.triu_indices(q)], rtol=1e-11)
        np.testing.assert_allclose(cu, np.sum(u * m, 0), rtol=1e-11)
        P, h = GN._asis_matrix(T, hh, q)
        np.testing.assert_allclose(P, P_ref, rtol=1e-11)
        np.testing.assert_allclose(h, h_ref, rtol=1e-11)
    spec = ModelSpec()
    accepted = 0
    for seed in range(10):
        a = G.asis_draw(np.random.default_rng(seed), L, P_ref / 2.0, h_ref, spec)
        b = G.asis_draw(np.random.default_rng(seed), L, P_ref / 2.0, h_ref, spec,
                        laplace=GN._asis_laplace, accept=GN._asis_accept)
        assert (a is None) == (b is None)
        if a is not None:
            accepted += 1
            np.testing.assert_allclose(b, a, rtol=1e-8)
    assert accepted >= 5


@pytest.mark.parametrize("q", [5, 4, 3])  # the written-out q = 5, 4 paths and the general one
def test_draw_pass_draws_u_from_its_closed_form(q):
    """u_i = P_i^-1 m_i / s2 + L_i^-T z_i with P_i = Omega^-1 + R_i'R_i / s2 = L_i L_i',
    and the sums G, S, c it returns, against numpy on customers without rows."""
    from manylift.sampler import gibbs_numba as GN

    gen = np.random.default_rng(q)
    n, d, s2 = 300, 3, 1.7
    X = gen.normal(size=(n, 8, q))
    RtR = np.einsum("nta,ntb->nab", X, X)
    DtR = gen.normal(size=(n, d, q))
    m, z = gen.normal(size=(n, q)) * 4, gen.normal(size=(n, q))
    A = gen.normal(size=(q, q))
    omega_inv = A @ A.T + np.eye(q)
    starts = np.zeros(n + 1, np.int64)
    for kernel in (GN.draw_pass, GN._draw_serial):
        u, c, G, S, Fd, Fc = kernel(np.zeros((0, 3), np.uint32), np.zeros((0, q)), starts, RtR,
                                    GN.rtr_pairs(RtR), np.ascontiguousarray(DtR.transpose(1, 2, 0)),
                                    m, omega_inv, s2, z, 5, 4)
        P = omega_inv[None] + RtR / s2
        L = np.linalg.cholesky(P)
        ref = (np.linalg.solve(P, (m / s2)[..., None])[..., 0]
               + np.linalg.solve(np.swapaxes(L, 1, 2), z[..., None])[..., 0])
        np.testing.assert_allclose(u, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(S, u.T @ u, rtol=1e-10)
        np.testing.assert_allclose(G, np.einsum("ni,nj,nij->ij", u, u, RtR), rtol=1e-10)
        np.testing.assert_allclose(c, np.sum(u * m, 0), rtol=1e-10)
        np.testing.assert_allclose(Fd, np.einsum("nka,na->ak", DtR, u), rtol=1e-10)
        assert not Fc.any()


def test_draw_pass_per_cell_sums_of_the_rows():
    """Fc: per joint cell, the sum over its rows of R u (one scatter-add per group and
    row), against numpy's bincount; both kernels, q = 4 (written out) and q = 3."""
    from manylift.sampler import gibbs_numba as GN

    gen = np.random.default_rng(11)
    for q in (5, 4, 3):
        n, n_cells, G = 200, 37, 3
        counts = gen.integers(0, 9, n)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        N = int(starts[-1])
        cells = gen.integers(0, n_cells, (N, G)).astype(np.uint32)
        R = gen.normal(size=(N, q))
        cust = np.repeat(np.arange(n), counts)
        RtR = np.zeros((n, q, q))
        np.add.at(RtR, cust, R[:, :, None] * R[:, None, :])
        DtR = gen.normal(size=(n, 2, q))
        m, z = gen.normal(size=(n, q)), gen.normal(size=(n, q))
        for kernel in (GN.draw_pass, GN._draw_serial):
            u, *_, Fc = kernel(cells, R, starts, RtR, GN.rtr_pairs(RtR),
                               np.ascontiguousarray(DtR.transpose(1, 2, 0)), m, np.eye(q), 1.3,
                               z, n_cells, 3)
            Ru = np.sum(R * u[cust], axis=1)  # R u per row
            ref = sum(np.bincount(cells[:, g], weights=Ru, minlength=n_cells) for g in range(G))
            np.testing.assert_allclose(Fc, ref, rtol=1e-10, atol=1e-12)


def test_gather_pass_m_from_the_rows():
    """m_i = R_i'y_i - D_i'R_i theta_d - sum over i's rows of R_j (F_cat theta)_j, with the
    categorical part a sum of table lookups per row, against numpy (q = 5 and 4 written
    out, 3 the general loop)."""
    from manylift.sampler import gibbs_numba as GN

    gen = np.random.default_rng(12)
    for q in (5, 4, 3):
        n, n_cells, G, d = 150, 23, 3, 2
        counts = gen.integers(0, 7, n)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        N = int(starts[-1])
        cust = np.repeat(np.arange(n), counts)
        cells = gen.integers(0, n_cells, (N, G)).astype(np.uint32)
        R = gen.normal(size=(N, q))
        Rty, DtR = gen.normal(size=(n, q)), gen.normal(size=(n, d, q))
        theta_d, table = gen.normal(size=d), gen.normal(size=n_cells)
        g_row = table[cells].sum(axis=1)
        ref = Rty - np.einsum("nka,k->na", DtR, theta_d)
        for a in range(q):
            ref[:, a] -= np.bincount(cust, weights=R[:, a] * g_row, minlength=n)
        for kernel in (GN.gather_pass, GN._gather_serial):
            m, *_ = kernel(cells, R, starts, Rty, DtR, theta_d, table, np.zeros((n, q)),
                           np.zeros((q * (q + 1) // 2, n)), GN.asis_needed(q), np.eye(q),
                           False, False, np.empty((n, q)), 3)
            np.testing.assert_allclose(m, ref, rtol=1e-10, atol=1e-10)


def test_tail_blocks_are_their_conjugate_draws():
    """_tail (Omega^-1, sigma^2 and theta after the draw pass, compiled) against the
    formulas written with numpy and an explicit K x K posterior precision, from the same
    random numbers: Bartlett's Wishart (gibbs_numpy.sample_wishart from a stream that
    returns them), Gamma via a standard gamma draw / rate, theta = P^-1 b + noise with
    covariance P^-1."""
    from manylift.sampler import gibbs_numba as GN
    from manylift.sampler.gibbs_numpy import sample_wishart

    gen = np.random.default_rng(8)
    q, K, dd, n_cells, N = 4, 9, 2, 6, 500
    F = gen.normal(size=(N, K))
    FtF = F.T @ F
    lam, Q = np.linalg.eigh(FtF)
    y = gen.normal(size=N)
    Fty, yty = F.T @ y, float(y @ y)
    M = (gen.random((n_cells, K)) < 0.4) * gen.normal(size=(n_cells, K))
    row, col = np.nonzero(M)
    Fc, Fd = gen.normal(size=n_cells), gen.normal(size=(q, dd))
    A = gen.normal(size=(q, q))
    S = A @ A.T * 30
    c, G = gen.normal(size=q), np.abs(gen.normal(size=(q, q))) * 5
    theta = gen.normal(size=K)
    chi, nz = gen.chisquare(20, q), gen.normal(size=q * (q - 1) // 2)
    g_std, z_theta = gen.standard_gamma(N / 2), gen.normal(size=K)
    th, s2, oi, ll = GN._tail(S, c, G, Fc, Fd, theta, Q, lam, Fty, yty, row, col, M[row, col],
                              dd, N, np.eye(q), 0.1, 1e-3, chi, nz, g_std, z_theta)

    class Stream:  # hands sample_wishart the same chi-square and normal draws
        def chisquare(self, df):
            return chi

        def standard_normal(self, k):
            return nz[:k]

    np.testing.assert_allclose(oi, sample_wishart(Stream(), 0.0, np.linalg.inv(np.eye(q) + S)),
                               rtol=1e-10)
    sse = float(np.sum((y - F @ theta) ** 2)) - 2 * c.sum() + G.sum()
    np.testing.assert_allclose(s2, (0.1 + sse / 2) / g_std, rtol=1e-9)
    FtRu = M.T @ Fc
    FtRu[:dd] += Fd.sum(axis=0)
    P = FtF / s2 + np.eye(K) * 1e-3
    mean = np.linalg.solve(P, (Fty - FtRu) / s2)
    noise = Q @ (z_theta / np.sqrt(lam / s2 + 1e-3))
    np.testing.assert_allclose(th, mean + noise, rtol=1e-8, atol=1e-10)
    # the noise has covariance P^-1: Q diag(1/prec) Q' = P^-1
    np.testing.assert_allclose(Q @ np.diag(1 / (lam / s2 + 1e-3)) @ Q.T, np.linalg.inv(P),
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ll, -0.5 * N * np.log(2 * np.pi * s2) - 0.5 * sse / s2,
                               rtol=1e-12)
