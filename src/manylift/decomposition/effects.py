"""Effects by campaign attribute, week trend, fatigue curves and activity level, per draw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift.decomposition._summary import summary

__all__ = ["AttributeRegression", "EffectCurve", "activity_effects", "attribute_regression",
           "fatigue_curves", "week_trend"]


def _flat(x: np.ndarray) -> np.ndarray:
    """(chains, draws, ...) -> (chains * draws, ...)."""
    x = np.asarray(x, float)
    return x.reshape((-1,) + x.shape[2:])


@dataclass(frozen=True, repr=False)
class AttributeRegression:
    """Per-draw least-squares regression of tau_c on campaign attributes, in effect coding.

    Each attribute (factor) enters with effect (sum-to-zero, deviation) coding,
    so a level's coefficient is its deviation from the average of its factor's
    levels, as in Table App-2 of "Learning from Many Experiments" ("each level against the average"),
    and the intercept (``overall``) is the campaign deviation at the average of
    every factor.

    Attributes
    ----------
    overall : ndarray (S,)
        Intercept per posterior draw (outcome units).
    levels : dict
        ``{factor: {level: ndarray (S,)}}``: every level's deviation from its
        factor's average (the levels of a factor sum to 0 in every draw).
    campaigns : dict
        ``{factor: {level: number of campaigns}}``.
    rank_deficient : bool
        True when the attributes are collinear or campaigns are fewer than
        coefficients (the minimum-norm least-squares solution is reported).
    """

    overall: np.ndarray
    levels: dict
    campaigns: dict
    rank_deficient: bool

    def to_dict(self) -> dict:
        return {"coding": "effect (each level vs the average of its factor)",
                "overall": summary(self.overall),
                "factors": {f: {lv: {**summary(d), "campaigns": self.campaigns[f][lv]}
                                for lv, d in lv_draws.items()}
                            for f, lv_draws in self.levels.items()},
                "rank_deficient": self.rank_deficient}

    def to_frame(self) -> pd.DataFrame:
        rows = [{"factor": "overall", "level": "", **summary(self.overall)}]
        for f, d in self.levels.items():
            rows += [{"factor": f, "level": lv, **summary(x),
                      "campaigns": self.campaigns[f][lv]} for lv, x in d.items()]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        n = sum(len(d) for d in self.levels.values())
        return (f"AttributeRegression(factors={len(self.levels)}, levels={n}, "
                f"draws={self.overall.shape[0]})")


def attribute_regression(fit) -> AttributeRegression | None:
    """Regress the campaign deviations tau_c on the campaign attributes, per draw.

    Effect coding per factor (see :class:`AttributeRegression`). Returns None
    when the data has no campaign attributes.
    """
    attrs = list(getattr(fit.data, "campaign_attributes", []) or [])
    camp = getattr(fit.data, "campaigns", None)
    if camp is None or not attrs:
        return None
    levels = [str(c) for c in fit.inputs.levels["campaign"]]
    table = camp.assign(campaign_id=camp["campaign_id"].astype(str)).set_index("campaign_id")
    table = table.reindex(levels)
    cols, layout = [np.ones(len(levels))], []
    for a in attrs:
        vals = table[a].astype(str).to_numpy()
        lv = sorted(set(vals))
        first = len(cols)
        for v in lv[:-1]:  # the last level is minus the sum of the others
            cols.append((vals == v).astype(float) - (vals == lv[-1]).astype(float))
        layout.append((a, lv, first, {v: int((vals == v).sum()) for v in lv}))
    X = np.column_stack(cols)
    tau_c = _flat(fit.full_effects("tau_c"))  # (S, C)
    coef = (np.linalg.pinv(X) @ tau_c.T).T
    deficient = bool(np.linalg.matrix_rank(X) < X.shape[1])
    out, counts = {}, {}
    for a, lv, first, n in layout:
        k = len(lv) - 1
        block = coef[:, first:first + k]
        out[a] = {v: block[:, j] for j, v in enumerate(lv[:-1])}
        out[a][lv[-1]] = -block.sum(axis=1)
        counts[a] = n
    return AttributeRegression(coef[:, 0], out, counts, deficient)


@dataclass(frozen=True, repr=False)
class EffectCurve:
    """Posterior of an effect per level of something (week, stock quintile, ...).

    Attributes
    ----------
    name : str
    labels : list
    draws : ndarray (S, L)
        Effect per draw and level (outcome units).
    extra : dict of ndarray (S,)
        Scalars per draw (e.g. the linear ``trend`` per week, the ``never_treated`` effect).
    """

    name: str
    labels: list
    draws: np.ndarray
    extra: dict

    def to_dict(self) -> dict:
        out = {str(lab): summary(self.draws[:, k]) for k, lab in enumerate(self.labels)}
        return {"levels": out, **{k: summary(v) for k, v in self.extra.items()}}

    def to_frame(self) -> pd.DataFrame:
        f = pd.DataFrame({str(lab): summary(self.draws[:, k])
                          for k, lab in enumerate(self.labels)}).T
        f.index.name = self.name
        return f

    def __repr__(self) -> str:
        m = self.draws.mean(axis=0)
        return f"EffectCurve({self.name!r}, " + ", ".join(
            f"{lab}: {v:.3g}" for lab, v in zip(self.labels, m, strict=True)) + ")"


def week_trend(fit) -> EffectCurve:
    """Week deviations tau_t and the per-draw least-squares slope of tau_t on the week.

    ``extra["trend"]`` is in outcome units per week.
    """
    weeks = np.asarray(fit.inputs.levels["week"])
    tau_t = _flat(fit.full_effects("tau_t"))
    x = weeks.astype(float) if weeks.dtype.kind in "iuf" else np.arange(weeks.size, dtype=float)
    xc = x - x.mean()
    slope = tau_t @ xc / (xc @ xc)
    return EffectCurve("week", [w.item() if hasattr(w, "item") else w for w in weeks], tau_t,
                       {"trend": slope})


def _merged_effects(fit, term: str, map_name: str, n_original: int) -> np.ndarray:
    """Effects (S, n_original) of the original bins through the sparse-level merge map."""
    eff = _flat(fit.full_effects(term))
    levels = list(np.asarray(fit.inputs.levels[map_name]).tolist())
    mp = fit.inputs.level_maps[map_name]
    idx = np.array([levels.index(mp[c]) if c in mp and mp[c] in levels else -1
                    for c in range(n_original)])
    out = eff[:, np.maximum(idx, 0)]
    out[:, idx < 0] = 0.0
    return out


def activity_effects(fit) -> EffectCurve:
    """Predicted effect taubar + gammaI_activity per activity bin (merged bins share one).

    Bins never seen in calibration get the average (taubar).
    """
    n = fit.inputs.features.n_activity_bins
    eff = _merged_effects(fit, "gammaI[activity]", "activity", n)
    taubar = _flat(fit.param("taubar"))
    return EffectCurve("activity_bin", list(range(n)), taubar[:, None] + eff, {})


def fatigue_curves(fit) -> tuple[EffectCurve, EffectCurve]:
    """Fatigue curves: predicted effect per stock quintile and per recency bin.

    Cell (recency bin r, stock bin s) has effect taubar + gammaI_cell. The stock
    curve averages each stock bin over the empirical recency distribution of the
    previously treated calibration rows, the recency curve over the empirical
    stock distribution (docs/results.md). ``extra["never_treated"]`` is the
    effect at a first treatment.

    Returns
    -------
    (by_stock, by_recency) : tuple of EffectCurve
    """
    fe = fit.inputs.features
    n_s = fe.n_stock_bins
    n_cells = fe.n_cells
    n_r = (n_cells - 1) // n_s
    eff = _merged_effects(fit, "gammaI[cell]", "cell", n_cells)
    taubar = _flat(fit.param("taubar"))
    cal = ~np.asarray(fit.inputs.holdout, bool)
    cells = np.asarray(fit.inputs.arrays.cell)[cal]
    cells = cells[cells < n_cells - 1]
    counts = np.bincount(cells, minlength=n_cells - 1)[: n_cells - 1].reshape(n_r, n_s)
    tot = max(counts.sum(), 1)
    p_r = counts.sum(axis=1) / tot
    p_s = counts.sum(axis=0) / tot
    grid = eff[:, : n_cells - 1].reshape(-1, n_r, n_s)  # (S, r, s)
    by_stock = taubar[:, None] + np.einsum("drs,r->ds", grid, p_r)
    by_rec = taubar[:, None] + np.einsum("drs,s->dr", grid, p_s)
    never = taubar + eff[:, n_cells - 1]
    edges = list(fe.to_dict().get("recency_edges", []))
    rec_labels = ([f"({a:g},{b:g}]" for a, b in zip([0.0, *edges[:-1]], edges, strict=True)]
                  + [f">{edges[-1]:g}"]) if len(edges) == n_r - 1 else list(range(n_r))
    return (EffectCurve("stock_quintile", [f"Q{k + 1}" for k in range(n_s)], by_stock,
                        {"never_treated": never}),
            EffectCurve("recency_weeks", rec_labels, by_rec, {"never_treated": never}))
