"""Figures and the HTML report of the single-experiment analysis (``manylift analyze``).

Display objects in the scikit-learn style: ``XDisplay.from_result(result).plot(ax)``;
they only draw what a result object holds, never recompute.  The report is
built with :class:`manylift.report.html.Page`, like every manylift report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from manylift.report.html import Page, fmt_interval, fmt_num

__all__ = [
    "ATEDisplay",
    "CalibrationDisplay",
    "LovePlotDisplay",
    "ProfitCurveDisplay",
    "PropensityHistogramDisplay",
    "TOCDisplay",
    "analyze_report",
]


def _axes(ax, size=(6.4, 4.0)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    else:
        fig = ax.figure
    return fig, ax


class _Display:
    def _done(self, fig, ax):
        self.figure_, self.ax_ = fig, ax
        return self


class LovePlotDisplay(_Display):
    """Standardized mean differences before and after weighting, one row per covariate."""

    def __init__(self, balance: pd.DataFrame, threshold: float = 0.1):
        self.balance = balance
        self.threshold = threshold

    @classmethod
    def from_result(cls, positivity, threshold: float = 0.1) -> LovePlotDisplay:
        return cls(positivity.balance, threshold)

    def plot(self, ax=None, max_covariates: int = 30):
        b = self.balance.copy()
        b["order"] = b["smd_before"].abs()
        b = b.sort_values("order").tail(max_covariates)
        fig, ax = _axes(ax, (6.4, max(2.5, 0.28 * len(b) + 1.2)))
        yy = np.arange(len(b))
        ax.scatter(b["smd_before"], yy, label="before weighting", color="#c0392b", zorder=3)
        if "smd_after" in b:
            ax.scatter(b["smd_after"], yy, label="after weighting", color="#2f6db5",
                       marker="s", zorder=3)
        for t in (-self.threshold, self.threshold):
            ax.axvline(t, color="grey", ls="--", lw=0.8)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(yy)
        ax.set_yticklabels(b["covariate"].astype(str))
        n_bal = int((self.balance["smd_before"].abs() < self.threshold).sum())
        ax.set_title(f"{n_bal} of {len(self.balance)} covariates balanced (|SMD| < {self.threshold})")
        ax.set_xlabel("standardized mean difference (treated - control, in SDs)")
        ax.legend(loc="lower right", fontsize=8)
        return self._done(fig, ax)


class PropensityHistogramDisplay(_Display):
    """Histogram of the propensity score by arm, with the [0.1, 0.9] overlap band."""

    def __init__(self, propensity, treatment, auc: float, known: bool):
        self.propensity = np.asarray(propensity)
        self.treatment = np.asarray(treatment)
        self.auc = auc
        self.known = known

    @classmethod
    def from_result(cls, positivity) -> PropensityHistogramDisplay:
        # the fitted scores show how predictable treatment is, also when the known one is used
        return cls(positivity.fitted_propensity, positivity.treatment, positivity.propensity_auc,
                   positivity.known_propensity)

    def plot(self, ax=None):
        fig, ax = _axes(ax)
        bins = np.linspace(0, 1, 41)
        ax.axvspan(0.1, 0.9, color="#e8f0e0", zorder=0, label="overlap [0.1, 0.9]")
        ax.hist(self.propensity[self.treatment == 0], bins=bins, alpha=0.6, density=True,
                label="control", color="#7f8c8d")
        ax.hist(self.propensity[self.treatment == 1], bins=bins, alpha=0.6, density=True,
                label="treated", color="#2f6db5")
        verdict = ("assignment looks random" if abs(self.auc - 0.5) < 0.05
                   else "treatment is predictable from covariates")
        ax.set_title(f"Propensity model AUC {self.auc:.3f}: {verdict}")
        ax.set_xlabel("cross-fitted propensity score P(treated | covariates)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        return self._done(fig, ax)


class ATEDisplay(_Display):
    """Point estimates and 95% intervals of the ATE by estimator."""

    def __init__(self, table: pd.DataFrame, unit: str = ""):
        self.table = table
        self.unit = unit

    @classmethod
    def from_result(cls, ate_result, unit: str = "") -> ATEDisplay:
        return cls(ate_result.to_frame(), unit)

    def plot(self, ax=None):
        t = self.table
        fig, ax = _axes(ax, (6.4, 0.4 * len(t) + 1.5))
        yy = np.arange(len(t))[::-1]
        ax.errorbar(t["estimate"], yy, xerr=[t["estimate"] - t["lo"], t["hi"] - t["estimate"]],
                    fmt="o", color="#2f6db5", capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(yy)
        ax.set_yticklabels(t["estimator"])
        spread = t["estimate"].max() - t["estimate"].min()
        if spread <= 2 * t["se"].median():
            title = f"Estimators agree within {fmt_num(spread)} {self.unit}"
        else:
            title = (f"Estimators differ by {fmt_num(spread)} {self.unit}: "
                     f"check positivity and confounding")
        ax.set_title(title.strip())
        ax.set_xlabel(f"average effect (treated - control){' in ' + self.unit if self.unit else ''}")
        return self._done(fig, ax)


class TOCDisplay(_Display):
    """The TOC curve of a priority with its 95% band (from a RankResult)."""

    def __init__(self, q, toc, std_err, estimate, std_err_total, label=""):
        self.q, self.toc, self.std_err = np.asarray(q), np.asarray(toc), np.asarray(std_err)
        self.estimate, self.std_err_total, self.label = estimate, std_err_total, label

    @classmethod
    def from_result(cls, rank_result, label: str = "") -> TOCDisplay:
        return cls(rank_result.q, rank_result.toc, rank_result.toc_std_err,
                   rank_result.estimate, rank_result.std_err, label)

    def plot(self, ax=None):
        fig, ax = _axes(ax)
        ax.plot(self.q, self.toc, color="#2f6db5")
        ax.fill_between(self.q, self.toc - 1.96 * self.std_err, self.toc + 1.96 * self.std_err,
                        color="#2f6db5", alpha=0.2)
        ax.axhline(0, color="black", lw=0.8)
        z = self.estimate / self.std_err_total if self.std_err_total > 0 else np.nan
        ax.set_title(f"Targeting by {self.label or 'the estimate'}: AUTOC {fmt_num(self.estimate)} "
                     f"(z = {fmt_num(z, 2)})")
        ax.set_xlabel("share of customers targeted (top q by estimated effect)")
        ax.set_ylabel("effect in the top q minus overall effect")
        return self._done(fig, ax)


class ProfitCurveDisplay(_Display):
    """Profit and ROI per customer against the share targeted."""

    def __init__(self, table: pd.DataFrame):
        self.table = table

    @classmethod
    def from_result(cls, curve) -> ProfitCurveDisplay:
        return cls(curve.to_frame())

    def plot(self, ax=None):
        t = self.table
        fig, ax = _axes(ax)
        ax.plot(t["q"], t["profit"], color="#2f6db5", label="profit per customer")
        ax.fill_between(t["q"], t["profit"] - 1.96 * t["profit_se"],
                        t["profit"] + 1.96 * t["profit_se"], color="#2f6db5", alpha=0.2)
        ax.axhline(0, color="black", lw=0.8)
        best = t.loc[t["profit"].idxmax()]
        ax.axvline(best["q"], color="#27ae60", ls="--", lw=0.8)
        ax.set_xlabel("share of customers targeted (by estimated net profit)")
        ax.set_ylabel("profit per customer (outcome units x margin - cost)")
        ax2 = ax.twinx()
        ax2.plot(t["q"], t["roi"], color="#e67e22", ls=":", label="ROI")
        ax2.set_ylabel("ROI (profit / spend)")
        ax.set_title(f"Profit peaks at {best['q']:.0%} targeted ({fmt_num(best['profit'])} per customer)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower left")
        return self._done(fig, ax)


class CalibrationDisplay(_Display):
    """Mean predicted against observed (AIPW) effect by quantile bin."""

    def __init__(self, table: pd.DataFrame, slope: float):
        self.table, self.slope = table, slope

    @classmethod
    def from_result(cls, calibration) -> CalibrationDisplay:
        return cls(calibration.to_frame(), calibration.slope)

    def plot(self, ax=None):
        t = self.table
        fig, ax = _axes(ax)
        ax.errorbar(t["predicted"], t["observed"], yerr=1.96 * t["se"], fmt="o",
                    color="#2f6db5", capsize=3)
        lo = float(min(t["predicted"].min(), t["lo"].min()))
        hi = float(max(t["predicted"].max(), t["hi"].max()))
        ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=0.8, label="perfect calibration")
        ax.set_title(f"Calibration by effect quantile: slope {fmt_num(self.slope, 2)} (1 = calibrated)")
        ax.set_xlabel("mean predicted effect in the bin")
        ax.set_ylabel("mean AIPW score in the bin (observed effect)")
        ax.legend(fontsize=8)
        return self._done(fig, ax)


def _fmt_pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.1%}"


def analyze_report(analysis, design=None, *, title: str | None = None,
                   outcome_name: str = "outcome") -> Page:
    """Build the ``manylift analyze`` report page from a SingleAnalysis (and an A/B design).

    Parameters
    ----------
    analysis : manylift.policy.SingleAnalysis
    design : dict, default=None
        ``{"mde": PowerResult, "sample_size": PowerResult, ...}`` (from
        :mod:`manylift.design.power`).
    """
    a = analysis
    main = a.main_arm
    ctrl = str(a.arms[0])
    page = Page(title or "Single-experiment analysis",
                subtitle=f"{a.data.n:,} customers; arms {', '.join(map(str, a.arms))} "
                         f"(control {ctrl}); outcome {outcome_name}")
    aipw = a.ate[main]["aipw"]
    pos = a.positivity[main]
    bullets = [
        f"Average effect of {main} vs {ctrl} (AIPW): "
        + fmt_interval(aipw["estimate"], aipw["lo"], aipw["hi"], outcome_name) + ".",
        f"Propensity AUC {pos.propensity_auc:.3f}; {pos.overlap_share['0.1-0.9']:.0%} of customers "
        f"have a propensity in [0.1, 0.9]"
        + (" (known assignment probabilities used; the AUC is a randomization check)."
           if pos.known_propensity else "."),
        f"Best CATE learner by R-loss on held-out data: {a.best_learner}; "
        f"policies use {a.policy_learner}.",
    ]
    ref = a.refutation
    if "placebo" in ref and "subset_stability" in ref:
        bullets.append(
            f"Refutation: placebo ratio {ref['placebo'].ratio:.2f} "
            f"({'pass' if ref['placebo'].passed else 'FAIL'}), subset correlation "
            f"{ref['subset_stability'].correlation:.2f} "
            f"({'pass' if ref['subset_stability'].passed else 'FAIL'}).")
    if a.skipped:
        bullets.append(f"{len(a.skipped)} validation step(s) could not be computed and were "
                       f"skipped; the reasons are under 'Skipped steps'.")
    if a.policies:
        best = max(a.policies.values(), key=lambda p: p.profit)
        lo, hi = best.profit_interval
        bullets.append(
            f"Most profitable rule out of sample: {best.rule}, {fmt_num(best.profit)} per customer "
            f"(95% interval {fmt_num(lo)} to {fmt_num(hi)}), targeting {best.share_targeted:.0%}, "
            f"ROI {_fmt_pct(best.roi)}; treating everyone: {fmt_num(a.policies['treat_all'].profit)}.")
    page.summary(bullets)

    # 1. positivity
    page.section("Positivity and balance",
                 "Can treated and control customers be compared? A propensity AUC near 0.5 and "
                 "wide overlap mean yes; |SMD| < 0.1 means a covariate is balanced.")
    rows = []
    for arm, p in a.positivity.items():
        rows.append({"arm": arm, "propensity AUC": p.propensity_auc,
                     "overlap [0.1,0.9]": _fmt_pct(p.overlap_share["0.1-0.9"]),
                     "overlap [0.05,0.95]": _fmt_pct(p.overlap_share["0.05-0.95"]),
                     "balanced covariates": f"{p.n_balanced}/{len(p.balance)}",
                     "max |SMD|": p.max_abs_smd,
                     "propensity": "known" if p.known_propensity else "estimated"})
    page.table(pd.DataFrame(rows), caption="Positivity diagnostics by arm (vs control).")
    page.figure(PropensityHistogramDisplay.from_result(pos).plot().figure_,
                f"Cross-fitted propensity scores, {main} vs {ctrl}.")
    page.figure(LovePlotDisplay.from_result(pos).plot().figure_,
                "Standardized mean differences before and after inverse-propensity weighting.")
    bal = a.data.balance
    if bal is not None and len(bal):
        worst = (bal.assign(abs_smd=bal["smd"].abs()).sort_values("abs_smd", ascending=False)
                 .drop_duplicates(["arm", "column"]).sort_values(["arm", "column"]))
        worst = worst[["arm", "column", "covariate", "smd", "p_value", "imbalanced"]]
        note = ("checked: a column with |SMD| > 0.1 and p < 0.001 is refused unless allowed"
                if a.data.randomized else "not enforced: the data are not declared randomized")
        page.table(worst.rename(columns={"covariate": "worst level"}),
                   caption=f"Randomization balance of each covariate, each arm against the "
                           f"control ({note}).")

    # 2. ATE
    page.section("Average treatment effect",
                 f"Effect on {outcome_name} (treated minus control), six estimators, 95% intervals.")
    page.table(a.ate_frame(), caption="ATE by arm and estimator.")
    page.figure(ATEDisplay.from_result(a.ate[main], outcome_name).plot().figure_,
                f"ATE of {main} vs {ctrl} by estimator.")
    trim = a.trimming[main].to_frame()
    page.table(trim, caption="Trimming sweep (AIPW on customers with propensity in [lower, upper]).")
    ms = a.manski[main]
    ev = a.e_values[main]
    page.paragraph(
        f"Manski no-assumption bounds for {main}: [{fmt_num(ms.lower)}, {fmt_num(ms.upper)}] "
        f"(outcome range [{fmt_num(ms.outcome_min)}, {fmt_num(ms.outcome_max)}]). E-value of the "
        f"AIPW estimate: {fmt_num(ev.e_value)} (interval: {fmt_num(ev.e_value_ci)}): an unmeasured "
        f"confounder would need a risk ratio this large with both treatment and outcome to explain "
        f"the effect away.")

    # 3. CATE
    page.section("Heterogeneous effects (CATE learners)",
                 f"Learners fitted on {a.n_train:,} customers, validated on {a.n_evaluation:,} "
                 "held-out customers.")
    page.table(a.cate_summary, caption="Effect distribution and validation per learner and arm "
                                       "(AUTOC, Qini, AUUC from AIPW scores; BLP slope 1 = calibrated).")
    page.table(a.selection, caption="R-loss on the held-out split (lower is better; "
                                    "zero_effect is the no-heterogeneity baseline).")
    if a.toc is not None:
        page.figure(TOCDisplay.from_result(a.toc, a.policy_learner).plot().figure_,
                    f"TOC curve of {a.policy_learner} for {main} (held-out AIPW scores).")
    if a.calibration is not None:
        page.figure(CalibrationDisplay.from_result(a.calibration).plot().figure_,
                    "Predicted vs observed effect by quintile of the prediction.")

    # 4. validation / refutation
    page.section("Refutation")
    rows = []
    if "placebo" in ref:
        rows.append({"test": "placebo treatment", "metric": ref["placebo"].ratio,
                     "threshold": "< 0.5", "status": "pass" if ref["placebo"].passed else "FAIL"})
    if "subset_stability" in ref:
        rows.append({"test": "subset stability", "metric": ref["subset_stability"].correlation,
                     "threshold": "> 0.7",
                     "status": "pass" if ref["subset_stability"].passed else "FAIL"})
    if rows:
        page.table(pd.DataFrame(rows), caption="Placebo: RMS of effects under a shuffled "
                   "treatment / RMS of the real effects. Stability: correlation of effects "
                   "fitted on random halves.")
    if a.skipped:
        page.section("Skipped steps", "Validation steps that could not be computed on these "
                     "data, and why; the rest of the analysis stands.")
        page.table(pd.DataFrame(a.skipped))

    # 5. policies
    if a.policies:
        page.section("Cost-aware targeting",
                     f"Cost {fmt_num(a.cost)} per treated customer, margin {fmt_num(a.margin)}: "
                     f"treating pays when the effect exceeds {fmt_num(a.cost / a.margin)}. "
                     "Profit per customer of the held-out sample, AIPW, with standard errors.")
        pf = a.policy_frame()[["rule", "profit", "profit_se", "roi", "roi_se", "share_targeted",
                               "n_targeted"]]
        page.table(pf, caption="Policies evaluated out of sample.")
        page.figure(ProfitCurveDisplay.from_result(a.curve).plot().figure_,
                    "Profit and ROI when targeting the top share by estimated net profit.")
        page.table(a.sensitivity.to_frame(), caption="Breakeven rule under other costs and margins.")
        for rule, text in a.tree_rules.items():
            page.preformatted(text, caption=f"{rule} (depth {a.settings.get('tree_depth')}): "
                              f"the rows each branch sends to an arm, as indented rules.")
    if a.segments is not None:
        page.section("Segments", f"Segments: {a.segment_column}.")
        page.table(a.segments.to_frame(),
                   caption="Mean effect (AIPW) per segment with 95% interval and suggested action.")

    # 6. design
    if design:
        page.section("A/B test design", "Sample size and minimum detectable effect of a "
                                        "confirmation test (normal approximation, two-sided).")
        rows = []
        for name, r in design.items():
            d = r.to_dict() if hasattr(r, "to_dict") else dict(r)
            rows.append({"design": name, **{k: d[k] for k in (
                "n_total", "n_treatment", "n_control", "effect", "power", "alpha",
                "variance_factor") if k in d}})
        page.table(pd.DataFrame(rows), caption="Designs for a follow-up experiment.")
    page.footer("Generated by manylift analyze. Effects are treated minus control in outcome units.")
    return page
