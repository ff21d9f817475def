"""Single experiments (or observational targeting data) with a known truth.

One row per customer: covariates, an assigned arm, an outcome.  The truth is
returned beside the data (grf's ``dgps.R`` habit): the conditional effect of
every arm, the conditional means, the assignment probabilities and both (all)
potential outcomes of every customer, so that estimated effects, policy
profits and intervals can be checked against known values.

numpy and pandas only (simulate layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_in, check_positive_int
from manylift._core.errors import ModelError
from manylift._core.rng import as_generator

__all__ = ["SingleExperiment", "simulate_experiment"]


@dataclass(frozen=True)
class SingleExperiment:
    """A simulated experiment and its truth.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``x0 .. x{p-1}`` (covariates), ``treatment`` (0 = control,
        1..K = arms) and ``outcome``.
    tau : ndarray of shape (n, K)
        True conditional effect of arm ``k + 1`` versus control, ``E[Y(k+1) - Y(0) | x]``.
    mu : ndarray of shape (n, K + 1)
        True conditional mean outcome under each arm (column 0 = control).
    propensity : ndarray of shape (n, K + 1)
        True probability of each arm given the covariates (rows sum to 1).
    potential_outcomes : ndarray of shape (n, K + 1)
        Realised potential outcome of every customer under every arm (the
        observed outcome is the one of the assigned arm).
    kind : str
        ``"randomized"`` or ``"confounded"``.
    """

    frame: pd.DataFrame
    tau: np.ndarray
    mu: np.ndarray
    propensity: np.ndarray
    potential_outcomes: np.ndarray
    kind: str
    covariates: list[str] = field(default_factory=list)

    @property
    def n_arms(self) -> int:
        """Number of treated arms K (1 for a binary experiment)."""
        return int(self.tau.shape[1])

    @property
    def ate(self) -> np.ndarray:
        """Sample average effect of each arm (mean of ``tau`` over customers)."""
        return self.tau.mean(axis=0)

    def to_frame(self) -> pd.DataFrame:
        """The data plus the truth, one column per quantity."""
        out = self.frame.copy()
        for k in range(self.n_arms):
            out[f"tau_{k + 1}"] = self.tau[:, k]
        for k in range(self.n_arms + 1):
            out[f"propensity_{k}"] = self.propensity[:, k]
            out[f"y_{k}"] = self.potential_outcomes[:, k]
        return out

    def __repr__(self) -> str:
        ates = ", ".join(f"{a:.3g}" for a in self.ate)
        return (f"SingleExperiment(kind={self.kind!r}, n={len(self.frame)}, "
                f"arms={self.n_arms}, ate=[{ates}])")


def simulate_experiment(
    n: int = 2000,
    *,
    kind: str = "randomized",
    n_arms: int = 1,
    n_covariates: int = 5,
    treated_share: float = 0.5,
    ate: float | list[float] = 1.0,
    heterogeneity: float = 1.0,
    noise: float = 1.0,
    confounding: float = 2.0,
    binary_outcome: bool = False,
    random_state=0,
) -> SingleExperiment:
    """Simulate one experiment with known conditional effects.

    Covariates are independent standard normals ``x0 .. x{p-1}``.  The control
    mean is ``mu0(x) = 1 + x0 + 0.5 x1^2 - 0.5 x2`` and the effect of arm k is
    ``tau_k(x) = ate_k + heterogeneity * (s_k x0 + 0.5 x1)`` with
    ``s_k = +1, -1, +1, ...``, so that with several arms the best arm differs
    between customers.  The outcome is ``mu_W(x) + noise * eps``.

    Parameters
    ----------
    n : int, default=2000
        Number of customers.
    kind : {"randomized", "confounded"}, default="randomized"
        Randomized: every arm has a constant assignment probability.
        Confounded: ``logit P(treated | x) = confounding * (x0 + 0.5 x2) + c``,
        so customers with a high baseline (x0) are treated more often; the
        naive difference in means is then biased upwards and overlap is poor.
    n_arms : int, default=1
        Number of treated arms K (1 = a binary experiment).
    n_covariates : int, default=5
        Number of covariates (at least 3).
    treated_share : float, default=0.5
        Share assigned to any treated arm (split equally between arms); in
        the confounded design, the average share.
    ate : float or list of float, default=1.0
        Average effect of each arm (a list of length ``n_arms``).
    heterogeneity : float, default=1.0
        Scale of the effect heterogeneity (0 = a constant effect).
    noise : float, default=1.0
        Standard deviation of the outcome noise.
    confounding : float, default=2.0
        Strength of confounding (``kind="confounded"`` only).
    binary_outcome : bool, default=False
        If True the outcome is 0/1 with ``P(Y(k) = 1 | x) = clip(mu_k(x) / 10 + 0.3)``
        (effects and means rescaled accordingly, noise ignored).
    random_state : int, Generator or None, default=0
        Seed.

    Returns
    -------
    SingleExperiment

    Examples
    --------
    >>> sim = simulate_experiment(500, random_state=1)
    >>> sim.frame.columns.tolist()[-2:]
    ['treatment', 'outcome']
    >>> sim.tau.shape
    (500, 1)
    """
    n = check_positive_int("n", n, "simulate_experiment", minimum=10)
    n_arms = check_positive_int("n_arms", n_arms, "simulate_experiment")
    p = check_positive_int("n_covariates", n_covariates, "simulate_experiment", minimum=3)
    check_in("kind", kind, ["randomized", "confounded"], "simulate_experiment")
    if not 0 < treated_share < 1:
        raise ModelError(
            f"The 'treated_share' parameter of simulate_experiment must be in (0, 1); "
            f"got {treated_share!r} instead."
        )
    ates = np.atleast_1d(np.asarray(ate, dtype=float))
    if ates.size == 1:
        ates = np.repeat(ates, n_arms)
    if ates.size != n_arms:
        raise ModelError(
            f"The 'ate' parameter of simulate_experiment must have one value per arm "
            f"({n_arms}); got {ates.size} values instead."
        )
    rng = as_generator(random_state)
    x = rng.standard_normal((n, p))
    mu0 = 1.0 + x[:, 0] + 0.5 * x[:, 1] ** 2 - 0.5 * x[:, 2]
    signs = np.where(np.arange(n_arms) % 2 == 0, 1.0, -1.0)
    tau = ates[None, :] + heterogeneity * (signs[None, :] * x[:, [0]] + 0.5 * x[:, [1]])
    mu = np.column_stack([mu0, mu0[:, None] + tau])

    if kind == "randomized":
        p_treated = np.full(n, treated_share)
    else:
        lin = confounding * (x[:, 0] + 0.5 * x[:, 2])
        # shift so that the average probability is close to treated_share
        shift = np.log(treated_share / (1 - treated_share))
        p_treated = 1.0 / (1.0 + np.exp(-(lin + shift)))
    propensity = np.column_stack(
        [1.0 - p_treated] + [p_treated / n_arms for _ in range(n_arms)]
    )
    cum = np.cumsum(propensity, axis=1)
    u = rng.random(n)
    arm = (u[:, None] > cum[:, :-1]).sum(axis=1)

    if binary_outcome:
        prob = np.clip(mu / 10.0 + 0.3, 0.01, 0.99)
        tau = prob[:, 1:] - prob[:, [0]]
        mu = prob
        ustar = rng.random(n)  # one uniform per customer couples the potential outcomes
        potential = (ustar[:, None] < prob).astype(float)
    else:
        eps = rng.standard_normal(n) * noise
        potential = mu + eps[:, None]
    outcome = potential[np.arange(n), arm]

    names = [f"x{j}" for j in range(p)]
    frame = pd.DataFrame(x, columns=names)
    frame["treatment"] = arm.astype(int)
    frame["outcome"] = outcome
    return SingleExperiment(
        frame=frame, tau=tau, mu=mu, propensity=propensity,
        potential_outcomes=potential, kind=kind, covariates=names,
    )
