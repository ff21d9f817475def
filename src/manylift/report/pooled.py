"""The HTML report of a pooled fit: renders a saved run folder, never recomputes.

``pooled_report(run_dir, out)`` reads ``results.json``, ``customers.parquet``
and ``posterior.nc`` from the folder written by ``PooledFit.save`` and writes
one self-contained HTML file (figures as inline SVG; every user string
escaped).  Sections that need results a run did not compute say so instead of
failing.  Rendering is deterministic: the same folder gives the same bytes.

The advice at the top (:func:`targeting_advice`) is a rule on the saved
numbers: target only when the holdout validates the ranking (AUTOC's 95%
interval above 0) *and* the model's policy beats the company's with posterior
probability at least 0.9; otherwise it says what is missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from manylift._core.errors import DataError
from manylift.report.html import Page, fmt_interval, fmt_num

__all__ = ["pooled_report", "load_run", "targeting_advice", "TargetingAdvice", "SECTION_TITLES",
           "NO_HOLDOUT", "P_TARGET"]

SECTION_TITLES = (
    "Data overview",
    "Campaign effects",
    "Campaign attributes and timing",
    "Activity and fatigue",
    "Unobserved responsiveness",
    "Validation on the holdout",
    "Targeting",
    "Where heterogeneity comes from",
    "Overlap network",
    "Sampler diagnostics",
)

BLUE, ORANGE, GREY, GREEN, RED = "#2f6db5", "#d9822b", "#8a8a8a", "#3a8a3a", "#b33a3a"

#: Targeting is advised only when P(model beats company) reaches this (and AUTOC's interval > 0).
P_TARGET = 0.9
#: What a run without a usable holdout says (validation and policies need it).
NO_HOLDOUT = ("Validation and policy evaluation need customers with at least 6 rows: one "
              "row of each such customer is held out. This run has no usable holdout, so "
              "there is no out-of-sample check of the predicted effects and no policy values.")
#: Below this mean number of rows per customer, "more rows per customer" is suggested.
FEW_ROWS_PER_CUSTOMER = 15
#: Beyond this distance of the mean treated share from 1/2, "more balanced assignment" is.
UNBALANCED = 0.2


def _plain(text) -> str:
    """Text for matplotlib: no mathtext interpretation of user strings."""
    return str(text).replace("$", r"\$")


def load_run(run_dir: str | os.PathLike) -> dict:
    """Read a run folder (results.json; customers.parquet and posterior.nc if present)."""
    run = Path(run_dir)
    res_path = run / "results.json"
    if not res_path.exists():
        raise DataError(f"{str(run)!r} has no results.json; pass the --out folder of "
                        f"`manylift fit` or `manylift demo`.")
    out = {"results": json.loads(res_path.read_text()), "dir": run}
    if (run / "customers.parquet").exists():
        out["customers"] = pd.read_parquet(run / "customers.parquet")
    if (run / "posterior.nc").exists():
        import arviz as az

        out["posterior"] = az.from_netcdf(run / "posterior.nc")
    return out


def _fig(w=6.4, h=3.8):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def _s(d: dict | None, key: str = "mean"):
    return d.get(key) if isinstance(d, dict) else None


def _ok(d) -> bool:
    """A posterior summary object with finite numbers."""
    return (isinstance(d, dict) and all(isinstance(d.get(k), int | float) for k in ("mean", "lo", "hi"))
            and all(np.isfinite([d["mean"], d["lo"], d["hi"]])))


def _iv(d, unit: str = "", digits: int = 3) -> str:
    """``"1.23 units (95% interval 0.5 to 2.1)"`` of a summary object (en dash if missing)."""
    return fmt_interval(d["mean"], d["lo"], d["hi"], unit, digits) if _ok(d) else "–"


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(float(x)) else f"{100 * float(x):.1f}%"


def _pct_iv(d) -> str:
    if not _ok(d):
        return "–"
    return f"{_pct(d['mean'])} (95% interval {_pct(d['lo'])} to {_pct(d['hi'])})"


def _interval_plot(labels, mean, lo, hi, title, xlabel, color=BLUE, zero=True, height=None,
                   colors=None):
    n = len(labels)
    fig, ax = _fig(6.4, height or max(2.5, 0.24 * n + 1.2))
    yy = np.arange(n)
    mean, lo, hi = (np.asarray(v, float) for v in (mean, lo, hi))
    cols = colors if colors is not None else [color] * n
    for k in range(n):
        ax.errorbar(mean[k], yy[k], xerr=[[max(mean[k] - lo[k], 0)], [max(hi[k] - mean[k], 0)]],
                    fmt="o", color=cols[k], ms=3.5, lw=1.2)
    if zero:
        ax.axvline(0, color=GREY, lw=0.8, ls="--")
    ax.set_yticks(yy)
    ax.set_yticklabels([_plain(v) for v in labels], fontsize=8 if n > 25 else 9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_title(_plain(title))
    fig.tight_layout()
    return fig


def _bar_plot(labels, mean, lo, hi, title, ylabel):
    fig, ax = _fig(6.4, 3.6)
    x = np.arange(len(labels))
    mean = np.asarray(mean, float)
    lo = np.asarray(lo if lo is not None else mean, float)
    hi = np.asarray(hi if hi is not None else mean, float)
    ax.bar(x, mean, color=BLUE, alpha=0.85)
    ax.errorbar(x, mean, yerr=[np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)],
                fmt="none", color="black", lw=1)
    ax.set_xticks(x)
    ax.set_xticklabels([_plain(v) for v in labels])
    ax.set_ylabel(ylabel)
    ax.set_title(_plain(title))
    ax.axhline(0, color=GREY, lw=0.8)
    fig.tight_layout()
    return fig


# -- the advice rule ------------------------------------------------------------


@dataclass(frozen=True)
class TargetingAdvice:
    """What the results support doing, and why (see :func:`targeting_advice`).

    Attributes
    ----------
    target : bool
        True only when AUTOC's 95% interval is above 0 and P(model beats company)
        >= :data:`P_TARGET`.
    headline : str
    evidence : list of str
        The numbers the decision rests on.
    missing : list of str
        When not targeting: what the data lack (more rows per customer, more
        balanced assignment, more data), each with the number behind it.
    """

    target: bool
    headline: str
    evidence: list = field(default_factory=list)
    missing: list = field(default_factory=list)


def _rows_per_customer(r: dict) -> float | None:
    hist = (r.get("data") or {}).get("interventions_per_customer")
    if not hist:
        return None
    k = np.array([float(x) for x in hist])
    v = np.array([float(x) for x in hist.values()])
    return float((k * v).sum() / v.sum()) if v.sum() > 0 else None


def _treated_share(r: dict) -> float | None:
    ct = (r.get("data") or {}).get("campaigns_table")
    if not ct:
        return None
    rows = np.array([float(c.get("rows", 0)) for c in ct.values()])
    share = np.array([float(c.get("treated_share", np.nan)) for c in ct.values()])
    return float((rows * share).sum() / rows.sum()) if rows.sum() > 0 else None


def targeting_advice(r: dict) -> TargetingAdvice:
    """The advice of a run's results: target by the model, or what is missing first.

    Rule: advise targeting only when the holdout validates the ranking (the 95%
    interval of AUTOC lies above 0) and the model's policy beats the company's
    with posterior probability >= 0.9 (both with the Bayesian bootstrap of the
    holdout). Otherwise say which condition fails and what would help, from the
    data: more rows per customer (fewer than 15 on average), more balanced
    assignment (mean treated share beyond 0.3-0.7), more data (always, with
    the holdout size and the interval that is too wide).

    Parameters
    ----------
    r : dict
        The content of ``results.json``.

    Returns
    -------
    TargetingAdvice
    """
    v = r.get("validation") or {}
    pol = r.get("policy") or {}
    model = pol.get("model") or {}
    if not v or not model:
        why = r.get("holdout_problem") or NO_HOLDOUT
        return TargetingAdvice(False, "No targeting advice: this run could not be validated.",
                               [why], ["more customers with at least 6 rows each"])
    autoc = v.get("autoc")
    pb = model.get("p_beats_company")
    autoc_ok = _ok(autoc) and autoc["lo"] > 0
    beats_ok = pb is not None and float(pb) >= P_TARGET
    gain = model.get("gain_over_company")
    evidence = [
        f"AUTOC on the holdout: {_iv(autoc, 'outcome units')} "
        f"({'above 0: ranking by predicted effect finds customers who respond more' if autoc_ok else 'the interval includes or lies below 0: the ranking is not validated'}).",
        f"P(model beats company) = {_pct(pb)}"
        + (f"; gain {_iv(gain, 'outcome units per row')}" if _ok(gain) else "")
        + f" (needs at least {_pct(P_TARGET)}).",
    ]
    if autoc_ok and beats_ok:
        share = _s(model.get("share_targeted"))
        rule = "its predicted effect exceeds the campaign's cost" if pol.get("cost_aware") else \
            "its predicted effect is positive"
        head = (f"Target by the model: treat a customer when {rule} (about {_pct(share)} of "
                f"customers), and re-validate as new experiments arrive.")
        return TargetingAdvice(True, head, evidence, [])
    missing = []
    rpc = _rows_per_customer(r)
    if rpc is not None and rpc < FEW_ROWS_PER_CUSTOMER:
        missing.append(f"more rows per customer: customers took part in {rpc:.1f} interventions "
                       f"on average; a customer's own responsiveness is learned from their "
                       f"treated and control rows, so more repeated experiments per customer "
                       f"sharpen it.")
    ts = _treated_share(r)
    if ts is not None and abs(ts - 0.5) > UNBALANCED:
        arm = "treated" if ts > 0.5 else "control"
        bins = pol.get("by_propensity_bin") or {}
        gains = [(k, _s((b.get("model") or {}).get("gain_over_company"))) for k, b in bins.items()]
        gains = [(k, g) for k, g in gains if g is not None]
        extra = ""
        if len(gains) >= 2 and gains[0][1] > gains[-1][1]:  # only where the data show it
            extra = (f" Here campaigns with the lowest treated shares ({gains[0][0]}) gain "
                     f"{fmt_num(gains[0][1])} outcome units per row over the company's policy, "
                     f"against {fmt_num(gains[-1][1])} for the highest ({gains[-1][0]}).")
        missing.append(f"more balanced assignment: {_pct(ts)} of rows are treated, so most "
                       f"customers are seldom seen in {'control' if arm == 'treated' else 'treatment'}"
                       f"; a treated share nearer 1/2 lets the model learn who responds.{extra}")
    rows = v.get("holdout_rows") or pol.get("rows")
    missing.append(f"more data: the holdout has {rows:,} rows; a larger program (more customers "
                   f"and experiments) narrows the intervals above." if isinstance(rows, int)
                   else "more data: a larger program narrows the intervals above.")
    if not autoc_ok:
        head = ("Do not target by the model yet: the holdout does not confirm that its "
                "predicted effects rank customers by how much they respond.")
    else:
        head = ("Do not target by the model yet: its ranking is validated, but it does not beat "
                "the company's policy clearly enough "
                f"(P = {_pct(pb)}, needs {_pct(P_TARGET)}).")
    return TargetingAdvice(False, head, evidence, missing)


# ---------------------------------------------------------------------------
def _truth_bullets(tc: dict) -> list[str]:
    """A demo's simulated truth next to the estimates (``truth_comparison``)."""
    ae, su = tc.get("average_effect") or {}, tc.get("sigma_u") or {}
    ce, cu = tc.get("campaign_effects") or {}, tc.get("customer_uI") or {}
    out = [f"Demo on simulated data, estimates against the truth: average effect "
           f"{fmt_num(ae.get('estimate'))} (truth {fmt_num(ae.get('truth'))}); sigma_u "
           f"{fmt_num(su.get('estimate'))} (95% interval {fmt_num(su.get('lo'))} to "
           f"{fmt_num(su.get('hi'))}; truth {fmt_num(su.get('truth'))}); campaign effects "
           f"correlate {fmt_num(ce.get('correlation'), 2)} with the truth and their 95% "
           f"intervals cover {_pct(ce.get('coverage'))} of campaigns; customers' uI posterior "
           f"means correlate {fmt_num(cu.get('correlation'), 2)} with the truth."]
    nw = tc.get("next_week") or {}
    if nw.get("rows"):
        txt = (f"The week after the fitted weeks, scored before sending (scores.parquet): "
               f"{nw['rows']:,} rows, {nw.get('targeted', 0):,} targeted")
        if nw.get("true_effect_targeted") is not None and nw.get(
                "true_effect_not_targeted") is not None:
            txt += (f"; their true average effect {fmt_num(nw['true_effect_targeted'])} against "
                    f"{fmt_num(nw['true_effect_not_targeted'])} for the rows left out")
        txt += (f"; scored and true effects correlate {fmt_num(nw.get('correlation'), 2)} and "
                f"the 95% intervals cover {_pct(nw.get('coverage'))} of the rows' true effects.")
        out.append(txt)
    return out


