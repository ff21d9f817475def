"""A multi-arm randomized experiment with known personalization parameters.

Unit i has covariates x_i ~ N(0, I_p) and, under arm a,

    Y_i^a = mu_a + h^a(x_i) + eta_i,     eta_i ~ N(0, sigma_eps^2),

where the covariate-explained parts h^a are normal with sd ``sigma`` and
pairwise correlation ``rho`` across arms (the model of Shchetkina and Berman,
eq. 3, with the parameters their section 5.2 estimates):

    h^a(x) = sigma (sqrt(rho) g_0(x) + sqrt(1 - rho) g_a(x))          (rho >= 0)

with g_0, g_1, ..., g_m standardized functions of *different* covariates
(so independent); for rho < 0 the Cholesky factor of the equicorrelation
matrix mixes g_1..g_m.  ``sigma_eps`` is the sd of the part of the outcome no
covariate explains, i.e. the out-of-sample residual sd of a perfect outcome
model, which an estimated sigma_eps approaches from above.  The arm means
have sample sd (ddof=1) exactly ``s`` unless given.  Arms are assigned
uniformly at random (or with ``arm_probabilities``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_positive_int
from manylift._core.errors import ModelError
from manylift._core.rng import as_generator

__all__ = ["MultiArmExperiment", "simulate_multiarm"]


@dataclass(frozen=True)
class MultiArmExperiment:
    """A simulated multi-arm experiment and its truth.

    Attributes
    ----------
    data : pandas.DataFrame
        Columns ``x1..xp`` (covariates), ``arm`` (label), ``outcome``.
    potential_outcomes : ndarray of shape (n, m)
        ``mu_a + h^a(x_i)``: the covariate-explained potential outcomes
        (without the unexplainable noise eta).
    arms : list of str
        Arm labels in column order of ``potential_outcomes``; ``arms[0]`` is
        the control.
    truth : dict
        ``sigma``, ``rho``, ``s``, ``sigma_eps``, ``n_arms``, ``arm_means``
        (dict arm -> mu_a), ``best_arm``, ``oracle_gain`` (mean over the
        sample of max_a potential outcome minus max_a mu_a).
    """

    data: pd.DataFrame
    potential_outcomes: np.ndarray = field(repr=False)
    arms: list
    truth: dict

    def to_frame(self) -> pd.DataFrame:
        return self.data

    def __repr__(self) -> str:
        t = self.truth
        return (
            f"MultiArmExperiment(n={len(self.data)}, arms={self.arms}, sigma={t['sigma']:.3g}, "
            f"rho={t['rho']:.3g}, s={t['s']:.3g}, sigma_eps={t['sigma_eps']:.3g}, "
            f"oracle_gain={t['oracle_gain']:.3g})"
        )


def simulate_multiarm(
    n: int = 10_000,
    n_arms: int = 3,
    *,
    sigma: float = 1.0,
    rho: float = 0.5,
    s: float = 0.5,
    sigma_eps: float = 1.0,
    mean: float = 0.0,
    arm_means=None,
    n_noise_covariates: int = 2,
    nonlinear: bool = False,
    arm_probabilities=None,
    random_state=0,
) -> MultiArmExperiment:
    """Simulate a randomized multi-arm experiment with known sigma, rho, s, sigma_eps.

    Parameters
    ----------
    n : int, default=10_000
        Units.
    n_arms : int, default=3
        Arms m >= 2, labelled ``"control", "arm_1", ..., "arm_{m-1}"``.
    sigma : float, default=1.0
        Sd of each arm's covariate-explained potential outcome h^a(x).
    rho : float, default=0.5
        Correlation of h^a(x) and h^b(x), in (-1/(m-1), 1].
    s : float, default=0.5
        Sample sd (ddof=1) of the arm means; they are evenly spaced around
        ``mean``, in arm order, unless ``arm_means`` is given.
    sigma_eps : float, default=1.0
        Sd of the outcome noise no covariate explains.
    mean : float, default=0.0
        Centre of the arm means.
    arm_means : array of shape (n_arms,), default=None
        Explicit arm means (then ``s`` is recomputed from them).
    n_noise_covariates : int, default=2
        Extra covariates unrelated to the outcome.
    nonlinear : bool, default=False
        Use ``g(x) = (x^2 - 1) / sqrt(2)`` (mean 0, sd 1, not normal) instead of
        ``g(x) = x``; sigma and rho keep their meaning.
    arm_probabilities : array of shape (n_arms,), default=None
        Assignment probabilities (default equal).
    random_state : int, Generator or None, default=0

    Returns
    -------
    MultiArmExperiment

    References
    ----------
    Shchetkina and Berman (2024), eq. (3) and section 5.2.

    Examples
    --------
    >>> exp = simulate_multiarm(n=2000, n_arms=3, sigma=1.0, rho=0.3, s=0.2, random_state=1)
    >>> exp.data.shape
    (2000, 8)
    >>> round(exp.truth["s"], 6)
    0.2
    """
    where = "simulate_multiarm"
    n = check_positive_int("n", n, where, minimum=2)
    m = check_positive_int("n_arms", n_arms, where, minimum=2)
    n_noise = check_positive_int("n_noise_covariates", n_noise_covariates, where, minimum=0)
    for name, v in (("sigma", sigma), ("s", s), ("sigma_eps", sigma_eps)):
        if not np.isfinite(v) or v < 0:
            raise ModelError(f"The {name!r} parameter of {where} must be >= 0; got {v!r} instead.")
    lower = -1.0 / (m - 1)
    if not np.isfinite(rho) or not lower < rho <= 1:
        raise ModelError(
            f"The 'rho' parameter of {where} must be in ({lower:.3g}, 1] for {m} arms; got {rho!r} instead."
        )
    if arm_means is None:
        grid = np.linspace(-1.0, 1.0, m)
        mu = mean + s * grid / grid.std(ddof=1)
    else:
        mu = np.asarray(arm_means, dtype=float).reshape(-1)
        if mu.shape[0] != m or not np.all(np.isfinite(mu)):
            raise ModelError(
                f"The 'arm_means' parameter of {where} must hold {m} finite numbers; got {arm_means!r}."
            )
    if arm_probabilities is None:
        probs = np.full(m, 1.0 / m)
    else:
        probs = np.asarray(arm_probabilities, dtype=float).reshape(-1)
        if probs.shape[0] != m or np.any(probs <= 0) or not np.isclose(probs.sum(), 1.0):
            raise ModelError(
                f"The 'arm_probabilities' parameter of {where} must hold {m} positive numbers summing "
                f"to 1; got {arm_probabilities!r} instead."
            )

    rng = as_generator(random_state)
    p = m + 1 + n_noise
    x = rng.standard_normal((n, p))
    g = (x[:, : m + 1] ** 2 - 1.0) / np.sqrt(2.0) if nonlinear else x[:, : m + 1]
    if rho >= 0:
        h = sigma * (np.sqrt(rho) * g[:, [0]] + np.sqrt(1.0 - rho) * g[:, 1:])
    else:
        corr = np.full((m, m), rho) + (1.0 - rho) * np.eye(m)
        h = sigma * g[:, 1:] @ np.linalg.cholesky(corr).T
    potential = mu[None, :] + h
    arm_code = rng.choice(m, size=n, p=probs)
    outcome = potential[np.arange(n), arm_code] + sigma_eps * rng.standard_normal(n)

    arms = ["control"] + [f"arm_{k}" for k in range(1, m)]
    data = pd.DataFrame(x, columns=[f"x{j + 1}" for j in range(p)])
    data["arm"] = np.asarray(arms, dtype=object)[arm_code]
    data["outcome"] = outcome
    truth = {
        "sigma": float(sigma),
        "rho": float(rho),
        "s": float(np.std(mu, ddof=1)),
        "sigma_eps": float(sigma_eps),
        "n_arms": m,
        "arm_means": {a: float(v) for a, v in zip(arms, mu)},
        "best_arm": arms[int(np.argmax(mu))],
        "oracle_gain": float(potential.max(axis=1).mean() - mu.max()),
    }
    return MultiArmExperiment(data=data, potential_outcomes=potential, arms=arms, truth=truth)
