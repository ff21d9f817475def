"""The HTML report of a pooled fit: renders a saved run folder, never recomputes.

``pooled_report(run_dir, out)`` reads ``results.json``, ``customers.parquet``
and ``posterior.nc`` from the folder written by ``PooledFit.save`` and writes
one self-contained HTML file (figures as inline SVG; every user string
escaped).  Sections that need results a run did not compute say so instead of
failing.  Rendering is deterministic: the same folder gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from manylift._core.errors import DataError
from manylift.report.html import Page, fmt_interval, fmt_num

__all__ = ["pooled_report", "load_run", "SECTION_TITLES"]

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

BLUE, ORANGE, GREY = "#2f6db5", "#d9822b", "#8a8a8a"


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
    return None if d is None else d.get(key)


def _summary_frame(d: dict, name: str = "", unit: str = "") -> pd.DataFrame:
    rows = []
    for k, v in d.items():
        if isinstance(v, dict) and "mean" in v:
            rows.append({name or "quantity": str(k), f"mean{(' (' + unit + ')') if unit else ''}":
                         v["mean"], "sd": v.get("sd"), "2.5%": v.get("lo"), "97.5%": v.get("hi")})
    return pd.DataFrame(rows)


def _interval_plot(labels, mean, lo, hi, title, xlabel, color=BLUE, zero=True, height=None):
    n = len(labels)
    fig, ax = _fig(6.4, height or max(2.5, 0.22 * n + 1.2))
    yy = np.arange(n)
    mean, lo, hi = (np.asarray(v, float) for v in (mean, lo, hi))
    ax.errorbar(mean, yy, xerr=[np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)], fmt="o", color=color, ms=3.5, lw=1.2)
    if zero:
        ax.axvline(0, color=GREY, lw=0.8, ls="--")
    ax.set_yticks(yy)
    ax.set_yticklabels([_plain(v) for v in labels], fontsize=7 if n > 25 else 9)
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
    ax.errorbar(x, mean, yerr=[np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)], fmt="none", color="black", lw=1)
    ax.set_xticks(x)
    ax.set_xticklabels([_plain(v) for v in labels])
    ax.set_ylabel(ylabel)
    ax.set_title(_plain(title))
    ax.axhline(0, color=GREY, lw=0.8)
    fig.tight_layout()
    return fig


def _pct(x) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}%"


# ---------------------------------------------------------------------------
def _summary_bullets(r: dict) -> list[str]:
    eff = r.get("effects", {})
    ae = eff.get("average_effect")
    unit = "outcome units"
    out = []
    if ae:
        sign = "raises" if ae["lo"] > 0 else "lowers" if ae["hi"] < 0 else "does not clearly change"
        out.append(f"On average a campaign {sign} the outcome: {fmt_interval(ae['mean'], ae['lo'], ae['hi'], unit)} per treated customer (treated minus control).")
    su = eff.get("sigma_u")
    if su:
        above, below = eff.get("customers_above_zero"), eff.get("customers_below_zero")
        out.append(f"Customers differ persistently in how they respond: the sd of unobserved responsiveness is {fmt_interval(su['mean'], su['lo'], su['hi'], unit)}; {_pct(above)} of customers respond clearly positively and {_pct(below)} clearly negatively.")
    vs = r.get("decomposition", {}).get("variance_share")
    if vs:
        top = max(vs, key=lambda k: vs[k]["mean"])
        parts = ", ".join(f"{k} {_pct(v['mean'])}" for k, v in vs.items())
        out.append(f"Most of the variation in effects comes from the {top} component ({parts} of the variance).")
    pol = r.get("policy", {})
    if pol.get("model") and pol.get("company"):
        m, c = pol["model"], pol["company"]
        gain = m.get("gain_over_company_pct")
        share = m.get("share_targeted")
        txt = f"Targeting by the model's predicted effect is worth {fmt_num(_s(m.get('value')))} per customer against {fmt_num(_s(c.get('value')))} for the company's randomized policy"
        if share:
            txt += f", treating {_pct(_s(share))} of customers"
        if gain:
            txt += f" (gain {fmt_interval(gain['mean'], gain['lo'], gain['hi'], '%')})"
        pb = m.get("p_beats_company")
        if pb is not None:
            txt += f"; probability that it beats the company policy: {_pct(_s(pb) if isinstance(pb, dict) else pb)}"
        out.append(txt + ".")
    fat = (r.get("decomposition", {}).get("fatigue") or {}).get("by_stock_quintile")
    if fat:
        keys = list(fat)
        first, last = fat[keys[0]], fat[keys[-1]]
        out.append(f"Fatigue: the effect is {fmt_num(first['mean'])} at the lowest treatment stock and {fmt_num(last['mean'])} at the highest.")
    out.append("Next: target customers with a positive predicted effect, space contacts to let responsiveness recover, and re-fit as new experiments arrive.")
    return out


def _data_section(page: Page, r: dict) -> None:
    d = r.get("data", {})
    page.section(SECTION_TITLES[0],
                 f"{d.get('rows', 0):,} rows (customer x intervention): {d.get('customers', 0):,} "
                 f"customers, {d.get('campaigns', 0)} campaigns, {d.get('weeks', 0)} weeks; "
                 f"{d.get('holdout_rows', 0):,} rows held out for validation.")
    hist = d.get("interventions_per_customer")
    if hist:
        k = np.array([int(x) for x in hist])
        v = np.array(list(hist.values()))
        fig, ax = _fig()
        ax.bar(k, v, color=BLUE, width=0.85)
        ax.set_xlabel("interventions per customer (treated or control)")
        ax.set_ylabel("customers")
        mean = float((k * v).sum() / v.sum())
        ax.set_title(f"A customer takes part in {mean:.1f} interventions on average")
        fig.tight_layout()
        page.figure(fig, "Histogram of the number of interventions per customer.")
    ct = d.get("campaigns_table")
    if ct:
        df = pd.DataFrame(ct).T.reset_index(names="campaign").sort_values("treated_share")
        fig, ax = _fig(6.4, 3.4)
        ax.bar(np.arange(len(df)), df["treated_share"].astype(float), color=BLUE)
        ax.set_xlabel("campaigns (sorted)")
        ax.set_ylabel("share treated")
        ax.set_ylim(0, 1)
        ax.set_title(f"Treated shares range from {df['treated_share'].min():.2f} to "
                     f"{df['treated_share'].max():.2f} across campaigns")
        fig.tight_layout()
        page.figure(fig, "Share of eligible customers assigned to treatment, per campaign.")
        attrs = d.get("campaign_attributes", {})
        if attrs:
            adf = pd.DataFrame(attrs).T.reset_index(names="campaign")
            df = df.merge(adf, on="campaign", how="left")
        page.table(df, "Campaigns: rows, share treated, weeks run and attributes.", max_rows=40)


def _campaign_section(page: Page, r: dict) -> None:
    eff = r.get("effects", {})
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
    iso = r.get("isolated", {}).get("campaigns")
    if iso:
        idf = pd.DataFrame(iso).T.reset_index(names="campaign")
        m = df.merge(idf, on="campaign", suffixes=("", "_isolated")).dropna(subset=["estimate"])
        ratio = r["isolated"].get("width_ratio", {}).get("median")
        fig, axes = _fig(9.0, 3.8)
        import matplotlib.pyplot as plt

        plt.close(fig)
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
        top = float(np.nanquantile(np.r_[rel_iso, rel_pool], 0.95))
        a2.plot([0, top], [0, top], color=GREY, lw=0.8, ls="--")
        a2.set_xlim(0, top)
        a2.set_ylim(0, top)
        a2.set_xlabel("isolated: interval width / |mean|")
        a2.set_ylabel("pooled: interval width / |mean|")
        a2.set_title(f"Median interval width ratio (isolated/pooled): {fmt_num(ratio)}")
        fig.tight_layout()
        page.figure(fig, "Left: posterior means against per-campaign regressions (45-degree line). "
                         "Right: relative interval widths; points below the line are more precise "
                         "when pooled.")
    page.table(df.rename(columns={"mean": "mean (outcome units)", "lo": "2.5%", "hi": "97.5%"}),
               "Campaign-average effects with 95% intervals.", max_rows=40)


def _timing_section(page: Page, r: dict) -> None:
    page.section(SECTION_TITLES[2], "Effects by campaign design attribute and by week.")
    dec = r.get("decomposition", {})
    attr = (dec.get("campaign_attributes") or {}).get("coefficients")
    if attr:
        rows = [(k, v) for k, v in attr.items()
                if k != "intercept" and isinstance(v, dict) and "mean" in v]
        if rows:
            fig = _interval_plot([k for k, _ in rows], [v["mean"] for _, v in rows],
                                 [v["lo"] for _, v in rows], [v["hi"] for _, v in rows],
                                 "Campaign effects by design attribute",
                                 "difference from the reference level (outcome units)")
            page.figure(fig, "Regression of campaign effects on attributes, per posterior draw: "
                             "means and 95% intervals.")
    else:
        page.note("Attribute effects were not computed in this run.")
    weeks = r.get("effects", {}).get("weeks", {})
    if weeks:
        df = pd.DataFrame(weeks).T
        x = np.arange(len(df))
        fig, ax = _fig()
        ax.fill_between(x, df["lo"].astype(float), df["hi"].astype(float), color=BLUE, alpha=0.2)
        ax.plot(x, df["mean"].astype(float), color=BLUE, marker="o", ms=3)
        trend = dec.get("week_trend") or r.get("effects", {}).get("week_trend")
        title = "Week-average effects over time"
        if trend and "mean" in trend:
            title = f"Week effects: trend {fmt_num(trend['mean'])} per week (95% {fmt_num(trend['lo'])} to {fmt_num(trend['hi'])})"
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
    dec = r.get("decomposition", {})
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
    eff = r.get("effects", {})
    page.section(SECTION_TITLES[4], "uI: each customer's persistent responsiveness beyond what "
                 "campaign, week, activity and exposure history explain (outcome units).")
    if customers is None or customers.empty:
        page.note("No customer file in this run.")
        return
    k = min(250, len(customers))
    sample = customers.sample(k, random_state=0).sort_values("mean")
    fig = _interval_plot(np.arange(k), sample["mean"], sample["lo"], sample["hi"],
                         f"{_pct(eff.get('customers_above_zero'))} of customers clearly above zero, "
                         f"{_pct(eff.get('customers_below_zero'))} clearly below",
                         "uI (outcome units)", height=4.2)
    fig.axes[0].set_yticks([])
    fig.axes[0].set_ylabel(f"{k} random customers (sorted)")
    page.figure(fig, "Posterior means and 95% intervals (normal approximation) of uI for random "
                     "customers.")


def _validation_section(page: Page, r: dict) -> None:
    v = r.get("validation", {})
    page.section(SECTION_TITLES[5], "Out-of-sample checks on one held-out row per customer: does "
                 "ranking by the predicted effect find the customers who respond more?")
    if not v:
        page.note("Validation was not computed in this run.")
        return
    toc = v.get("toc_curve")
    if toc and "q" in toc:
        q = np.asarray(toc["q"], float)
        fig, ax = _fig()
        ax.fill_between(q, np.asarray(toc["lo"], float), np.asarray(toc["hi"], float), color=BLUE,
                        alpha=0.2)
        ax.plot(q, np.asarray(toc["mean"], float), color=BLUE)
        ax.axhline(0, color=GREY, lw=0.8, ls="--")
        au = v.get("autoc", {})
        ax.set_title(f"Targeting operator characteristic: AUTOC {fmt_num(au.get('mean'))}")
        ax.set_xlabel("share of holdout customers treated, ranked by predicted effect")
        ax.set_ylabel("TOC (outcome units)")
        fig.tight_layout()
        page.figure(fig, "TOC(q): mean IPW score of the top-q share minus the overall mean, "
                         "posterior mean and 95% band.")
    tab = _summary_frame({k: val for k, val in v.items() if isinstance(val, dict)})
    if not tab.empty:
        page.table(tab, "AUTOC (outcome units) and BLP slope (1 = calibrated, 0 = no signal).")


def _policy_section(page: Page, r: dict) -> None:
    pol = r.get("policy", {})
    page.section(SECTION_TITLES[6], "Policy value per customer on the holdout (IPW), per posterior "
                 "draw: company (as randomized), model (treat if predicted effect > 0, or > cost), "
                 "random (same number as the model, within each intervention).")
    if not pol:
        page.note("Policy evaluation was not computed in this run.")
        return
    rows = []
    for name in ("company", "random", "model", "model_cost"):
        p = pol.get(name)
        if isinstance(p, dict) and "value" in p:
            rows.append({"policy": name, "value per customer": _s(p["value"]),
                         "2.5%": _s(p["value"], "lo"), "97.5%": _s(p["value"], "hi"),
                         "share targeted": _s(p.get("share_targeted"))})
    if rows:
        df = pd.DataFrame(rows)
        fig = _interval_plot(df["policy"], df["value per customer"], df["2.5%"], df["97.5%"],
                             "Value per customer of each targeting policy",
                             "outcome per customer (outcome units)", zero=False)
        page.figure(fig, "IPW value on the holdout: posterior means and 95% intervals.")
        page.table(df, "Policy values (outcome units per customer) and share treated.")
    def group_row(name, g):
        m = g.get("model", {})
        return {"group": name, "rows": g.get("rows"),
                "company": _s(g.get("company", {}).get("value")),
                "random": _s(g.get("random", {}).get("value")),
                "model": _s(m.get("value")), "model share targeted": _s(m.get("share_targeted")),
                "gain over company (%)": _s(m.get("gain_over_company_pct")),
                "P(model beats company)": m.get("p_beats_company")}

    gains = []
    model = pol.get("model", {})
    if isinstance(model.get("gain_over_company_pct"), dict):
        gains.append(("all interventions", model["gain_over_company_pct"]))
    for a, levels in (pol.get("by_attribute") or {}).items():
        for lv, g in levels.items():
            gp = g.get("model", {}).get("gain_over_company_pct") if isinstance(g, dict) else None
            if isinstance(gp, dict):
                gains.append((f"{a}={lv}", gp))
    for k, g in (pol.get("by_propensity_tercile") or {}).items():
        gp = g.get("model", {}).get("gain_over_company_pct") if isinstance(g, dict) else None
        if isinstance(gp, dict):
            gains.append((f"propensity {k}", gp))
    if gains:
        pb = model.get("p_beats_company")
        fig = _interval_plot([k for k, _ in gains][::-1], [g["mean"] for _, g in gains][::-1],
                             [g["lo"] for _, g in gains][::-1], [g["hi"] for _, g in gains][::-1],
                             f"Gain of model targeting over the company policy "
                             f"(P(gain > 0) = {_pct(pb)})", "gain in value per customer (%)")
        page.figure(fig, "Posterior of the percentage gain of the model policy over the company's "
                         "randomized policy: means and 95% intervals, overall and by group.")

    by_attr = pol.get("by_attribute") or {}
    flat = [group_row(f"{a}={lv}", g) for a, levels in by_attr.items() for lv, g in levels.items()
            if isinstance(g, dict)]
    if flat:
        page.table(pd.DataFrame(flat), "Policy value per customer (outcome units) by campaign "
                                       "attribute: posterior means.")
    by_prop = pol.get("by_propensity_tercile") or {}
    flat = [group_row(f"propensity {k}", g) for k, g in by_prop.items() if isinstance(g, dict)]
    if flat:
        page.table(pd.DataFrame(flat), "Policy value per customer (outcome units) by tercile of "
                                       "the intervention's treated share (T1 lowest).")


def _decomposition_section(page: Page, r: dict) -> None:
    dec = r.get("decomposition", {})
    page.section(SECTION_TITLES[7], "Variance shares (Gelman): how much of the spread of effects "
                 "each component carries; Shapley values: how much of the targeting value each "
                 "source of heterogeneity earns.")
    shown = False
    for key, title, ylabel in (("variance_share", "Share of effect variance by component", "share"),
                               ("shapley_ipw", "Shapley share of targeting value (IPW)", "share of v(all) - v(none)"),
                               ("shapley_autoc", "Shapley share of AUTOC", "share of v(all) - v(none)")):
        d = dec.get(key)
        if d:
            labels = [k for k in d if isinstance(d[k], dict) and "mean" in d[k]]
            fig = _bar_plot(labels, [d[k]["mean"] for k in labels], [d[k]["lo"] for k in labels],
                            [d[k]["hi"] for k in labels], title, ylabel)
            page.figure(fig, f"{title}: posterior means and 95% intervals.")
            shown = True
    if not shown:
        page.note("The decomposition was not computed in this run.")


def _overlap_section(page: Page, r: dict) -> None:
    ov = r.get("overlap")
    if not ov:
        page.section(SECTION_TITLES[8])
        page.note("The overlap network was not computed in this run.")
        return
    from manylift.design.overlap import OverlapResult
    from manylift.report.overlap import add_overlap_section

    add_overlap_section(page, OverlapResult.from_dict(ov))


def _sampler_section(page: Page, r: dict, idata) -> None:
    s = r.get("sampler", {})
    page.section(SECTION_TITLES[9], f"{s.get('chains')} chains x {s.get('draws')} draws after "
                 f"{s.get('warmup')} warm-up sweeps (thin {s.get('thin')}), backend "
                 f"{s.get('backend')}, {fmt_num(s.get('seconds'))} s "
                 f"({fmt_num(s.get('sweeps_per_second'))} sweeps/s), seed {s.get('seed')}.")
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
    page.summary(_summary_bullets(r))
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