def _summary_bullets(r: dict) -> list[str]:
    eff = r.get("effects") or {}
    ae = eff.get("average_effect")
    unit = "outcome units"
    out = _truth_bullets(r["truth_comparison"]) if r.get("truth_comparison") else []
    if _ok(ae):
        sign = "raises" if ae["lo"] > 0 else "lowers" if ae["hi"] < 0 else "does not clearly change"
        out.append(f"On average a campaign {sign} the outcome: {_iv(ae, unit)} per treated "
                   f"customer (treated minus control).")
    su = eff.get("sigma_u")
    if _ok(su):
        above, below = eff.get("customers_above_zero"), eff.get("customers_below_zero")
        out.append(f"Customers differ persistently in how they respond: the sd of unobserved "
                   f"responsiveness is {_iv(su, unit)}; {_pct(above)} of customers respond "
                   f"clearly positively and {_pct(below)} clearly negatively.")
    dec = r.get("decomposition") or {}
    ss = dec.get("sd_share")
    if ss:
        top = max(ss, key=lambda k: ss[k]["mean"])
        parts = ", ".join(f"{k} {_pct(v['mean'])}" for k, v in ss.items())
        out.append(f"Most of the spread of effects comes from the {top} component "
                   f"(shares of the summed finite-population sds: {parts}).")
    shp = dec.get("shapley_ipw") or {}
    if shp.get("shares_reported") and _ok(shp.get("customer")):
        txt = (f"The customer component earns {_pct(shp['customer']['mean'])} of the "
               f"targeting value (Shapley, IPW)")
        if _ok(shp.get("unobserved_of_total")):
            txt += (f"; unobserved responsiveness alone "
                    f"{_pct(shp['unobserved_of_total']['mean'])}")
        out.append(txt + ".")
    pol = r.get("policy") or {}
    if pol.get("model") and pol.get("company"):
        m, c = pol["model"], pol["company"]
        txt = (f"Targeting by the model's predicted effect is worth {_iv(m.get('value'))} per "
               f"row against {_iv(c.get('value'))} for the company's randomized policy")
        share = m.get("share_targeted")
        if _ok(share):
            txt += f", treating {_pct(share['mean'])} of rows (company {_pct(_s(c.get('share_targeted')))})"
        pb = m.get("p_beats_company")
        if pb is not None:
            txt += f"; P(model beats company) = {_pct(pb)}"
        out.append(txt + " (intervals include the holdout's sampling uncertainty).")
    fat = (dec.get("fatigue") or {}).get("by_stock_quintile")
    if fat:
        keys = list(fat)
        first, last = fat[keys[0]], fat[keys[-1]]
        clear = _ok(first) and _ok(last) and last["hi"] < first["lo"]
        out.append(f"Fatigue: the effect is {fmt_num(first['mean'])} at the lowest treatment "
                   f"stock and {fmt_num(last['mean'])} at the highest"
                   + ("; spacing contacts lets responsiveness recover." if clear else
                      " (the intervals overlap: no clear fatigue)."))
    return out


