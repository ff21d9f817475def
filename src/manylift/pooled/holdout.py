"""Posterior functionals of a pooled fit on the holdout rows.

Per retained *functional* draw (the draws for which the sampler kept the
holdout customers' uI, ``PooledFit._acc.functional_draws``) the predicted
effect of every holdout row is

    tau_hat_ij = taubar + tau_t + tau_c + gammaI_cell + gammaI_activity
                 + gammaI_prop * prop_ij + uI_i

(DESIGN.md section 4). From it: the posterior of AUTOC and of the BLP slope
(validation) and of the IPW values of the company's, the model's and a random
policy (policy evaluation), all with the holdout rows' IPW scores built from
the row propensity. Everything is vectorised over draws with the evaluation
layer's ``*_many`` functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift._core.errors import DataError
from manylift.evaluation import (
    blp_slope_many,
    ipw_scores,
    policy_value_many,
    rank_metric_many,
    toc_curve,
)
from manylift.pooled.isolated import isolated_campaign_effects

__all__ = [
    "HoldoutComponents",
    "PolicyEvaluation",
    "ValidationResult",
    "CampaignEffects",
    "HoldoutEvaluation",
    "evaluate",
    "campaign_effects",
    "evaluate_policies",
    "holdout_components",
    "validate_holdout",
]

COMPONENTS = ("campaign", "week", "observed", "unobserved")


def _summary(draws) -> dict:
    # local copy of pooled.fit.posterior_summary (fit imports this module lazily)
    x = np.asarray(draws, float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "lo": float("nan"), "hi": float("nan")}
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "lo": float(np.quantile(x, 0.025)), "hi": float(np.quantile(x, 0.975))}


@dataclass(frozen=True, repr=False)
class HoldoutComponents:
    """Per-draw components of tau_hat on the holdout rows.

    Attributes
    ----------
    taubar : ndarray (D,)
        Average effect at the average intervention, per functional draw.
    campaign, week, observed, unobserved : ndarray (D, n)
        tau_c, tau_t, gammaI' V_ij (cell + activity + proportion treated) and uI_i
        per draw and holdout row. Levels unseen in calibration contribute 0
        (the mean of the sum-to-zero effects).
    outcome, treatment, propensity : ndarray (n,)
        The holdout rows' data (treatment 0/1, propensity from the data).
    intervention : ndarray (n,)
        Integer code of the row's intervention (campaign x week).
    campaign_id : ndarray (n,)
        The row's campaign label.
    draws : ndarray (D, 2)
        (chain, draw) of each functional draw.
    """

    taubar: np.ndarray
    campaign: np.ndarray
    week: np.ndarray
    observed: np.ndarray
    unobserved: np.ndarray
    outcome: np.ndarray
    treatment: np.ndarray
    propensity: np.ndarray
    intervention: np.ndarray
    campaign_id: np.ndarray
    draws: np.ndarray

    @property
    def n_draws(self) -> int:
        return int(self.taubar.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.outcome.shape[0])

    def tau_hat(self, include=COMPONENTS) -> np.ndarray:
        """taubar plus the components in ``include``, shape (D, n)."""
        out = np.repeat(self.taubar[:, None].astype(np.float32), self.n_rows, axis=1)
        for name in include:
            if name == "customer":
                out = out + self.observed + self.unobserved
            elif name in COMPONENTS:
                out = out + getattr(self, name)
            else:
                raise DataError(f"Unknown tau_hat component {name!r}; use any of "
                                f"{[*COMPONENTS, 'customer']}.")
        return out

    def scores(self) -> np.ndarray:
        """IPW scores of the holdout rows (row propensity)."""
        return ipw_scores(self.outcome, self.treatment, self.propensity)

    def to_frame(self) -> pd.DataFrame:
        """Posterior mean of each component per holdout row."""
        d = {k: getattr(self, k).mean(axis=0) for k in COMPONENTS}
        d["tau_hat"] = self.tau_hat().mean(axis=0)
        return pd.DataFrame({"outcome": self.outcome, "treatment": self.treatment,
                             "propensity": self.propensity, **d})

    def __repr__(self) -> str:
        return f"HoldoutComponents(draws={self.n_draws}, holdout_rows={self.n_rows})"


def holdout_components(fit) -> HoldoutComponents:
    """The components of tau_hat on the holdout rows, one row per functional draw.

    Parameters
    ----------
    fit : PooledFit

    Returns
    -------
    HoldoutComponents
    """
    inp = fit.inputs
    hold = np.asarray(inp.holdout, bool)
    if not hold.any():
        raise DataError(
            "The fit has no holdout rows (PooledModel(holdout=False), or no customer has "
            "holdout_min_rows rows); refit with holdout=True or a smaller holdout_min_rows.")
    acc = fit._acc
    fd = np.asarray(acc.functional_draws)
    ci, di = fd[:, 0], fd[:, 1]

    def at(draws_array):  # (chains, draws, ...) -> (D, ...)
        return np.asarray(draws_array)[ci, di]

    def gather(term: str, code_term: str) -> np.ndarray:
        eff = at(fit.full_effects(term))  # (D, L)
        codes = inp.codes[code_term][hold]
        # float32: (draws x holdout rows) arrays are large at paper scale (400 x 584k)
        out = eff[:, np.maximum(codes, 0)].astype(np.float32)
        out[:, codes < 0] = 0.0
        return out

    prop = np.asarray(inp.arrays.prop_treated, float)[hold]
    observed = (gather("gammaI[cell]", "cell") + gather("gammaI[activity]", "activity")
                + (at(fit.param("gammaI[prop_treated]"))[:, None] * prop[None, :]
                   ).astype(np.float32))
    f = fit.data.frame
    hf = f.loc[hold]
    inter = pd.factorize(pd.MultiIndex.from_arrays([hf["campaign_id"].to_numpy(),
                                                    hf["week"].to_numpy()]))[0]
    return HoldoutComponents(
        taubar=at(fit.param("taubar")).astype(float),
        campaign=gather("tau_c", "campaign"),
        week=gather("tau_t", "week"),
        observed=observed,
        unobserved=np.asarray(acc.holdout_uI, np.float32),
        outcome=hf["outcome"].to_numpy(float),
        treatment=hf["treated"].to_numpy().astype(np.int64),
        propensity=hf["propensity"].to_numpy(float),
        intervention=np.asarray(inter, np.int64),
        campaign_id=hf["campaign_id"].to_numpy(),
        draws=fd,
    )


# -- validation ----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ValidationResult:
    """Posterior of the holdout validation metrics of tau_hat.

    Attributes
    ----------
    autoc : ndarray (D,)
        AUTOC of the ranking by tau_hat, per draw (outcome units).
    blp_slope : ndarray (D,)
        BLP calibration slope of tau_hat, per draw (1 = well calibrated, 0 = no signal).
    n_rows : int
    """

    autoc: np.ndarray
    blp_slope: np.ndarray
    n_rows: int
    toc_q: np.ndarray | None = None
    toc: np.ndarray | None = None  # (D, len(toc_q)) TOC curve per draw

    def toc_band(self) -> dict | None:
        """Posterior mean and 95% band of the TOC curve on the grid ``toc_q``."""
        if self.toc is None:
            return None
        return {"q": self.toc_q.tolist(), "mean": self.toc.mean(axis=0).tolist(),
                "lo": np.quantile(self.toc, 0.025, axis=0).tolist(),
                "hi": np.quantile(self.toc, 0.975, axis=0).tolist()}

    def to_dict(self) -> dict:
        out = {"autoc": _summary(self.autoc), "blp_slope": _summary(self.blp_slope),
               "holdout_rows": self.n_rows}
        band = self.toc_band()
        if band is not None:
            out["toc_curve"] = band
        return out

    def to_frame(self) -> pd.DataFrame:
        d = self.to_dict()
        return pd.DataFrame({k: d[k] for k in ("autoc", "blp_slope")}).T

    def __repr__(self) -> str:
        a, b = _summary(self.autoc), _summary(self.blp_slope)
        return (f"ValidationResult(autoc={a['mean']:.4g} [{a['lo']:.4g}, {a['hi']:.4g}], "
                f"blp_slope={b['mean']:.3g} [{b['lo']:.3g}, {b['hi']:.3g}], "
                f"holdout_rows={self.n_rows})")


def validate_holdout(fit_or_components) -> ValidationResult:
    """Posterior of AUTOC and of the BLP slope of tau_hat on the holdout.

    AUTOC ranks holdout rows by tau_hat with IPW scores (row propensity); the
    BLP regression has intervention fixed effects and weights 1/(e(1-e)).

    Parameters
    ----------
    fit_or_components : PooledFit or HoldoutComponents

    Returns
    -------
    ValidationResult

    References
    ----------
    Yadlowsky, S. et al. (2025). Evaluating treatment prioritization rules via
    rank-weighted average treatment effects. JASA. Chernozhukov, V. et al. (2018).
    Generic machine learning inference on heterogeneous treatment effects.
    """
    h = _components(fit_or_components)
    tau = h.tau_hat()
    autoc = rank_metric_many(h.scores(), tau, kind="autoc")
    slope = blp_slope_many(h.outcome, h.treatment, h.propensity, tau, groups=h.intervention)
    grid = np.linspace(0.02, 1.0, 50)
    scores = h.scores()
    toc = np.stack([toc_curve(scores, t, q=grid)[1] for t in tau])
    return ValidationResult(autoc=autoc, blp_slope=slope, n_rows=h.n_rows, toc_q=grid, toc=toc)


# -- policy evaluation -----------------------------------------------------------


def _components(x) -> HoldoutComponents:
    return x if isinstance(x, HoldoutComponents) else holdout_components(x)


def _campaign_costs(fit, h: HoldoutComponents, cost) -> np.ndarray | None:
    """Cost per holdout row (outcome units) or None."""
    if cost is None:
        return None
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return np.full(h.n_rows, float(cost))
    camp = getattr(fit.data, "campaigns", None)
    name = "cost" if cost == "auto" else cost
    if camp is None or name not in camp.columns:
        if cost == "auto":
            return None
        raise DataError(f"'cost' names column {cost!r}, which the campaign table does not have "
                        f"(columns: {[] if camp is None else list(camp.columns)}). Pass cost=None "
                        f"or the name of a campaign column in outcome units.")
    table = camp.set_index(camp["campaign_id"].astype(str))[name].astype(float)
    out = pd.Series(h.campaign_id.astype(str)).map(table).to_numpy(float)
    if np.isnan(out).any():
        raise DataError(f"{int(np.isnan(out).sum())} holdout row(s) have no {name!r} in the "
                        f"campaign table; fill it for every campaign or pass cost=None.")
    return out


def _random_assignment(model: np.ndarray, intervention: np.ndarray) -> np.ndarray:
    """Treatment probability k_j / n_j within each intervention, per draw.

    The random policy treats as many rows as the model within each intervention,
    chosen uniformly; the IPW value is linear in the assignment, so its
    expectation over all such random choices is the value of this probability
    assignment (the limit of averaging over many random draws, exactly).
    """
    G = int(intervention.max()) + 1
    n_j = np.bincount(intervention, minlength=G).astype(float)
    D = model.shape[0]
    k = np.zeros((D, G))
    np.add.at(k, (slice(None), intervention), model.astype(float))
    return (k / n_j)[:, intervention]


def _table(y, w, e, pi_model, pi_random, cost) -> dict:
    """Per-draw values of company / random / model on a set of rows."""
    company = float(np.mean(y))  # assignment = propensity: the IPW value is mean(y) exactly
    v_model = policy_value_many(y, w, e, pi_model)
    v_random = policy_value_many(y, w, e, pi_random)
    c = np.zeros(y.size) if cost is None else cost
    net_company = company - float(np.mean(e * c))
    net_model = v_model - pi_model @ c / y.size
    net_random = v_random - pi_random @ c / y.size
    share = pi_model.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain_c = 100 * (net_model - net_company) / abs(net_company)
        gain_r = 100 * (net_model - net_random) / np.abs(net_random)
    return {
        "rows": int(y.size),
        "company": {"value": np.full_like(v_model, company),
                    "net_value": np.full_like(v_model, net_company),
                    "share_targeted": np.full_like(v_model, float(np.mean(e)))},
        "random": {"value": v_random, "net_value": net_random, "share_targeted": share},
        "model": {"value": v_model, "net_value": net_model, "share_targeted": share,
                  "gain_over_company_pct": gain_c, "gain_over_random_pct": gain_r,
                  "p_beats_company": float(np.mean(net_model > net_company)),
                  "p_beats_random": float(np.mean(net_model > net_random))},
    }


def _summarise(table: dict) -> dict:
    out = {"rows": table["rows"]}
    for pol in ("company", "random", "model"):
        out[pol] = {k: (v if isinstance(v, float) else _summary(v))
                    for k, v in table[pol].items()}
    return out


@dataclass(frozen=True, repr=False)
class PolicyEvaluation:
    """Posterior IPW values of the company's, a random and the model's policy.

    Attributes
    ----------
    overall : dict
        Per-draw arrays: ``overall[policy][metric]`` for policy in company,
        random, model and metric in value, net_value, share_targeted (model also
        gain_over_company_pct, gain_over_random_pct and the probabilities
        p_beats_company, p_beats_random).
    by_attribute : dict
        ``{attribute: {level: table}}`` with tables like ``overall`` on the rows
        of the campaigns with that attribute level.
    by_propensity_tercile : dict
        ``{"T1"/"T2"/"T3": table}`` on the rows of each propensity tercile.
    cost_aware : bool
        Whether the model treats when tau_hat > cost (else tau_hat > 0).
    """

    overall: dict
    by_attribute: dict
    by_propensity_tercile: dict
    cost_aware: bool

    def to_dict(self) -> dict:
        return {
            "unit": "outcome units per holdout row",
            "cost_aware": self.cost_aware,
            **_summarise(self.overall),
            "by_attribute": {a: {lv: _summarise(t) for lv, t in d.items()}
                             for a, d in self.by_attribute.items()},
            "by_propensity_tercile": {k: _summarise(t)
                                      for k, t in self.by_propensity_tercile.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for pol in ("company", "random", "model"):
            for k, v in self.overall[pol].items():
                s = {"mean": v, "sd": 0.0, "lo": v, "hi": v} if isinstance(v, float) else _summary(v)
                rows.append({"policy": pol, "metric": k, **s})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        s = {p: _summary(self.overall[p]["net_value"]) for p in ("company", "random", "model")}
        return ("PolicyEvaluation(" + ", ".join(f"{p}={v['mean']:.4g}" for p, v in s.items())
                + f", p_beats_company={self.overall['model']['p_beats_company']:.2f}, "
                f"cost_aware={self.cost_aware})")


def evaluate_policies(fit, cost="auto", components: HoldoutComponents | None = None
                      ) -> PolicyEvaluation:
    """Posterior policy evaluation on the holdout (DESIGN.md section 5).

    Policies: *company* (as randomized: assignment = the row's propensity, so its
    IPW value is mean(y) exactly), *model* (treat if tau_hat > cost, cost 0 when
    there is none) and *random* (as many rows as the model within each
    intervention, uniformly; evaluated exactly as its expectation over random
    choices). Values by IPW with the row propensity; ``net_value`` subtracts
    the cost of the rows treated.

    Parameters
    ----------
    fit : PooledFit
    cost : "auto", str, float or None, default="auto"
        ``"auto"``: the campaign table's ``cost`` column when it has one, else 0;
        a column name of the campaign table; a constant (outcome units); None: no cost.
    components : HoldoutComponents, optional
        Reuse precomputed components.

    Returns
    -------
    PolicyEvaluation

    References
    ----------
    Dudik, M., Langford, J. and Li, L. (2011). Doubly robust policy evaluation and
    learning. ICML.
    """
    h = components if components is not None else holdout_components(fit)
    c = _campaign_costs(fit, h, cost)
    tau = h.tau_hat()
    pi_model = (tau > (0.0 if c is None else c[None, :])).astype(float)
    pi_random = _random_assignment(pi_model, h.intervention)
    y, w, e = h.outcome, h.treatment, h.propensity

    def sub(mask):
        return _table(y[mask], w[mask], e[mask], pi_model[:, mask], pi_random[:, mask],
                      None if c is None else c[mask])

    overall = sub(np.ones(h.n_rows, bool))
    by_attr: dict = {}
    camp = getattr(fit.data, "campaigns", None)
    attrs = list(getattr(fit.data, "campaign_attributes", []) or [])
    if camp is not None and attrs:
        table = camp.set_index(camp["campaign_id"].astype(str))
        ids = pd.Series(h.campaign_id.astype(str))
        for a in attrs:
            vals = ids.map(table[a]).to_numpy()
            by_attr[a] = {str(lv): sub(vals == lv) for lv in pd.unique(vals[pd.notna(vals)])}
    by_t: dict = {}
    ranks = pd.Series(e).rank(method="first").to_numpy()
    terc = np.minimum((3 * (ranks - 1) / len(e)).astype(int), 2)
    for k in range(3):
        if (terc == k).any():
            by_t[f"T{k + 1}"] = sub(terc == k)
    return PolicyEvaluation(overall, by_attr, by_t, cost_aware=c is not None)


# -- campaign effects: pooled vs isolated ------------------------------------------


@dataclass(frozen=True, repr=False)
class CampaignEffects:
    """Campaign-average effects of the pooled fit next to isolated per-campaign regressions.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per campaign, sorted by the pooled posterior mean: ``campaign_id,
        mean, sd, lo, hi`` (pooled posterior of the campaign-average effect),
        ``isolated, isolated_se, isolated_lo, isolated_hi`` (OLS of the outcome on
        treatment, the covariates and week fixed effects on the campaign's
        calibration rows, HC1 standard errors; :mod:`manylift.pooled.isolated`), ``width_ratio`` (isolated / pooled
        interval width: the precision gain of pooling), and
        ``pooled_rel_width``, ``isolated_rel_width`` (interval width / |mean|).
    share_above_zero, share_below_zero : float
        Share of campaigns whose pooled 95% interval lies above / below zero.
    """

    table: pd.DataFrame
    share_above_zero: float
    share_below_zero: float

    def to_dict(self) -> dict:
        r = self.table.replace([np.inf, -np.inf], np.nan)
        return {
            "share_above_zero": self.share_above_zero,
            "share_below_zero": self.share_below_zero,
            "isolated_share_above_zero": float((r["isolated_lo"] > 0).mean()),
            "isolated_share_below_zero": float((r["isolated_hi"] < 0).mean()),
            "median_width_ratio": float(np.nanmedian(r["width_ratio"])),
            "campaigns": {str(row.campaign_id): {
                "pooled": {"mean": row.mean, "sd": row.sd, "lo": row.lo, "hi": row.hi},
                "isolated": {"estimate": row.isolated, "se": row.isolated_se,
                             "lo": row.isolated_lo, "hi": row.isolated_hi},
                "width_ratio": row.width_ratio} for row in r.itertuples()},
        }

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return (f"CampaignEffects(campaigns={len(self.table)}, above_zero="
                f"{self.share_above_zero:.2f}, below_zero={self.share_below_zero:.2f}, "
                f"median_width_ratio={float(np.nanmedian(self.table['width_ratio'])):.2f})")


def campaign_effects(fit) -> CampaignEffects:
    """Pooled campaign-average effects, sorted, against isolated per-campaign regressions.

    Parameters
    ----------
    fit : PooledFit

    Returns
    -------
    CampaignEffects
    """
    post = fit.posterior.posterior["campaign_effect"]
    draws = np.asarray(post).reshape(-1, post.shape[-1])
    labels = [str(c) for c in post["campaign"].values]
    inp = fit.inputs
    iso = isolated_campaign_effects(fit.data.frame, inp.arrays.X, ~np.asarray(inp.holdout, bool),
                                    inp.codes["campaign"], inp.levels["campaign"])
    iso = iso.set_index("campaign")
    rows = []
    for k, c in enumerate(labels):
        s = _summary(draws[:, k])
        est, se = float(iso.loc[c, "estimate"]), float(iso.loc[c, "se"])
        width = 2 * 1.959964 * se
        with np.errstate(divide="ignore", invalid="ignore"):
            rows.append({"campaign_id": c, **s, "isolated": est, "isolated_se": se,
                         "isolated_lo": est - 1.959964 * se, "isolated_hi": est + 1.959964 * se,
                         "width_ratio": width / (s["hi"] - s["lo"]),
                         "pooled_rel_width": (s["hi"] - s["lo"]) / abs(s["mean"]),
                         "isolated_rel_width": np.float64(width) / abs(est)})
    table = pd.DataFrame(rows).sort_values("mean", ascending=False).reset_index(drop=True)
    return CampaignEffects(table, float((table["lo"] > 0).mean()),
                           float((table["hi"] < 0).mean()))


@dataclass(frozen=True, repr=False)
class HoldoutEvaluation:
    """Holdout validation and policy evaluation of a pooled fit."""

    validation: ValidationResult
    policy: PolicyEvaluation

    def to_dict(self) -> dict:
        return {"validation": self.validation.to_dict(), "policy": self.policy.to_dict()}

    def to_frame(self) -> pd.DataFrame:
        return self.policy.to_frame()

    def __repr__(self) -> str:
        return f"HoldoutEvaluation({self.validation!r}, {self.policy!r})"


def evaluate(fit, cost="auto") -> HoldoutEvaluation:
    """:func:`validate_holdout` and :func:`evaluate_policies` on one set of components."""
    h = holdout_components(fit)
    return HoldoutEvaluation(validate_holdout(h), evaluate_policies(fit, cost, components=h))
