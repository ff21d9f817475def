"""The whole single-experiment analysis in one call (``manylift analyze``).

Positivity and balance -> ATE by six estimators (per arm) with a trimming
sweep, Manski bounds and the E-value -> CATE learners fitted on a training
split and validated on the held-out evaluation split (BLP, AUTOC, Qini, AUUC,
R-loss, calibration; placebo and subset-stability refutation of the policy
learner) -> cost-aware policies evaluated out of sample by AIPW profit, ROI
and share targeted -> profit curve, cost x margin grid, segment summaries.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from manylift._core.checks import check_in
from manylift._core.errors import ModelError
from manylift._core.rng import seed_int
from manylift.evaluation import rank_metric
from manylift.policy.profit import (
    ProfitCurve,
    SegmentSummary,
    SensitivityGrid,
    effect_scores,
    evaluate_policy,
    profit_curve,
    segment_summary,
    sensitivity_grid,
)
from manylift.policy.rules import best_arm_rule, breakeven_effect
from manylift.policy.tree import ProfitPolicyTree
from manylift.single._data import SingleData, prepare_single
from manylift.single._models import cross_fit_outcome, make_regressor
from manylift.single.ate import (
    e_value,
    estimate_ate,
    manski_bounds,
    trimming_sweep,
)
from manylift.single.learners import LEARNERS, CateLearner, r_loss
from manylift.single.positivity import estimate_propensity, positivity_diagnostics
from manylift.single.validation import (
    calibration_by_quantile,
    placebo_refutation,
    subset_stability,
    validate_cate,
)

__all__ = ["POLICY_RULES", "SingleAnalysis", "analyze_experiment"]

POLICY_RULES = ("treat_all", "positive_effect", "breakeven", "top_k", "conservative",
                "risk_adjusted", "policy_tree", "dr_policy_tree")
DEFAULT_LEARNERS = ("s", "t", "x", "dr", "linear_dml", "causal_forest")


@dataclass(frozen=True)
class SingleAnalysis:
    """Everything ``manylift analyze`` computes; :meth:`to_dict` is its results.json."""

    data: SingleData = field(repr=False)
    arms: list
    main_arm: str
    randomized: bool
    positivity: dict
    ate: dict
    trimming: dict
    manski: dict
    e_values: dict
    cate: dict
    cate_summary: pd.DataFrame
    selection: pd.DataFrame
    best_learner: str
    policy_learner: str
    refutation: dict
    calibration: object
    toc: object
    n_train: int
    n_evaluation: int
    cost: float | None = None
    margin: float | None = None
    policies: dict = field(default_factory=dict)
    curve: ProfitCurve | None = None
    sensitivity: SensitivityGrid | None = None
    segments: SegmentSummary | None = None
    segment_column: str | None = None
    tree_rules: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def treated_arms(self) -> list:
        return self.arms[1:]

    def ate_frame(self) -> pd.DataFrame:
        parts = []
        for arm, res in self.ate.items():
            t = res.to_frame()
            t.insert(0, "arm", arm)
            parts.append(t)
        return pd.concat(parts, ignore_index=True)

    def policy_frame(self) -> pd.DataFrame:
        return pd.concat([p.to_frame() for p in self.policies.values()], ignore_index=True) \
            if self.policies else pd.DataFrame()

    def to_dict(self) -> dict:
        """The results.json layout of DESIGN.md section 5b (plus extras)."""
        out: dict = {
            "schema_version": 1,
            "command": "analyze",
            "data": {
                "rows": self.data.n, "covariates": list(self.data.covariate_names),
                "arms": [str(a) for a in self.arms], "control": str(self.arms[0]),
                "arm_counts": {str(a): int(c) for a, c in zip(
                    self.arms, np.bincount(self.data.treatment, minlength=len(self.arms)))},
                "n_train": self.n_train, "n_evaluation": self.n_evaluation,
                "randomized": self.randomized,
            },
            "ate": {arm: res.to_dict() for arm, res in self.ate.items()},
            "positivity": self._positivity_dict(),
            "sensitivity": {
                "trimming": {arm: t.to_dict() for arm, t in self.trimming.items()},
                "manski_bounds": {arm: m.to_dict() for arm, m in self.manski.items()},
                "e_value": {arm: e.to_dict() for arm, e in self.e_values.items()},
            },
            "cate": self.cate,
            "cate_summary": self.cate_summary.to_dict("records"),
            "model_selection": {"r_loss": self.selection.to_dict("records"),
                                "best": self.best_learner,
                                "policy_learner": self.policy_learner},
            "refutation": {k: v.to_dict() for k, v in self.refutation.items()},
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
            "main_arm": self.main_arm,
            "settings": dict(self.settings),
        }
        if self.policies:
            out["policies"] = {k: v.to_dict() for k, v in self.policies.items()}
            out["policy"] = {
                "cost": self.cost, "margin": self.margin,
                "breakeven_effect": breakeven_effect(self.cost, self.margin),
                "profit_curve": self.curve.to_dict() if self.curve is not None else None,
                "best_share": self.curve.best_share if self.curve is not None else None,
                "sensitivity_grid": self.sensitivity.to_dict() if self.sensitivity else None,
                "tree_rules": dict(self.tree_rules),
            }
        if self.segments is not None:
            out["segments"] = {"column": self.segment_column, **self.segments.to_dict()}
        return out

    def _positivity_dict(self) -> dict:
        main = self.positivity[self.main_arm]
        out = {"propensity_auc": main.propensity_auc,
               "overlap_share": main.overlap_share["0.1-0.9"],
               "overlap_share_05_95": main.overlap_share["0.05-0.95"],
               "arms": {arm: p.to_dict() for arm, p in self.positivity.items()}}
        return out

    def __repr__(self) -> str:
        a = self.ate[self.main_arm]["aipw"]
        pol = ""
        if self.policies:
            best = max(self.policies.values(), key=lambda p: p.profit)
            pol = f", best policy {best.rule!r} profit {best.profit:.4g}/customer"
        return (f"SingleAnalysis(n={self.data.n}, arms={[str(x) for x in self.arms]}, "
                f"AIPW ATE[{self.main_arm}]={a['estimate']:.4g} "
                f"({a['lo']:.4g} to {a['hi']:.4g}), best learner {self.best_learner!r}{pol})")


def _arm_propensity(data: SingleData, randomized: bool, model, n_folds, rs):
    """(n, K + 1) assignment probabilities and whether they are known."""
    k1 = len(data.arms)
    if data.propensity is not None:
        return data.propensity, True
    if randomized:
        shares = np.bincount(data.treatment, minlength=k1) / data.n
        return np.tile(shares, (data.n, 1)), True
    e = estimate_propensity(data.covariates, data.treatment, model=model, n_folds=n_folds,
                            random_state=rs)
    e = np.column_stack([1 - e, e]) if e.ndim == 1 else e
    return e, False


def analyze_experiment(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: list[str] | None = None,
    *,
    control=None,
    propensity: str | None = None,
    randomized: bool = False,
    cost: float | None = None,
    margin: float | None = None,
    segment: str | None = None,
    learners=DEFAULT_LEARNERS,
    policy_learner: str = "causal_forest",
    evaluation_share: float = 0.5,
    top_k: float = 0.2,
    risk_aversion: float = 0.3,
    propensity_model: str = "gbm",
    n_estimators: int = 200,
    n_bootstrap: int = 200,
    n_folds: int = 5,
    refutation_rows: int = 5000,
    random_state=0,
) -> SingleAnalysis:
    """Analyse one experiment (or observational targeting data) end to end.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per customer.
    treatment, outcome : str
        Column names; the treatment holds 0/1 or arm labels.
    covariates : list of str, default=None
        Default every other numeric column (make sure none is post-treatment).
    control : scalar, default=None
        The control value (default 0, or the only label that reads like a control).
    propensity : str, default=None
        Column with the known P(treated) (binary data).
    randomized : bool, default=False
        True for a randomized experiment: the arm shares are the known
        propensities and the propensity model's AUC is a randomization check.
    cost, margin : float, default=None
        Cost per treated customer and profit per unit of outcome; both needed
        for the policies.
    segment : str, default=None
        Column to summarise effects by (default: quintiles of the estimated effect).
    learners : sequence of str, default=("s", "t", "x", "dr", "linear_dml", "causal_forest")
    policy_learner : str, default="causal_forest"
        The learner whose effects and intervals drive the policies (fitted
        with inference).
    evaluation_share : float, default=0.5
        Share of customers held out to validate learners and evaluate policies.
    top_k : float, default=0.2
        Budget share of the top-k rule.
    risk_aversion : float, default=0.3
        lambda of the risk-adjusted rule.
    propensity_model : {"gbm", "logistic"}, default="gbm"
    n_estimators : int, default=200
    n_bootstrap : int, default=200
        Bootstrap replicates of the rank metrics (and the policy learner's
        intervals when they come from the bootstrap).
    n_folds : int, default=5
    refutation_rows : int, default=5000
        The placebo and stability refits use at most this many training rows.
    random_state : int, default=0

    Returns
    -------
    SingleAnalysis
    """
    learners = list(learners)
    for name in learners:
        check_in("learners", name, LEARNERS, "analyze_experiment")
    check_in("policy_learner", policy_learner, LEARNERS, "analyze_experiment")
    if policy_learner not in learners:
        learners.append(policy_learner)
    if (cost is None) != (margin is None):
        raise ModelError("Give both cost and margin (or neither): profit = margin x effect - cost.")
    if cost is not None:
        breakeven_effect(cost, margin)
    rs = seed_int(random_state)
    data = prepare_single(frame, treatment, outcome, covariates, control=control,
                          propensity=propensity)
    if segment is not None and segment not in frame.columns:
        raise ModelError(f"The segment column {segment!r} is not in the data.")
    arms = data.arm_names()
    k = data.n_arms
    x, y, w = data.covariates, data.outcome, data.treatment
    e_all, known = _arm_propensity(data, randomized, propensity_model, n_folds, rs)

    # -- positivity and ATE, one treated arm versus control at a time ---------
    positivity, ate, trimming, manski, evals = {}, {}, {}, {}, {}
    for j in range(1, k + 1):
        rows = (w == 0) | (w == j)
        wj = (w[rows] == j).astype(int)
        e_known = e_all[rows, j] / (e_all[rows, 0] + e_all[rows, j]) if known else None
        pos = positivity_diagnostics(x[rows], wj, e_known, covariate_names=data.covariate_names,
                                     model=propensity_model, n_folds=n_folds, random_state=rs)
        res = estimate_ate(y[rows], wj, x[rows], pos.propensity, n_folds=n_folds,
                           random_state=rs)
        positivity[arms[j]] = pos
        ate[arms[j]] = res
        trimming[arms[j]] = trimming_sweep(y[rows], wj, pos.propensity, mu0=res.mu0, mu1=res.mu1)
        manski[arms[j]] = manski_bounds(y[rows], wj)
        a = res["aipw"]
        sd_y = float(np.std(y[rows], ddof=1)) or 1.0
        evals[arms[j]] = e_value(a["estimate"], a["lo"], a["hi"], outcome_sd=sd_y)
    main_j = 1 + int(np.argmax([ate[arms[j]]["aipw"]["estimate"] for j in range(1, k + 1)]))
    main_arm = arms[main_j]

    # -- train / evaluation split --------------------------------------------
    idx = np.arange(data.n)
    train, evl = train_test_split(idx, test_size=evaluation_share, random_state=rs, stratify=w)
    train, evl = np.sort(train), np.sort(evl)
    xt, yt, wt = x[train], y[train], w[train]
    xe, ye, we = x[evl], y[evl], w[evl]
    ee = e_all[evl]
    # outcome models fitted on the training split only -> evaluation scores are out of sample
    reg = make_regressor("lightgbm", rs, n_estimators=n_estimators)
    mu_e = np.zeros((evl.size, k + 1))
    for arm in range(k + 1):
        r = wt == arm
        mu_e[:, arm] = clone(reg).fit(xt[r], yt[r]).predict(xe)
    scores_e = effect_scores(ye, we, ee if k > 1 else ee[:, 1], mu=mu_e, method="aipw")
    m_e = np.sum(ee * mu_e, axis=1)

    # -- CATE learners: fit on train, evaluate on the held-out split ---------
    fitted, effects = {}, {}
    cate, summary_rows, sel_rows = {}, [], []
    sel_rows.append({"learner": "zero_effect",
                     "r_loss": r_loss(ye, we, np.zeros((evl.size, k)), m_e,
                                      ee if k > 1 else ee[:, 1])})
    for name in learners:
        cl = CateLearner(name, n_estimators=n_estimators, inference=(name == policy_learner),
                         n_bootstrap=max(20, min(n_bootstrap, 100)), random_state=rs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cl.fit(yt, wt, xt)
        tau = cl.effect(xe).reshape(evl.size, k)
        fitted[name], effects[name] = cl, tau
        sel_rows.append({"learner": name,
                         "r_loss": r_loss(ye, we, tau, m_e, ee if k > 1 else ee[:, 1])})
        per_arm = {}
        for j in range(1, k + 1):
            rows = (we == 0) | (we == j)
            wj = (we[rows] == j).astype(int)
            ej = ee[rows, j] / (ee[rows, 0] + ee[rows, j])
            v = validate_cate(ye[rows], wj, ej, tau[rows, j - 1], mu0=mu_e[rows, 0],
                              mu1=mu_e[rows, j], n_bootstrap=n_bootstrap, random_state=rs)
            per_arm[arms[j]] = v
            summary_rows.append({
                "learner": name, "arm": arms[j], "mean_effect": float(tau[:, j - 1].mean()),
                "sd_effect": float(tau[:, j - 1].std()),
                "share_positive": float(np.mean(tau[:, j - 1] > 0)),
                "autoc": v.autoc.estimate, "autoc_se": v.autoc.std_err,
                "qini": v.qini.estimate, "blp_slope": v.blp.slope,
                "blp_slope_se": v.blp.slope_std_err, "blp_p_value": v.blp.slope_p_value,
                "auuc": float(getattr(v.auuc, "estimate", np.nan)),
            })
        entry = per_arm[main_arm].to_dict()
        entry["arm"] = main_arm
        if k > 1:
            entry["arms"] = {a: v.to_dict() for a, v in per_arm.items()}
        cate[name] = entry
    selection = pd.DataFrame(sel_rows).sort_values("r_loss", kind="stable").reset_index(drop=True)
    best = next(r for r in selection["learner"] if r != "zero_effect")

    # -- refutation and calibration of the policy learner --------------------
    pl = fitted[policy_learner]
    sub = train if train.size <= refutation_rows else np.sort(
        np.random.default_rng(rs).choice(train, refutation_rows, replace=False))
    base = pl.clone(inference=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        placebo = placebo_refutation(base, y[sub], w[sub], x[sub], random_state=rs)
        stability = subset_stability(base, y[sub], w[sub], x[sub], random_state=rs)
    tau_pl = effects[policy_learner]
    calibration = calibration_by_quantile(tau_pl[:, main_j - 1], scores_e[:, main_j - 1])
    toc = rank_metric(scores_e[:, main_j - 1], tau_pl[:, main_j - 1], kind="autoc",
                      n_bootstrap=n_bootstrap, random_state=rs)

    # -- policies --------------------------------------------------------------
    policies, curve, grid, tree_rules = {}, None, None, {}
    if cost is not None:
        lo_pl, _ = pl.effect_interval(xe)
        lo_pl = np.asarray(lo_pl).reshape(evl.size, k)
        net_ate = np.array([margin * ate[arms[j]]["aipw"]["estimate"] - cost
                            for j in range(1, k + 1)])
        assign = {
            "treat_all": np.full(evl.size, 1 + int(np.argmax(net_ate))),
            "positive_effect": best_arm_rule(tau_pl, 0.0, 1.0),
            "breakeven": best_arm_rule(tau_pl, cost, margin),
            "conservative": best_arm_rule(lo_pl, cost, margin),
            "risk_adjusted": best_arm_rule(tau_pl, cost, margin, lower=lo_pl,
                                           risk_aversion=risk_aversion),
        }
        net = margin * tau_pl - cost
        best_arm = np.argmax(net, axis=1) + 1
        m = int(round(top_k * evl.size))
        top = np.zeros(evl.size, dtype=int)
        order = np.argsort(-net.max(axis=1), kind="stable")[:m]
        top[order] = best_arm[order]
        assign["top_k"] = top
        # policy trees: trained on the training split (cross-fitted AIPW scores there)
        et = e_all[train]
        mu_t = cross_fit_outcome(xt, yt, wt, reg, n_folds=3, random_state=rs)
        scores_t = effect_scores(yt, wt, et if k > 1 else et[:, 1], mu=mu_t, method="aipw")
        leaf = max(20, train.size // 50)
        arm_names = [str(a) for a in arms]
        for rule, method in (("policy_tree", "policy_tree"), ("dr_policy_tree", "dr_policy_tree")):
            tree = ProfitPolicyTree(method, max_depth=2, min_samples_leaf=leaf, random_state=rs)
            tree.fit(xt, cost=cost, margin=margin, scores=scores_t, outcome=yt, treatment=wt,
                     feature_names=data.covariate_names, arm_names=arm_names)
            assign[rule] = tree.predict(xe)
            tree_rules[rule] = tree.rules_
        for rule in POLICY_RULES:
            policies[rule] = evaluate_policy(scores_e, assign[rule], cost=cost, margin=margin,
                                             rule=rule)
        curve = profit_curve(scores_e, tau_pl, cost=cost, margin=margin)
        factors = np.array([0.75, 1.0, 1.25])
        grid = sensitivity_grid(scores_e, tau_pl, costs=cost * factors, margins=margin * factors)

    # -- segments --------------------------------------------------------------
    if segment is not None:
        seg = frame[segment].to_numpy()[evl]
        seg_col = segment
    else:
        q = pd.qcut(pd.Series(tau_pl[:, main_j - 1]).rank(method="first"), 5,
                    labels=[f"effect quintile {i}" for i in range(1, 6)])
        seg = q.astype(str).to_numpy()
        seg_col = f"quintile of the estimated effect ({policy_learner})"
    segs = segment_summary(seg, scores_e, tau_pl, cost=cost or 0.0, margin=margin or 1.0,
                           arm_names=arms[1:])

    return SingleAnalysis(
        data=data, arms=arms, main_arm=main_arm, randomized=bool(known),
        positivity=positivity, ate=ate, trimming=trimming, manski=manski, e_values=evals,
        cate=cate, cate_summary=pd.DataFrame(summary_rows), selection=selection,
        best_learner=best, policy_learner=policy_learner,
        refutation={"placebo": placebo, "subset_stability": stability},
        calibration=calibration, toc=toc, n_train=int(train.size), n_evaluation=int(evl.size),
        cost=cost, margin=margin, policies=policies, curve=curve, sensitivity=grid,
        segments=segs, segment_column=seg_col, tree_rules=tree_rules,
        settings={"learners": learners, "evaluation_share": evaluation_share, "top_k": top_k,
                  "risk_aversion": risk_aversion, "propensity_model": propensity_model,
                  "n_estimators": n_estimators, "n_bootstrap": n_bootstrap,
                  "random_state": rs},
    )