def _data_section(page: Page, r: dict) -> None:
    d = r.get("data") or {}
    page.section(SECTION_TITLES[0],
                 f"{d.get('rows', 0):,} rows (customer x intervention): {d.get('customers', 0):,} "
                 f"customers, {d.get('campaigns', 0)} campaigns, {d.get('weeks', 0)} weeks; "
                 f"{d.get('holdout_rows', 0):,} rows held out for validation (one per customer "
                 f"with at least 6 rows).")
    hist = d.get("interventions_per_customer")
    if hist:
        k = np.array([int(x) for x in hist])
        v = np.array(list(hist.values()))
        fig, ax = _fig()
        ax.bar(k, v, color=BLUE, width=0.85)
        ax.axvline(5.5, color=ORANGE, lw=1, ls="--")
        ax.set_xlabel("interventions per customer (treated or control)")
        ax.set_ylabel("customers")
        mean = float((k * v).sum() / v.sum())
        ax.set_title(f"A customer takes part in {mean:.1f} interventions on average")
        fig.tight_layout()
        page.figure(fig, "Histogram of the number of interventions per customer; customers "
                         "right of the dashed line (6 or more rows) have one row held out.")
    ct = d.get("campaigns_table")
    if ct:
        df = pd.DataFrame(ct).T.reset_index(names="campaign").sort_values("treated_share")
        fig, ax = _fig(6.4, 3.4)
        ax.bar(np.arange(len(df)), df["treated_share"].astype(float), color=BLUE)
        ax.axhline(0.5, color=GREY, lw=0.8, ls="--")
        ax.set_xlabel("campaigns, sorted by treated share")
        ax.set_xticks([])
        ax.set_ylabel("share of rows treated")
        ax.set_ylim(0, 1)
        ax.set_title(f"Treated shares range from {df['treated_share'].min():.2f} to "
                     f"{df['treated_share'].max():.2f} across campaigns")
        fig.tight_layout()
        page.figure(fig, "Share of eligible customers assigned to treatment, per campaign "
                         "(dashed: a balanced 1/2).")
        attrs = d.get("campaign_attributes", {})
        if attrs:
            adf = pd.DataFrame(attrs).T.reset_index(names="campaign")
            df = df.merge(adf, on="campaign", how="left")
        page.table(df.rename(columns={"treated_share": "share treated"}),
                   "Campaigns: rows, share treated, weeks run and attributes (cost in outcome "
                   "units).", max_rows=40)


