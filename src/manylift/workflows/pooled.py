"""The analysis of a fitted pooled model, in one place: holdout -> policies -> decomposition ->
overlap -> save -> report, each stage timed, and ``results.json`` assembled here.

``manylift fit``, ``manylift demo`` and ``PooledFit.report`` (the rich fit of
:mod:`manylift.workflows.api`) all run :func:`analyse`; it imports the layers it
calls directly (no registry of names), and passes the run's seed to every
stage that draws random numbers (the Bayesian bootstrap through the fit, the
community detection and the network layout through ``sampler.seed``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from manylift._core.atomic import write_json
from manylift._core.errors import InterruptedAfterSampling
from manylift._core.memory import peak_rss_gib

__all__ = ["Stages", "analyse", "peak_rss_gib", "print_results", "print_summary",
           "STAGE_ORDER", "POST_SAMPLING"]

#: The stages ``timings`` reports, in order (seconds each; ``total`` is the whole command).
STAGE_ORDER = ("read_validate", "simulate", "features", "compile", "sampling", "holdout",
               "policies", "decomposition", "effects", "overlap", "save", "report", "total")
#: The stages after sampling (their sum is compared with the sampling time).
POST_SAMPLING = ("holdout", "policies", "decomposition", "effects", "overlap", "save", "report")


class Stages:
    """Times named stages and prints a one-line message for every stage over a second."""

    def __init__(self, log=print, quiet_below: float = 1.0):
        self.seconds: dict[str, float] = {}
        self.peak_after: dict[str, float] = {}  # the process's peak memory when a stage ended
        self.log = log
        self.quiet_below = quiet_below
        self.t0 = time.perf_counter()

    def add(self, name: str, seconds: float, what: str | None = None) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)
        self.peak_after[name] = peak_rss_gib()
        if seconds >= self.quiet_below:
            self.log(f"  {what or name}: {seconds:.1f} s")

    def memory(self) -> dict:
        """``peak_rss_gib`` and ``peak_rss_gib_after`` each stage (the stage whose value
        jumps is where the peak was reached)."""
        return {"peak_rss_gib": peak_rss_gib(), "peak_rss_gib_after": dict(self.peak_after)}

    @contextmanager
    def __call__(self, name: str, what: str | None = None):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t, what)

    def timings(self) -> dict:
        out = {k: self.seconds[k] for k in STAGE_ORDER if k in self.seconds}
        out.update({k: v for k, v in self.seconds.items() if k not in out})
        out["total"] = time.perf_counter() - self.t0
        out["post_sampling"] = sum(self.seconds.get(k, 0.0) for k in POST_SAMPLING)
        return out


def analyse(fit, out: str | Path, *, seed: int | None = None, stages: Stages | None = None,
            overlap: bool = True, report: str | Path | None = "report.html",
            progress: bool = True, log=print, extra: dict | None = None) -> dict:
    """Everything after sampling: evaluate, decompose, save and render a fitted model.

    Parameters
    ----------
    fit : PooledFit
    out : path
        The run folder (results.json, customers.parquet, posterior.nc, scoring model).
    seed : int, default=None
        Seed of the community detection and network layout (default: the fit's).
    stages : Stages, default=None
        Timer of the whole command (the caller's stages before the fit are kept).
    overlap : bool, default=True
        Compute the campaign overlap network.
    report : path or None, default="report.html"
        The report file (relative to ``out``); None renders none.
    progress : bool, default=True
        Progress bars over draws.
    log : callable, default=print
    extra : dict, default=None
        More sections for results.json (e.g. the demo's truth comparison).

    Returns
    -------
    dict
        The results (as written to results.json).
    """
    import manylift.decomposition as dec
    from manylift.design.overlap import overlap_network
    from manylift.pooled.holdout import (
        HoldoutEvaluation,
        evaluate_policies,
        holdout_components,
        holdout_problem,
        validate_holdout,
    )
    from manylift.report.pooled import pooled_report

    st = stages
    if st is None:  # called on a fitted model: the total starts with the fit's own stages
        st = Stages(log)
        st.t0 -= sum((getattr(fit, "timings", None) or {}).values())
    for k, v in (getattr(fit, "timings", None) or {}).items():
        if k not in st.seconds:
            st.add(k, v, {"features": "features and holdout split",
                          "compile": "compiling the sampler",
                          "sampling": "sampling"}.get(k))
            st.peak_after[k] = (getattr(fit, "peak_rss_after", None) or {}).get(k)
    seed = int(fit.model.random_state if seed is None else seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = fit.inputs.holdout_arrays
    problem = holdout_problem(arrays.treatment)
    h = None if problem else holdout_components(fit)
    if h is None:
        ev = HoldoutEvaluation(None, None, problem)
    else:
        with st("holdout", "holdout validation"):
            validation = validate_holdout(h, progress=progress)
        with st("policies", "policy values"):
            policy = evaluate_policies(fit, components=h, progress=progress)
        ev = HoldoutEvaluation(validation, policy)
    with st("decomposition"):
        decomposition = dec.decompose(fit, components=h, progress=progress)
    with st("effects", "effects, diagnostics and isolated regressions"):
        results = fit.results(holdout=False)
    results.update(ev.to_dict())
    results["decomposition"] = decomposition.to_dict()
    if overlap:
        with st("overlap", "overlap network"):
            f = fit.data.frame
            camps = fit.data.campaigns
            res = overlap_network(
                f["customer_id"].to_numpy(), f["campaign_id"].astype(str).to_numpy(),
                camps.assign(campaign_id=camps["campaign_id"].astype(str))
                if camps is not None else None, random_state=seed)
            results["overlap"] = res.to_dict()
    results["sampler"]["seed"] = seed
    results.update(extra or {})
    with st("save", "saving results"):
        results["timings"] = st.timings()
        results["memory"] = st.memory()
        fit.save(out, results=results)
    if report is not None:
        with st("report"):
            pooled_report(out, out / report)
    # the final timings (report and total included) and the peak memory of the whole command
    results["timings"] = st.timings()
    results["memory"] = st.memory()
    write_json(out / "results.json", results)
    return results


def finish_after_sampling(fit, out: Path, checkpoint: Path, **kwargs) -> dict:
    """:func:`analyse`, turning Ctrl-C into :class:`InterruptedAfterSampling` (the draws are in
    the checkpoint; ``--resume`` writes the results without sampling again) and removing
    the checkpoint and the holdout draws' spool once the run is saved."""
    try:
        results = analyse(fit, out, **kwargs)
    except KeyboardInterrupt:
        raise InterruptedAfterSampling(
            f"interrupted after sampling; the draws are in {checkpoint}. Run the same command "
            f"with --resume to write the results without sampling again.") from None
    fit._acc.remove_spool()
    if checkpoint.exists():
        checkpoint.unlink()  # the run is complete and saved
    return results


# -- the terminal summary ----------------------------------------------------------


def print_summary(fit) -> None:
    """The headline parameters (ArviZ summary)."""
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        print(fit.summary())


def _fmt(d) -> str:
    if not isinstance(d, dict) or not isinstance(d.get("mean"), int | float):
        return "–"
    return f"{d['mean']:9.3f}  [{d['lo']:.3f}, {d['hi']:.3f}]"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}%"


def _pct_fmt(d) -> str:
    if not isinstance(d, dict) or not isinstance(d.get("mean"), int | float):
        return "–"
    return f"{_pct(d['mean']):>7s}  [{_pct(d['lo'])}, {_pct(d['hi'])}]"


def print_results(out: Path) -> None:
    """Short tables of the holdout validation, policies, decomposition and the advice
    (from results.json; scalars only, posterior mean [95% interval])."""
    import json

    from manylift.report.pooled import NO_HOLDOUT, targeting_advice

    r = json.loads((Path(out) / "results.json").read_text())
    warnings = (r.get("sampler") or {}).get("warnings") or []
    if warnings:
        print("\nSampler warnings (read the results with care):")
        for w in warnings:
            print(f"  ! {w}")
    v = r.get("validation") or {}
    p = r.get("policy") or {}
    if not v and not p:
        print(f"\n{r.get('holdout_problem') or NO_HOLDOUT}")
    if v:
        print(f"\nValidation on {v.get('holdout_rows', 0):,} holdout rows "
              f"(posterior mean [95% interval]; model + sampling uncertainty):")
        print(f"  AUTOC (outcome units)              {_fmt(v.get('autoc'))}")
        print(f"  AUTOC, model only                  {_fmt(v.get('autoc_model_only'))}")
        print(f"  BLP slope (1 = calibrated), model  {_fmt(v.get('blp_slope'))}")
    if p:
        unit = "net of cost" if p.get("cost_aware") else "no costs"
        print(f"\nTargeting policies, value per holdout row (outcome units, {unit}):")
        for name in ("company", "random", "model"):
            pol = p.get(name) or {}
            share = (pol.get("share_targeted") or {}).get("mean")
            share_txt = f"   treats {100 * share:5.1f}%" if share is not None else ""
            print(f"  {name:8s} {_fmt(pol.get('net_value'))}{share_txt}")
        m = p.get("model") or {}
        if m.get("gain_over_company"):
            print(f"  model - company  {_fmt(m['gain_over_company'])}   "
                  f"P(model beats company) = {_pct(m.get('p_beats_company'))}")
            print(f"    model only     {_fmt(m.get('gain_over_company_model_only'))}   "
                  f"P = {_pct(m.get('p_beats_company_model_only'))}")
    dec = r.get("decomposition") or {}
    ss = dec.get("sd_share") or {}
    if ss:
        print("\nWhere the spread of effects comes from (s_f / sum s_f):")
        for k, x in ss.items():
            print(f"  {k:11s} {_pct_fmt(x)}")
    for key, label in (("shapley_ipw", "IPW value"), ("shapley_autoc", "AUTOC")):
        d = dec.get(key) or {}
        if not d:
            continue
        if d.get("shares_reported"):
            print(f"\nShapley shares of the targeting value ({label}):")
            for k in ("customer", "campaign", "week"):
                print(f"  {k:11s} {_pct_fmt(d.get(k))}")
            if d.get("unobserved_of_total"):
                print(f"  unobserved share of the whole: {_pct_fmt(d['unobserved_of_total'])}")
        else:
            print(f"\nShapley ({label}): no targeting value to divide "
                  f"(P(v_all > baseline) = {_pct(d.get('p_positive'))}, needs 90%).")
    adv = targeting_advice(r)
    print(f"\n{adv.headline}")
    for line in adv.evidence:
        print(f"  - {line}")
    for line in adv.missing:
        print(f"  - would help: {line}")
    t = r.get("timings") or {}
    if t:
        parts = ", ".join(f"{k} {t[k]:.1f} s" for k in STAGE_ORDER if k in t and k != "total")
        mem = (r.get("memory") or {}).get("peak_rss_gib")
        print(f"\nTime: {t.get('total', float('nan')):.1f} s ({parts})"
              + (f"; peak memory {mem:.2f} GiB" if mem is not None else ""))
