"""A/B test design: sample size, minimum detectable effect and power.

Closed forms under the normal approximation for a two-sided test of a
difference in means or in proportions, with any allocation and an optional
variance reduction factor (CUPED: regressing the outcome on a pre-period
covariate with correlation rho multiplies the variance by 1 - rho^2).

For a mean difference with allocation a to treatment, N customers in total:

    Var(diff) = f sigma^2 / (N a (1 - a)),   N = (z_{1-alpha/2} + z_{power})^2 f sigma^2 / (delta^2 a (1 - a))

(``f`` the variance factor); a 50:50 split gives the textbook
n per arm = 2 (z_{1-alpha/2} + z_power)^2 sigma^2 / delta^2.  For proportions
the variance under the null uses the pooled proportion (Fleiss, without
continuity correction).  :func:`simulate_power` runs the test on simulated
data to check any of these numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from manylift._core.checks import check_in, check_positive_int, check_probability
from manylift._core.errors import ModelError
from manylift._core.rng import as_generator

__all__ = [
    "PowerResult",
    "cuped_factor",
    "mde_mean",
    "mde_proportion",
    "power_mean",
    "power_proportion",
    "sample_size_mean",
    "sample_size_proportion",
    "simulate_power",
]


@dataclass(frozen=True)
class PowerResult:
    """One A/B design: sample sizes, the effect, power and significance level."""

    kind: str
    n_total: int
    n_treatment: int
    n_control: int
    effect: float
    power: float
    alpha: float
    allocation: float
    variance_factor: float
    sd: float | None = None
    p_control: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])

    def __repr__(self) -> str:
        base = f"sd={self.sd:.4g}" if self.kind == "mean" else f"p_control={self.p_control:.4g}"
        vf = f", variance_factor={self.variance_factor:.3g}" if self.variance_factor != 1 else ""
        return (f"PowerResult({self.kind}: n_total={self.n_total} ({self.n_treatment} treated, "
                f"{self.n_control} control), effect={self.effect:.4g}, power={self.power:.3f}, "
                f"alpha={self.alpha}, allocation={self.allocation}, {base}{vf})")


def cuped_factor(correlation: float) -> float:
    """Variance factor 1 - rho^2 of CUPED with a covariate of correlation ``rho`` with the outcome.

    References
    ----------
    Deng, A., Xu, Y., Kohavi, R., & Walker, T. (2013). Improving the sensitivity
    of online controlled experiments by utilizing pre-experiment data. WSDM '13.
    """
    rho = float(correlation)
    if not -1 < rho < 1:
        raise ModelError(f"The 'correlation' parameter of cuped_factor must be in (-1, 1); "
                         f"got {correlation!r} instead.")
    return 1.0 - rho**2


def _check_common(power, alpha, allocation, variance_factor, where):
    if power is not None:
        check_probability("power", power, where)
    check_probability("alpha", alpha, where)
    check_probability("allocation", allocation, where)
    if not (0 < variance_factor <= 1):
        raise ModelError(f"The 'variance_factor' parameter of {where} must be in (0, 1] "
                         f"(e.g. cuped_factor(rho)); got {variance_factor!r} instead.")


def _z(alpha, power=None):
    za = stats.norm.ppf(1 - alpha / 2)
    return za if power is None else (za, stats.norm.ppf(power))


def _split(n_total_float, allocation):
    n_t = math.ceil(n_total_float * allocation - 1e-9)
    n_c = math.ceil(n_total_float * (1 - allocation) - 1e-9)
    return n_t + n_c, n_t, n_c


def _positive(name, value, where):
    if not (np.isfinite(value) and value > 0):
        raise ModelError(f"The {name!r} parameter of {where} must be positive; got {value!r} instead.")
    return float(value)


def power_mean(n_total, effect, sd, *, alpha=0.05, allocation=0.5, variance_factor=1.0) -> float:
    """Power of the two-sided z-test of a mean difference (normal approximation)."""
    _check_common(None, alpha, allocation, variance_factor, "power_mean")
    n_total = _positive("n_total", n_total, "power_mean")
    sd = _positive("sd", sd, "power_mean")
    se = sd * math.sqrt(variance_factor / (n_total * allocation * (1 - allocation)))
    za = _z(alpha)
    d = abs(float(effect)) / se
    return float(stats.norm.cdf(d - za) + stats.norm.cdf(-d - za))


def sample_size_mean(effect, sd, *, power=0.8, alpha=0.05, allocation=0.5,
                     variance_factor=1.0) -> PowerResult:
    """Customers needed to detect a mean difference ``effect`` with the given power.

    Parameters
    ----------
    effect : float
        The difference in means to detect (outcome units).
    sd : float
        Standard deviation of the outcome (assumed equal in both arms).
    power : float, default=0.8
    alpha : float, default=0.05
        Two-sided significance level.
    allocation : float, default=0.5
        Share assigned to treatment.
    variance_factor : float, default=1.0
        Multiplies the outcome variance: ``cuped_factor(rho)`` for CUPED.

    Returns
    -------
    PowerResult

    References
    ----------
    Chow, S.-C., Shao, J., & Wang, H. (2008). Sample Size Calculations in
    Clinical Research (2nd ed.), section 3.2.

    Examples
    --------
    >>> r = sample_size_mean(effect=34.22, sd=180)
    >>> r.n_treatment   # 2 (1.96 + 0.84)^2 180^2 / 34.22^2, rounded up
    435
    """
    where = "sample_size_mean"
    _check_common(power, alpha, allocation, variance_factor, where)
    effect = _positive("effect", abs(effect), where)
    sd = _positive("sd", sd, where)
    za, zb = _z(alpha, power)
    n = (za + zb) ** 2 * variance_factor * sd**2 / (effect**2 * allocation * (1 - allocation))
    n_total, n_t, n_c = _split(n, allocation)
    achieved = power_mean(n_total, effect, sd, alpha=alpha, allocation=allocation,
                          variance_factor=variance_factor)
    return PowerResult("mean", n_total, n_t, n_c, effect, achieved, alpha, allocation,
                       variance_factor, sd=sd)


def mde_mean(n_total, sd, *, power=0.8, alpha=0.05, allocation=0.5,
             variance_factor=1.0) -> PowerResult:
    """Minimum detectable mean difference with ``n_total`` customers.

    MDE = (z_{1-alpha/2} + z_power) sd sqrt(f / (N a (1 - a))).
    """
    where = "mde_mean"
    _check_common(power, alpha, allocation, variance_factor, where)
    n_total = check_positive_int("n_total", int(n_total), where, minimum=4)
    sd = _positive("sd", sd, where)
    za, zb = _z(alpha, power)
    mde = (za + zb) * sd * math.sqrt(variance_factor / (n_total * allocation * (1 - allocation)))
    n_t = round(n_total * allocation)
    return PowerResult("mean", n_total, n_t, n_total - n_t, float(mde), float(power), alpha,
                       allocation, variance_factor, sd=sd)


def _prop_se(p0, p1, n_total, allocation, variance_factor):
    a = allocation
    pbar = a * p1 + (1 - a) * p0
    se0 = math.sqrt(variance_factor * pbar * (1 - pbar) / (n_total * a * (1 - a)))
    se1 = math.sqrt(variance_factor * (p1 * (1 - p1) / (n_total * a) + p0 * (1 - p0) / (n_total * (1 - a))))
    return se0, se1


def power_proportion(n_total, p_control, p_treatment, *, alpha=0.05, allocation=0.5,
                     variance_factor=1.0) -> float:
    """Power of the two-sided pooled z-test of two proportions (normal approximation)."""
    where = "power_proportion"
    _check_common(None, alpha, allocation, variance_factor, where)
    p0 = check_probability("p_control", p_control, where)
    p1 = check_probability("p_treatment", p_treatment, where)
    n_total = _positive("n_total", n_total, where)
    se0, se1 = _prop_se(p0, p1, n_total, allocation, variance_factor)
    za = _z(alpha)
    d = abs(p1 - p0)
    return float(stats.norm.cdf((d - za * se0) / se1) + stats.norm.cdf((-d - za * se0) / se1))


def sample_size_proportion(p_control, p_treatment, *, power=0.8, alpha=0.05, allocation=0.5,
                           variance_factor=1.0) -> PowerResult:
    """Customers needed to detect a change of a proportion from ``p_control`` to ``p_treatment``.

    N = [z_{1-alpha/2} sqrt(f pbar (1 - pbar) / (a (1 - a))) + z_power sqrt(f (p1 (1 - p1) / a
    + p0 (1 - p0) / (1 - a)))]^2 / (p1 - p0)^2, with pbar = a p1 + (1 - a) p0.

    References
    ----------
    Fleiss, J. L., Levin, B., & Paik, M. C. (2003). Statistical Methods for
    Rates and Proportions (3rd ed.), section 4.2 (without continuity correction).

    Examples
    --------
    >>> sample_size_proportion(0.10, 0.12).n_treatment
    3841
    """
    where = "sample_size_proportion"
    _check_common(power, alpha, allocation, variance_factor, where)
    p0 = check_probability("p_control", p_control, where)
    p1 = check_probability("p_treatment", p_treatment, where)
    if p0 == p1:
        raise ModelError("p_control and p_treatment are equal; there is no effect to detect.")
    a = allocation
    za, zb = _z(alpha, power)
    pbar = a * p1 + (1 - a) * p0
    num = (za * math.sqrt(variance_factor * pbar * (1 - pbar) / (a * (1 - a)))
           + zb * math.sqrt(variance_factor * (p1 * (1 - p1) / a + p0 * (1 - p0) / (1 - a)))) ** 2
    n = num / (p1 - p0) ** 2
    n_total, n_t, n_c = _split(n, a)
    achieved = power_proportion(n_total, p0, p1, alpha=alpha, allocation=a,
                                variance_factor=variance_factor)
    return PowerResult("proportion", n_total, n_t, n_c, float(p1 - p0), achieved, alpha, a,
                       variance_factor, p_control=p0)


def mde_proportion(n_total, p_control, *, power=0.8, alpha=0.05, allocation=0.5,
                   variance_factor=1.0, direction: str = "increase") -> PowerResult:
    """Minimum detectable change of a proportion with ``n_total`` customers (solved numerically)."""
    where = "mde_proportion"
    _check_common(power, alpha, allocation, variance_factor, where)
    check_in("direction", direction, ["increase", "decrease"], where)
    n_total = check_positive_int("n_total", int(n_total), where, minimum=4)
    p0 = check_probability("p_control", p_control, where)
    sign = 1 if direction == "increase" else -1
    room = (1 - p0) if sign > 0 else p0

    def gap(d):
        return power_proportion(n_total, p0, p0 + sign * d, alpha=alpha, allocation=allocation,
                                variance_factor=variance_factor) - power

    hi = room * (1 - 1e-9)
    if gap(hi) < 0:
        raise ModelError(
            f"With n_total={n_total} no change of p_control={p0} reaches power {power}; "
            f"increase n_total.")
    d = optimize.brentq(gap, 1e-12, hi, xtol=1e-12)
    n_t = round(n_total * allocation)
    return PowerResult("proportion", n_total, n_t, n_total - n_t, float(sign * d), float(power),
                       alpha, allocation, variance_factor, p_control=p0)


def simulate_power(n_total, effect, *, kind: str = "mean", sd: float = 1.0,
                   p_control: float | None = None, alpha: float = 0.05, allocation: float = 0.5,
                   correlation: float = 0.0, n_simulations: int = 2000,
                   random_state=0) -> tuple[float, float]:
    """Monte Carlo power of the two-sided z-test, to check the closed forms.

    Each replicate draws a fresh experiment (exactly ``round(N a)`` treated),
    runs the test (Welch z-test for means, pooled z-test for proportions) and
    records a rejection.  With ``correlation`` = rho > 0 (means only) each
    customer also has a pre-period covariate with correlation rho and the
    test is run on the CUPED-adjusted outcome y - theta (x - mean x), theta
    estimated by pooled OLS.

    Returns
    -------
    (power, mc_std_err)
    """
    check_in("kind", kind, ["mean", "proportion"], "simulate_power")
    n_total = check_positive_int("n_total", int(n_total), "simulate_power", minimum=4)
    n_sim = check_positive_int("n_simulations", n_simulations, "simulate_power")
    rng = as_generator(random_state)
    n_t = int(round(n_total * allocation))
    n_c = n_total - n_t
    za = stats.norm.ppf(1 - alpha / 2)
    if kind == "mean":
        y_t = rng.standard_normal((n_sim, n_t))
        y_c = rng.standard_normal((n_sim, n_c))
        if correlation:
            rho = float(correlation)
            x_t = rho * y_t + math.sqrt(1 - rho**2) * rng.standard_normal((n_sim, n_t))
            x_c = rho * y_c + math.sqrt(1 - rho**2) * rng.standard_normal((n_sim, n_c))
            x_all = np.concatenate([x_t, x_c], axis=1)
            y_all = np.concatenate([y_t, y_c], axis=1)
            xc = x_all - x_all.mean(axis=1, keepdims=True)
            theta = (xc * (y_all - y_all.mean(axis=1, keepdims=True))).sum(1) / (xc**2).sum(1)
            y_t = y_t - theta[:, None] * xc[:, :n_t]
            y_c = y_c - theta[:, None] * xc[:, n_t:]
        y_t = y_t * sd + effect
        y_c = y_c * sd
        diff = y_t.mean(1) - y_c.mean(1)
        se = np.sqrt(y_t.var(1, ddof=1) / n_t + y_c.var(1, ddof=1) / n_c)
    else:
        if p_control is None:
            raise ModelError("simulate_power with kind='proportion' needs p_control.")
        p0 = float(p_control)
        p1 = p0 + float(effect)
        x_t = rng.binomial(n_t, p1, size=n_sim) / n_t
        x_c = rng.binomial(n_c, p0, size=n_sim) / n_c
        pbar = (x_t * n_t + x_c * n_c) / n_total
        diff = x_t - x_c
        se = np.sqrt(pbar * (1 - pbar) * (1 / n_t + 1 / n_c))
        se = np.where(se > 0, se, np.inf)
    reject = np.abs(diff / se) > za
    p = float(reject.mean())
    return p, float(np.sqrt(p * (1 - p) / n_sim))