def _campaign_section(page: Page, r: dict) -> None:
    eff = r.get("effects") or {}
    camps = eff.get("campaigns", {})
    page.section(SECTION_TITLES[1], "Campaign-average effect: the mean of the predicted effect over "
                 "the campaign's calibration rows, in outcome units (treated minus control).")
    if not camps:
        page.note("No campaign effects in this run.")
        return
    df = pd.DataFrame(camps).T.reset_index(names="campaign").sort_values("mean")
    above = float((df["lo"] > 0).mean())
    below = float((df["hi"] < 0).mean())
    fig = _interval_plot(df["campaign"], df["mean"], df["lo"], df["hi"],
                         f"{100 * above:.0f}% of campaigns clearly help, {100 * below:.0f}% clearly hurt",
                         "campaign-average effect (outcome units)")
    page.figure(fig, "Posterior means and 95% intervals of campaign-average effects, sorted.")
    iso = (r.get("isolated") or {}).get("campaigns")
    if iso:
        import matplotlib.pyplot as plt

        idf = pd.DataFrame(iso).T.reset_index(names="campaign")
        m = df.merge(idf, on="campaign", suffixes=("", "_isolated")).dropna(subset=["estimate"])
        ratio = r["isolated"].get("width_ratio", {}).get("median")
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.0, 3.8))
        a1.scatter(m["estimate"], m["mean"], s=14, color=BLUE)
        lim = [min(m["estimate"].min(), m["mean"].min()), max(m["estimate"].max(), m["mean"].max())]
        a1.plot(lim, lim, color=GREY, lw=0.8, ls="--")
        a1.set_xlabel("isolated regression estimate (outcome units)")
        a1.set_ylabel("pooled estimate (outcome units)")
        a1.set_title("Pooled vs isolated campaign effects")
        rel_iso = (m["hi_isolated"] - m["lo_isolated"]) / m["estimate"].abs().clip(lower=1e-9)
        rel_pool = (m["hi"] - m["lo"]) / m["mean"].abs().clip(lower=1e-9)
        a2.scatter(rel_iso, rel_pool, s=14, color=ORANGE)
        top = float(np.nanquantile(np.r_[rel_iso, rel_pool], 0.95)) if len(m) else 1.0
        a2.plot([0, top], [0, top], color=GREY, lw=0.8, ls="--")
        a2.set_xlim(0, top)
        a2.set_ylim(0, top)
        a2.set_xlabel("isolated: interval width / |mean|")
        a2.set_ylabel("pooled: interval width / |mean|")
        a2.set_title(f"Isolated intervals are {fmt_num(ratio)}x wider (median)")
        fig.tight_layout()
        page.figure(fig, "Left: posterior means against per-campaign regressions (same controls, "
                         "standard errors clustered by customer; 45-degree line). Right: relative "
                         "interval widths; points below the line are more precise when pooled.")
    page.table(df.rename(columns={"mean": "mean (outcome units)", "lo": "2.5%", "hi": "97.5%"}),
               "Campaign-average effects with 95% intervals.", max_rows=40)


def _attribute_rows(attr: dict) -> list[tuple[str, str, dict, int | None]]:
    rows = [("overall", "", attr["overall"], None)] if _ok(attr.get("overall")) else []
    for f, levels in (attr.get("factors") or {}).items():
        for lv, d in levels.items():
            rows.append((f, lv, d, d.get("campaigns")))
    return rows


