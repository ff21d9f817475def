"""Out-of-sample profit, ROI and share targeted of a targeting policy.

For a policy assigning arm a_i (0 = control) to customer i of the evaluation
sample, with effect scores Gamma_ik (IPW or AIPW, from
:mod:`manylift.evaluation`; their mean over any set chosen without looking at
the outcomes estimates the average effect there):

    profit per customer = mean_i 1{a_i > 0} (margin Gamma_{i,a_i} - cost_{a_i})
    spend per customer  = mean_i 1{a_i > 0} cost_{a_i}
    ROI                 = profit / spend
    share targeted      = mean_i 1{a_i > 0}

Profit is incremental over treating no one: with the value V(pi) of
:func:`manylift.evaluation.policy_value` it equals
margin (V(pi) - V(nobody)) - spend, exactly, for IPW.  Standard errors: the
profit is a mean of independent terms (SE = sd / sqrt(n)); spend is fixed
given the policy, so SE(ROI) = SE(profit) / spend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from manylift._core.checks import as_1d_float, check_in
from manylift._core.errors import DataError, ModelError
from manylift.evaluation import (
    aipw_scores,
    ipw_scores,
    multiarm_aipw_scores,
    multiarm_ipw_scores,
)
from manylift.policy.rules import best_arm_rule, breakeven_effect

__all__ = [
    "PolicyProfit",
    "ProfitCurve",
    "SegmentSummary",
    "SensitivityGrid",
    "effect_scores",
    "evaluate_policy",
    "profit_curve",
    "segment_summary",
    "sensitivity_grid",
]

_Z = float(stats.norm.ppf(0.975))


def effect_scores(outcome, treatment, propensity, *, mu=None, method: str = "aipw") -> np.ndarray:
    """Effect scores of every arm versus control, shape (n, K).

    Parameters
    ----------
    outcome : array (n,)
    treatment : array (n,) of int
        0 = control, 1..K = arms.
    propensity : array (n,) (P(treated), one arm) or (n, K + 1)
    mu : array (n, K + 1), default=None
        Outcome models (column 0 = control); required for ``method="aipw"``.
    method : {"aipw", "ipw"}, default="aipw"
    """
    check_in("method", method, ["aipw", "ipw"], "effect_scores")
    y = as_1d_float("outcome", outcome)
    w = np.asarray(treatment).astype(int)
    e = np.asarray(propensity, dtype=float)
    if method == "aipw" and mu is None:
        raise ModelError("method='aipw' needs the outcome models 'mu' (n, K + 1); "
                         "pass them or use method='ipw'.")
    if e.ndim == 1:
        if method == "aipw":
            m = np.asarray(mu, dtype=float)
            return aipw_scores(y, w, e, m[:, 0], m[:, 1])[:, None]
        return ipw_scores(y, w, e)[:, None]
    if method == "aipw":
        return multiarm_aipw_scores(y, w, e, mu)
    return multiarm_ipw_scores(y, w, e)


def _costs(cost, k: int) -> np.ndarray:
    c = np.atleast_1d(np.asarray(cost, dtype=float))
    if c.size == 1:
        c = np.repeat(c, k)
    if c.shape != (k,) or np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ModelError(f"'cost' must be one non-negative number or one per arm ({k}); "
                         f"got {cost!r}.")
    return c


def _assignment_codes(assignment, n: int, k: int) -> np.ndarray:
    a = np.asarray(assignment)
    if a.shape != (n,):
        raise DataError(f"'assignment' has shape {a.shape}; expected ({n},), one per customer.")
    a = a.astype(int)
    if a.min() < 0 or a.max() > k:
        raise DataError(f"'assignment' must hold arm codes 0..{k} (or booleans); got values "
                        f"{np.unique(a)[:6].tolist()}.")
    return a


@dataclass(frozen=True)
class PolicyProfit:
    """Estimated profit, ROI and share targeted of one policy on the evaluation sample."""

    rule: str
    profit: float
    profit_se: float
    roi: float
    roi_se: float
    share_targeted: float
    share_targeted_se: float
    n_targeted: int
    n: int
    spend: float
    incremental_outcome: float
    incremental_outcome_se: float
    method: str = "aipw"

    @property
    def profit_interval(self) -> tuple[float, float]:
        return self.profit - _Z * self.profit_se, self.profit + _Z * self.profit_se

    def to_dict(self) -> dict:
        lo, hi = self.profit_interval
        return {
            "profit": self.profit, "profit_se": self.profit_se, "profit_lo": lo, "profit_hi": hi,
            "roi": self.roi, "roi_se": self.roi_se,
            "share_targeted": self.share_targeted, "share_targeted_se": self.share_targeted_se,
            "n_targeted": self.n_targeted, "spend": self.spend,
            "incremental_outcome": self.incremental_outcome,
            "incremental_outcome_se": self.incremental_outcome_se, "method": self.method,
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"rule": self.rule, **self.to_dict()}])

    def __repr__(self) -> str:
        lo, hi = self.profit_interval
        roi = "n/a" if not np.isfinite(self.roi) else f"{self.roi:.1%}"
        return (f"PolicyProfit({self.rule!r}: profit/customer={self.profit:.4g} "
                f"(95% CI {lo:.4g} to {hi:.4g}), ROI={roi}, "
                f"targeted={self.share_targeted:.1%} of {self.n}, {self.method})")


def _profit_terms(scores, assignment, cost, margin):
    n, k = scores.shape
    a = _assignment_codes(assignment, n, k)
    c = _costs(cost, k)
    treated = a > 0
    idx = np.clip(a - 1, 0, k - 1)
    gain = np.where(treated, scores[np.arange(n), idx], 0.0)
    spend_i = np.where(treated, c[idx], 0.0)
    return a, gain, spend_i


def evaluate_policy(scores, assignment, *, cost, margin, rule: str = "policy",
                    method: str = "aipw") -> PolicyProfit:
    """Profit, ROI and share targeted of an assignment, from effect scores.

    Parameters
    ----------
    scores : array (n,) or (n, K)
        Effect scores of each arm versus control on the evaluation sample
        (:func:`effect_scores`), computed with models not fitted on these rows.
    assignment : array (n,) of bool or int
        The policy: True / arm code to treat, False / 0 for control.
    cost : float or array (K,)
        Cost per treated customer (per arm).
    margin : float
        Profit per unit of outcome (e.g. 0.3 for a 30% margin on spend; 1 if
        the outcome is already profit).
    rule : str, default="policy"
        Name shown in results.
    method : str, default="aipw"
        Label of the score type (for the record).

    Returns
    -------
    PolicyProfit

    Examples
    --------
    >>> s = np.array([10.0, 0.0, 20.0, -10.0])
    >>> r = evaluate_policy(s, [True, False, True, False], cost=2.0, margin=0.5)
    >>> r.profit, r.share_targeted, r.roi
    (2.75, 0.5, 2.75)
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    if s.ndim != 2 or not np.all(np.isfinite(s)):
        raise DataError("'scores' must be a finite (n,) or (n, K) array of effect scores.")
    breakeven_effect(np.max(_costs(cost, s.shape[1])), margin)  # validates margin / cost
    a, gain, spend_i = _profit_terms(s, assignment, cost, margin)
    n = s.shape[0]
    profit_i = margin * gain - spend_i
    profit = float(profit_i.mean())
    profit_se = float(profit_i.std(ddof=1) / np.sqrt(n))
    spend = float(spend_i.mean())
    roi = profit / spend if spend > 0 else float("nan")
    roi_se = profit_se / spend if spend > 0 else float("nan")
    share = float(np.mean(a > 0))
    return PolicyProfit(
        rule=rule, profit=profit, profit_se=profit_se, roi=float(roi), roi_se=float(roi_se),
        share_targeted=share, share_targeted_se=float(np.sqrt(share * (1 - share) / n)),
        n_targeted=int(np.sum(a > 0)), n=n, spend=spend,
        incremental_outcome=float(gain.mean()),
        incremental_outcome_se=float(gain.std(ddof=1) / np.sqrt(n)), method=method,
    )


