"""Closed-form gain from personalization (Shchetkina and Berman, section 3).

Two arms A and B with potential outcomes

    (Y^A, Y^B) ~ N((mu_A, mu_B), sigma^2 [[1, rho], [rho, 1]])          (eq. 3)

The gain of the oracle personalized policy (give each unit its better arm)
over the best uniform arm is the mean of a rectified normal (eqs. 4-7):

    gain(mu_A, mu_B) = (mu_A - mu_B)[1 - Phi(d / v)] + v phi(d / v),
    d = mu_B - mu_A >= 0,  v = sigma sqrt(2 (1 - rho)).

With arm means drawn i.i.d. from N(M, s^2) the expected gain (Proposition 3,
eq. 11) has a closed form, because Y^A - Y^B is then N(0, 2 s^2 + v^2) and
mu_A - mu_B is N(0, 2 s^2):

    E[gain] = E[max(Y^A, Y^B)] - E[max(mu_A, mu_B)]
            = (sqrt(s^2 + sigma^2 (1 - rho)) - s) / sqrt(pi).

The same argument gives m arms with equicorrelated outcomes and normal arm
means: max_a Y^a = common factor + max of m i.i.d. N(0, s^2 + sigma^2(1 - rho))
draws, so E[gain] = e_m (sqrt(s^2 + sigma^2 (1 - rho)) - s), with e_m the
expected maximum of m standard normals (e_2 = 1 / sqrt(pi)).  This is the
no-prediction-error, normal-F case of Algorithm 1 and is what the Monte Carlo
of :mod:`manylift.personalize.montecarlo` is tested against.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats

from manylift._core.checks import check_positive_int
from manylift._core.errors import ModelError

__all__ = [
    "two_arm_gain",
    "two_arm_gain_derivatives",
    "expected_two_arm_gain",
    "expected_max_normal",
    "expected_gain_normal",
]


def _check_nonneg(name: str, value, where: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ModelError(
            f"The {name!r} parameter of {where} must be a finite number >= 0; got {value!r} instead."
        )
    return arr


def _check_rho(rho, where: str, n_arms: int = 2) -> np.ndarray:
    arr = np.asarray(rho, dtype=float)
    lower = -1.0 / (n_arms - 1)
    if not np.all(np.isfinite(arr)) or np.any(arr < lower) or np.any(arr > 1):
        raise ModelError(
            f"The 'rho' parameter of {where} must be in [{lower:.3g}, 1] (an equicorrelation "
            f"matrix of {n_arms} arms is positive semi-definite only there); got {rho!r} instead."
        )
    return arr


def two_arm_gain(mu_a, mu_b, sigma, rho):
    """Expected gain of oracle personalization over the best of two arms (eq. 7).

    Parameters
    ----------
    mu_a, mu_b : float or array
        Population mean outcome under each arm.  The formula is symmetric: the
        better arm is the benchmark whichever it is.
    sigma : float or array
        Within-arm standard deviation of the (actionable) potential outcomes.
    rho : float or array
        Correlation of a unit's two potential outcomes, in [-1, 1].

    Returns
    -------
    float or ndarray
        ``E[max(Y^A, Y^B)] - max(mu_A, mu_B)``, in outcome units (>= 0).

    References
    ----------
    Shchetkina, A. and Berman, R. (2024). When Is Heterogeneity Actionable for
    Personalization? Equation (7).

    Examples
    --------
    >>> round(float(two_arm_gain(0.0, 0.0, 1.0, 0.0)), 4)   # sqrt(2) * phi(0)
    0.5642
    """
    sigma = _check_nonneg("sigma", sigma, "two_arm_gain")
    rho = _check_rho(rho, "two_arm_gain")
    d = np.abs(np.asarray(mu_b, dtype=float) - np.asarray(mu_a, dtype=float))
    v = sigma * np.sqrt(2.0 * (1.0 - rho))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(v > 0, d / np.where(v > 0, v, 1.0), np.inf)
        out = -d * stats.norm.sf(z) + v * stats.norm.pdf(z)
    out = np.where(v > 0, out, 0.0)  # no spread of Y^A - Y^B: the better arm wins for everyone
    return float(out) if out.ndim == 0 else out


def two_arm_gain_derivatives(mu_a, mu_b, sigma, rho) -> dict[str, float]:
    """Analytic partial derivatives of eq. (7) (Propositions 1 and 2, Lemma 2).

    Returns ``{"sigma": sqrt(2(1-rho)) phi(d/v) (> 0), "rho": -sigma phi(d/v) / sqrt(2(1-rho))
    (< 0), "d": Phi(d/v) - 1 (< 0)}`` where ``d = |mu_B - mu_A|`` and
    ``v = sigma sqrt(2(1-rho))``.

    References
    ----------
    Shchetkina and Berman (2024), Appendix A.1.
    """
    sigma = float(_check_nonneg("sigma", sigma, "two_arm_gain_derivatives"))
    rho = float(_check_rho(rho, "two_arm_gain_derivatives"))
    if sigma <= 0 or rho >= 1:
        raise ModelError(
            "two_arm_gain_derivatives needs sigma > 0 and rho < 1 (the gain is not "
            f"differentiable at v = 0); got sigma={sigma!r}, rho={rho!r}."
        )
    d = abs(float(mu_b) - float(mu_a))
    t = np.sqrt(2.0 * (1.0 - rho))
    v = sigma * t
    pdf = float(stats.norm.pdf(d / v))
    # d gain / d rho = (d gain / d t) (d t / d rho) = sigma phi * (-1 / t)
    return {"sigma": t * pdf, "rho": -sigma * pdf / t, "d": float(stats.norm.cdf(d / v)) - 1.0}


def expected_two_arm_gain(sigma: float, rho: float, s: float, method: str = "closed_form") -> float:
    """Expected two-arm gain when the arm means are i.i.d. N(M, s^2) (Proposition 3).

    Parameters
    ----------
    sigma, rho : float
        As in :func:`two_arm_gain`.
    s : float
        Standard deviation of the arm means (variation in average responses).
    method : {"closed_form", "quadrature"}, default="closed_form"
        ``"closed_form"``: ``(sqrt(s^2 + sigma^2 (1 - rho)) - s) / sqrt(pi)``.
        ``"quadrature"``: integrate eq. (7) over ``d ~ |N(0, 2 s^2)|`` (eq. 11)
        numerically; used to check the closed form.

    Returns
    -------
    float
        The expected gain in outcome units; it does not depend on M.

    References
    ----------
    Shchetkina and Berman (2024), eq. (11) and Proposition 3.

    Examples
    --------
    >>> round(expected_two_arm_gain(1.0, 0.5, 0.5), 4)
    0.2065
    """
    sigma = float(_check_nonneg("sigma", sigma, "expected_two_arm_gain"))
    s = float(_check_nonneg("s", s, "expected_two_arm_gain"))
    rho = float(_check_rho(rho, "expected_two_arm_gain"))
    if method == "closed_form":
        return float((np.sqrt(s**2 + sigma**2 * (1.0 - rho)) - s) / np.sqrt(np.pi))
    if method == "quadrature":
        if s == 0:
            return float(two_arm_gain(0.0, 0.0, sigma, rho))
        scale = np.sqrt(2.0) * s  # d = mu_B - mu_A ~ N(0, 2 s^2); |d| half-normal
        value, _ = integrate.quad(
            lambda x: float(two_arm_gain(0.0, x, sigma, rho)) * 2.0 * stats.norm.pdf(x, scale=scale),
            0.0,
            np.inf,
            epsabs=1e-12,
            epsrel=1e-10,
            limit=200,
        )
        return float(value)
    raise ModelError(
        f"The 'method' parameter of expected_two_arm_gain must be one of "
        f"['closed_form', 'quadrature']; got {method!r} instead."
    )


def expected_max_normal(n_arms: int) -> float:
    """Expected maximum of ``n_arms`` i.i.d. standard normal draws (e_m).

    Examples
    --------
    >>> round(expected_max_normal(2), 4)   # 1 / sqrt(pi)
    0.5642
    """
    m = check_positive_int("n_arms", n_arms, "expected_max_normal")
    if m == 1:
        return 0.0
    value, _ = integrate.quad(
        lambda x: x * m * stats.norm.pdf(x) * stats.norm.cdf(x) ** (m - 1),
        -np.inf,
        np.inf,
        epsabs=1e-12,
        epsrel=1e-10,
    )
    return float(value)


def expected_gain_normal(sigma: float, rho: float, s: float, n_arms: int) -> float:
    """Expected oracle gain with ``n_arms`` arms whose means are i.i.d. N(M, s^2).

    ``e_m (sqrt(s^2 + sigma^2 (1 - rho)) - s)``: the population limit of
    Algorithm 1 (no prediction error) with a normal F.  Equals
    :func:`expected_two_arm_gain` for two arms.

    Parameters
    ----------
    sigma, rho, s : float
        Within-arm sd, cross-arm correlation (>= -1/(n_arms - 1)), sd of arm means.
    n_arms : int
        Number of arms m >= 1.

    References
    ----------
    Shchetkina and Berman (2024), Algorithm 1 (this closed form follows from
    its normal case; it is not stated in the paper).

    Examples
    --------
    >>> round(expected_gain_normal(1.0, 0.5, 0.5, 2), 4)   # = expected_two_arm_gain(1.0, 0.5, 0.5)
    0.2065
    """
    m = check_positive_int("n_arms", n_arms, "expected_gain_normal")
    sigma = float(_check_nonneg("sigma", sigma, "expected_gain_normal"))
    s = float(_check_nonneg("s", s, "expected_gain_normal"))
    rho = float(_check_rho(rho, "expected_gain_normal", max(m, 2)))
    return expected_max_normal(m) * float(np.sqrt(s**2 + sigma**2 * (1.0 - rho)) - s)
