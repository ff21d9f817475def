"""State, Info and the prior specification of the Gibbs sampler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["State", "Info", "ModelSpec"]


class State(NamedTuple):
    """One state of a chain.

    theta : (K,) fixed coefficients (layout in ``Design.names``)
    sigma2 : residual variance
    omega_inv : (q, q) precision of the customer effects u_i = (uI_i, ubeta_i)
    u : (n_customers, q) customer effects
    """

    theta: Any
    sigma2: Any
    omega_inv: Any
    u: Any


class Info(NamedTuple):
    """What a sweep reports: the log-likelihood kernel and the residual sum of squares."""

    loglik: Any
    sse: Any


@dataclass(frozen=True)
class ModelSpec:
    """Conjugate priors (defaults of docs/pooled.md).

    Parameters
    ----------
    theta_prior_var : float, default=1000
        theta ~ N(0, theta_prior_var * I).
    sigma_shape, sigma_scale : float, default=0.1, 10
        1/sigma^2 ~ Gamma(shape, scale).
    wishart_extra_df : float, default=2
        Omega^-1 ~ Wishart(q + wishart_extra_df, wishart_scale_diag * I).
    wishart_scale_diag : float, default=1
    expansion : bool, default=True
        Add the parameter-expanded scale move for (u, Omega) (posterior unchanged; much
        faster mixing of sigma_u than plain Gibbs).  With the interweaving move on it adds
        little where the data identify the customer effects well, but it is what keeps
        sigma_u mixing where they do not (few rows per customer, sigma_u near 0), where
        the interweaving move's proposals are rarely accepted (docs/performance.md).
    interweave : bool, default=True
        Add the ancillarity-sufficiency interweaving move for (Omega, u) before the u
        block (Yu and Meng 2011; posterior unchanged; much faster mixing of the whole of
        Omega, sigma_u and the covariate-slope variances). Both False gives plain Gibbs.
    """

    theta_prior_var: float = 1000.0
    sigma_shape: float = 0.1
    sigma_scale: float = 10.0
    wishart_extra_df: float = 2.0
    wishart_scale_diag: float = 1.0
    expansion: bool = True
    interweave: bool = True

    def wishart_df(self, q: int) -> float:
        return q + self.wishart_extra_df

    def wishart_scale(self, q: int) -> np.ndarray:
        return np.eye(q) * self.wishart_scale_diag