@dataclass(frozen=True)
class ProfitCurve:
    """Profit and ROI per customer when targeting the top-q share by a priority."""

    table: pd.DataFrame

    @property
    def best_share(self) -> float:
        """The targeted share with the largest estimated profit."""
        return float(self.table.loc[self.table["profit"].idxmax(), "q"])

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        return {c: self.table[c].tolist() for c in self.table.columns}

    def __repr__(self) -> str:
        best = self.table.loc[self.table["profit"].idxmax()]
        return (f"ProfitCurve({len(self.table)} points; best share {best['q']:.0%} with profit "
                f"{best['profit']:.4g} per customer, ROI {best['roi']:.1%})")


def _net_priority(effect, cost, margin):
    tau = np.asarray(effect, dtype=float)
    tau = tau[:, None] if tau.ndim == 1 else tau
    c = _costs(cost, tau.shape[1])
    net = margin * tau - c[None, :]
    best = np.argmax(net, axis=1)
    return net[np.arange(tau.shape[0]), best], best + 1


def profit_curve(scores, effect, *, cost, margin, q=None) -> ProfitCurve:
    """Profit and ROI of targeting the top-q share ranked by estimated net profit.

    With several arms each targeted customer gets the arm of largest
    estimated net profit margin x effect - cost.

    Parameters
    ----------
    scores : array (n,) or (n, K)
        Effect scores on the evaluation sample.
    effect : array (n,) or (n, K)
        Estimated effects (the ranking), out of sample.
    cost, margin : see :func:`evaluate_policy`
    q : array, default=0, 0.05, ..., 1
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    n = s.shape[0]
    priority, arm = _net_priority(effect, cost, margin)
    if priority.shape[0] != n:
        raise DataError(f"'effect' has {priority.shape[0]} rows; 'scores' has {n}.")
    q = np.linspace(0, 1, 21) if q is None else np.asarray(q, dtype=float)
    order = np.argsort(-priority, kind="stable")
    rows = []
    for share in q:
        m = int(round(share * n))
        assign = np.zeros(n, dtype=int)
        assign[order[:m]] = arm[order[:m]]
        if m == 0:
            rows.append({"q": float(share), "n_targeted": 0, "profit": 0.0, "profit_se": 0.0,
                         "roi": np.nan, "roi_se": np.nan})
            continue
        r = evaluate_policy(s, assign, cost=cost, margin=margin)
        rows.append({"q": float(share), "n_targeted": m, "profit": r.profit,
                     "profit_se": r.profit_se, "roi": r.roi, "roi_se": r.roi_se})
    return ProfitCurve(table=pd.DataFrame(rows))


@dataclass(frozen=True)
class SensitivityGrid:
    """Breakeven-rule profit over a grid of costs and margins."""

    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> list:
        return self.table.to_dict("records")

    def __repr__(self) -> str:
        t = self.table
        return (f"SensitivityGrid({len(t)} scenarios; profit from {t['profit'].min():.4g} "
                f"to {t['profit'].max():.4g} per customer)")


def sensitivity_grid(scores, effect, *, costs, margins) -> SensitivityGrid:
    """Re-apply the breakeven (best-arm) rule and re-evaluate it for every cost x margin.

    Returns a table ``cost, margin, breakeven, share_targeted, profit,
    profit_se, roi`` (one row per scenario): is the sign of the decision
    robust to the business assumptions?
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    tau = np.asarray(effect, dtype=float)
    tau = tau[:, None] if tau.ndim == 1 else tau
    rows = []
    for c in np.atleast_1d(costs):
        for m in np.atleast_1d(margins):
            assign = best_arm_rule(tau, c, m)
            r = evaluate_policy(s, assign, cost=c, margin=m, rule="breakeven")
            rows.append({"cost": float(c), "margin": float(m),
                         "breakeven": breakeven_effect(float(c), float(m)),
                         "share_targeted": r.share_targeted, "profit": r.profit,
                         "profit_se": r.profit_se, "roi": r.roi})
    return SensitivityGrid(table=pd.DataFrame(rows))


