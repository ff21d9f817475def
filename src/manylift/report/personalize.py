"""Figures and the HTML report of the personalization analysis (``manylift personalize``).

Renders a :class:`manylift.personalize.analysis.PersonalizationResult`; it
never recomputes anything.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from manylift.report.html import Page, fmt_interval, fmt_num

__all__ = [
    "plot_sensitivity_curves",
    "plot_elasticities",
    "plot_method_gains",
    "plot_assignment_shares",
    "plot_covariate_profiles",
    "personalize_page",
    "write_personalize_report",
]

_LABELS = {
    "s": "s: spread of arm means",
    "sigma": "sigma: within-arm heterogeneity",
    "rho": "rho: cross-arm correlation",
    "sigma_eps": "sigma_eps: prediction error",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _best_method(result):
    comp = result.comparison
    if comp is None or not comp.methods:
        return None
    return max(comp.methods.values(), key=lambda r: r.gain)


def plot_sensitivity_curves(result, unit: str = ""):
    """Predicted gain as each parameter varies alone (the paper's Figure 12)."""
    plt = _plt()
    curves = result.sensitivity.curves
    names = list(dict.fromkeys(curves["parameter"]))
    ncol = 2
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(9, 3.2 * nrow), squeeze=False)
    best = _best_method(result)
    for ax, name in zip(axes.ravel(), names):
        c = curves[curves["parameter"] == name].sort_values("value")
        ax.plot(c["value"], c["gain"], color="#2f6db5", lw=2, label="predicted gain")
        ax.fill_between(c["value"], c["gain"] - 2 * c["gain_se"], c["gain"] + 2 * c["gain_se"],
                        color="#2f6db5", alpha=0.2, lw=0)
        cur = c[c["is_current"]]
        ax.plot(cur["value"], cur["gain"], "o", color="black", label="at the estimates")
        if best is not None:
            ax.axhline(best.gain, ls=":", color="#c0392b", label=f"IPW gain, {best.method}")
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlabel(_LABELS.get(name, name))
        ax.set_ylabel(f"gain over best uniform arm{(' (' + unit + ')') if unit else ''}")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=8, loc="best")
    top = result.sensitivity.largest_lever
    fig.suptitle(f"The gain responds most to {top['parameter']} (a {top['change']} "
                 f"{top['parameter']} moves it by {top['gain_change']:+.2g}"
                 f"{(' ' + unit) if unit else ''} per customer)")
    fig.tight_layout()
    return fig


def plot_elasticities(result, unit: str = ""):
    """Change of the predicted gain after a 1% helpful change of each parameter (Table 6),
    in outcome units per customer, with the elasticity (% of |gain| per 1%) as labels."""
    plt = _plt()
    el = result.sensitivity.elasticities.copy()
    el = el.assign(size=el["gain_change"].abs()).sort_values("size")
    fig, ax = plt.subplots(figsize=(7.5, 3))
    labels = [f"{r.change} {r.parameter}" for r in el.itertuples()]
    colors = ["#2f6db5" if v >= 0 else "#c0392b" for v in el["gain_change"]]
    ax.barh(labels, el["gain_change"], color=colors)
    for i, r in enumerate(el.itertuples()):
        ax.annotate(f"{r.elasticity:+.2g}% of |gain|", (r.gain_change, i), fontsize=7,
                    xytext=(3 if r.gain_change >= 0 else -3, 0), textcoords="offset points",
                    ha="left" if r.gain_change >= 0 else "right", va="center")
    ax.axvline(0, color="#666", lw=0.8)
    ax.margins(x=0.35)
    ax.set_xlabel(f"change of the predicted gain{(' (' + unit + ')') if unit else ''}, "
                  f"outcome units per customer")
    top = result.sensitivity.largest_lever
    ax.set_title(f"A {top['change']} {top['parameter']} moves the predicted gain most")
    fig.tight_layout()
    return fig


