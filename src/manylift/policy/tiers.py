"""Decision tiers for Bayesian campaign decisioning: target, test more, or deprioritize.

The manager's question per segment is "does the campaign help here, and how
sure are we?".  Each segment gets a *decision probability*:

* ``P(uplift > 0)`` (the posterior probability that the campaign helps), or,
  when a cost per contact and a margin per unit of outcome are given,
* ``P(uplift > breakeven)`` with ``breakeven = cost / margin`` (the
  probability that treating the segment pays: ``margin * uplift - cost > 0``),

and an action by two thresholds (options)::

    probability >= target            -> "target"        (target confidently)
    test_more <= probability < target -> "test_more"     (promising: test more)
    probability < test_more           -> "deprioritize"  (weak evidence)

:func:`bayes_decisioning` runs the whole analysis (pooled and hierarchical
models, checks, diagnostics, decision table) as one library call; it is what
``manylift bayes`` runs.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.errors import ConvergenceWarning, ModelError
from manylift.single.bayes import (
    BayesianUplift,
    BayesPriors,
    OverallEffect,
    PredictiveCheck,
    SegmentEffects,
)
from manylift.single.bayes.data import build_design
from manylift.single.data import SingleData, plain
from manylift.single.progress import as_progress

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "TierThresholds",
    "assign_tiers",
    "breakeven_uplift",
    "DecisionTable",
    "decision_table",
    "BayesDecision",
    "bayes_decisioning",
]

ACTIONS = ("target", "test_more", "deprioritize")
ACTION_LABELS = {
    "target": "Target confidently",
    "test_more": "Promising: test more",
    "deprioritize": "Weak evidence: deprioritize for now",
}


@dataclass(frozen=True)
class TierThresholds:
    """Probability thresholds of the action tiers.

    Parameters
    ----------
    target : float, default=0.9
        Decision probability at or above which a segment is targeted.
    test_more : float, default=0.7
        Decision probability at or above which (and below ``target``) a
        segment is promising and worth more testing; below it, deprioritize.

    Examples
    --------
    >>> TierThresholds(target=0.95, test_more=0.8)
    TierThresholds(target=0.95, test_more=0.8)
    """

    target: float = 0.9
    test_more: float = 0.7

    def __post_init__(self):
        for name in ("target", "test_more"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0 <= v <= 1):
                raise ModelError(
                    f"The {name!r} parameter of TierThresholds must be a probability in "
                    f"[0, 1]; got {v!r} instead."
                )
        if self.test_more > self.target:
            raise ModelError(
                f"The 'test_more' threshold ({self.test_more}) of TierThresholds must not exceed "
                f"the 'target' threshold ({self.target}). Swap them or lower 'test_more'."
            )


def assign_tiers(probability, thresholds: TierThresholds | None = None) -> np.ndarray:
    """Map decision probabilities to actions ``"target"``, ``"test_more"``, ``"deprioritize"``.

    Parameters
    ----------
    probability : array-like of float in [0, 1]
        P(uplift > 0) or P(uplift > breakeven) per segment.
    thresholds : TierThresholds, default=None
        ``None`` uses ``TierThresholds()`` (0.9 and 0.7).

    Returns
    -------
    ndarray of str

    Examples
    --------
    >>> assign_tiers([0.95, 0.9, 0.8, 0.7, 0.5]).tolist()
    ['target', 'target', 'test_more', 'test_more', 'deprioritize']
    """
    th = thresholds or TierThresholds()
    p = np.asarray(probability, dtype=float).reshape(-1)
    bad = ~((p >= 0) & (p <= 1))
    if bad.any():
        raise ModelError(
            f"Decision probabilities must lie in [0, 1]; {int(bad.sum())} do not "
            f"(e.g. {p[bad][:3].tolist()})."
        )
    out = np.full(p.shape, "deprioritize", dtype=object)
    out[p >= th.test_more] = "test_more"
    out[p >= th.target] = "target"
    return out.astype(str)


def breakeven_uplift(cost: float | None, margin: float | None) -> float | None:
    """The uplift at which treating pays: ``cost / margin`` (``None`` if neither is given).

    ``cost`` is the cost of treating one customer, ``margin`` the value of one
    unit of outcome (e.g. of one conversion), in the same currency.

    Examples
    --------
    >>> breakeven_uplift(0.05, 25.0)
    0.002
    """
    if cost is None and margin is None:
        return None
    if cost is None or margin is None:
        raise ModelError(
            f"Give both cost and margin (or neither); got cost={cost!r}, margin={margin!r}."
        )
    if not (np.isfinite(cost) and cost >= 0):
        raise ModelError(f"The 'cost' parameter must be a number >= 0; got {cost!r} instead.")
    if not (np.isfinite(margin) and margin > 0):
        raise ModelError(f"The 'margin' parameter must be a number > 0; got {margin!r} instead.")
    return float(cost) / float(margin)


@dataclass(frozen=True, eq=False)
class DecisionTable:
    """The per-segment decision table.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per segment: counts, ``raw_lift``, the effect on the model
        scale (``effect_mean``, ``effect_q10``/``q90``, ``effect_lo``/``hi``),
        the uplift (``uplift_mean``, ``uplift_q10``/``q90``,
        ``uplift_lo``/``hi``), ``p_positive``, ``p_breakeven`` (with cost and
        margin), ``profit_mean``/``profit_lo``/``profit_hi`` per customer
        treated (with cost and margin), ``decision_probability``, ``action``
        and ``action_label``; sorted by decision probability, then uplift.
    thresholds : TierThresholds
    basis : str
        ``"p_positive"`` or ``"p_breakeven"``: the probability the tiers use.
    cost, margin, breakeven : float or None
    """

    frame: pd.DataFrame
    thresholds: TierThresholds
    basis: str
    cost: float | None = None
    margin: float | None = None
    breakeven: float | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def counts(self) -> dict:
        """Number of segments per action."""
        vc = self.frame["action"].value_counts()
        return {a: int(vc.get(a, 0)) for a in ACTIONS}

    def __repr__(self) -> str:
        cols = ["segment", "n", "raw_lift", "uplift_mean", "uplift_lo", "uplift_hi",
                "decision_probability", "action"]
        return (
            f"DecisionTable(basis={self.basis!r}, target>={self.thresholds.target}, "
            f"test_more>={self.thresholds.test_more}, breakeven={self.breakeven})\n"
            + self.frame[cols].to_string(index=False)
        )


def decision_table(effects: SegmentEffects, thresholds: TierThresholds | None = None,
                   cost: float | None = None, margin: float | None = None) -> DecisionTable:
    """Per-segment decision table from posterior segment effects.

    Parameters
    ----------
    effects : SegmentEffects
        From :meth:`manylift.single.bayes.BayesianUplift.segment_effects`.
    thresholds : TierThresholds, default=None
        ``None`` uses ``TierThresholds()``.
    cost, margin : float, default=None
        Cost of treating one customer and value of one unit of outcome. When
        both are given the tiers use ``P(uplift > cost / margin)`` and the
        table adds the expected profit per customer treated,
        ``margin * uplift - cost``; otherwise the tiers use ``P(uplift > 0)``.

    Returns
    -------
    DecisionTable

    References
    ----------
    The tiers follow a common practitioner's rule for Bayesian A/B decisions
    (target confidently at P(effect > 0) >= 0.9, test more at 0.7 to 0.9), as
    in worked Bayesian analyses of the Hillstrom e-mail experiment; see
    ``docs/bayes.md``.
    """
    th = thresholds or TierThresholds()
    be = breakeven_uplift(cost, margin)
    eff = effects.with_breakeven(be)
    frame = eff.to_frame()
    if be is None:
        basis = "p_positive"
    else:
        basis = "p_breakeven"
        profit = margin * eff.uplift_draws - cost
        q = np.quantile(profit, [0.025, 0.975], axis=1)
        frame["profit_mean"] = profit.mean(axis=1)
        frame["profit_lo"] = q[0]
        frame["profit_hi"] = q[1]
    frame["decision_probability"] = frame[basis]
    frame["action"] = assign_tiers(frame["decision_probability"].to_numpy(), th)
    frame["action_label"] = frame["action"].map(ACTION_LABELS)
    frame = frame.sort_values(["decision_probability", "uplift_mean"],
                              ascending=False, kind="stable").reset_index(drop=True)
    return DecisionTable(frame=frame, thresholds=th, basis=basis,
                         cost=None if cost is None else float(cost),
                         margin=None if margin is None else float(margin), breakeven=be)


# --------------------------------------------------------------------------
# the one library call behind `manylift bayes`
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BayesDecision:
    """Everything ``manylift bayes`` reports.

    Attributes
    ----------
    pooled : OverallEffect
        The average effect from the pooled model.
    hierarchical : OverallEffect
        The average effect over all rows from the hierarchical model.
    segments : SegmentEffects
        Per-segment effects from the hierarchical model.
    table : DecisionTable
    diagnostics : dict of str to BayesDiagnostics
        ``"pooled"`` and ``"hierarchical"``.
    prior_check : PredictiveCheck
        Prior predictive check (hierarchical model's priors).
    posterior_checks : dict of str to PredictiveCheck
        ``"pooled"`` and ``"hierarchical"``.
    settings : dict
        Columns, control value, family, sampler settings, priors, row counts.
    warnings : list of str
        Sampler warnings (convergence) raised during the fits.
    """

    pooled: OverallEffect
    hierarchical: OverallEffect
    segments: SegmentEffects
    table: DecisionTable
    diagnostics: dict
    prior_check: PredictiveCheck
    posterior_checks: dict
    settings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def rhat_max(self) -> float:
        return max(d.rhat_max for d in self.diagnostics.values())

    @property
    def ess_bulk_min(self) -> float:
        return min(d.ess_bulk_min for d in self.diagnostics.values())

    @property
    def divergences(self) -> int:
        return int(sum(d.divergences for d in self.diagnostics.values()))

    @property
    def converged(self) -> bool:
        return all(d.passed for d in self.diagnostics.values())

    def to_frame(self) -> pd.DataFrame:
        return self.table.to_frame()

    def segments_frame(self) -> pd.DataFrame:
        """The per-segment export (``segments.csv``): one row per segment with ``segment, n,
        n_treated, n_control, raw_lift, uplift_mean, uplift_lo, uplift_hi`` (95%),
        ``p_positive`` = P(uplift > 0), ``p_breakeven`` = P(uplift > cost / margin) (empty
        without cost and margin), ``breakeven``, ``decision_probability``, ``tier`` (target /
        test_more / deprioritize) and ``tier_label``; best first."""
        f = self.table.frame
        out = f[["segment", "n", "n_treated", "n_control", "raw_lift", "uplift_mean",
                 "uplift_lo", "uplift_hi", "p_positive"]].copy()
        out["p_breakeven"] = f["p_breakeven"] if "p_breakeven" in f else np.nan
        out["breakeven"] = self.table.breakeven if self.table.breakeven is not None else np.nan
        out["decision_probability"] = f["decision_probability"]
        out["tier"] = f["action"]
        out["tier_label"] = f["action_label"]
        return out

    def summary_lines(self) -> list[str]:
        """The headline in words, for the terminal."""
        p = self.pooled.uplift
        unit = "probability" if self.settings.get("family") == "bernoulli" else "outcome units"
        lines = [f"average uplift (pooled model): {p['mean']:.4g} (95% interval {p['lo']:.4g} "
                 f"to {p['hi']:.4g}) in {unit}; P(uplift > 0) = {p['p_positive']:.3f}"]
        for r in self.table.frame.itertuples():
            lines.append(f"  {r.segment}: uplift {r.uplift_mean:.4g} ({r.uplift_lo:.4g} to "
                         f"{r.uplift_hi:.4g}), P = {r.decision_probability:.3f} -> {r.action}")
        lines.append(f"sampler: R-hat max {self.rhat_max:.4f}, bulk ESS min "
                     f"{self.ess_bulk_min:.0f}, divergences {self.divergences}; "
                     f"{self.settings.get('sampler', {}).get('seconds', float('nan')):.1f} s")
        return lines

    def to_results(self) -> dict:
        """The ``results.json`` content (keys in ``docs/bayes.md``)."""

        def overall(e: OverallEffect) -> dict:
            u, f = e.uplift, e.effect
            out = {
                "uplift_mean": u["mean"], "uplift_sd": u["sd"], "uplift_lo": u["lo"],
                "uplift_hi": u["hi"], "uplift_q10": u["q10"], "uplift_q90": u["q90"],
                "p_positive": u["p_positive"],
                "effect_mean": f["mean"], "effect_lo": f["lo"], "effect_hi": f["hi"],
                "effect_scale": e.scale,
            }
            if "p_breakeven" in u:
                out["p_breakeven"] = u["p_breakeven"]
            return out

        segs = {}
        keep = ["n", "n_treated", "n_control", "raw_lift", "effect_mean", "effect_q10",
                "effect_q90", "effect_lo", "effect_hi", "uplift_mean", "uplift_q10",
                "uplift_q90", "uplift_lo", "uplift_hi", "p_positive", "p_breakeven",
                "profit_mean", "profit_lo", "profit_hi", "decision_probability", "action"]
        for rec in self.table.frame.to_dict(orient="records"):
            segs[str(rec["segment"])] = {k: rec[k] for k in keep if k in rec}
        diag = {
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": min(d.ess_tail_min for d in self.diagnostics.values()),
            "divergences": self.divergences,
            "passed": self.converged,
            "models": {k: d.to_dict() for k, d in self.diagnostics.items()},
        }
        th = self.table.thresholds
        return {
            "schema_version": 1,
            "command": "bayes",
            "data": {k: self.settings.get(k) for k in
                     ("rows", "treated", "control", "treatment", "outcome", "segment",
                      "control_value", "covariates", "covariates_source", "family", "segments",
                      "cells", "rows_in_file", "sample")},
            "pooled": overall(self.pooled),
            "hierarchical": overall(self.hierarchical),
            "segments": segs,
            "decision": {
                "basis": self.table.basis, "target_threshold": th.target,
                "test_more_threshold": th.test_more, "cost": self.table.cost,
                "margin": self.table.margin, "breakeven": self.table.breakeven,
                "counts": self.table.counts(),
            },
            "checks": {
                "prior_predictive": self.prior_check.to_dict(),
                "posterior_predictive": {k: c.to_dict() for k, c in self.posterior_checks.items()},
            },
            "diagnostics": diag,
            "priors": self.settings.get("priors"),
            "sampler": self.settings.get("sampler"),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        p = self.pooled.uplift
        return (
            f"BayesDecision(pooled uplift={p['mean']:.4g} [95% {p['lo']:.4g}, {p['hi']:.4g}], "
            f"segments={len(self.segments.segments)}, actions={self.table.counts()}, "
            f"rhat_max={self.rhat_max:.4f}, divergences={self.divergences})"
        )


def bayes_decisioning(data, *, treatment=None, outcome=None, segment=None, covariates=None,
                      control=None, family="auto", cost=None, margin=None, thresholds=None,
                      priors=None, n_chains=4, n_warmup=None, n_draws=None, target_accept=0.95,
                      sample=None, allow_imbalanced=(), allow_duplicates=None, random_state=0,
                      n_predictive=500, progress=False) -> BayesDecision:
    """Bayesian campaign decisioning for one experiment with segments.

    Prepares the table once (:meth:`manylift.single.SingleData.from_frame`: a
    randomized experiment, so covariates and the segment column must pass the
    balance check), fits the pooled and the hierarchical model
    (:class:`BayesianUplift`), runs the prior and posterior predictive checks and
    the diagnostics, and builds the per-segment decision table.

    Parameters
    ----------
    data : pandas.DataFrame or SingleData
    treatment, outcome, segment : str
        Columns; every treatment value other than the control counts as treated.
    covariates : list of str, "auto" or None, default=None
        Pre-treatment controls (numeric standardized, categorical one-hot);
        ``None``: the pre-treatment columns a built-in dataset declares, else none.
    control : scalar, default=None
        Control value of ``treatment`` (see :func:`manylift.single.resolve_control`).
    family : {"auto", "bernoulli", "gaussian"}, default="auto"
        ``"auto"``: bernoulli for a 0/1 outcome, else gaussian.
    cost, margin : float, default=None
        Cost per customer treated and value per unit of outcome; with both,
        the tiers use P(uplift > cost / margin).
    thresholds : TierThresholds, default=None
    priors : BayesPriors, default=None
    n_chains : int, default=4
    n_warmup, n_draws : int or None, default=None
        Per chain; ``None``: 1,000 + 1,000 for a design of few cells (categorical
        covariates), 400 + 500 otherwise (see :class:`BayesianUplift`).
    target_accept : float, default=0.95
    sample : int, default=None
        Fit a seeded random subsample of this many rows.
    allow_imbalanced, allow_duplicates
        See :meth:`SingleData.from_frame`.
    random_state : int, default=0
    n_predictive : int, default=500
        Draws used by the predictive checks.
    progress : bool, default=False
        Stage lines and NumPyro's progress bars on standard error.

    Returns
    -------
    BayesDecision

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"w": rng.integers(0, 2, 3000), "seg": rng.choice(list("abc"), 3000)})
    >>> df["y"] = (rng.random(3000) < 0.1 + 0.08 * df["w"]).astype(int)
    >>> res = bayes_decisioning(df, treatment="w", outcome="y", segment="seg",
    ...                         allow_duplicates=True, n_chains=2, n_warmup=200, n_draws=200)
    >>> sorted(res.to_results()["segments"]) == ["a", "b", "c"]
    True
    """
    prog = as_progress(progress, "bayes")
    be = breakeven_uplift(cost, margin)
    th = thresholds or TierThresholds()
    priors = priors or BayesPriors()
    if isinstance(data, SingleData):
        prepared = data
    else:
        if treatment is None or outcome is None or segment is None:
            raise ModelError("bayes_decisioning needs treatment=, outcome= and segment= column "
                             "names (or a prepared SingleData).")
        prepared = SingleData.from_frame(
            data, treatment, outcome, covariates, control=control, segment=segment,
            family=family, randomized=True, allow_imbalanced=allow_imbalanced,
            allow_duplicates=allow_duplicates, sample=sample, random_state=random_state,
            where="bayes")
    if prepared.segment is None:
        raise ModelError("bayes_decisioning needs a segment column (segment=...).")
    common = dict(family=prepared.family, priors=priors, n_chains=n_chains, n_warmup=n_warmup,
                  n_draws=n_draws, target_accept=target_accept, random_state=random_state,
                  progress_bar=bool(prog.enabled))
    caught_messages = []
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fits = {}
        for model in ("pooled", "hierarchical"):
            est = BayesianUplift(model=model, **common)
            d = build_design(prepared, hierarchical=model == "hierarchical")
            from manylift.single.bayes.model import SMALL_DESIGN_CELLS

            small = d.n_cells <= SMALL_DESIGN_CELLS
            warm = n_warmup if n_warmup is not None else (1000 if small else 400)
            draws = n_draws if n_draws is not None else (1000 if small else 500)
            prog.stage(f"{model} model: NUTS, {n_chains} chains x ({warm} warm-up + "
                       f"{draws} draws) on {d.n_cells:,} cells of identical rows "
                       f"({d.n_rows:,} rows)")
            fits[model] = est._fit_design(d, prepared.covariates_source)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            caught_messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for m in caught_messages:
        warnings.warn(m, ConvergenceWarning, stacklevel=2)
    pooled, hier = fits["pooled"], fits["hierarchical"]
    seconds = time.perf_counter() - t0
    prog.stage(f"predictive checks ({n_predictive} draws) and decision table")
    segs = hier.segment_effects(breakeven=be)
    table = decision_table(segs, th, cost=cost, margin=margin)
    d = hier.design_
    n_treated = int(prepared.treated.sum())
    settings = {
        "rows": prepared.n,
        "treated": n_treated,
        "control": prepared.n - n_treated,
        "treatment": prepared.columns.get("treatment"), "outcome": prepared.columns.get("outcome"),
        "segment": prepared.columns.get("segment"),
        "control_value": _plain(prepared.control),
        "covariates": list(d.covariate_names), "covariates_source": prepared.covariates_source,
        "family": d.family,
        "segments": list(d.segments),
        "cells": {"pooled": pooled.design_.n_cells, "hierarchical": d.n_cells},
        "rows_in_file": prepared.rows_in, "sample": sample,
        "priors": priors.to_dict() | {"intercept_loc_used": hier.intercept_loc_},
        "sampler": {"chains": n_chains, "warmup": hier.n_warmup_, "draws": hier.n_draws_,
                    "warmup_pooled": pooled.n_warmup_, "draws_pooled": pooled.n_draws_,
                    "target_accept": target_accept, "seed": random_state,
                    "seconds": seconds, "chain_method": hier.chain_method},
    }
    return BayesDecision(
        pooled=pooled.overall_effect(breakeven=be),
        hierarchical=hier.overall_effect(breakeven=be),
        segments=segs,
        table=table,
        diagnostics={"pooled": pooled.diagnostics_, "hierarchical": hier.diagnostics_},
        prior_check=hier.prior_predictive(n_draws=n_predictive),
        posterior_checks={"pooled": pooled.posterior_predictive(n_draws=n_predictive),
                          "hierarchical": hier.posterior_predictive(n_draws=n_predictive)},
        settings=settings,
        warnings=caught_messages,
    )


def _plain(value):
    """A JSON-friendly scalar (numpy scalars to Python, anything else to str)."""
    value = plain(value)
    return value if isinstance(value, int | float | str | bool) else str(value)
