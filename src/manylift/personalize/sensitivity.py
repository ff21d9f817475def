"""Sensitivity of the predicted gain to its parameters (Shchetkina and Berman, section 6).

* curves: the Algorithm 2 gain as one of sigma, rho, s, sigma_eps varies over a
  grid, the others held at their values (Figure 12);
* elasticities: the gain after a 1% change of one parameter in the direction
  that helps personalization (1% lower s, 1% higher sigma, 1% lower rho, 1%
  lower sigma_eps), and the % change of the gain per 1% change (Table 6); the
  *largest lever* is the parameter whose 1% change moves the gain most in
  absolute terms (a % change misleads when the gain is near zero or negative);
* counterfactual swaps: each of two experiments' gain with one parameter
  replaced by the other experiment's value (Table 5).

Every evaluation uses the same ``random_state`` and shapes, hence common
random numbers, so the differences along a curve and the 1% changes are
precise even where the gains themselves carry Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_positive_int
from manylift._core.errors import ModelError
from manylift.personalize.montecarlo import GainParameters, simulate_gain
from manylift.single.progress import as_progress

__all__ = [
    "SensitivityResult",
    "sensitivity_curves",
    "gain_elasticities",
    "counterfactual_swaps",
    "sensitivity",
]

_CURVE_PARAMETERS = ("s", "sigma", "rho", "sigma_eps")
# Table 6: the direction of a 1% change that helps personalization
_DIRECTIONS = {"s": -1.0, "sigma": 1.0, "rho": -1.0, "sigma_eps": -1.0}


def _mc(params: GainParameters, mc: dict):
    return simulate_gain(params, **mc)


def _default_range(params: GainParameters, name: str) -> tuple[float, float]:
    if name == "rho":
        lower = max(-1.0 / (params.n_arms - 1), -0.95)
        return (lower + 0.02, 0.98)
    value = getattr(params, name)
    top = 2.0 * value if value > 0 else 1.0
    return (0.0, top)


def sensitivity_curves(
    params: GainParameters,
    *,
    parameters=_CURVE_PARAMETERS,
    grid_size: int = 21,
    ranges: dict | None = None,
    n_sims: int = 1000,
    n_individuals: int = 300,
    n_per_arm: int | None = None,
    random_state=0,
) -> pd.DataFrame:
    """Predicted gain as each parameter varies alone (Figure 12 of the paper).

    Parameters
    ----------
    params : GainParameters
        The values the other parameters are held at (e.g. the estimates).
    parameters : sequence of str, default=("s", "sigma", "rho", "sigma_eps")
    grid_size : int, default=21
    ranges : dict, default=None
        ``{name: (low, high)}``; default 0 to twice the value (rho: from just
        above its lower bound -1/(m-1) to 0.98).  The current value is always
        added to the grid.
    n_sims, n_individuals, n_per_arm, random_state
        Monte Carlo options of :func:`simulate_gain`.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter, value, gain, gain_se, oracle_gain, is_current``.

    References
    ----------
    Shchetkina and Berman (2024), section 6 and Figure 12.
    """
    grid_size = check_positive_int("grid_size", grid_size, "sensitivity_curves", minimum=2)
    ranges = dict(ranges or {})
    mc = dict(n_sims=n_sims, n_individuals=n_individuals, n_per_arm=n_per_arm, random_state=random_state)
    rows = []
    for name in parameters:
        if name not in _CURVE_PARAMETERS:
            raise ModelError(
                f"The 'parameters' of sensitivity_curves must be among {list(_CURVE_PARAMETERS)}; got {name!r}."
            )
        low, high = ranges.get(name, _default_range(params, name))
        current = float(getattr(params, name))
        grid = np.unique(np.append(np.linspace(low, high, grid_size), current))
        for value in grid:
            r = _mc(params.replace(**{name: float(value)}), mc)
            rows.append({
                "parameter": name, "value": float(value), "gain": r.gain, "gain_se": r.gain_se,
                "oracle_gain": r.oracle_gain, "is_current": bool(np.isclose(value, current)),
            })
    return pd.DataFrame(rows)


def gain_elasticities(
    params: GainParameters,
    *,
    step: float = 0.01,
    n_sims: int = 4000,
    n_individuals: int = 300,
    n_per_arm: int | None = None,
    random_state=0,
) -> pd.DataFrame:
    """Gain after a 1% helpful change of each parameter (Table 6 of the paper).

    Parameters
    ----------
    params : GainParameters
    step : float, default=0.01
        Relative change (1%).  rho changes by ``step * |rho|``.
    n_sims, n_individuals, n_per_arm, random_state
        Monte Carlo options of :func:`simulate_gain`.

    Returns
    -------
    pandas.DataFrame
        One row per parameter: ``parameter, change`` (e.g. "1% lower"),
        ``value, new_value, gain, new_gain, gain_change`` (new minus old gain,
        outcome units per customer) and ``elasticity`` (change of the gain in %
        of its absolute value, per 1% change of the parameter in the helpful
        direction; positive means the change raises the gain, also when the gain
        is negative).

    References
    ----------
    Shchetkina and Berman (2024), section 6 and Table 6.
    """
    if not 0 < step < 1:
        raise ModelError(f"The 'step' parameter of gain_elasticities must be in (0, 1); got {step!r}.")
    mc = dict(n_sims=n_sims, n_individuals=n_individuals, n_per_arm=n_per_arm, random_state=random_state)
    base = _mc(params, mc).gain
    rows = []
    lower_rho = -1.0 / (params.n_arms - 1)
    for name, sign in _DIRECTIONS.items():
        value = float(getattr(params, name))
        new = value + sign * step * abs(value)
        if name == "rho":
            new = float(np.clip(new, lower_rho, 1.0))
        g = _mc(params.replace(**{name: new}), mc).gain
        # relative to |gain|: with a negative gain, g / base - 1 would flip the sign
        rel = (g - base) / abs(base) / step if base != 0 else float("nan")
        rows.append({
            "parameter": name,
            "change": f"{step:.0%} {'higher' if sign > 0 else 'lower'}",
            "value": value, "new_value": new, "gain": base, "new_gain": g,
            "gain_change": g - base, "elasticity": rel,
        })
    return pd.DataFrame(rows)


def counterfactual_swaps(
    params_a: GainParameters,
    params_b: GainParameters,
    *,
    names=("A", "B"),
    parameters=("sigma", "rho", "sigma_eps", "s", "n_arms"),
    n_sims: int = 2000,
    n_individuals: int = 300,
    random_state=0,
) -> pd.DataFrame:
    """Each experiment's gain with one parameter taken from the other (Table 5).

    Parameters
    ----------
    params_a, params_b : GainParameters
        The two experiments' (estimated) parameters.
    names : pair of str, default=("A", "B")
    parameters : sequence of str, default=("sigma", "rho", "sigma_eps", "s", "n_arms")
    n_sims, n_individuals, random_state
        Monte Carlo options of :func:`simulate_gain`.

    Returns
    -------
    pandas.DataFrame
        Index: the experiment names; columns ``original`` and one per swapped
        parameter (the gain with that parameter replaced).

    References
    ----------
    Shchetkina and Berman (2024), section 6 and Table 5.
    """
    mc = dict(n_sims=n_sims, n_individuals=n_individuals, random_state=random_state)
    allowed = ("sigma", "rho", "s", "sigma_eps", "n_arms", "distribution", "spike_prob")
    out = {}
    for own, other, label in ((params_a, params_b, names[0]), (params_b, params_a, names[1])):
        row = {"original": _mc(own, mc).gain}
        for name in parameters:
            if name not in allowed:
                raise ModelError(
                    f"The 'parameters' of counterfactual_swaps must be among {list(allowed)}; got {name!r}."
                )
            swapped = own.replace(**{name: getattr(other, name)})
            if name == "n_arms":  # keep rho valid for the new number of arms
                swapped = swapped.replace(rho=max(swapped.rho, -1.0 / (swapped.n_arms - 1)))
            row[name] = _mc(swapped, mc).gain
        out[label] = row
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index.name = "experiment"
    return frame


@dataclass(frozen=True)
class SensitivityResult:
    """Sensitivity curves and elasticities around one set of parameters."""

    parameters: GainParameters
    curves: pd.DataFrame = field(repr=False)
    elasticities: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.elasticities

    @property
    def largest_lever(self) -> pd.Series:
        """The row of :attr:`elasticities` whose 1% change moves the gain most (absolute
        change of the gain, outcome units per customer)."""
        el = self.elasticities
        return el.loc[el["gain_change"].abs().idxmax()]

    def __repr__(self) -> str:
        top = self.largest_lever
        return (
            f"SensitivityResult({len(self.curves)} curve points; largest lever: "
            f"{top['change']} {top['parameter']} changes the gain by {top['gain_change']:+.3g})"
        )


def sensitivity(
    params: GainParameters,
    *,
    grid_size: int = 21,
    n_sims: int = 1000,
    n_sims_elasticity: int = 4000,
    n_individuals: int = 300,
    n_per_arm: int | None = None,
    random_state=0,
    progress=False,
) -> SensitivityResult:
    """Curves (Figure 12) and elasticities (Table 6) around ``params``.

    References
    ----------
    Shchetkina and Berman (2024), section 6.
    """
    as_progress(progress, "personalize").stage(
        f"sensitivity: {len(_CURVE_PARAMETERS)} curves of {grid_size} points and 1% changes")
    curves = sensitivity_curves(params, grid_size=grid_size, n_sims=n_sims, n_individuals=n_individuals,
                                n_per_arm=n_per_arm, random_state=random_state)
    el = gain_elasticities(params, n_sims=n_sims_elasticity, n_individuals=n_individuals,
                           n_per_arm=n_per_arm, random_state=random_state)
    return SensitivityResult(parameters=params, curves=curves, elasticities=el)
