"""Figures and the HTML report of Bayesian campaign decisioning (``manylift bayes``).

Each figure is a small Display object built from a result object
(``from_result(...)``) whose ``plot(ax=None)`` draws it; the report renders
results and never recomputes them.
"""

from __future__ import annotations

import numpy as np

from manylift.policy.tiers import ACTION_LABELS, BayesDecision, DecisionTable
from manylift.report.html import Page, fmt_interval, fmt_num
from manylift.single.bayes import PredictiveCheck

__all__ = [
    "PredictiveCheckDisplay",
    "SegmentForestDisplay",
    "DecisionProbabilityDisplay",
    "bayes_report",
]

_COLORS = {"target": "#2e7d32", "test_more": "#f9a825", "deprioritize": "#9e9e9e"}


def _tex(text) -> str:
    """Escape ``$`` so matplotlib does not read "$100 - $200" as mathtext."""
    return str(text).replace("$", r"\$")


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


class PredictiveCheckDisplay:
    """Histogram of prior or posterior predictive outcome rates against the observed rate.

    Examples
    --------
    >>> # fig = PredictiveCheckDisplay.from_result(fit.posterior_predictive()).plot()
    """

    def __init__(self, check: PredictiveCheck, outcome: str = "outcome"):
        self.check = check
        self.outcome = outcome

    @classmethod
    def from_result(cls, check: PredictiveCheck, outcome: str = "outcome"):
        return cls(check, outcome)

    def plot(self, ax=None):
        c = self.check
        fig, ax = _axes(ax, (7, 3.6))
        lo, hi = c.interval
        if c.kind == "prior":
            vals = c.row_values
            bins = np.linspace(0, 1, 51) if vals.max() <= 1 and vals.min() >= 0 else 50
            ax.hist(vals, bins=bins, color="#90a4ae", label="implied per-customer rate")
            ax.hist(c.draws, bins=bins, color="#2f6db5", alpha=0.7,
                    label="implied average rate (per prior draw)")
            ax.set_yscale("log")
            title = (f"Priors imply {self.outcome} rates mostly between {fmt_num(lo)} and "
                     f"{fmt_num(hi)} (observed {fmt_num(c.observed)})")
            ax.set_xlabel(_tex(f"implied {self.outcome} rate under the priors"))
        else:
            ax.hist(c.draws, bins=40, color="#2f6db5", alpha=0.8,
                    label="replicated data sets")
            verdict = "reproduces" if c.covers_observed else "does NOT reproduce"
            title = (f"The fitted model {verdict} the observed {self.outcome} rate "
                     f"(p = {c.p_value:.2f})")
            ax.set_xlabel(_tex(f"mean {self.outcome} in a replicated data set"))
        ax.axvline(c.observed, color="#c62828", linestyle="--", label="observed")
        ax.set_ylabel("count of draws")
        ax.set_title(_tex(title), fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        return fig


class SegmentForestDisplay:
    """Forest plot: posterior uplift per segment (80% and 95% intervals), coloured by tier,
    with the raw lift and the pooled uplift for reference; ``scale="effect"`` shows the
    effect on the model scale (log-odds) instead."""

    def __init__(self, table: DecisionTable, pooled_uplift: float | None = None,
                 outcome: str = "outcome", scale: str = "uplift"):
        self.table = table
        self.pooled_uplift = pooled_uplift
        self.outcome = outcome
        self.scale = scale

    @classmethod
    def from_result(cls, decision: BayesDecision, scale: str = "uplift"):
        return cls(decision.table, decision.pooled.uplift["mean"],
                   decision.settings.get("outcome") or "outcome", scale)

    def plot(self, ax=None):
        k = "uplift" if self.scale == "uplift" else "effect"
        df = self.table.frame.sort_values(f"{k}_mean", kind="stable").reset_index(drop=True)
        fig, ax = _axes(ax, (7.5, 0.45 * len(df) + 1.6))
        y = np.arange(len(df))
        for i, r in df.iterrows():
            col = _COLORS[r["action"]]
            ax.plot([r[f"{k}_lo"], r[f"{k}_hi"]], [i, i], color=col, lw=1.5)
            ax.plot([r[f"{k}_q10"], r[f"{k}_q90"]], [i, i], color=col, lw=4.5)
            ax.plot(r[f"{k}_mean"], i, "o", color="black", ms=4)
        if k == "uplift":
            ax.plot(df["raw_lift"], y, "x", color="#c62828", ms=6, label="raw lift (difference in means)")
            if self.pooled_uplift is not None:
                ax.axvline(self.pooled_uplift, color="#2f6db5", lw=1, label="pooled model uplift")
            if self.table.breakeven is not None:
                ax.axvline(self.table.breakeven, color="#6a1b9a", lw=1, linestyle=":",
                           label="breakeven (cost / margin)")
        ax.axvline(0, color="black", lw=0.8, linestyle="--")
        ax.set_yticks(y, [_tex(s) for s in df["segment"]])
        for a, col in _COLORS.items():
            ax.plot([], [], color=col, lw=4.5, label=ACTION_LABELS[a])
        unit = (f"uplift in {self.outcome} (treated minus control)" if k == "uplift"
                else "treatment effect (model scale: log-odds or outcome units)")
        ax.set_xlabel(_tex(unit))
        best = df.sort_values(f"{k}_mean", kind="stable").iloc[-1]
        what = "expected uplift" if k == "uplift" else "treatment effect"
        ax.set_title(_tex(f"Largest {what}: {best['segment']} "
                          f"({fmt_num(best[f'{k}_mean'])}); thick bars 80%, thin 95% intervals"),
                     fontsize=10)
        # below the axes, so it never covers an interval or a label
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=3)
        return fig


