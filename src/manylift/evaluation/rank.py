"""Rank metrics of a treatment prioritisation: TOC, AUTOC and Qini (RATE).

Given per-unit effect scores ``Gamma_i`` (IPW or AIPW, see
:mod:`manylift.evaluation.scores`) and a priority ``S_i`` (e.g. a predicted
effect; larger = treat first), the Targeting Operating Characteristic is

    TOC(q) = mean of Gamma among the top-q share ranked by S  -  mean of Gamma overall,

the extra effect of treating only the top q instead of everyone, in outcome
units. The rank-weighted average treatment effects (RATE) summarise the curve:

    AUTOC = (1/n) sum_{i=1..n} TOC(i/n)            (the integral over q in (0, 1])
    Qini  = (1/n) sum_{i=1..n} (i/n) TOC(i/n)      (the integral of q TOC(q))

TOC(1) = 0 exactly.  Both are 0 in expectation for a priority unrelated to the
effect and positive when the priority ranks units by their effect.

Ties in the priority are handled as in grf: within a group of tied units, each
unit's score is replaced by the group's mean score, so the result does not
depend on the order of tied rows.  Between grid points ``i/n`` the TOC counts a
fraction of the next unit (grf's interpolation).

Standard errors come from the half-sample bootstrap of grf (half of the units,
or clusters, drawn without replacement) or the ordinary bootstrap, with a fixed
``random_state``.

References
----------
Yadlowsky, S., Fleming, S., Shah, N., Brunskill, E. and Wager, S. (2021).
Evaluating treatment prioritization rules via rank-weighted average treatment
effects. arXiv:2111.07966 (JASA 2025).
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
    check_q_grid,
    check_weights,
)
from manylift.evaluation._rank_kernels import grouped_rows, rank_rows
from manylift.evaluation._results import fmt, normal_interval, readonly, two_sided_p

__all__ = ["RankResult", "toc_curve", "toc_curve_many", "rank_metric", "rank_metric_many",
           "rank_summary_many", "grouped_autoc_many", "RANK_KINDS"]

RANK_KINDS = ("autoc", "qini")
_DEFAULT_Q = np.arange(1, 101) / 100
_CHUNK_ELEMENTS = 2**21  # rows x units per block in rank_metric_many (~16 MB per array)


@dataclass(frozen=True, eq=False)
class RankResult:
    """A rank-weighted average treatment effect (AUTOC or Qini) and its TOC curve.

    Attributes
    ----------
    kind : {"autoc", "qini"}
        Which RATE ``estimate`` is.
    estimate : float
        The RATE, in outcome units.
    std_err : float
        Bootstrap standard error (nan when ``n_bootstrap=0``).
    q : ndarray
        Targeted shares at which the TOC curve is reported.
    toc : ndarray
        TOC(q), in outcome units; the last value (q = 1) is exactly 0.
    toc_std_err : ndarray
        Bootstrap standard errors of ``toc``.
    n : int
        Number of units.
    n_bootstrap : int
        Bootstrap replicates behind the standard errors.
    bootstrap : {"half", "ordinary"}
        Bootstrap scheme.
    difference, difference_std_err : float or None
        With a ``versus`` priority: this RATE minus the other's, and its paired
        bootstrap standard error.
    """

    kind: str
    estimate: float
    std_err: float
    q: np.ndarray
    toc: np.ndarray
    toc_std_err: np.ndarray
    n: int
    n_bootstrap: int
    bootstrap: str = "half"
    difference: float | None = None
    difference_std_err: float | None = None

    @property
    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(q, toc)``, for plotting."""
        return self.q, self.toc

    @property
    def z(self) -> float:
        """``estimate / std_err``: above about 2 means the priority finds real heterogeneity."""
        return float(self.estimate / self.std_err) if self.std_err > 0 else float("nan")

    @property
    def p_value(self) -> float:
        """Two-sided normal p-value of RATE = 0."""
        return two_sided_p(self.z)

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval of the RATE."""
        return normal_interval(self.estimate, self.std_err, level)

    def difference_ci(self, level: float = 0.95) -> tuple[float, float]:
        if self.difference is None:
            raise ModelError("No 'versus' priority was given, so there is no difference to bound.")
        return normal_interval(self.difference, self.difference_std_err, level)

    def to_dict(self) -> dict:
        """Plain-number summary for results.json: ``{estimate, se, lo, hi, z, n, kind}``
        (plus ``difference, difference_se`` with a ``versus`` priority)."""
        lo, hi = self.ci()
        out = {
            "estimate": self.estimate,
            "se": self.std_err,
            "lo": lo,
            "hi": hi,
            "z": self.z,
            "n": self.n,
            "kind": self.kind,
        }
        if self.difference is not None:
            out["difference"] = self.difference
            out["difference_se"] = self.difference_std_err
        return out

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
                    "p_value": self.p_value,
                    "n": self.n,
                }
            ]
        )

    def curve_frame(self):
        """The TOC curve as a DataFrame with columns q, toc, std_err, lo, hi (95%)."""
        import pandas as pd

        half = 1.959963984540054 * self.toc_std_err
        return pd.DataFrame(
            {
                "q": self.q,
                "toc": self.toc,
                "std_err": self.toc_std_err,
                "lo": self.toc - half,
                "hi": self.toc + half,
            }
        )

    def __repr__(self) -> str:
        lo, hi = self.ci()
        diff = ""
        if self.difference is not None:
            diff = f", difference={fmt(self.difference)} (se {fmt(self.difference_std_err)})"
        return (
            f"RankResult(kind={self.kind!r}, estimate={fmt(self.estimate)}, "
            f"std_err={fmt(self.std_err)}, 95% CI=[{fmt(lo)}, {fmt(hi)}], z={fmt(self.z, 3)}, "
            f"n={self.n}, n_bootstrap={self.n_bootstrap}{diff})"
        )


def toc_curve(scores, priority, q=None) -> tuple[np.ndarray, np.ndarray]:
    """The Targeting Operating Characteristic curve of a priority.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Per-unit effect scores (e.g. :func:`ipw_scores` or :func:`aipw_scores`).
    priority : array-like of shape (n,)
        Larger values are treated first. Ties are averaged over (grf's rule).
    q : array-like, optional
        Strictly increasing targeted shares in (0, 1]. Default: every ``i/n``,
        i = 1..n (the full-resolution curve).

    Returns
    -------
    q : ndarray
        The shares.
    toc : ndarray
        TOC(q) = mean score in the top-q share minus the mean score; TOC(1) = 0
        exactly.

    References
    ----------
    Yadlowsky et al. (2021), arXiv:2111.07966.

    Examples
    --------
    >>> q, toc = toc_curve([4.0, 0.0, 2.0, 2.0], priority=[3, 0, 2, 1])
    >>> q.tolist(), toc.tolist()
    ([0.25, 0.5, 0.75, 1.0], [2.0, 1.0, 0.666..., 0.0])
    """
    s = check_outcome(scores, "scores")
    p = check_priorities(priority, s.size, "priority")
    if p.shape[0] != 1:
        raise DataError(f"'priority' must be one vector of length {s.size}; got shape {p.shape}.")
    order = np.argsort(-p[0])
    cum, avg = _tie_cumsum(s[order][None, :], p[0][order][None, :])
    if q is None:
        k = np.arange(1, s.size + 1)
        return k / s.size, cum[0] / k - cum[0, -1] / s.size
    grid = check_q_grid(q, "toc_curve")
    return grid, _toc_at(cum[0], avg[0], grid)


def toc_curve_many(scores, priorities, q, *, weights=None) -> np.ndarray:
    """TOC curves of D priority vectors on one grid of shares (e.g. one per posterior draw).

    Parameters
    ----------
    scores : array-like of shape (n,)
    priorities : array-like of shape (D, n)
    q : array-like
        Strictly increasing shares in (0, 1].
    weights : array-like of shape (D, n) or (n,), optional
        Positive unit weights (see :func:`rank_metric_many`); shares are then
        weight shares, and a fraction of the unit that crosses ``q`` is counted
        (the weighted form of grf's interpolation).

    Returns
    -------
    ndarray of shape (D, len(q))
        Without weights row d equals ``toc_curve(scores, priorities[d], q)[1]``.

    Examples
    --------
    >>> toc_curve_many([4.0, 0.0, 2.0, 2.0], [[3, 0, 2, 1]], q=[0.5, 1.0]).tolist()
    [[1.0, 0.0]]
    """
    s = check_outcome(scores, "scores")
    p = check_priorities(priorities, s.size, "priorities", keep_float32=True)
    grid = check_q_grid(q, "toc_curve_many")
    if weights is not None:
        return rank_rows(s, p, check_weights(weights, p.shape[0], s.size), grid)[1]
    out = np.empty((p.shape[0], grid.size))
    for d in range(p.shape[0]):
        order = np.argsort(-p[d])
        cum, avg = _tie_cumsum(s[order][None, :], p[d][order][None, :])
        out[d] = _toc_at(cum[0], avg[0], grid)
    return out


def rank_summary_many(scores, priorities, *, weights=None, q=None) -> dict:
    """AUTOC and Qini with and without unit weights, and the weighted TOC curve, of D
    priority vectors from one sort each (compiled; rows in parallel threads).

    Parameters
    ----------
    scores : array-like of shape (n,)
    priorities : array-like of shape (D, n)
    weights : array-like of shape (D, n) or (n,), optional
        As in :func:`rank_metric_many`; equal weights when None.
    q : array-like, optional
        Shares at which to report the (weighted) TOC curve.

    Returns
    -------
    dict
        ``autoc``, ``qini`` (weighted), ``autoc_equal``, ``qini_equal`` (equal weights),
        each of shape (D,), and ``toc`` (D, len(q)) when ``q`` is given. They equal
        :func:`rank_metric_many` and :func:`toc_curve_many` up to rounding.

    Examples
    --------
    >>> r = rank_summary_many([4.0, 0.0, 2.0, 2.0], [[3, 0, 2, 1]], q=[0.5, 1.0])
    >>> round(float(r["autoc"][0]), 3), r["toc"].tolist()
    (0.917, [[1.0, 0.0]])
    """
    s = check_outcome(scores, "scores")
    p = check_priorities(priorities, s.size, "priorities", keep_float32=True)
    w = None if weights is None else check_weights(weights, p.shape[0], s.size)
    grid = np.ones(0) if q is None else check_q_grid(q, "rank_summary_many")
    rates, toc = rank_rows(s, p, w, grid)
    out = {"autoc": rates[:, 0], "qini": rates[:, 1], "autoc_equal": rates[:, 2],
           "qini_equal": rates[:, 3]}
    if q is not None:
        out["toc"] = toc
    return out


def grouped_autoc_many(scores, groups, group_priorities, *, weights=None) -> np.ndarray:
    """AUTOC of priorities that are constant within groups (e.g. campaigns), per row.

    Row i's priority in vector d is ``group_priorities[d, groups[i]]``. Equal to
    :func:`rank_metric_many` on the expanded (D, n) priorities (tested), but without
    sorting the n units: sums per group, then a sort of the groups.

    Parameters
    ----------
    scores : array-like of shape (n,)
    groups : array-like of int, shape (n,)
        Group codes 0..G-1.
    group_priorities : array-like of shape (D, G)
    weights : array-like of shape (D, n), optional

    Returns
    -------
    ndarray of shape (D,)

    Examples
    --------
    >>> s = [4.0, 0.0, 2.0, 2.0]
    >>> grouped_autoc_many(s, [0, 1, 2, 2], [[3.0, 0.0, 1.5]]).round(3).tolist()
    [0.917]
    >>> rank_metric_many(s, [[3.0, 0.0, 1.5, 1.5]]).round(3).tolist()
    [0.917]
    """
    s = check_outcome(scores, "scores")
    g = np.asarray(groups)
    if g.ndim != 1 or g.size != s.size or g.dtype.kind not in "iu" or (g.size and g.min() < 0):
        raise DataError(f"'groups' must be {s.size} integer codes >= 0 (one per unit); got "
                        f"dtype {g.dtype}, shape {g.shape}.")
    v = np.atleast_2d(np.asarray(group_priorities, dtype=float))
    if v.shape[1] <= int(g.max(initial=-1)):
        raise DataError(f"'group_priorities' has {v.shape[1]} columns but 'groups' has codes up "
                        f"to {int(g.max())}; give one priority per group.")
    w = None if weights is None else check_weights(weights, v.shape[0], s.size)
    return grouped_rows(s, g, v, w)


def rank_metric(
    scores,
    priority,
    kind: str = "autoc",
    n_bootstrap: int = 200,
    random_state=0,
    *,
    q=None,
    bootstrap: str = "half",
    clusters=None,
    versus=None,
) -> RankResult:
    """Rank-weighted average treatment effect (AUTOC or Qini) with a bootstrap SE.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Per-unit effect scores (IPW or AIPW) on evaluation data that the priority
        was not fitted on.
    priority : array-like of shape (n,)
        Larger values are treated first (e.g. predicted effects).
    kind : {"autoc", "qini"}, default="autoc"
        AUTOC weights all targeted shares equally (more power when few units
        respond); Qini weights share q by q (more power for diffuse effects).
    n_bootstrap : int, default=200
        Bootstrap replicates for the standard errors; 0 skips them (nan SEs).
    random_state : int, Generator or None, default=0
        Seed of the bootstrap.
    q : array-like, optional
        Shares at which to report the TOC curve; default 0.01, 0.02, ..., 1.
        The RATE itself always uses the full-resolution curve.
    bootstrap : {"half", "ordinary"}, default="half"
        grf's half-sample bootstrap or the ordinary bootstrap.
    clusters : array-like of shape (n,), optional
        Cluster labels (e.g. customers seen in several rows); the bootstrap then
        resamples whole clusters.
    versus : array-like of shape (n,), optional
        A second priority (e.g. a simple baseline score). The result then also
        holds the difference of the two RATEs with a paired bootstrap standard
        error (both computed on the same replicates), as grf does for two
        priorities.

    Returns
    -------
    RankResult

    References
    ----------
    Yadlowsky, S., Fleming, S., Shah, N., Brunskill, E. and Wager, S. (2021).
    Evaluating treatment prioritization rules via rank-weighted average treatment
    effects. arXiv:2111.07966.

    Examples
    --------
    >>> from manylift.evaluation import ipw_scores
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> tau = rng.normal(size=n); w = rng.integers(0, 2, n)
    >>> y = tau * w + rng.normal(size=n)
    >>> r = rank_metric(ipw_scores(y, w, 0.5), priority=tau, n_bootstrap=50)
    >>> r.estimate > 3 * r.std_err
    True
    """
    kind = _check_kind(kind, "rank_metric")
    s = check_outcome(scores, "scores")
    n = s.size
    p = check_priorities(priority, n, "priority")
    if p.shape[0] != 1:
        raise DataError(
            f"'priority' must be one vector of length {n}; got shape {p.shape}. Use "
            f"rank_metric_many for several priorities."
        )
    n_bootstrap = check_n_bootstrap(n_bootstrap, "rank_metric")
    check_in("bootstrap", bootstrap, BOOTSTRAP_KINDS, "rank_metric")
    grid = _DEFAULT_Q if q is None else check_q_grid(q, "rank_metric")
    codes, n_clusters = cluster_codes(clusters, n)
    priorities = [p[0]]
    if versus is not None:
        other = check_priorities(versus, n, "versus")
        if other.shape[0] != 1:
            raise DataError(f"'versus' must be one vector of length {n}; got shape {other.shape}.")
        priorities.append(other[0])

    # Sort once per priority; a bootstrap replicate keeps that order, so it needs no sort.
    sorted_data = []
    for prio in priorities:
        order = np.argsort(-prio)
        sorted_data.append((order, s[order], prio[order]))
    fits = [_rate_and_toc(s_sorted, p_sorted, kind, grid) for _, s_sorted, p_sorted in sorted_data]
    estimate, toc = fits[0]

    std_err = float("nan")
    toc_se = np.full(grid.size, np.nan)
    difference = None if versus is None else float(fits[0][0] - fits[1][0])
    difference_se = None if versus is None else float("nan")
    if n_bootstrap:
        rng = as_generator(random_state)
        reps = np.empty((n_bootstrap, len(priorities)))
        toc_reps = np.empty((n_bootstrap, grid.size))
        positions = np.arange(n)
        counts = bootstrap_counts(
            n, n_bootstrap, rng, kind=bootstrap, clusters=codes, n_clusters=n_clusters
        )
        for b, count in enumerate(counts):  # count: times each row enters the replicate
            for j, (order, s_sorted, p_sorted) in enumerate(sorted_data):
                idx = np.repeat(positions, count[order])  # still sorted by priority
                rate, toc_b = _rate_and_toc(s_sorted[idx], p_sorted[idx], kind, grid)
                reps[b, j] = rate
                if j == 0:
                    toc_reps[b] = toc_b
        std_err = float(np.std(reps[:, 0], ddof=1))
        toc_se = np.std(toc_reps, axis=0, ddof=1)
        if versus is not None:
            difference_se = float(np.std(reps[:, 0] - reps[:, 1], ddof=1))

    return RankResult(
        kind=kind,
        estimate=float(estimate),
        std_err=std_err,
        q=readonly(grid),
        toc=readonly(toc),
        toc_std_err=readonly(toc_se),
        n=n,
        n_bootstrap=n_bootstrap,
        bootstrap=bootstrap,
        difference=difference,
        difference_std_err=difference_se,
    )


def rank_metric_many(scores, priorities, kind: str = "autoc", *, weights=None) -> np.ndarray:
    """AUTOC or Qini of D priority vectors at once (e.g. one per posterior draw).

    Parameters
    ----------
    scores : array-like of shape (n,)
        Per-unit effect scores, shared by all priorities.
    priorities : array-like of shape (D, n)
        One priority vector per row.
    kind : {"autoc", "qini"}, default="autoc"
    weights : array-like of shape (D, n) or (n,), optional
        Positive unit weights per row (e.g. a Bayesian-bootstrap draw per
        posterior draw, :func:`bayesian_bootstrap_weights`). The TOC then
        counts shares by weight: TOC(u) = weighted mean score of the top units
        holding a weight share u, minus the weighted mean score, and
        AUTOC = sum_k w_k TOC(W_k) over units in priority order (W_k the
        cumulative weight share), Qini = sum_k w_k W_k TOC(W_k). Tied units
        share their group's weighted mean score and mean weight, so their order
        does not matter. Equal weights give the unweighted RATE (up to rounding).

    Returns
    -------
    ndarray of shape (D,)
        The RATE of each row; without weights element d equals
        ``rank_metric(scores, priorities[d], kind, n_bootstrap=0).estimate``
        exactly. No standard errors: with posterior draws, the spread over
        draws is the uncertainty of interest.

    Examples
    --------
    >>> s = np.array([4.0, 0.0, 2.0, 2.0])
    >>> rank_metric_many(s, [[3, 0, 2, 1], [0, 3, 2, 1]]).round(3).tolist()
    [0.917, -0.917]
    >>> rank_metric_many(s, [[3, 0, 2, 1]], weights=np.full(4, 0.25)).round(3).tolist()
    [0.917]
    """
    kind = _check_kind(kind, "rank_metric_many")
    s = check_outcome(scores, "scores")
    p = check_priorities(priorities, s.size, "priorities", keep_float32=True)
    if weights is not None:
        w = check_weights(weights, p.shape[0], s.size)
        rates, _ = rank_rows(s, p, w, np.ones(0))
        return rates[:, 0 if kind == "autoc" else 1].copy()
    out = np.empty(p.shape[0])
    step = max(1, _CHUNK_ELEMENTS // s.size)
    for start in range(0, p.shape[0], step):
        block = p[start : start + step]
        # Any sort will do: tied units are averaged, so their order does not matter, and
        # each row is sorted exactly as rank_metric sorts it alone.
        order = np.argsort(-block, axis=1)
        cum, _ = _tie_cumsum(s[order], np.take_along_axis(block, order, axis=1))
        out[start : start + step] = _rate_from_cumsum(cum, kind)
    return out


# -- kernels (arrays already sorted by decreasing priority, one row per vector) --


def _check_kind(kind, where: str) -> str:
    kind = kind.lower() if isinstance(kind, str) else kind
    check_in("kind", kind, RANK_KINDS, where)
    return kind


def _tie_cumsum(s: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative sums of sorted scores with each tie group's scores averaged.

    Returns ``(cum, avg)``: ``cum[:, i]`` is the (tie-averaged) sum of the first
    i + 1 scores, ``avg`` the tie-averaged scores.  Whether a row has ties is
    decided per row, so a row gives the same bits whatever other rows it is
    computed with (this is what makes the *_many functions exact).
    """
    cum = np.cumsum(s, axis=1)
    n_rows, m = s.shape
    end = np.ones((n_rows, m), dtype=bool)  # last position of each tie group
    end[:, :-1] = p[:, :-1] != p[:, 1:]
    tied_rows = np.flatnonzero(~end.all(axis=1))
    if tied_rows.size == 0:
        return cum, s
    cum = cum.copy()
    avg = np.array(s, dtype=float, copy=True)
    c, e = cum[tied_rows], end[tied_rows]
    pos = np.arange(m)
    start = np.ones_like(e)
    start[:, 1:] = e[:, :-1]
    first = np.maximum.accumulate(np.where(start, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(e, pos, m)[:, ::-1], axis=1)[:, ::-1]
    before = np.where(first > 0, np.take_along_axis(c, np.maximum(first - 1, 0), axis=1), 0.0)
    group_mean = (np.take_along_axis(c, last, axis=1) - before) / (last - first + 1)
    cum[tied_rows] = before + (pos - first + 1) * group_mean
    avg[tied_rows] = group_mean
    return cum, avg


def _rate_from_cumsum(cum: np.ndarray, kind: str) -> np.ndarray:
    m = cum.shape[1]
    k = np.arange(1, m + 1)
    toc = cum / k - cum[:, -1:] / m
    if kind == "qini":
        toc = toc * (k / m)
    return toc.mean(axis=1)


def _toc_at(cum: np.ndarray, avg: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """TOC at shares ``grid`` from one row's tie-averaged cumulative sums."""
    m = cum.size
    qn = grid * m
    k = np.minimum(np.floor(qn + 1e-9).astype(np.intp), m)
    frac = np.clip(qn - k, 0.0, None)  # a fraction of the next unit (grf's interpolation)
    head = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
    return (head + frac * avg[np.minimum(k, m - 1)]) / qn - cum[-1] / m


def _rate_and_toc(s_sorted, p_sorted, kind, grid):
    cum, avg = _tie_cumsum(s_sorted[None, :], p_sorted[None, :])
    return _rate_from_cumsum(cum, kind)[0], _toc_at(cum[0], avg[0], grid)

