"""Monte Carlo gain from personalization with m arms (Algorithms 1 and 2).

Each replicate draws an m-vector of arm means from F (normal or
spike-and-slab, eq. 8), a population of units with equicorrelated normal
potential outcomes (sd sigma, correlation rho), and noisy estimates
``Y_hat = Y + eps`` with ``eps ~ N(0, sigma_eps^2)`` independently per unit and
arm.  Per replicate:

* oracle gain (Algorithm 1): mean over units of ``max_a Y_i^a`` minus
  ``max_a mu_a`` (the n -> infinity limit of step 5);
* gain with prediction error (Algorithm 2): mean over units of
  ``Y_i^{a*(i)}`` with ``a*(i) = argmax_a Y_hat_i^a`` (targeting by noisy
  estimates, evaluated on true outcomes) minus ``mu_{a_u}``, the true value of
  the uniform arm ``a_u`` chosen from noisy means (step 6).  With
  ``n_per_arm=None`` the means are exact (population limit); with
  ``n_per_arm=n`` they carry the sampling noise of an experiment with n units
  per arm, drawn from its exact distribution.

The estimate is the mean over replicates and its Monte Carlo standard error
the sd over replicates / sqrt(n_sims).  All randomness is drawn as standard
normal / uniform variates first and then scaled, so calls with the same
``random_state`` and shapes use common random numbers: differences between
parameter values (sensitivity curves, elasticities) are far more precise than
either value alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from manylift._core.checks import check_in, check_positive_int
from manylift._core.errors import ModelError
from manylift._core.rng import as_generator

__all__ = ["GainParameters", "GainSimulation", "simulate_gain"]

_CHUNK_ELEMENTS = 2_000_000  # units x arms x replicates held in memory at once


@dataclass(frozen=True)
class GainParameters:
    """The inputs of Algorithm 2: everything the predicted gain depends on.

    Attributes
    ----------
    sigma : float
        Within-arm heterogeneity: sd of the actionable potential outcomes.
    rho : float
        Cross-arm correlation of a unit's potential outcomes.
    s : float
        Spread of the arm means: sd of F (of its slab for spike-and-slab).
    sigma_eps : float
        Standard deviation of the prediction error of the outcome estimates.
    n_arms : int
        Number of arms m.
    distribution : {"normal", "spike_slab"}
        The distribution F of the arm means.
    spike_prob : float
        Spike probability pi of the spike-and-slab F (eq. 8).
    """

    sigma: float
    rho: float
    s: float
    sigma_eps: float = 0.0
    n_arms: int = 2
    distribution: str = "normal"
    spike_prob: float = 0.0

    def replace(self, **changes) -> GainParameters:
        return GainParameters(**{**asdict(self), **changes})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GainSimulation:
    """Result of :func:`simulate_gain`.

    Attributes
    ----------
    parameters : GainParameters
    oracle_gain, oracle_gain_se : float
        Gain of perfect targeting over the best uniform arm (Algorithm 1) and
        its Monte Carlo standard error.
    gain, gain_se : float
        Gain of targeting by noisy estimates over the uniform arm chosen from
        noisy means (Algorithm 2), and its Monte Carlo standard error.
    value_personalized, value_uniform : float
        Mean values (outcome units, including the centre M of F) of the
        targeted policy and of the chosen uniform arm under Algorithm 2.
    n_sims, n_individuals : int
        Replicates (arm-mean draws) and units per replicate.
    n_per_arm : int or None
        Units per arm behind the noisy means that choose the uniform arm.
    replicate_gains : ndarray
        The per-replicate Algorithm 2 gains (for plots; not in ``to_frame``).
    """

    parameters: GainParameters
    oracle_gain: float
    oracle_gain_se: float
    gain: float
    gain_se: float
    value_personalized: float
    value_uniform: float
    n_sims: int
    n_individuals: int
    n_per_arm: int | None
    replicate_gains: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        row = {**self.parameters.to_dict()}
        row.update(
            oracle_gain=self.oracle_gain, oracle_gain_se=self.oracle_gain_se, gain=self.gain,
            gain_se=self.gain_se, value_personalized=self.value_personalized,
            value_uniform=self.value_uniform, n_sims=self.n_sims,
            n_individuals=self.n_individuals, n_per_arm=self.n_per_arm,
        )
        return pd.DataFrame([row])

    def __repr__(self) -> str:
        p = self.parameters
        return (
            f"GainSimulation(m={p.n_arms}, sigma={p.sigma:.4g}, rho={p.rho:.4g}, s={p.s:.4g}, "
            f"sigma_eps={p.sigma_eps:.4g}, F={p.distribution}"
            + (f"(pi={p.spike_prob:.3g})" if p.distribution == "spike_slab" else "")
            + f": oracle gain {self.oracle_gain:.4g} (MC se {self.oracle_gain_se:.2g}), "
            f"gain with prediction error {self.gain:.4g} (MC se {self.gain_se:.2g}); "
            f"{self.n_sims} replicates x {self.n_individuals} units)"
        )


def _check_parameters(params: GainParameters, where: str) -> GainParameters:
    m = check_positive_int("n_arms", params.n_arms, where, minimum=2)
    for name in ("sigma", "s", "sigma_eps"):
        v = getattr(params, name)
        if not np.isfinite(v) or v < 0:
            raise ModelError(
                f"The {name!r} parameter of {where} must be a finite number >= 0; got {v!r} instead."
            )
    lower = -1.0 / (m - 1)
    if not np.isfinite(params.rho) or not lower <= params.rho <= 1:
        raise ModelError(
            f"The 'rho' parameter of {where} must be in [{lower:.3g}, 1] for {m} arms (an "
            f"equicorrelation matrix is positive semi-definite only there); got {params.rho!r} instead."
        )
    check_in("distribution", params.distribution, ["normal", "spike_slab"], where)
    if not 0 <= params.spike_prob <= 1:
        raise ModelError(
            f"The 'spike_prob' parameter of {where} must be in [0, 1]; got {params.spike_prob!r} instead."
        )
    return params


def _correlate(z: np.ndarray, rho: float) -> np.ndarray:
    """Turn i.i.d. standard normals (last axis = arms) into equicorrelated ones.

    For rho >= 0 the common factor sqrt(rho) z0 moves every arm alike, so it
    changes no argmax and has mean zero in every value: it is left out (an
    exact variance reduction).  For rho < 0 the Cholesky factor is used.
    """
    m = z.shape[-1]
    if rho >= 0:
        return np.sqrt(1.0 - rho) * z
    corr = np.full((m, m), rho) + (1.0 - rho) * np.eye(m)
    return z @ np.linalg.cholesky(corr).T


def simulate_gain(
    sigma: float | GainParameters,
    rho: float | None = None,
    s: float | None = None,
    n_arms: int = 2,
    *,
    sigma_eps: float = 0.0,
    distribution: str = "normal",
    spike_prob: float = 0.0,
    mean: float = 0.0,
    arm_means=None,
    n_sims: int = 2000,
    n_individuals: int = 500,
    n_per_arm: int | None = None,
    random_state=0,
) -> GainSimulation:
    """Gain from personalization by Monte Carlo (Algorithms 1 and 2), vectorised.

    Parameters
    ----------
    sigma : float or GainParameters
        Within-arm heterogeneity; or a :class:`GainParameters` holding every
        model parameter (then ``rho``, ``s``, ``n_arms``, ``sigma_eps``,
        ``distribution`` and ``spike_prob`` are taken from it).
    rho : float
        Cross-arm correlation, in [-1/(m-1), 1].
    s : float
        Sd of F (for ``"spike_slab"``, the sd of the slab; the variance of F
        is then ``(1 - spike_prob) s^2``).
    n_arms : int, default=2
        Number of arms m >= 2.
    sigma_eps : float, default=0.0
        Sd of the prediction error added to each estimated potential outcome.
    distribution : {"normal", "spike_slab"}, default="normal"
        F: ``N(mean, s^2)`` or eq. (8): ``mean`` with probability
        ``spike_prob``, else ``N(mean, s^2)``.
    spike_prob : float, default=0.0
        Spike probability pi of the spike-and-slab F.
    mean : float, default=0.0
        Centre M of F; it shifts both policies alike and no gain depends on it.
    arm_means : array of shape (n_arms,), default=None
        Fix the arm means instead of drawing them from F (the gain given the
        observed arm means of an experiment).
    n_sims : int, default=2000
        Replicates (draws of the arm means).
    n_individuals : int, default=500
        Units per replicate over which the targeted policy is averaged.
    n_per_arm : int, default=None
        Sample size per arm of the experiment whose noisy means choose the
        uniform arm; ``None`` for exact means.
    random_state : int, Generator or None, default=0

    Returns
    -------
    GainSimulation

    References
    ----------
    Shchetkina and Berman (2024), Algorithms 1 and 2, eq. (8).

    Examples
    --------
    >>> r = simulate_gain(1.0, 0.5, 0.5, n_arms=2, n_sims=400, random_state=0)
    >>> abs(r.oracle_gain - 0.2065) < 4 * r.oracle_gain_se
    True
    """
    where = "simulate_gain"
    if isinstance(sigma, GainParameters):
        params = sigma
    else:
        if rho is None or s is None:
            raise ModelError(
                "simulate_gain needs sigma, rho and s (or a GainParameters as its first argument)."
            )
        params = GainParameters(
            sigma=float(sigma), rho=float(rho), s=float(s), sigma_eps=float(sigma_eps),
            n_arms=n_arms, distribution=distribution, spike_prob=float(spike_prob),
        )
    params = _check_parameters(params, where)
    m = int(params.n_arms)
    n_sims = check_positive_int("n_sims", n_sims, where, minimum=2)
    n_individuals = check_positive_int("n_individuals", n_individuals, where)
    if n_per_arm is not None:
        n_per_arm = check_positive_int("n_per_arm", n_per_arm, where)
    fixed_means = None
    if arm_means is not None:
        fixed_means = np.asarray(arm_means, dtype=float).reshape(-1)
        if fixed_means.shape[0] != m or not np.all(np.isfinite(fixed_means)):
            raise ModelError(
                f"The 'arm_means' parameter of {where} must hold {m} finite numbers (one per arm); "
                f"got {arm_means!r} instead."
            )

    rng = as_generator(random_state)
    chunk = max(1, _CHUNK_ELEMENTS // (n_individuals * m))
    oracle = np.empty(n_sims)
    gains = np.empty(n_sims)
    v_personal = np.empty(n_sims)
    v_uniform = np.empty(n_sims)
    sig, sig_eps = params.sigma, params.sigma_eps
    for start in range(0, n_sims, chunk):
        k = min(chunk, n_sims - start)
        # standard variates first, in a fixed order (common random numbers)
        u_mean = rng.standard_normal((k, m))
        u_spike = rng.random((k, m))
        z = rng.standard_normal((k, n_individuals, m))
        e = rng.standard_normal((k, n_individuals, m))
        z_bar = rng.standard_normal((k, m))
        e_bar = rng.standard_normal((k, m))

        if fixed_means is not None:
            mu = np.broadcast_to(fixed_means, (k, m))
        else:
            mu = mean + params.s * u_mean
            if params.distribution == "spike_slab":
                mu = np.where(u_spike < params.spike_prob, mean, mu)
        y = mu[:, None, :] + sig * _correlate(z, params.rho)
        best_mean = mu.max(axis=1)
        oracle[start:start + k] = y.max(axis=2).mean(axis=1) - best_mean

        y_hat = y + sig_eps * e if sig_eps > 0 else y
        pick = y_hat.argmax(axis=2)
        v_t = np.take_along_axis(y, pick[..., None], axis=2)[..., 0].mean(axis=1)
        if n_per_arm is None:
            noisy_means = mu
        else:
            # mean of Y_hat over n units per arm: mu + (sigma * corr. normal + sigma_eps * normal) / sqrt(n)
            noisy_means = mu + (sig * _correlate(z_bar, params.rho) + sig_eps * e_bar) / np.sqrt(n_per_arm)
        arm_u = noisy_means.argmax(axis=1)
        v_u = np.take_along_axis(mu, arm_u[:, None], axis=1)[:, 0]
        gains[start:start + k] = v_t - v_u
        v_personal[start:start + k] = v_t
        v_uniform[start:start + k] = v_u

    def _se(x):
        return float(x.std(ddof=1) / np.sqrt(x.shape[0]))

    return GainSimulation(
        parameters=params,
        oracle_gain=float(oracle.mean()),
        oracle_gain_se=_se(oracle),
        gain=float(gains.mean()),
        gain_se=_se(gains),
        value_personalized=float(v_personal.mean()),
        value_uniform=float(v_uniform.mean()),
        n_sims=n_sims,
        n_individuals=n_individuals,
        n_per_arm=n_per_arm,
        replicate_gains=gains,
    )