def plot_method_gains(result, unit: str = ""):
    """IPW gain of each method over the best uniform arm (95% intervals) and the model's prediction."""
    plt = _plt()
    comp = result.comparison
    names = list(comp.methods)
    gains = np.array([comp.methods[k].gain for k in names])
    ses = np.array([comp.methods[k].gain_se for k in names])
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    ypos = np.arange(len(names))
    ax.errorbar(gains, ypos, xerr=1.96 * ses, fmt="o", color="#2f6db5", capsize=3, label="IPW, holdout")
    pg = result.predicted_gain
    ax.axvspan(pg.lo, pg.hi, color="#f39c12", alpha=0.25, lw=0, label="model prediction (95%)")
    ax.axvline(pg.estimate, color="#f39c12", lw=2)
    ax.axvline(0, color="#666", lw=0.8)
    ax.set_yticks(ypos, names)
    ax.set_xlabel(f"gain over best uniform arm{(' (' + unit + ')') if unit else ''}")
    beat = [k for k, g, s in zip(names, gains, ses) if g - 1.96 * s > 0]
    ax.set_title(f"{len(beat)} of {len(names)} methods beat the best uniform arm significantly")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_assignment_shares(result):
    """Share of the holdout each method assigns to each arm (the paper's Figure 9)."""
    plt = _plt()
    shares = result.comparison.assignment_shares
    arms = list(shares.columns)
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / max(len(shares), 1)
    x = np.arange(len(arms))
    for j, (method, row) in enumerate(shares.iterrows()):
        ax.bar(x + j * width - 0.4 + width / 2, row.to_numpy(), width, label=str(method))
    ax.set_xticks(x, [str(a) for a in arms])
    ax.set_ylabel("share of holdout assigned")
    ax.set_ylim(0, 1)
    ax.axhline(1 / len(arms), color="#999", ls=":", lw=0.8)
    best = str(result.best_uniform_arm)
    ax.set_title(f"Personalized policies mix arms; the uniform benchmark gives everyone {best}")
    ax.legend(fontsize=7, ncol=min(5, len(shares)), loc="upper right")
    fig.tight_layout()
    return fig


def plot_covariate_profiles(result, method: str | None = None):
    """Standardized covariate means of each assigned group (the paper's Figure 11)."""
    plt = _plt()
    comp = result.comparison
    method = method or _best_method(result).method
    prof = comp.profiles[method]
    # constrained layout places the colour bar under the (rotated) covariate names
    fig, ax = plt.subplots(figsize=(max(6.5, 0.65 * prof.shape[1] + 2.5),
                                    0.55 * prof.shape[0] + 3.2), layout="constrained")
    vals = prof.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    im = ax.imshow(vals, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(prof.shape[1]), [str(c) for c in prof.columns], rotation=40, ha="right")
    ax.set_yticks(range(prof.shape[0]), [str(a) for a in prof.index])
    # horizontal colour bar under the map: its label has the figure's full width
    cbar = fig.colorbar(im, ax=ax, location="bottom", fraction=0.08, aspect=40)
    cbar.set_label("group mean of the covariate, in holdout sd from the holdout mean",
                   fontsize=9)
    ax.set_title(f"Who {method} sends where: covariate profile of each assigned group",
                 fontsize=10)
    return fig


def _unit_text(x, unit):
    return f"{fmt_num(x)}{(' ' + unit) if unit else ''}"