class DecisionProbabilityDisplay:
    """Bar chart of the decision probability per segment with the tier thresholds."""

    def __init__(self, table: DecisionTable):
        self.table = table

    @classmethod
    def from_result(cls, decision: BayesDecision):
        return cls(decision.table)

    def plot(self, ax=None):
        t = self.table
        df = t.frame.sort_values("decision_probability", kind="stable").reset_index(drop=True)
        fig, ax = _axes(ax, (7.5, 0.45 * len(df) + 1.6))
        y = np.arange(len(df))
        ax.barh(y, df["decision_probability"], color=[_COLORS[a] for a in df["action"]])
        for i, p in enumerate(df["decision_probability"]):
            # inside the bar's left end: clear of the threshold lines at its right
            if p >= 0.12:
                ax.text(0.01, i, f"{p:.3f}", va="center", ha="left", fontsize=8, color="white",
                        fontweight="bold")
            else:
                ax.text(p + 0.01, i, f"{p:.3f}", va="center", ha="left", fontsize=8)
        ax.axvline(t.thresholds.target, color="#2e7d32", linestyle="--", lw=1,
                   label=f"target at {t.thresholds.target}")
        ax.axvline(t.thresholds.test_more, color="#f9a825", linestyle="--", lw=1,
                   label=f"test more at {t.thresholds.test_more}")
        ax.set_yticks(y, [_tex(s) for s in df["segment"]])
        ax.set_xlim(0, 1)
        what = ("P(uplift > 0)" if t.basis == "p_positive"
                else f"P(uplift > breakeven {fmt_num(t.breakeven)})")
        ax.set_xlabel(f"{what}: posterior probability")
        c = t.counts()
        ax.set_title(f"{c['target']} segment(s) to target, {c['test_more']} to test more, "
                     f"{c['deprioritize']} to deprioritize", fontsize=10)
        ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=2)
        return fig


def _interval(lo, hi) -> str:
    return f"{fmt_num(lo)} to {fmt_num(hi)}"


