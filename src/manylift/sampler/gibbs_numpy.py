"""The readable numpy reference of the Gibbs sweep (docs/pooled.md).

Pure functions in the BlackJAX shape: ``init(rng, design, spec) -> State`` and
``step(rng, state, design, spec) -> (State, Info)``.  Blocks per sweep:
theta | rest, sigma^2 | rest, Omega^-1 | u, (Omega, u) | z (interweaving, ``spec.interweave``),
every u_i | rest, then the scale move (``spec.expansion``).  The JAX backend
(:mod:`manylift.sampler.gibbs_jax`) implements the same conditionals and must
agree with this one in distribution.

References
----------
Rossi, McCulloch and Allenby (1996); Web Appendix A.2.1 of "Learning from Many
Experiments" (the full conditionals used here).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from manylift.sampler.design import Design
from manylift.sampler.state import Info, ModelSpec, State

__all__ = ["init", "step", "sample_wishart", "px_scale_step", "px_draw_alpha", "px_log_density",
           "asis_step", "asis_stats", "asis_log_density", "asis_draw"]

try:  # the small algebra below is also compiled by the numba backend (plain Python here)
    from numba.extending import register_jitable
except ImportError:  # pragma: no cover
    def register_jitable(f):
        return f


def sample_wishart(rng: np.random.Generator, df: float, scale: np.ndarray) -> np.ndarray:
    """One draw of Wishart(df, scale) (scale-matrix parameterisation) by Bartlett's method.

    Written by hand because scipy's ``wishart.rvs`` cannot share our Generator
    stream (needed for bit-identical resume) and the JAX backend needs the same
    construction.
    """
    q = scale.shape[0]
    L = np.linalg.cholesky(scale)
    A = np.zeros((q, q))
    A[np.diag_indices(q)] = np.sqrt(rng.chisquare(df - np.arange(q)))
    il = np.tril_indices(q, -1)
    A[il] = rng.standard_normal(len(il[0]))
    LA = L @ A
    return LA @ LA.T


def init(rng: np.random.Generator, design: Design, spec: ModelSpec) -> State:
    """Dispersed starting values: theta near 0, sigma^2 from y, u ~ N(0, Omega0).

    Omega0 = s0^2 I with s0 = 0.2 sd(y) times a random factor: a starting scale of the
    customer effects comparable to the data's.  (Starting u near 0 would make the first
    Omega draw tiny and leave sigma_u stuck near zero for many sweeps.)
    """
    q = design.q
    sd_y = float(np.std(design.y)) or 1.0
    theta = rng.normal(0, 0.1 * sd_y, design.K)
    sigma2 = float(sd_y**2 * rng.uniform(0.5, 1.5))
    s0 = 0.2 * sd_y * np.sqrt(rng.uniform(0.5, 2.0))
    omega_inv = np.eye(q) / s0**2
    u = rng.normal(0, s0, (design.n_customers, q))
    return State(theta, sigma2, omega_inv, u)


@register_jitable  # also compiled by the numba backend (gibbs_numba._px_laplace)
def px_log_density(beta, Lam_diag, A, b, nu, c):
    """log f(beta) of the scale move, its gradient and Hessian (beta = log alpha)."""
    a = np.exp(beta)
    Aa = A @ a
    t = Lam_diag / c * np.exp(-2 * beta)
    f = -nu * beta.sum() - 0.5 * t.sum() - 0.5 * a @ Aa + a @ b
    g = -nu + t - a * Aa + a * b
    H = np.diag(-2 * t - a * Aa + a * b) - A * np.outer(a, a)
    return f, g, H


def px_scale_step(rng, u, omega_inv, RtR, m, sigma2, spec, n_newton: int = 12):
    """Parameter-expanded scale move for the customer effects (marginal augmentation).

    Moves ``(u, Omega) -> (D u, D Omega D)`` with ``D = diag(alpha)`` drawn from
    its exact conditional under the joint posterior (the generalised Gibbs move
    of Liu and Sabatti 2000 on the group of positive diagonal scalings, with
    its Haar measure), so the posterior is unchanged while the scale of u and
    Omega moves together.  This is what breaks the strong u <-> Omega coupling
    that makes plain Gibbs mix slowly for sigma_u (Liu and Wu 1999; Gelman,
    van Dyk, Huang and Boscardin 2008).  In ``beta = log alpha``

        log f = -nu sum(beta) - 1/2 sum(Lambda_kk e^{-2 beta_k} / c)
                - 1/2 alpha' A alpha + alpha' b,
        A = sum_i (u_i u_i') o R_i'R_i / sigma^2,   b = sum_i u_i o m_i,

    with ``m_i = R_i'(y_i - F_i theta) / sigma^2``.  It is sampled by an
    independence Metropolis-Hastings step from its Laplace approximation
    (translation-equivariant in beta, so the move stays valid), which costs
    O(n q^2) and no pass over the rows.
    """
    A = np.einsum("ni,nj,nij->ij", u, u, RtR) / sigma2
    b = np.einsum("ni,ni->i", u, m)
    alpha = px_draw_alpha(rng, A, b, np.diag(omega_inv).copy(), spec, n_newton)
    if alpha is None:
        return u, omega_inv, False
    return u * alpha, omega_inv / np.outer(alpha, alpha), True


def px_draw_alpha(rng, A, b, lam, spec, n_newton: int = 12):
    """The scale of the move: Newton to the mode of log f in beta = log alpha, then one
    independence Metropolis-Hastings step from the Laplace approximation.

    Returns ``alpha`` (q,) when the proposal is accepted, None otherwise.  Shared by the
    numpy and numba backends (the sufficient statistics ``A``, ``b`` differ only in how
    they are accumulated).
    """
    q = b.shape[0]
    nu, c = spec.wishart_df(q), spec.wishart_scale_diag
    beta = np.zeros(q)
    for _ in range(n_newton):
        _, g, H = px_log_density(beta, lam, A, b, nu, c)
        try:
            step_ = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return None
        beta = beta - np.clip(step_, -1.0, 1.0)
    _, _, H = px_log_density(beta, lam, A, b, nu, c)
    try:
        Lp = np.linalg.cholesky(-H)
    except np.linalg.LinAlgError:
        return None
    z = rng.standard_normal(q)
    prop = beta + solve_triangular(Lp.T, z, lower=False)
    log_u = np.log(rng.uniform())

    def logq(x):
        d = Lp.T @ (x - beta)
        return -0.5 * d @ d

    f_prop = px_log_density(prop, lam, A, b, nu, c)[0]
    f_cur = px_log_density(np.zeros(q), lam, A, b, nu, c)[0]
    log_ratio = (f_prop - logq(prop)) - (f_cur - logq(np.zeros(q)))
    if np.isfinite(log_ratio) and log_u < log_ratio:
        return np.exp(prop)
    return None


# ---------------------------------------------------------------------------
# ancillarity-sufficiency interweaving (ASIS) for (Omega, u)
# ---------------------------------------------------------------------------
def asis_stats(Z: np.ndarray, m: np.ndarray, RtR: np.ndarray):
    """Sufficient statistics of the non-centred likelihood in L (lower-triangular order).

    With u_i = L z_i, ``sum_rows (r - R L z_i)^2 / (2 s2)`` is, up to a constant,
    ``1/2 ell'P ell - h'ell`` in ``ell`` = the lower-triangular entries of L
    (``np.tril_indices`` order), with ``P[(a,b),(c,d)] = sum_i z_ib z_id R_i'R_i[a,c] / s2``
    and ``h[(a,b)] = sum_i m_ia z_ib``.  This returns ``P * s2`` and ``h`` for
    ``m_i = R_i'(y_i - F_i theta) / s2``.
    """
    q = Z.shape[1]
    ia, ib = np.tril_indices(q)
    full = np.einsum("nb,nd,nac->abcd", Z, Z, RtR, optimize=True)
    return full[ia, ib][:, ia, ib], (m.T @ Z)[ia, ib]


@register_jitable
def _unpack_lower(ell, q):
    L = np.zeros((q, q))
    k = 0
    for a in range(q):
        for b in range(a + 1):
            L[a, b] = ell[k]
            k += 1
    return L


@register_jitable
def _lower_inverse(L):
    """Inverse of a lower-triangular matrix by forward substitution."""
    q = L.shape[0]
    M = np.zeros((q, q))
    for j in range(q):
        M[j, j] = 1.0 / L[j, j]
        for a in range(j + 1, q):
            s = 0.0
            for k in range(j, a):
                s += L[a, k] * M[k, j]
            M[a, j] = -s / L[a, a]
    return M


@register_jitable
def _prior_part(ell, q, nu, s_inv):
    """log density over L (any signs on the diagonal) of Omega = L L' when
    Omega^-1 ~ Wishart(nu, S), S = I / s_inv, with the Jacobian of L -> L L', and its
    gradient in ``ell``:  sum_k (q - k - nu - q - 1) log|L_kk| - s_inv/2 ||L^-1||_F^2."""
    L = _unpack_lower(ell, q)
    grad = np.zeros(ell.size)
    for k in range(q):
        if L[k, k] == 0.0:
            return -np.inf, grad
    M = _lower_inverse(L)
    val = 0.0
    for a in range(q):
        for b in range(q):
            val -= 0.5 * s_inv * M[a, b] * M[a, b]
    Oinv = M.T @ M
    G = s_inv * (Oinv @ M.T)  # d/dL of -s_inv/2 tr(M'M), M = L^-1
    k = 0
    for a in range(q):
        for b in range(a + 1):
            grad[k] = G[a, b]
            if a == b:
                ck = (q - a) - (nu + q + 1)
                val += ck * np.log(abs(L[a, a]))
                grad[k] += ck / L[a, a]
            k += 1
    return val, grad


@register_jitable
def asis_log_density(ell, P, h, q, nu, s_inv):
    """log p(L | z, theta, sigma^2, y) up to a constant, and its gradient in ``ell``."""
    g, grad = _prior_part(ell, q, nu, s_inv)
    Pl = P @ ell
    return -0.5 * (ell @ Pl) + h @ ell + g, grad - Pl + h


@register_jitable
def _asis_hessian(ell, P, q, nu, s_inv):
    """-P plus the Hessian of the prior part, analytic: with M = L^-1 and A = M'M, the
    gradient of -s_inv/2 ||M||_F^2 is s_inv A M', whose derivative along E = e_c e_d' is
    -s_inv (M'E'AM' + AEMM' + AM'E'M'); the log-diagonal terms add -c_k / L_kk^2.  (Was
    central differences of the gradient: 20 gradients per Hessian; tested equal.)"""
    p = ell.size
    L = _unpack_lower(ell, q)
    M = _lower_inverse(L)
    Mt = M.T.copy()
    A = Mt @ M
    AMt = A @ Mt
    MMt = M @ Mt
    ia = np.empty(p, np.int64)
    ib = np.empty(p, np.int64)
    k = 0
    for a in range(q):
        for b in range(a + 1):
            ia[k] = a
            ib[k] = b
            k += 1
    H = -P.copy()
    for j in range(p):
        c, d = ia[j], ib[j]
        for i in range(p):
            a, b = ia[i], ib[i]
            H[i, j] -= s_inv * (Mt[a, d] * AMt[c, b] + A[a, c] * MMt[d, b]
                                + AMt[a, d] * Mt[c, b])
    for k in range(q):
        j = k * (k + 1) // 2 + k
        H[j, j] -= ((q - k) - (nu + q + 1)) / (L[k, k] * L[k, k])
    return 0.5 * (H + H.T)


@register_jitable
def asis_laplace(P, h, q, nu, s_inv, n_newton):
    """Mode of the density of L (Newton from the likelihood's mode) and the Cholesky factor
    of minus its Hessian there; ``ok`` is False when either fails."""
    mode = np.linalg.solve(P, h)
    for _ in range(n_newton):
        val, grad = asis_log_density(mode, P, h, q, nu, s_inv)
        if not np.isfinite(val):
            return mode, P, False
        H = _asis_hessian(mode, P, q, nu, s_inv)
        mode = mode - np.linalg.solve(H, grad)
    val, _ = asis_log_density(mode, P, h, q, nu, s_inv)
    H = _asis_hessian(mode, P, q, nu, s_inv)
    if not np.isfinite(val) or not np.all(np.isfinite(H)):
        return mode, P, False
    return mode, np.linalg.cholesky(-H), True  # raises LinAlgError unless -H is PD


@register_jitable
def asis_accept(mode, Lp, z, l_cur, P, h, q, nu, s_inv):
    """Proposal ``mode + Lp^-T z`` and its independence Metropolis-Hastings log ratio."""
    prop = mode + np.linalg.solve(Lp.T, z)
    f_prop = asis_log_density(prop, P, h, q, nu, s_inv)[0]
    f_cur = asis_log_density(l_cur, P, h, q, nu, s_inv)[0]
    d_prop = Lp.T @ (prop - mode)
    d_cur = Lp.T @ (l_cur - mode)
    return prop, (f_prop + 0.5 * (d_prop @ d_prop)) - (f_cur + 0.5 * (d_cur @ d_cur))


def asis_draw(rng, L, P, h, spec, laplace=asis_laplace, accept=asis_accept, n_newton: int = 4):
    """The interweaving move on L given z: a new lower-triangular L (or None if rejected).

    ``P`` and ``h`` are the statistics of :func:`asis_stats` already divided by sigma^2
    (``P``).  Independence Metropolis-Hastings from the Laplace approximation of the exact
    conditional (the prior and Jacobian terms make it non-Gaussian), so the move leaves
    the posterior unchanged.  ``laplace``/``accept`` are the two pieces of algebra, passed
    in so the numba backend can use compiled copies of the same functions.
    """
    q = L.shape[0]
    nu, s_inv = float(spec.wishart_df(q)), 1.0 / float(spec.wishart_scale_diag)
    try:
        mode, Lp, ok = laplace(P, h, q, nu, s_inv, n_newton)
    except np.linalg.LinAlgError:
        return None
    if not ok:
        return None
    z = rng.standard_normal(h.shape[0])
    log_u = np.log(rng.uniform())
    ia, ib = np.tril_indices(q)
    prop, log_ratio = accept(mode, Lp, z, L[ia, ib].copy(), P, h, q, nu, s_inv)
    if np.isfinite(log_ratio) and log_u < log_ratio:
        out = np.zeros((q, q))
        out[ia, ib] = prop
        return out
    return None


def asis_step(rng, u, omega_inv, RtR, m, sigma2, spec):
    """Ancillarity-sufficiency interweaving for (Omega, u) (Yu and Meng 2011).

    The Omega^-1 | u draw is the sufficient-augmentation step.  This is the ancillary one:
    with Omega = L L' (L lower-triangular) and z_i = L^-1 u_i, whose prior N(0, I) does
    not involve Omega, draw L from its conditional given z (and theta, sigma^2, y), then
    map back, u_i = L z_i and Omega = L L'.  Given z the likelihood is Gaussian in the
    entries of L (:func:`asis_stats`); the inverse-Wishart prior of Omega and the
    Jacobian of L -> L L' are not, so the draw is an independence Metropolis-Hastings
    step from the Laplace approximation.  When each customer's data are weak, Omega | u
    moves little per sweep while Omega | z moves freely: measured here (2,000 customers),
    the effective draws per sweep of the covariate-slope variances and covariances of
    Omega rose from 0.001-0.008 to 0.02-0.16.

    ``m_i = R_i'(y_i - F_i theta) / sigma^2``.  Returns ``(u, omega_inv, accepted)``.
    """
    L = np.linalg.cholesky(np.linalg.inv(omega_inv))
    Z = solve_triangular(L, u.T, lower=True).T
    P, h = asis_stats(Z, m, RtR)
    L_new = asis_draw(rng, L, P / sigma2, h, spec)
    if L_new is None:
        return u, omega_inv, False
    M = _lower_inverse(L_new)
    return Z @ L_new.T, M.T @ M, True


def random_part(design: Design, u: np.ndarray) -> np.ndarray:
    """``R u`` per row: u_{i(row)}' R_row."""
    return np.einsum("nq,nq->n", design.R, u[design.customer])


def numerical_failure(block: str, exc: Exception):
    """The error a sweep raises when a block's linear algebra fails (the docs promise the
    block's name, not a traceback from inside numpy)."""
    from manylift._core.errors import SamplerError

    return SamplerError(
        f"The sampler failed in block {block} ({type(exc).__name__}: {exc}). This usually "
        f"means non-finite or extreme values in the outcome or covariates, or a design the "
        f"data do not identify; check the data with `manylift validate`, or rescale the "
        f"outcome.")


def step(rng: np.random.Generator, state: State, design: Design, spec: ModelSpec):
    """One sweep (the blocks of the module docstring); returns ``(State, Info)``."""
    block = ["theta"]  # the block being drawn, named in the error if one fails
    try:
        return _step(rng, state, design, spec, block)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        raise numerical_failure(block[0], exc) from None


def _step(rng, state: State, design: Design, spec: ModelSpec, block: list):
    theta, sigma2, omega_inv, u = state
    y = design.y
    N, q, n = design.n_rows, design.q, design.n_customers
    # 1. theta | rest  ~ N(P^-1 b, P^-1), P = V0^-1 + F'F / s2, b = F'(y - Ru) / s2
    yr = y - random_part(design, u)
    P = design.FtF / sigma2 + np.eye(design.K) / spec.theta_prior_var
    b = design.Ft_dot(yr) / sigma2
    L = np.linalg.cholesky(P)
    mean = cho_solve((L, True), b)
    theta = mean + solve_triangular(L.T, rng.standard_normal(design.K), lower=False)
    block[0] = "sigma^2"
    # 2. 1/sigma^2 | rest ~ Gamma(a0 + N/2, scale = 1 / (1/b0 + SSE/2))
    fixed = design.F_dot(theta)
    e = yr - fixed
    sse = float(e @ e)
    prec = rng.gamma(spec.sigma_shape + N / 2, 1.0 / (1.0 / spec.sigma_scale + sse / 2))
    sigma2 = 1.0 / prec
    block[0] = "Omega^-1"
    # 3. Omega^-1 | u ~ Wishart(df0 + n, (B0^-1 + S_u)^-1)
    S = u.T @ u
    scale = np.linalg.inv(np.linalg.inv(spec.wishart_scale(q)) + S)
    omega_inv = sample_wishart(rng, spec.wishart_df(q) + n, (scale + scale.T) / 2)
    block[0] = "u"
    # 4. u_i | rest ~ N(P_i^-1 m_i, P_i^-1), P_i = Omega^-1 + R_i'R_i / s2, m_i = R_i'(y_i - F_i theta)/s2
    ry = y - fixed
    m = np.column_stack([np.bincount(design.customer, weights=design.R[:, k] * ry, minlength=n)
                         for k in range(q)]) / sigma2
    block[0] = "interweaving move"
    if spec.interweave:  # 3b. (Omega, u) through z = L^-1 u; u is redrawn next
        u, omega_inv, _ = asis_step(rng, u, omega_inv, design.RtR, m, sigma2, spec)
    block[0] = "u"
    Pi = omega_inv[None] + design.RtR / sigma2
    Li = np.linalg.cholesky(Pi)
    z = rng.standard_normal((n, q))
    mu = np.linalg.solve(Pi, m[..., None])[..., 0]
    # x = L^-T z has covariance (L L')^-1 = P^-1
    u = mu + np.linalg.solve(np.swapaxes(Li, -1, -2), z[..., None])[..., 0]
    block[0] = "scale move"
    if spec.expansion:
        u, omega_inv, _ = px_scale_step(rng, u, omega_inv, design.RtR, m, sigma2, spec)
    # log-likelihood kernel of the outcome equation at the new state
    e2 = ry - random_part(design, u)
    sse2 = float(e2 @ e2)
    loglik = -0.5 * N * np.log(2 * np.pi * sigma2) - 0.5 * sse2 / sigma2
    return State(theta, sigma2, omega_inv, u), Info(loglik=loglik, sse=sse2)