def personalize_page(result, title: str | None = None, unit: str = "") -> Page:
    """The personalization report page built with :class:`~manylift.report.html.Page`."""
    p = result.parameters
    comp = result.comparison
    page = Page(title or f"Will personalization beat the best uniform arm? ({result.outcome_name})",
                subtitle=(f"{result.n:,} rows, {len(result.arms)} arms of {result.treatment_name!r}; "
                          f"outcome {result.outcome_name!r}; gains in outcome units per customer, "
                          f"relative to the best uniform arm. Method: Shchetkina and Berman, "
                          f"'When Is Heterogeneity Actionable for Personalization?'"))
    pg = result.predicted_gain
    bullets = [
        f"Best uniform arm: {result.best_uniform_arm} (mean {_unit_text(result.arm_means[result.best_uniform_arm], unit)}).",
        f"Predicted gain from personalization (model, Algorithm 2): "
        f"{fmt_interval(pg.estimate, pg.lo, pg.hi, unit)}, in outcome units per customer, "
        f"relative to giving everyone the best uniform arm.",
    ]
    best = _best_method(result)
    if best is not None:
        lo, hi = best.gain - 1.96 * best.gain_se, best.gain + 1.96 * best.gain_se
        bullets.append(f"Best method on the holdout: {best.method}, gain {fmt_interval(best.gain, lo, hi, unit)} "
                       f"over the best uniform arm (IPW).")
    top = result.sensitivity.largest_lever
    bullets.append(f"Largest lever: a {top['change']} {top['parameter']} changes the predicted gain "
                   f"by {_unit_text(top['gain_change'], unit)} per customer (the largest absolute "
                   f"change among 1% changes of s, sigma, rho and sigma_eps).")
    page.summary(bullets)

    page.section("Parameters of the gain model",
                 "sigma: sd of the covariate-explained potential outcome within an arm; rho: its "
                 "correlation across arms; s: sd of the arm means; sigma_eps: out-of-sample residual "
                 "sd of the T-learner. 95% bootstrap intervals.")
    page.table(p.to_frame(), caption="Estimates from the stratified procedure (section 5.2 of the paper).")
    arms = pd.DataFrame({"arm": [str(a) for a in result.arms],
                         "rows": [p.arm_counts[a] for a in result.arms],
                         "mean outcome": [result.arm_means[a] for a in result.arms],
                         "sigma_a": [p.sigma_by_arm[a] for a in result.arms]})
    page.table(arms, caption="Arms: size, mean outcome (all rows) and the per-arm stratified sigma.")
    if result.truth is not None:
        t = result.truth
        truth = pd.DataFrame([{"parameter": k, "truth": t[k], "estimate": getattr(p, k).estimate,
                               "lo": getattr(p, k).lo, "hi": getattr(p, k).hi}
                              for k in ("sigma", "rho", "s", "sigma_eps")])
        page.table(truth, caption="Simulated data: the true parameters next to their estimates.")

    page.section("Predicted versus empirical gain",
                 "Each method is trained on 70% of the rows and its policy evaluated on the 30% "
                 "holdout by inverse probability weighting against the arm with the best training "
                 "mean; SEs from a paired bootstrap of the holdout.")
    if comp is not None and comp.methods:
        page.figure(plot_method_gains(result, unit), "Gain of each method with a 95% interval; the "
                    "band is the model's predicted gain.")
        page.table(result.to_frame(), caption="Policy values and gains (outcome units per unit); "
                   "relative_gain = gain / best uniform value.")
    page.paragraph(
        f"Oracle gain (no prediction error): {_unit_text(result.predicted.oracle_gain, unit)}; "
        f"gain given the observed arm means: {_unit_text(result.predicted_given_means.gain, unit)} "
        f"(Monte Carlo se {fmt_num(result.predicted_given_means.gain_se)}).")
    page.note("sigma_eps includes the outcome noise no covariate explains, so Algorithm 2 treats it "
              "as targeting error: the model's prediction is conservative when outcomes are noisy.")

    page.section("Sensitivity", "How the predicted gain moves with each parameter, others held at "
                 "their estimates (common random numbers).")
    page.figure(plot_sensitivity_curves(result, unit), "Predicted gain (band: 2 Monte Carlo se) as "
                "one parameter varies; dot: the estimates; dotted: the best method's IPW gain.")
    page.figure(plot_elasticities(result, unit), "Change of the predicted gain after a 1% change "
                "of one parameter in the helpful direction (labels: the same in % of |gain|).")
    page.table(result.sensitivity.elasticities, caption="Gain after a 1% change of each parameter.")

    if comp is not None and comp.methods:
        page.section("Who gets what", "The arms each personalized policy uses, and who it sends there.")
        page.figure(plot_assignment_shares(result), "Share of the holdout assigned to each arm, by method.")
        page.figure(plot_covariate_profiles(result), "Mean covariates of each assigned group in sd "
                    "units (red above, blue below the holdout average).")
    page.footer("Generated by manylift personalize. Intervals are 95%.")
    return page


def write_personalize_report(result, path: str | os.PathLike, title: str | None = None,
                             unit: str = "") -> str:
    """Write the personalization report to ``path`` (atomically)."""
    return personalize_page(result, title=title, unit=unit).save(path)