def _timing_section(page: Page, r: dict) -> None:
    page.section(SECTION_TITLES[2], "Effects by campaign design attribute and by week.")
    dec = r.get("decomposition") or {}
    attr = dec.get("campaign_attributes")
    if attr and attr.get("factors"):
        rows = _attribute_rows(attr)
        labels = [("Overall" if f == "overall" else f"{f}: {lv}") for f, lv, _, _ in rows]
        palette = [BLUE, ORANGE, GREEN, RED, GREY]
        factors = list(attr["factors"])
        colors = ["black" if f == "overall" else palette[factors.index(f) % len(palette)]
                  for f, _, _, _ in rows]
        fig = _interval_plot(labels[::-1], [d["mean"] for _, _, d, _ in rows][::-1],
                             [d["lo"] for _, _, d, _ in rows][::-1],
                             [d["hi"] for _, _, d, _ in rows][::-1],
                             "Campaign effect by design attribute, each level against its "
                             "factor's average", "campaign deviation tau_c (outcome units)",
                             colors=colors[::-1])
        page.figure(fig, "Per posterior draw, least squares of the campaign deviations tau_c on "
                         "the attributes in effect coding: each level's difference from the "
                         "average of its factor (grouped by factor); Overall is the intercept. "
                         "Means and 95% intervals.")
        tab = pd.DataFrame([{"factor": f, "level": lv, "campaigns": n,
                             "mean (outcome units)": d["mean"], "2.5%": d["lo"],
                             "97.5%": d["hi"]} for f, lv, d, n in rows])
        page.table(tab, "Campaign effectiveness by design factor (as Table App-2 of 'Learning from Many Experiments')."
                   + (" The attributes are collinear or campaigns are few: minimum-norm "
                      "solution." if attr.get("rank_deficient") else ""))
    else:
        page.note("Attribute effects were not computed in this run (no campaign attributes).")
    weeks = (r.get("effects") or {}).get("weeks", {})
    if weeks:
        df = pd.DataFrame(weeks).T
        x = np.arange(len(df))
        fig, ax = _fig()
        ax.fill_between(x, df["lo"].astype(float), df["hi"].astype(float), color=BLUE, alpha=0.2)
        ax.plot(x, df["mean"].astype(float), color=BLUE, marker="o", ms=3)
        trend = dec.get("week_trend")
        title = "Week-average effects over time"
        if _ok(trend):
            title = (f"Week effects: trend {fmt_num(trend['mean'])} per week (95% "
                     f"{fmt_num(trend['lo'])} to {fmt_num(trend['hi'])})")
        ax.set_title(title)
        ax.set_xticks(x[:: max(1, len(x) // 12)])
        ax.set_xticklabels([_plain(w) for w in df.index[:: max(1, len(x) // 12)]])
        ax.set_xlabel("week")
        ax.set_ylabel("week-average effect (outcome units)")
        fig.tight_layout()
        page.figure(fig, "Posterior mean and 95% band of the average effect of each week's "
                         "interventions.")


def _fatigue_section(page: Page, r: dict) -> None:
    page.section(SECTION_TITLES[3], "Observed heterogeneity: activity level and exposure history "
                 "(treatment stock and weeks since the last treatment).")
    dec = r.get("decomposition") or {}
    shown = False
    fatigue = dec.get("fatigue") or {}
    sources = {"activity": dec.get("activity"), "stock": fatigue.get("by_stock_quintile"),
               "recency": fatigue.get("by_recency")}
    for key, label, xlabel in (("activity", "Effect by activity level", "activity bin (low to high)"),
                               ("stock", "Fatigue: effect by treatment stock quintile",
                                "treatment stock quintile (low to high)"),
                               ("recency", "Recovery: effect by weeks since last treatment",
                                "weeks since last treatment")):
        d = sources[key]
        if d:
            labels = list(d)
            fig = _bar_plot(labels, [d[k]["mean"] for k in labels], [d[k]["lo"] for k in labels],
                            [d[k]["hi"] for k in labels], label, "effect (outcome units)")
            fig.axes[0].set_xlabel(xlabel)
            page.figure(fig, f"{label}: posterior means and 95% intervals.")
            shown = True
    if not shown:
        page.note("Activity and fatigue curves were not computed in this run.")


def _customers_section(page: Page, r: dict, customers: pd.DataFrame | None) -> None:
    eff = r.get("effects") or {}
    page.section(SECTION_TITLES[4], "uI: each customer's persistent responsiveness beyond what "
                 "campaign, week, activity and exposure history explain (outcome units).")
    if customers is None or customers.empty:
        page.note("No customer file in this run.")
        return
    import matplotlib.pyplot as plt

    above = float((customers["lo"] > 0).mean())
    below = float((customers["hi"] < 0).mean())
    k = min(100, len(customers))
    sample = customers.sample(k, random_state=0).sort_values("mean").reset_index(drop=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.0, 4.2))
    excl = (sample["lo"] > 0) | (sample["hi"] < 0)
    yy = np.arange(k)
    for mask, col in ((~excl, GREY), (excl, BLUE)):
        a1.errorbar(sample.loc[mask, "mean"], yy[mask.to_numpy()],
                    xerr=[sample.loc[mask, "mean"] - sample.loc[mask, "lo"],
                          sample.loc[mask, "hi"] - sample.loc[mask, "mean"]],
                    fmt="o", ms=2.5, lw=0.8, color=col, elinewidth=0.8)
    a1.axvline(0, color="black", lw=0.8, ls="--")
    a1.set_yticks([])
    a1.set_ylabel(f"{k} random customers (sorted)")
    a1.set_xlabel("uI (outcome units)")
    a1.set_title(f"{int(excl.sum())} of {k} intervals exclude 0 (blue)")
    a2.hist(customers["mean"], bins=40, color=BLUE, alpha=0.85)
    a2.axvline(0, color="black", lw=0.8, ls="--")
    a2.set_xlabel("posterior mean of uI (outcome units)")
    a2.set_ylabel("customers")
    a2.set_title(f"All {len(customers):,}: {_pct(above)} clearly above 0, {_pct(below)} below")
    fig.tight_layout()
    page.figure(fig, "Left: posterior means and 95% intervals (normal approximation) of uI for "
                     f"{k} random customers. Right: posterior means of every customer; the share "
                     "whose 95% interval lies entirely above or below 0 is in the title. Means "
                     "are shrunk towards 0 for customers with few rows.")
    su = eff.get("sigma_u")
    if _ok(su):
        page.paragraph(f"The population sd of uI is {_iv(su, 'outcome units')}; the spread of the "
                       f"posterior means is smaller because each customer's mean is shrunk "
                       f"towards 0 in proportion to how little their own rows say.")


def _holdout_missing(page: Page, r: dict) -> None:
    page.note(r.get("holdout_problem") or NO_HOLDOUT)


def _validation_section(page: Page, r: dict) -> None:
    v = r.get("validation") or {}
    page.section(SECTION_TITLES[5], "Out-of-sample checks on one held-out row per customer: does "
                 "ranking by the predicted effect find the customers who respond more?")
    if not v:
        _holdout_missing(page, r)
        return
    toc = v.get("toc_curve")
    au = v.get("autoc") or {}
    if toc and "q" in toc:
        q = np.asarray(toc["q"], float)
        fig, ax = _fig()
        ax.fill_between(q, np.asarray(toc["lo"], float), np.asarray(toc["hi"], float), color=BLUE,
                        alpha=0.2)
        ax.plot(q, np.asarray(toc["mean"], float), color=BLUE)
        ax.axhline(0, color=GREY, lw=0.8, ls="--")
        verdict = ("finds customers who respond more" if _ok(au) and au["lo"] > 0 else
                   "is not validated (AUTOC's interval includes 0)")
        ax.set_title(f"Ranking by predicted effect {verdict}")
        ax.set_xlabel("share of holdout rows treated, ranked by predicted effect")
        ax.set_ylabel("TOC (outcome units)")
        fig.tight_layout()
        page.figure(fig, "TOC(q): mean score of the top-q share minus the overall mean, "
                         "posterior mean and 95% band (posterior draws x Bayesian bootstrap of the "
                         f"holdout customers); {_score_words(v.get('scores'))}. AUTOC is the area "
                         "under this curve.")
    rows = []
    for key, label, unit in (("autoc", "AUTOC (model + sampling)", "outcome units"),
                             ("autoc_model_only", "AUTOC (model only)", "outcome units"),
                             ("blp_slope", "BLP slope (model only; 1 = calibrated, 0 = no signal)",
                              "ratio")):
        d = v.get(key)
        if _ok(d):
            rows.append({"quantity": label, "unit": unit, "mean": d["mean"], "2.5%": d["lo"],
                         "97.5%": d["hi"]})
    if rows:
        page.table(pd.DataFrame(rows), f"Holdout validation on {v.get('holdout_rows', 0):,} rows. "
                   "'Model + sampling' adds the Bayesian bootstrap of holdout customers to the "
                   "posterior draws; per-draw BLP slopes sit a little below 1 even for a correct "
                   "model (posterior noise in uI).")


def _policy_table(pol: dict) -> pd.DataFrame:
    rows = []
    for name in ("company", "random", "model"):
        p = pol.get(name) or {}
        val, val0 = p.get("net_value") or p.get("value"), (p.get("net_value_model_only")
                                                          or p.get("value_model_only"))
        rows.append({"policy": name, "net value per row": _s(val),
                     "95% interval (model + sampling)": f"{fmt_num(_s(val, 'lo'))} to {fmt_num(_s(val, 'hi'))}",
                     "95% interval (model only)": f"{fmt_num(_s(val0, 'lo'))} to {fmt_num(_s(val0, 'hi'))}",
                     "share treated": _pct(_s(p.get("share_targeted")))})
    return pd.DataFrame(rows)


def _group_row(name: str, g: dict) -> dict:
    m = g.get("model") or {}
    out = {"group": name}
    if "campaigns" in g:
        out["campaigns"] = g["campaigns"]
    out.update({"rows": g.get("rows"),
                "company": _s((g.get("company") or {}).get("net_value")),
                "model": _s(m.get("net_value")),
                "model treats": _pct(_s(m.get("share_targeted"))),
                "company treats": _pct(_s((g.get("company") or {}).get("share_targeted"))),
                "gain (%)": _s(m.get("gain_over_company_pct")),
                "gain 95% interval (%)": f"{fmt_num(_s(m.get('gain_over_company_pct'), 'lo'))} to "
                                         f"{fmt_num(_s(m.get('gain_over_company_pct'), 'hi'))}",
                "P(model beats company)": _pct(m.get("p_beats_company"))})
    return out


def _score_words(kind) -> str:
    if kind == "ipw":
        return "IPW scores"
    return ("AIPW scores whose outcome model is the intervention's mean outcome in the "
            "calibration rows (IPW of the centred outcome: unbiased, far less noisy)")


def _policy_section(page: Page, r: dict) -> None:
    pol = r.get("policy") or {}
    rule = "> cost" if pol.get("cost_aware") else "> 0"
    page.section(SECTION_TITLES[6], f"Policy value per holdout row ({_score_words(pol.get('scores'))}), per posterior draw: "
                 "company (as randomized), model (treat if the predicted effect "
                 f"{rule}), random (as many rows as the model, within each intervention). "
                 "Each draw also reweights the holdout customers (Bayesian bootstrap), so the "
                 "intervals carry the holdout's sampling uncertainty as well as the model's.")
    if not pol:
        _holdout_missing(page, r)
        return
    m = pol.get("model") or {}
    gains = []
    for label, key in (("model - company", "gain_over_company"),
                       ("model - random", "gain_over_random")):
        for src, suffix in (("model + sampling", ""), ("model only", "_model_only")):
            d = m.get(key + suffix)
            if _ok(d):
                gains.append((f"{label} ({src})", d, suffix == ""))
    if gains:
        fig = _interval_plot([g[0] for g in gains][::-1], [g[1]["mean"] for g in gains][::-1],
                             [g[1]["lo"] for g in gains][::-1], [g[1]["hi"] for g in gains][::-1],
                             f"P(model beats company) = {_pct(m.get('p_beats_company'))} "
                             f"(model only: {_pct(m.get('p_beats_company_model_only'))})",
                             "gain in net value per row (outcome units)",
                             colors=[BLUE if g[2] else GREY for g in gains][::-1],
                             height=2.8)
        page.figure(fig, "Gain of the model's policy over the company's and over random "
                         "targeting: blue with the holdout's sampling uncertainty, grey the "
                         "model-only intervals (too narrow to bet on).")
    page.table(_policy_table(pol), "Net value per holdout row (outcome units; value minus the "
               "cost of the rows treated) with both intervals, and the share of rows treated.")
    by_attr = pol.get("by_attribute") or {}
    flat = [_group_row(f"{a}={lv}", g) for a, levels in by_attr.items() for lv, g in levels.items()
            if isinstance(g, dict)]
    if flat:
        page.table(pd.DataFrame(flat), "By campaign attribute: net value per row (outcome units, "
                   "posterior means), shares treated, and the model's gain over the company's "
                   "policy with its 95% interval (as Table App-3 of 'Learning from Many Experiments').")
    by_bin = pol.get("by_propensity_bin") or {}
    flat = [_group_row(f"treated share {k}", g) for k, g in by_bin.items() if isinstance(g, dict)]
    if flat:
        page.table(pd.DataFrame(flat), "By the campaign's treated share (campaigns cut into "
                   "thirds; counts in campaigns and rows). Balanced assignment lets the model "
                   "learn more about who responds.")


def _decomposition_section(page: Page, r: dict) -> None:
    dec = r.get("decomposition") or {}
    page.section(SECTION_TITLES[7], "Finite-population sds (Gelman): how much of the spread of "
                 "effects each component carries; Shapley values: how much of the targeting "
                 "value each source of heterogeneity earns.")
    ss, sd, vs = dec.get("sd_share"), dec.get("sd"), dec.get("variance_share")
    if not ss:
        page.note(dec.get("holdout_problem") or r.get("holdout_problem") or NO_HOLDOUT)
    else:
        labels = list(ss)
        top = max(labels, key=lambda k: ss[k]["mean"])
        fig = _bar_plot(labels, [ss[k]["mean"] for k in labels], [ss[k]["lo"] for k in labels],
                        [ss[k]["hi"] for k in labels],
                        f"The {top} component carries the largest share of the spread",
                        "share of the summed sds, s_f / sum s_f")
        page.figure(fig, "sd_share: each component's finite-population sd over the holdout "
                         "divided by the sum of the four (the definition of Table 4 of 'Learning from Many Experiments'); "
                         "posterior means and 95% intervals.")
        tab = pd.DataFrame([{"component": k, "s_f (outcome units)": _s(sd.get(k)) if sd else None,
                             "sd_share": _pct(_s(ss[k])),
                             "sd_share 95% interval": f"{_pct(_s(ss[k], 'lo'))} to {_pct(_s(ss[k], 'hi'))}",
                             "variance_share": _pct(_s((vs or {}).get(k)))} for k in labels])
        page.table(tab, "s_f, its share of sum s_f (sd_share) and of sum s_f^2 (variance_share). "
                   "Small, poorly estimated components are biased up a little by posterior noise.")
        parts = dec.get("sd_observed_parts") or {}
        if parts:
            page.table(pd.DataFrame([{"part of the observed component": k,
                                      "s_f (outcome units)": _s(d), "2.5%": _s(d, "lo"),
                                      "97.5%": _s(d, "hi")} for k, d in parts.items()]),
                       "The observed component's parts (proportion treated: sd of the share "
                       "times |coefficient|). sds of a sum do not add up.")
    for key, name in (("shapley_ipw", "IPW value of the model's policy"),
                      ("shapley_autoc", "AUTOC")):
        d = dec.get(key)
        if not d:
            continue
        vals = d.get("values") or {}
        top = [k for k in ("customer", "campaign", "week") if _ok(vals.get(k))]
        tv = d.get("targeting_value")
        unit = "outcome units per row" if key == "shapley_ipw" else "outcome units"
        if d.get("shares_reported"):
            fig = _bar_plot(top, [d[k]["mean"] for k in top], [d[k]["lo"] for k in top],
                            [d[k]["hi"] for k in top],
                            f"Shapley shares of the targeting value ({name})",
                            "share of v(all) - baseline")
            page.figure(fig, f"Each component's Shapley value divided by the posterior mean of "
                             f"the targeting value v(all) - baseline = {_iv(tv, unit)} "
                             f"(baseline: {'random targeting at the model share' if key == 'shapley_ipw' else 'a random ranking'}); "
                             "excluded components at their holdout mean (XPER).")
        else:
            page.paragraph(f"Shapley ({name}): there is no targeting value to divide: "
                           f"v(all) - baseline = {_iv(tv, unit)}, positive with posterior "
                           f"probability {_pct(d.get('p_positive'))} (shares need at least 90%). "
                           f"The raw values are in the table.")
        rows = []
        for k in ("customer", "campaign", "week", "observed", "unobserved"):
            if _ok(vals.get(k)):
                share = d.get(k)
                rows.append({"component": k + (" (within customer)" if k in ("observed", "unobserved") else ""),
                             f"value ({unit})": vals[k]["mean"],
                             "value 95% interval": f"{fmt_num(vals[k]['lo'])} to {fmt_num(vals[k]['hi'])}",
                             "share": _pct(_s(share)),
                             "share 95% interval": (f"{_pct(_s(share, 'lo'))} to {_pct(_s(share, 'hi'))}"
                                                    if _ok(share) else "–")})
        if rows:
            cap = (f"Shapley values ({name}). Observed and unobserved split the customer's part "
                   "in a game where campaign and week are always in; their shares are of the "
                   "within-customer value.")
            u = d.get("unobserved_of_total")
            if _ok(u):
                cap += (f" Unobserved heterogeneity's share of the whole targeting value "
                        f"(customer share x within-customer unobserved share): {_pct_iv(u)}.")
            page.table(pd.DataFrame(rows), cap)


def _overlap_section(page: Page, r: dict) -> None:
    ov = r.get("overlap")
    if not ov:
        page.section(SECTION_TITLES[8])
        page.note("The overlap network was not computed in this run.")
        return
    from manylift.design.overlap import OverlapResult
    from manylift.report.overlap import add_overlap_section

    # the run's seed draws the same layout as the run's community detection used
    seed = (r.get("sampler") or {}).get("seed")
    add_overlap_section(page, OverlapResult.from_dict(ov),
                        random_state=int(seed) if isinstance(seed, int) else 0)


def _sampler_section(page: Page, r: dict, idata) -> None:
    s = r.get("sampler") or {}
    page.section(SECTION_TITLES[9], f"{s.get('chains')} chains x {s.get('draws')} draws after "
                 f"{s.get('warmup')} warm-up sweeps (thin {s.get('thin')}), backend "
                 f"{s.get('backend')}, {fmt_num(s.get('seconds'))} s "
                 f"({fmt_num(s.get('sweeps_per_second'))} sweeps/s), seed {s.get('seed')}.")
    for w in s.get("warnings") or []:
        page.note(f"Warning: {w}")
    t = r.get("timings") or {}
    if t:
        # only the stages before the report: results.json gets the report's own time (and the
        # total) after rendering, and rendering the folder again must give the same bytes
        late = ("save", "report", "total", "post_sampling")
        before = {k: float(v) for k, v in t.items()
                  if k not in late and isinstance(v, int | float)}
        peaks = [float(v) for k, v in ((r.get("memory") or {}).get("peak_rss_gib_after")
                                       or {}).items() if k not in late and v is not None]
        mem = max(peaks) if peaks else None
        page.table(pd.DataFrame([{"stage": k.replace("_", " "), "seconds": v}
                                 for k, v in before.items()]),
                   f"Run time by stage: {fmt_num(sum(before.values()))} s before saving"
                   + (f"; peak memory {fmt_num(mem)} GiB" if mem is not None else "")
                   + " (results.json has the report's own time, the total and the peak).")
    if idata is not None:
        import matplotlib.pyplot as plt

        post = idata.posterior
        panels = [("lp", idata.sample_stats["lp"] if "lp" in idata.sample_stats else None,
                   "log-likelihood"), ("taubar", post["taubar"], "taubar (outcome units)"),
                  ("sigma_u", post["sigma_u"], "sigma_u (outcome units)"),
                  ("average_effect", post["average_effect"], "average effect (outcome units)")]
        panels = [p for p in panels if p[1] is not None]
        fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 1.6 * len(panels)), sharex=True)
        for ax, (_, arr, lab) in zip(np.atleast_1d(axes), panels, strict=True):
            vals = np.asarray(arr)
            for c in range(vals.shape[0]):
                ax.plot(vals[c], lw=0.6, alpha=0.8)
            ax.set_ylabel(lab, fontsize=7)
        np.atleast_1d(axes)[-1].set_xlabel("retained draw")
        fig.suptitle(f"Trace plots: worst R-hat {fmt_num(s.get('rhat_max'))}, smallest bulk ESS "
                     f"{fmt_num(s.get('ess_bulk_min'))}")
        fig.tight_layout()
        page.figure(fig, "Traces of the log-likelihood kernel and key parameters, one line per chain.")
        import warnings

        import arviz as az

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tab = az.summary(idata, var_names=["average_effect", "taubar", "sigma_u", "sigma"],
                             kind="diagnostics")
        page.table(tab.reset_index(names="parameter"), "R-hat and effective sample sizes (ArviZ).")


def pooled_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                  title: str = "manylift: what drives the response to campaigns") -> str:
    """Render the report of a saved run folder to ``out`` (default ``run_dir/report.html``)."""
    run = load_run(run_dir)
    r = run["results"]
    page = Page(title, subtitle=f"manylift pooled model, results schema {r.get('schema_version')}; "
                                f"effects in outcome units, treated minus control, 95% intervals.")
    warn = (r.get("sampler") or {}).get("warnings") or []
    if warn:
        page.warnings(list(warn), "Sampler warnings: read the results with care")
    page.summary(_summary_bullets(r))
    adv = targeting_advice(r)
    page.advice(adv.headline, adv.evidence + [f"Would help: {m}" for m in adv.missing], adv.target)
    _data_section(page, r)
    _campaign_section(page, r)
    _timing_section(page, r)
    _fatigue_section(page, r)
    _customers_section(page, r, run.get("customers"))
    _validation_section(page, r)
    _policy_section(page, r)
    _decomposition_section(page, r)
    _overlap_section(page, r)
    _sampler_section(page, r, run.get("posterior"))
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    return page.save(out)
