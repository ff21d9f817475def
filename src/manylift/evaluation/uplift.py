"""Uplift-curve metrics: the uplift and Qini curves, AUUC and uplift at k.

Units are sorted by decreasing priority. After the top k units (cut only between
distinct priority values, so ties enter together), with ``ybar_T``, ``ybar_C``
the mean outcomes of the treated and control units among them, ``n_T`` their
number of treated units and ``Delta_k = ybar_T - ybar_C``:

    uplift curve  gain(k) = Delta_k * k          (Rzepakowski and Jaroszewicz)
    Qini curve    gain(k) = Delta_k * n_T(k)     (Radcliffe)

Both start at (0, 0); with ``propensity=None`` they equal scikit-uplift's
``uplift_curve`` and ``qini_curve``. With a propensity, the group means are
inverse-probability weighted (Hajek: weights 1/e for treated, 1/(1 - e) for
control units), which is the same as unweighted when the propensity is constant.

AUUC is reported in outcome units: with shares ``q = k / n`` and gains per unit
``g = gain / n``, it is the area between the curve and the straight line from
(0, 0) to its end (random targeting),

    AUUC = integral_0^1 g(q) dq - g(1) / 2,

computed with the trapezoid rule. For the uplift curve this is close to the Qini
RATE of :func:`rank_metric` computed with difference-in-means instead of IPW
scores. scikit-uplift's ``uplift_auc_score`` is the same area times n^2,
divided by the area of its "perfect" curve (defined for binary outcomes only).

References
----------
Radcliffe, N. J. (2007). Using control groups to target on predicted lift.
Direct Marketing Analytics Journal 3, 14-21.
Rzepakowski, P. and Jaroszewicz, S. (2012). Decision trees for uplift modeling
with single and multiple treatments. Knowledge and Information Systems 32, 303-327.
Gutierrez, P. and Gerardy, J.-Y. (2017). Causal inference and uplift modelling:
a review of the literature. PMLR 67, 1-13.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manylift._core.checks import check_in
from manylift._core.errors import DataError, ModelError
from manylift._core.rng import as_generator
from manylift.evaluation._bootstrap import BOOTSTRAP_KINDS, bootstrap_counts, cluster_codes
from manylift.evaluation._checks import (
    check_n_bootstrap,
    check_outcome,
    check_priorities,
    check_propensity,
    check_treatment,
)
from manylift.evaluation._results import fmt, normal_interval, readonly, two_sided_p

__all__ = ["AUUCResult", "UpliftAtKResult", "uplift_curve", "auuc", "uplift_at_k"]

CURVE_KINDS = ("uplift", "qini")


@dataclass(frozen=True, eq=False)
class AUUCResult:
    """Area between an uplift (or Qini) curve and random targeting.

    Attributes
    ----------
    kind : {"uplift", "qini"}
    estimate : float
        AUUC in outcome units per unit (see the module docstring).
    std_err : float
        Bootstrap standard error (nan when ``n_bootstrap=0``).
    n_targeted : ndarray
        Number of units targeted at each cut (starting at 0).
    gain : ndarray
        Curve value at each cut (scikit-uplift's units: outcome x units).
    n : int
    n_bootstrap : int
    """

    kind: str
    estimate: float
    std_err: float
    n_targeted: np.ndarray
    gain: np.ndarray
    n: int
    n_bootstrap: int

    @property
    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(share targeted, gain per unit)``, for plotting."""
        return self.n_targeted / self.n, self.gain / self.n

    @property
    def z(self) -> float:
        return float(self.estimate / self.std_err) if self.std_err > 0 else float("nan")

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        return normal_interval(self.estimate, self.std_err, level)

    def to_dict(self) -> dict:
        """Plain numbers for results.json: ``{estimate, se, lo, hi, z, n, kind}``."""
        lo, hi = self.ci()
        return {
            "estimate": self.estimate,
            "se": self.std_err,
            "lo": lo,
            "hi": hi,
            "z": self.z,
            "n": self.n,
            "kind": self.kind,
        }

    def to_frame(self):
        """One-row DataFrame: kind, estimate, std_err, lo, hi (95%), z, p_value, n."""
        import pandas as pd

        lo, hi = self.ci()
        return pd.DataFrame(
            [
                {
                    "kind": self.kind,
                    "estimate": self.estimate,
                    "std_err": self.std_err,
                    "lo": lo,
                    "hi": hi,
                    "z": self.z,
                    "p_value": two_sided_p(self.z),
                    "n": self.n,
                }
            ]
        )

    def curve_frame(self):
        """The curve: n_targeted, share, gain, gain_per_unit."""
        import pandas as pd

        share, per_unit = self.curve
        return pd.DataFrame(
            {
                "n_targeted": self.n_targeted,
                "share": share,
                "gain": self.gain,
                "gain_per_unit": per_unit,
            }
        )

    def __repr__(self) -> str:
        lo, hi = self.ci()
        return (
            f"AUUCResult(kind={self.kind!r}, estimate={fmt(self.estimate)}, "
            f"std_err={fmt(self.std_err)}, 95% CI=[{fmt(lo)}, {fmt(hi)}], n={self.n})"
        )


@dataclass(frozen=True, eq=False)
class UpliftAtKResult:
    """Difference in mean outcome, treated minus control, among the top-k units.

    Attributes
    ----------
    estimate : float
        Effect among the targeted units, in outcome units.
    std_err : float
        Analytic (Welch / linearised Hajek) standard error, treating the targeted
        set as fixed.
    k : float
        The share (or count) asked for.
    strategy : {"overall", "by_group"}
    n_targeted, n_treated, n_control : int
        Units in the top set, and how many of them were treated / control.
    """

    estimate: float
    std_err: float
    k: float
    strategy: str
    n_targeted: int
    n_treated: int
    n_control: int

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        return normal_interval(self.estimate, self.std_err, level)

    def to_dict(self) -> dict:
        """Plain numbers for results.json: ``{estimate, se, lo, hi, k, n_treated, n_control}``."""
        lo, hi = self.ci()
        return {
            "estimate": self.estimate,
            "se": self.std_err,
            "lo": lo,
            "hi": hi,
            "k": self.k,
            "n_treated": self.n_treated,
            "n_control": self.n_control,
        }

    def to_frame(self):
        """One-row DataFrame: k, strategy, estimate, std_err, lo, hi (95%) and the counts."""
        import pandas as pd

        lo, hi = self.ci()
        return pd.DataFrame(
            [
                {
                    "k": self.k,
                    "strategy": self.strategy,
                    "estimate": self.estimate,
                    "std_err": self.std_err,
                    "lo": lo,
                    "hi": hi,
                    "n_targeted": self.n_targeted,
                    "n_treated": self.n_treated,
                    "n_control": self.n_control,
                }
            ]
        )

    def __repr__(self) -> str:
        lo, hi = self.ci()
        return (
            f"UpliftAtKResult(k={self.k}, estimate={fmt(self.estimate)}, "
            f"std_err={fmt(self.std_err)}, 95% CI=[{fmt(lo)}, {fmt(hi)}], "
            f"n_treated={self.n_treated}, n_control={self.n_control}, "
            f"strategy={self.strategy!r})"
        )


def uplift_curve(
    outcome, treatment, priority, propensity=None, kind: str = "uplift"
) -> tuple[np.ndarray, np.ndarray]:
    """The uplift or Qini curve of a priority.

    Parameters
    ----------
    outcome : array-like of shape (n,)
    treatment : array-like of shape (n,)
        0/1 assignment.
    priority : array-like of shape (n,)
        Larger values are targeted first.
    propensity : float or array-like of shape (n,), optional
        If given, group means are inverse-probability weighted.
    kind : {"uplift", "qini"}, default="uplift"

    Returns
    -------
    n_targeted : ndarray
        0 and the number of units above each distinct priority value.
    gain : ndarray
        ``Delta_k * k`` (uplift) or ``Delta_k * n_T(k)`` (Qini).

    Examples
    --------
    >>> x, g = uplift_curve([1, 0, 1, 0], [1, 0, 0, 1], priority=[4, 3, 2, 1])
    >>> x.tolist(), g.tolist()
    ([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 1.5, 0.0])
    """
    check_in("kind", kind, CURVE_KINDS, "uplift_curve")
    y, w, p, weight = _inputs(outcome, treatment, priority, propensity)
    order = _descending(p)
    return _curve_sorted(y[order], w[order], p[order], weight[order], kind)


def auuc(
    outcome,
    treatment,
    priority,
    propensity=None,
    kind: str = "uplift",
    n_bootstrap: int = 200,
    random_state=0,
    *,
    bootstrap: str = "ordinary",
    clusters=None,
) -> AUUCResult:
    """Area under the uplift (or Qini) curve above random targeting, with a bootstrap SE.

    Parameters
    ----------
    outcome, treatment, priority, propensity, kind
        As in :func:`uplift_curve`.
    n_bootstrap : int, default=200
        Bootstrap replicates for the standard error; 0 skips it.
    random_state : int, Generator or None, default=0
    bootstrap : {"ordinary", "half"}, default="ordinary"
    clusters : array-like of shape (n,), optional
        Cluster labels; the bootstrap resamples whole clusters.

    Returns
    -------
    AUUCResult

    References
    ----------
    Gutierrez, P. and Gerardy, J.-Y. (2017). Causal inference and uplift
    modelling: a review of the literature. PMLR 67, 1-13.

    Examples
    --------
    >>> r = auuc([1, 0, 1, 0], [1, 0, 0, 1], priority=[4, 3, 2, 1], n_bootstrap=0)
    >>> r.estimate
    0.28125
    """
    check_in("kind", kind, CURVE_KINDS, "auuc")
    n_bootstrap = check_n_bootstrap(n_bootstrap, "auuc")
    check_in("bootstrap", bootstrap, BOOTSTRAP_KINDS, "auuc")
    y, w, p, weight = _inputs(outcome, treatment, priority, propensity)
    n = y.size
    codes, n_clusters = cluster_codes(clusters, n)
    order = _descending(p)
    y, w, p, weight = y[order], w[order], p[order], weight[order]
    x, gain = _curve_sorted(y, w, p, weight, kind)
    estimate = _area(x, gain)
    std_err = float("nan")
    if n_bootstrap:
        rng = as_generator(random_state)
        reps = np.empty(n_bootstrap)
        positions = np.arange(n)
        counts = bootstrap_counts(
            n,
            n_bootstrap,
            rng,
            kind=bootstrap,
            clusters=None if codes is None else codes[order],
            n_clusters=n_clusters,
        )
        for b, count in enumerate(counts):
            idx = np.repeat(positions, count)  # stays sorted by priority
            reps[b] = _area(*_curve_sorted(y[idx], w[idx], p[idx], weight[idx], kind))
        std_err = float(np.std(reps, ddof=1))
    return AUUCResult(
        kind=kind,
        estimate=float(estimate),
        std_err=std_err,
        n_targeted=readonly(x),
        gain=readonly(gain),
        n=n,
        n_bootstrap=n_bootstrap,
    )


def uplift_at_k(
    outcome,
    treatment,
    priority,
    propensity=None,
    k: float = 0.3,
    strategy: str = "overall",
) -> UpliftAtKResult:
    """Treated-minus-control mean outcome among the top k units by priority.

    Parameters
    ----------
    outcome, treatment, priority, propensity
        As in :func:`uplift_curve`.
    k : float or int, default=0.3
        A share in (0, 1] of the units (``int(n * k)`` units are taken), or a
        number of units (int).
    strategy : {"overall", "by_group"}, default="overall"
        "overall" takes the top k of all units; "by_group" the top k share (or
        number) of the treated and of the control units separately.

    Returns
    -------
    UpliftAtKResult
        Equals scikit-uplift's ``uplift_at_k`` when ``propensity`` is None. Ties
        in priority at the cut are broken as scikit-uplift does (of tied rows,
        the later row first).

    Examples
    --------
    >>> r = uplift_at_k([1, 0, 1, 0], [1, 0, 0, 1], priority=[4, 3, 2, 1], k=0.5)
    >>> r.estimate
    1.0
    """
    check_in("strategy", strategy, ("overall", "by_group"), "uplift_at_k")
    y, w, p, weight = _inputs(outcome, treatment, priority, propensity)
    n = y.size
    order = np.argsort(p, kind="mergesort")[::-1]  # scikit-uplift's order, ties included
    y, w, weight = y[order], w[order], weight[order]
    treated = w == 1
    if strategy == "overall":
        size = _k_size(k, n, "the sample")
        top = np.zeros(n, dtype=bool)
        top[:size] = True
        in_t, in_c = top & treated, top & ~treated
    else:
        n_t = _k_size(k, int(treated.sum()), "the treated group")
        n_c = _k_size(k, int((~treated).sum()), "the control group")
        in_t = treated & (np.cumsum(treated) <= n_t)
        in_c = ~treated & (np.cumsum(~treated) <= n_c)
    if not in_t.any() or not in_c.any():
        raise DataError(
            f"The top k={k!r} units hold {int(in_t.sum())} treated and {int(in_c.sum())} "
            f"control unit(s); uplift_at_k needs both. Raise 'k', or use strategy='by_group'."
        )
    mean_t, var_t = _hajek(y[in_t], weight[in_t])
    mean_c, var_c = _hajek(y[in_c], weight[in_c])
    return UpliftAtKResult(
        estimate=float(mean_t - mean_c),
        std_err=float(np.sqrt(var_t + var_c)),
        k=k,
        strategy=strategy,
        n_targeted=int(in_t.sum() + in_c.sum()),
        n_treated=int(in_t.sum()),
        n_control=int(in_c.sum()),
    )


# -- internals ---------------------------------------------------------------


def _inputs(outcome, treatment, priority, propensity):
    y = check_outcome(outcome)
    n = y.size
    w = check_treatment(treatment, n)
    p = check_priorities(priority, n, "priority")
    if p.shape[0] != 1:
        raise DataError(f"'priority' must be one vector of length {n}; got shape {p.shape}.")
    if propensity is None:
        weight = np.ones(n)
    else:
        e = check_propensity(propensity, n)
        weight = np.where(w == 1, 1 / e, 1 / (1 - e))
    return y, w, p[0], weight


def _descending(p):
    return np.argsort(-p, kind="stable")


def _curve_sorted(y, w, p, weight, kind):
    """Curve from arrays sorted by decreasing priority; cuts at the end of tie groups."""
    m = y.size
    wt_t = w * weight
    wt_c = (1 - w) * weight
    cut = np.r_[np.flatnonzero(np.diff(p) != 0), m - 1]
    sum_wt = np.cumsum(wt_t)[cut]
    sum_wc = np.cumsum(wt_c)[cut]
    mean_t = np.divide(np.cumsum(wt_t * y)[cut], sum_wt, out=np.zeros(cut.size), where=sum_wt > 0)
    mean_c = np.divide(np.cumsum(wt_c * y)[cut], sum_wc, out=np.zeros(cut.size), where=sum_wc > 0)
    delta = mean_t - mean_c
    n_targeted = cut + 1
    size = n_targeted if kind == "uplift" else np.cumsum(w)[cut]
    return np.r_[0, n_targeted], np.r_[0.0, delta * size]


def _area(x, gain):
    """Area between the normalised curve and the chord from (0, 0) to its end."""
    n = x[-1]
    q, g = x / n, gain / n
    area = float(np.sum((q[1:] - q[:-1]) * (g[1:] + g[:-1]) / 2))
    return area - g[-1] / 2


def _k_size(k, n: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int | float | np.integer | np.floating):
        raise ModelError(f"The 'k' parameter of uplift_at_k must be a number; got {k!r} instead.")
    if isinstance(k, int | np.integer):
        if not 1 <= k <= n:
            raise ModelError(
                f"The 'k' parameter of uplift_at_k must be a count in [1, {n}] ({what}) or a "
                f"share in (0, 1]; got {k!r} instead."
            )
        return int(k)
    if not 0 < k <= 1:
        raise ModelError(
            f"The 'k' parameter of uplift_at_k must be a share in (0, 1] or a count; got "
            f"{k!r} instead."
        )
    return int(n * k)


def _hajek(y, weight):
    """Weighted mean and its linearised variance (Welch's s^2 / n when unweighted)."""
    total = weight.sum()
    mean = float(np.sum(weight * y) / total)
    m = y.size
    if m < 2:
        return mean, float("nan")
    var = float(np.sum(weight**2 * (y - mean) ** 2) / total**2) * m / (m - 1)
    return mean, var