def _decision_frame(t: DecisionTable):
    """The decision table as people read it: compact, the action in the second column."""
    import pandas as pd

    f = t.frame
    prob = ("P(uplift > 0)" if t.basis == "p_positive"
            else f"P(uplift > {fmt_num(t.breakeven)})")
    out = pd.DataFrame({
        "segment": f["segment"],
        "action": f["action_label"],
        prob: f["decision_probability"],
        "uplift": f["uplift_mean"],
        "80% interval": [_interval(a, b) for a, b in zip(f["uplift_q10"], f["uplift_q90"])],
        "95% interval": [_interval(a, b) for a, b in zip(f["uplift_lo"], f["uplift_hi"])],
        "raw lift": f["raw_lift"],
        "customers (treated / control)": [f"{n:,} ({a:,} / {b:,})" for n, a, b in
                                          zip(f["n"], f["n_treated"], f["n_control"])],
    })
    if t.basis == "p_breakeven":
        out["profit per treated (95%)"] = [
            f"{fmt_num(m)} ({_interval(a, b)})"
            for m, a, b in zip(f["profit_mean"], f["profit_lo"], f["profit_hi"])]
    return out


def bayes_report(decision: BayesDecision, path=None, title: str | None = None) -> Page:
    """Build (and optionally save) the HTML report of a :class:`BayesDecision`.

    Parameters
    ----------
    decision : BayesDecision
    path : str or path-like, default=None
        Where to write the HTML file (atomically); ``None`` only builds the page.
    title : str, default=None

    Returns
    -------
    Page
    """
    s = decision.settings
    outcome = s.get("outcome") or "outcome"
    res = decision.to_results()
    page = Page(title or f"Bayesian campaign decisioning: {outcome} by {s.get('segment')}",
                subtitle=(f"{s.get('rows')} rows ({s.get('treated')} treated, {s.get('control')} "
                          f"control = {s.get('treatment')} == {s.get('control_value')!r}); "
                          f"NumPyro NUTS, {s['sampler']['chains']} chains x "
                          f"{s['sampler']['draws']} draws after {s['sampler']['warmup']} warm-up."))
    p = decision.pooled.uplift
    t = decision.table
    counts = t.counts()
    unit = "probability" if s.get("family") == "bernoulli" else "outcome units"
    bullets = [
        f"Average uplift of the campaign on {outcome} (pooled model): "
        f"{fmt_interval(p['mean'], p['lo'], p['hi'], unit)}; P(uplift > 0) = {p['p_positive']:.3f}.",
        f"Per segment: {counts['target']} to target confidently, {counts['test_more']} promising "
        f"(test more), {counts['deprioritize']} to deprioritize, by "
        + ("P(uplift > 0)" if t.basis == "p_positive"
           else f"P(uplift > breakeven = cost/margin = {fmt_num(t.breakeven)})")
        + f" with thresholds {t.thresholds.target} and {t.thresholds.test_more}.",
    ]
    if decision.converged:
        bullets.append(f"Sampler diagnostics pass: R-hat max {decision.rhat_max:.4f}, bulk ESS "
                       f"min {decision.ess_bulk_min:.0f}, no divergences.")
    else:
        probs = "; ".join(f"{k}: {', '.join(d.problems)}" for k, d in decision.diagnostics.items()
                          if d.problems)
        bullets.append(f"WARNING: sampler diagnostics fail ({probs}). Rerun with more warm-up "
                       f"(--warmup) and a higher --target-accept before acting on these numbers.")
    page.summary(bullets)

    page.section("Decision table",
                 "One row per segment: counts and the raw difference in means next to the "
                 "hierarchical model's posterior (partial pooling shrinks small noisy segments "
                 "toward the average). Uplift is treated minus control in " + unit + ".")
    page.table(_decision_frame(t), scroll=True,
               caption="The decision first: the action and the probability it rests on. Uplift "
               "in " + unit + " (treated minus control): posterior mean with 80% and 95% "
               "intervals; raw lift: the difference in means in the segment"
               + ("; profit per customer treated = margin x uplift - cost, mean and 95% interval."
                  if t.cost is not None else ".")
               + " Every column, unrounded, is in results.json and segments.csv.")
    page.figure(SegmentForestDisplay.from_result(decision).plot(),
                "Posterior uplift per segment with 80% (thick) and 95% (thin) intervals, "
                "coloured by action; red crosses are the raw lifts.")
    page.figure(DecisionProbabilityDisplay.from_result(decision).plot(),
                "The probability each action rests on, with the tier thresholds.")
    page.figure(SegmentForestDisplay.from_result(decision, scale="effect").plot(),
                f"Treatment effect per segment on the model scale ({decision.segments.scale}): "
                f"useful for ranking, not a business lift.")
    eff_cols = ["segment", "effect_mean", "effect_q10", "effect_q90", "effect_lo", "effect_hi"]
    page.table(t.frame[eff_cols],
               caption=f"Treatment effect on the model scale ({decision.segments.scale}).")

    page.section("Pooled and hierarchical averages")
    h = decision.hierarchical.uplift
    rows = []
    for name, e in (("pooled", decision.pooled), ("hierarchical", decision.hierarchical)):
        u, f = e.uplift, e.effect
        rows.append({"model": name, "uplift_mean": u["mean"], "uplift_lo": u["lo"],
                     "uplift_hi": u["hi"], "p_positive": u["p_positive"],
                     f"effect_mean ({e.scale})": f["mean"], "effect_lo": f["lo"],
                     "effect_hi": f["hi"]})
    import pandas as pd

    page.table(pd.DataFrame(rows), caption="Average over all rows; the hierarchical effect is "
               "the population mean of the segment effects.")
    page.paragraph(f"The two models agree on the average uplift when the hierarchical average "
                   f"({fmt_num(h['mean'])}) is close to the pooled one ({fmt_num(p['mean'])}).")

    page.section("Model checks",
                 "Prior predictive: the outcome rates the priors imply before seeing the "
                 "outcomes (they should be plausible, not extreme). Posterior predictive: "
                 "replicated data sets from the fitted model against the observed rate.")
    page.figure(PredictiveCheckDisplay.from_result(decision.prior_check, outcome).plot(),
                "Prior predictive check (hierarchical model's priors).")
    page.figure(PredictiveCheckDisplay.from_result(decision.posterior_checks["hierarchical"],
                                                   outcome).plot(),
                "Posterior predictive check of the overall rate (hierarchical model).")
    checks = res["checks"]
    rows = [{"check": "prior predictive", **checks["prior_predictive"]}]
    rows += [{"check": f"posterior predictive ({k})", **v}
             for k, v in checks["posterior_predictive"].items()]
    page.table(pd.DataFrame(rows), caption="observed rate, predictive mean and 95% interval, "
               "p_value = share of predictive draws at or above the observed rate.")
    page.table(decision.posterior_checks["hierarchical"].groups,
               caption="Posterior predictive check per segment and arm (hierarchical model).")

    page.section("Sampler diagnostics",
                 "Rank-normalized split R-hat (should be below 1.01), bulk and tail effective "
                 "sample sizes (at least 100 per chain) and divergent transitions (none).")
    diag_rows = [{"model": k, **d.to_dict()} for k, d in decision.diagnostics.items()]
    page.table(pd.DataFrame(diag_rows))
    page.table(decision.diagnostics["hierarchical"].table.reset_index(),
               caption="Per-parameter diagnostics of the hierarchical model.")
    pri = s.get("priors") or {}
    page.section("Priors and settings")
    page.paragraph("Weakly informative priors (scales on the log-odds scale for a binary "
                   "outcome, outcome standard deviations for the Gaussian family): "
                   + ", ".join(f"{k} = {fmt_num(v)}" for k, v in pri.items()) + ".")
    source = {"named": "named by the user", "auto": "every other numeric column (auto)",
              "dataset": "the dataset's declared pre-treatment columns",
              "none": "none named"}.get(s.get("covariates_source"), "named")
    page.paragraph("Covariates (pre-treatment controls, " + source + "): "
                   + (", ".join(s.get("covariates") or []) or "none") + ". Each passed the "
                   "randomization balance check (no arm differs from the control by |SMD| > 0.1 "
                   "with p < 0.001), as did the segment column.")
    cells = s.get("cells") or {}
    if cells:
        page.paragraph(f"The models ran on cells of identical rows (same segment, arm and "
                       f"covariates; exact): {cells.get('hierarchical'):,} cells for "
                       f"{s.get('rows'):,} rows (hierarchical), {cells.get('pooled'):,} "
                       f"(pooled).")
    page.footer("Built by manylift bayes. Uplift = mean over a segment's customers of the "
                "predicted outcome if treated minus if not, per posterior draw.")
    if path is not None:
        page.save(path)
    return page