@dataclass(frozen=True)
class SegmentSummary:
    """Effect per segment (mean score with 95% interval) and a suggested action."""

    table: pd.DataFrame
    breakeven: float

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        out = {}
        for r in self.table.to_dict("records"):
            key = str(r["segment"]) if "arm" not in r else f"{r['segment']}|{r['arm']}"
            out[key] = {k: v for k, v in r.items() if k not in ("segment",)}
        return out

    def __repr__(self) -> str:
        return f"SegmentSummary({len(self.table)} rows, breakeven={self.breakeven:.4g})"


def segment_summary(segments, scores, effect=None, *, cost: float = 0.0, margin: float = 1.0,
                    arm_names=None) -> SegmentSummary:
    """Mean effect per segment with a 95% interval, and what to do with the segment.

    The segment effect is the mean effect score in the segment (an unbiased
    estimate of the segment's average effect); ``mean_predicted`` is the
    average estimated CATE there.  Action: ``"target"`` when the interval lies
    above the breakeven effect cost / margin, ``"do not target"`` when it lies
    below, otherwise ``"test and learn"``.

    Parameters
    ----------
    segments : array (n,)
        Segment label per customer.
    scores : array (n,) or (n, K)
    effect : array (n,) or (n, K), default=None
    cost, margin : float
        For the breakeven effect (default 0: act on the sign).
    arm_names : list of str, default=None
        Names of the K arms (several arms: one row per segment and arm).
    """
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    seg = np.asarray(segments)
    if seg.shape[0] != s.shape[0]:
        raise DataError(f"'segments' has {seg.shape[0]} values; 'scores' has {s.shape[0]} rows.")
    be = breakeven_effect(cost, margin) if cost else 0.0
    tau = None
    if effect is not None:
        tau = np.asarray(effect, dtype=float)
        tau = tau[:, None] if tau.ndim == 1 else tau
    k = s.shape[1]
    names = list(arm_names) if arm_names is not None else [str(j + 1) for j in range(k)]
    rows = []
    labels = pd.unique(pd.Series(seg))
    for lab in sorted(labels.tolist(), key=str):
        rows_i = seg == lab
        n_i = int(rows_i.sum())
        for j in range(k):
            v = s[rows_i, j]
            mean = float(v.mean())
            se = float(v.std(ddof=1) / np.sqrt(n_i)) if n_i > 1 else float("nan")
            lo, hi = mean - _Z * se, mean + _Z * se
            if lo > be:
                action = "target"
            elif hi < be:
                action = "do not target"
            else:
                action = "test and learn"
            rec = {"segment": lab, "n": n_i, "effect": mean, "se": se, "lo": lo, "hi": hi,
                   "mean_predicted": float(tau[rows_i, j].mean()) if tau is not None else np.nan,
                   "action": action}
            if k > 1:
                rec["arm"] = names[j]
            rows.append(rec)
    return SegmentSummary(table=pd.DataFrame(rows), breakeven=be)
