"""The whole single-experiment analysis in one call (``manylift analyze``).

Positivity and balance -> ATE by six estimators (per arm) with a trimming
sweep, Manski bounds and the E-value -> CATE learners fitted on a training
split and validated on the held-out evaluation split (BLP, AUTOC, Qini, AUUC,
R-loss, calibration; placebo and subset-stability refutation of the policy
learner) -> cost-aware policies evaluated out of sample by AIPW profit, ROI
and share targeted -> profit curve, cost x margin grid, segment summaries ->
per-unit effects, AIPW scores and decisions for every input row (``units``).

A validation step that cannot be computed (a BLP slope when a learner's
estimate does not vary, a refit that fails on a tiny sample) is skipped with
its reason in ``skipped`` and the results, never fatal.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from manylift._core.checks import check_in, check_positive_int
from manylift._core.errors import ManyliftError, ModelError
from manylift._core.rng import seed_int
from manylift.evaluation import aipw_scores, rank_metric
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
from manylift.single._models import cross_fit_outcome, make_regressor
from manylift.single.ate import (
    e_value,
    estimate_ate,
    manski_bounds,
    trimming_sweep,
)
from manylift.single.data import SingleData, plain
from manylift.single.learners import LEARNERS, CateLearner, r_loss
from manylift.single.positivity import estimate_propensity, positivity_diagnostics
from manylift.single.progress import as_progress
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
_ANALYTIC_INTERVALS = ("linear_dml", "causal_forest")
_SKIPPABLE = (ManyliftError, ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class SingleAnalysis:
    """Everything ``manylift analyze`` computes; :meth:`to_dict` is its results.json.

    Besides the summaries: ``units`` (one row per input row: effects of every
    learner, intervals, AIPW scores, the decision of every policy rule),
    ``skipped`` (validation steps that could not be computed, with the reason)
    and :meth:`effect` / :meth:`effect_interval` for new covariate rows (EconML
    naming).
    """

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
    skipped: list = field(default_factory=list)
    units: pd.DataFrame | None = field(default=None, repr=False)
    learners: dict = field(default_factory=dict, repr=False)

    @property
    def treated_arms(self) -> list:
        return self.arms[1:]

    # -- effects of new rows (EconML's vocabulary) -------------------------------
    def _learner(self, learner):
        name = self.best_learner if learner is None else learner
        if name not in self.learners:
            raise ModelError(f"No fitted learner {name!r}; the analysis fitted "
                             f"{sorted(self.learners)}.")
        return name, self.learners[name]

    def _rows(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            return self.data.transform(X)
        x = np.asarray(X, dtype=float)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != len(self.data.covariate_names):
            raise ModelError(
                f"X must be a DataFrame with the covariate columns {self.data.covariate_columns} "
                f"or an array with the {len(self.data.covariate_names)} encoded columns "
                f"{self.data.covariate_names}; got shape {x.shape}.")
        return x

    def effect(self, X, learner: str | None = None) -> np.ndarray:
        """Estimated effect of each treated arm versus control for new rows.

        Parameters
        ----------
        X : pandas.DataFrame or array
            New rows: a DataFrame with the covariate columns as named in the
            analysis (text columns are encoded as they were), or an array of the
            encoded columns (``data.covariate_names``).
        learner : str, default=None
            One of the fitted learners (default: the best by R-loss,
            ``best_learner``).  Learners are fitted on the training split.

        Returns
        -------
        ndarray of shape (n,) for one treated arm, (n, K) for K arms, in outcome
        units (treated minus control).
        """
        _, cl = self._learner(learner)
        return cl.effect(self._rows(X))

    def effect_interval(self, X, alpha: float = 0.05, learner: str | None = None):
        """Pointwise ``1 - alpha`` interval of :meth:`effect` (lower, upper), where the
        learner gives one (the policy learner, and ``linear_dml`` / ``causal_forest``)."""
        name, cl = self._learner(learner)
        if not cl.inference:
            have = sorted(k for k, v in self.learners.items() if v.inference)
            raise ModelError(f"The learner {name!r} was fitted without intervals; learners with "
                             f"intervals: {have}. Pass learner=... .")
        return cl.effect_interval(self._rows(X), alpha=alpha)

    # -- tables ------------------------------------------------------------------
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
        """The results.json content (keys in ``docs/single.md``)."""
        out: dict = {
            "schema_version": 1,
            "command": "analyze",
            "data": {
                "rows": self.data.n, "covariates": list(self.data.covariate_names),
                "covariate_columns": self.data.covariate_columns,
                "covariates_source": self.data.covariates_source,
                "arms": [str(a) for a in self.arms], "control": str(self.arms[0]),
                "arm_counts": {str(a): int(c) for a, c in zip(self.arms, self.data.arm_counts())},
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
            "validation": {"skipped": list(self.skipped)},
            "main_arm": self.main_arm,
            "settings": dict(self.settings),
        }
        if self.data.balance is not None:
            out["balance"] = self.data.balance.to_dict("records")
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

    def summary_lines(self) -> list[str]:
        """The headline in words, for the terminal (policy trees as indented rules)."""
        a = self.ate[self.main_arm]["aipw"]
        lines = [f"average effect of {self.main_arm} vs {self.arms[0]} (AIPW): "
                 f"{a['estimate']:.4g} (95% interval {a['lo']:.4g} to {a['hi']:.4g}) in outcome "
                 f"units per customer",
                 f"best CATE learner by R-loss: {self.best_learner}; policies use "
                 f"{self.policy_learner}"]
        if self.policies:
            best = max(self.policies.values(), key=lambda p: p.profit)
            lo, hi = best.profit_interval
            lines.append(f"most profitable rule out of sample: {best.rule}, {best.profit:.4g} per "
                         f"customer (95% interval {lo:.4g} to {hi:.4g}), targeting "
                         f"{best.share_targeted:.0%}")
        for rule, text in self.tree_rules.items():
            lines.append(f"{rule} (depth {self.settings.get('tree_depth')}):")
            lines += ["    " + line for line in text.splitlines()]
        for s in self.skipped:
            lines.append(f"skipped: {s['step']}: {s['reason']}")
        return lines

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


class _Skips:
    """Runs steps that may fail on small or degenerate data; records why they were skipped."""

    def __init__(self, prog):
        self.items: list[dict] = []
        self.prog = prog

    def run(self, step: str, fn):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn()
        except _SKIPPABLE as exc:
            reason = str(exc) if isinstance(exc, ManyliftError) else f"{type(exc).__name__}: {exc}"
            self.add(step, reason)
            return None

    def add(self, step: str, reason: str) -> None:
        self.items.append({"step": step, "reason": reason})
        self.prog.stage(f"skipped {step}: {reason}")


def _rules(tau, lo, x, trees, treat_all_arm, cost, margin, top_k, risk_aversion) -> dict:
    """The arm (0 = control) every rule assigns to the rows with effects ``tau``."""
    n = tau.shape[0]
    assign = {"treat_all": np.full(n, treat_all_arm, dtype=int),
              "positive_effect": best_arm_rule(tau, 0.0, 1.0),
              "breakeven": best_arm_rule(tau, cost, margin)}
    if lo is not None:
        assign["conservative"] = best_arm_rule(lo, cost, margin)
        assign["risk_adjusted"] = best_arm_rule(tau, cost, margin, lower=lo,
                                                risk_aversion=risk_aversion)
    net = margin * tau - cost
    best_arm = np.argmax(net, axis=1) + 1
    m = int(round(top_k * n))
    top = np.zeros(n, dtype=int)
    order = np.argsort(-net.max(axis=1), kind="stable")[:m]
    top[order] = best_arm[order]
    assign["top_k"] = top
    for rule, tree in trees.items():
        assign[rule] = tree.predict(x)
    return {r: assign[r] for r in POLICY_RULES if r in assign}


def analyze_experiment(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates=None,
    *,
    control=None,
    propensity: str | None = None,
    randomized: bool | None = None,
    cost: float | None = None,
    margin: float | None = None,
    segment: str | None = None,
    learners=DEFAULT_LEARNERS,
    policy_learner: str = "causal_forest",
    evaluation_share: float = 0.5,
    top_k: float = 0.2,
    risk_aversion: float = 0.3,
    tree_depth: int = 2,
    propensity_model: str = "gbm",
    n_estimators: int = 200,
    n_bootstrap: int = 200,
    n_folds: int = 5,
    refutation_rows: int = 5000,
    allow_imbalanced=(),
    allow_duplicates: bool | None = None,
    id: str | None = None,  # noqa: A002 - the column's role, as on the command line
    random_state=0,
    progress=False,
) -> SingleAnalysis:
    """Analyse one experiment (or observational targeting data) end to end.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per customer (through :meth:`manylift.single.SingleData.from_frame`).
    treatment, outcome : str
        Column names; the treatment holds 0/1 or arm labels.
    covariates : list of str, "auto" or None, default=None
        Pre-treatment columns (required: the learners model who responds).
        ``None``: the pre-treatment columns a built-in dataset declares;
        ``"auto"``: every other numeric column (opt-in).
    control : scalar, default=None
        The control value (default 0, or the only label that reads like a control).
    propensity : str, default=None
        Column with the known P(treated) (binary data).
    randomized : bool, default=None
        True for a randomized experiment: the arm shares are the known
        propensities, the propensity model's AUC is a randomization check, and
        covariates that differ between arms are refused (balance check).  None:
        what the dataset declares, else False (observational data: propensities
        are estimated and no balance is required).
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
    tree_depth : int, default=2
        Depth of the policy trees.
    propensity_model : {"gbm", "logistic"}, default="gbm"
    n_estimators : int, default=200
    n_bootstrap : int, default=200
        Bootstrap replicates of the rank metrics (and the policy learner's
        intervals when they come from the bootstrap).
    n_folds : int, default=5
    refutation_rows : int, default=5000
        The placebo and stability refits use at most this many training rows.
    allow_imbalanced : iterable of str, default=()
        Covariates kept although the balance check flags them.
    allow_duplicates : bool, default=None
        Keep rows equal in every column (refused by default, unless the dataset
        declares that rows may repeat).
    id : str, default=None
        Column identifying rows in ``units`` (default: the row position).
    random_state : int, default=0
    progress : bool, default=False
        Stage lines and progress bars on standard error.

    Returns
    -------
    SingleAnalysis
    """
    prog = as_progress(progress, "analyze")
    learners = list(learners)
    for name in learners:
        check_in("learners", name, LEARNERS, "analyze_experiment")
    check_in("policy_learner", policy_learner, LEARNERS, "analyze_experiment")
    check_positive_int("tree_depth", tree_depth, "analyze_experiment")
    if policy_learner not in learners:
        learners.append(policy_learner)
    if (cost is None) != (margin is None):
        raise ModelError("Give both cost and margin (or neither): profit = margin x effect - cost.")
    if cost is not None:
        breakeven_effect(cost, margin)
    rs = seed_int(random_state)
    data = SingleData.from_frame(
        frame, treatment, outcome, covariates, control=control, segment=segment,
        propensity=propensity, id=id, randomized=randomized, allow_imbalanced=allow_imbalanced,
        allow_duplicates=allow_duplicates, require_covariates=True, where="analyze",
    )
    arms = data.arm_names()
    k = data.n_arms
    x, y, w = data.covariates, data.outcome, data.treatment
    e_all, known = _arm_propensity(data, data.randomized, propensity_model, n_folds, rs)
    skips = _Skips(prog)

    # -- positivity and ATE, one treated arm versus control at a time ---------
    positivity, ate, trimming, manski, evals = {}, {}, {}, {}, {}
    aipw_all = np.full((data.n, k), np.nan)
    for j in range(1, k + 1):
        prog.stage(f"positivity and ATE of {arms[j]} vs {arms[0]}: cross-fitting the propensity "
                   f"and outcome models ({n_folds} folds) and DML")
        rows = (w == 0) | (w == j)
        wj = (w[rows] == j).astype(int)
        e_known = e_all[rows, j] / (e_all[rows, 0] + e_all[rows, j]) if known else None
        pos = positivity_diagnostics(x[rows], wj, e_known, covariate_names=data.covariate_names,
                                     model=propensity_model, n_folds=n_folds, random_state=rs)
        res = estimate_ate(y[rows], wj, x[rows], pos.propensity, n_folds=n_folds,
                           random_state=rs)
        positivity[arms[j]] = pos
        ate[arms[j]] = res
        aipw_all[rows, j - 1] = aipw_scores(y[rows], wj, pos.propensity, res.mu0, res.mu1)
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
    prog.stage(f"CATE learners {', '.join(learners)}: fitting on {train.size:,} rows, validating "
               f"on {evl.size:,} held-out rows (BLP, AUTOC, Qini with {n_bootstrap} bootstraps)")
    for name in prog.bar(learners, desc="CATE learners", unit="learner"):
        inference = name == policy_learner or name in _ANALYTIC_INTERVALS
        cl = CateLearner(name, n_estimators=n_estimators, inference=inference,
                         n_bootstrap=max(20, min(n_bootstrap, 100)), random_state=rs)
        if skips.run(f"CATE learner {name}", lambda cl=cl: cl.fit(yt, wt, xt)) is None:
            continue
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
            for metric, reason in v.skipped.items():
                skips.add(f"{metric} of {name}" + (f" ({arms[j]})" if k > 1 else ""), reason)
            per_arm[arms[j]] = v
            d = v.to_dict()
            summary_rows.append({
                "learner": name, "arm": arms[j], "mean_effect": float(tau[:, j - 1].mean()),
                "sd_effect": float(tau[:, j - 1].std()),
                "share_positive": float(np.mean(tau[:, j - 1] > 0)),
                "autoc": d["autoc"]["estimate"], "autoc_se": d["autoc"]["se"],
                "qini": d["qini"]["estimate"], "blp_slope": d["blp_slope"]["estimate"],
                "blp_slope_se": d["blp_slope"]["se"],
                "blp_p_value": getattr(v.blp, "slope_p_value", None),
                "auuc": d.get("auuc", {}).get("estimate"),
            })
        entry = per_arm[main_arm].to_dict()
        entry["arm"] = main_arm
        if k > 1:
            entry["arms"] = {a: v.to_dict() for a, v in per_arm.items()}
        cate[name] = entry
    if policy_learner not in fitted:
        raise ModelError(
            f"The policy learner {policy_learner!r} could not be fitted ("
            f"{next(s['reason'] for s in skips.items if s['step'].endswith(policy_learner))}). "
            f"Choose another with --policy-learner (policy_learner=...), e.g. 't' or "
            f"'linear_dml'.")
    selection = pd.DataFrame(sel_rows).sort_values("r_loss", kind="stable").reset_index(drop=True)
    best = next(r for r in selection["learner"] if r != "zero_effect")

    # -- refutation and calibration of the policy learner --------------------
    pl = fitted[policy_learner]
    sub = train if train.size <= refutation_rows else np.sort(
        np.random.default_rng(rs).choice(train, refutation_rows, replace=False))
    base = pl.clone(inference=False)
    prog.stage(f"refutation of {policy_learner}: placebo treatment and subset stability on "
               f"{sub.size:,} rows")
    refutation = {}
    placebo = skips.run("placebo refutation", lambda: placebo_refutation(
        base, y[sub], w[sub], x[sub], random_state=rs))
    stability = skips.run("subset stability", lambda: subset_stability(
        base, y[sub], w[sub], x[sub], random_state=rs))
    if placebo is not None:
        refutation["placebo"] = placebo
    if stability is not None:
        refutation["subset_stability"] = stability
    tau_pl = effects[policy_learner]
    calibration = skips.run("calibration", lambda: calibration_by_quantile(
        tau_pl[:, main_j - 1], scores_e[:, main_j - 1]))
    toc = skips.run("TOC curve", lambda: rank_metric(
        scores_e[:, main_j - 1], tau_pl[:, main_j - 1], kind="autoc", n_bootstrap=n_bootstrap,
        random_state=rs))

    # -- effects and intervals of every row (training rows in sample) ------------
    prog.stage(f"per-unit effects of {len(fitted)} learner(s) for all {data.n:,} rows")
    tau_all = {name: cl.effect(x).reshape(data.n, k) for name, cl in fitted.items()}
    lo_all = {}
    for name, cl in fitted.items():
        if cl.inference:
            iv = skips.run(f"intervals of {name}", lambda cl=cl: cl.effect_interval(x))
            if iv is not None:
                lo_all[name] = (np.asarray(iv[0]).reshape(data.n, k),
                                np.asarray(iv[1]).reshape(data.n, k))

    # -- policies --------------------------------------------------------------
    policies, curve, grid, tree_rules, trees = {}, None, None, {}, {}
    assign_all = {}
    if cost is not None:
        prog.stage(f"policies at cost {cost:g} and margin {margin:g}: rules on the evaluation "
                   f"rows, policy trees of depth {tree_depth} trained on the training rows")
        lo_pl = lo_all[policy_learner][0] if policy_learner in lo_all else None
        if lo_pl is None:
            skips.add("conservative and risk_adjusted rules",
                      f"the policy learner {policy_learner!r} gave no intervals")
        net_ate = np.array([margin * ate[arms[j]]["aipw"]["estimate"] - cost
                            for j in range(1, k + 1)])
        treat_all_arm = 1 + int(np.argmax(net_ate))
        # policy trees: trained on the training split (cross-fitted AIPW scores there)
        et = e_all[train]
        mu_t = cross_fit_outcome(xt, yt, wt, reg, n_folds=3, random_state=rs)
        scores_t = effect_scores(yt, wt, et if k > 1 else et[:, 1], mu=mu_t, method="aipw")
        leaf = max(20, train.size // 50)
        for rule in ("policy_tree", "dr_policy_tree"):
            tree = ProfitPolicyTree(rule, max_depth=tree_depth, min_samples_leaf=leaf,
                                    random_state=rs)
            done = skips.run(rule, lambda tree=tree: tree.fit(
                yt, wt, xt, cost=cost, margin=margin, scores=scores_t,
                feature_names=data.covariate_names, arm_names=arms))
            if done is not None:
                trees[rule] = tree
                tree_rules[rule] = tree.rules_
        assign = _rules(tau_pl, lo_pl[evl] if lo_pl is not None else None, xe, trees,
                        treat_all_arm, cost, margin, top_k, risk_aversion)
        for rule, a in assign.items():
            policies[rule] = evaluate_policy(scores_e, a, cost=cost, margin=margin, rule=rule)
        assign_all = _rules(tau_all[policy_learner], lo_pl, x, trees, treat_all_arm, cost,
                            margin, top_k, risk_aversion)
        curve = profit_curve(scores_e, tau_pl, cost=cost, margin=margin)
        factors = np.array([0.75, 1.0, 1.25])
        grid = sensitivity_grid(scores_e, tau_pl, costs=cost * factors, margins=margin * factors)

    # -- segments --------------------------------------------------------------
    if segment is not None:
        seg = data.segment[evl]
        seg_col = segment
    else:
        q = pd.qcut(pd.Series(tau_pl[:, main_j - 1]).rank(method="first"), 5,
                    labels=[f"effect quintile {i}" for i in range(1, 6)])
        seg = q.astype(str).to_numpy()
        seg_col = f"quintile of the estimated effect ({policy_learner})"
    segs = segment_summary(seg, scores_e, tau_pl, cost=cost or 0.0, margin=margin or 1.0,
                           arm_names=arms[1:])

    units = _units(data, arms, train, best, tau_all, lo_all, aipw_all, assign_all)
    return SingleAnalysis(
        data=data, arms=arms, main_arm=main_arm, randomized=bool(known),
        positivity=positivity, ate=ate, trimming=trimming, manski=manski, e_values=evals,
        cate=cate, cate_summary=pd.DataFrame(summary_rows), selection=selection,
        best_learner=best, policy_learner=policy_learner,
        refutation=refutation, calibration=calibration, toc=toc,
        n_train=int(train.size), n_evaluation=int(evl.size),
        cost=cost, margin=margin, policies=policies, curve=curve, sensitivity=grid,
        segments=segs, segment_column=seg_col, tree_rules=tree_rules,
        settings={"learners": learners, "evaluation_share": evaluation_share, "top_k": top_k,
                  "risk_aversion": risk_aversion, "tree_depth": tree_depth,
                  "propensity_model": propensity_model, "n_estimators": n_estimators,
                  "n_bootstrap": n_bootstrap, "random_state": rs},
        skipped=skips.items, units=units, learners=fitted,
    )


def _units(data: SingleData, arms, train, best, tau_all, lo_all, aipw_all, assign_all):
    """One row per input row: effects, intervals, AIPW scores, decisions (the per-unit export)."""
    k = len(arms) - 1
    labels = np.asarray([str(plain(a)) for a in arms], dtype=object)
    split = np.full(data.n, "evaluation", dtype=object)
    split[train] = "train"
    out = {"row_id": data.row_ids, "split": split, "arm": labels[data.treatment]}

    def put(prefix, values):
        for j in range(k):
            out[prefix if k == 1 else f"{prefix}_{arms[j + 1]}"] = values[:, j]

    put("cate", tau_all[best])
    if best in lo_all:
        put("cate_lo", lo_all[best][0])
        put("cate_hi", lo_all[best][1])
    for name, tau in tau_all.items():
        put(f"cate_{name}", tau)
        if name in lo_all:
            put(f"cate_{name}_lo", lo_all[name][0])
            put(f"cate_{name}_hi", lo_all[name][1])
    put("aipw", aipw_all)
    for rule, a in assign_all.items():
        out[f"decision_{rule}"] = labels[a]
    frame = pd.DataFrame(out)
    for c in ("split", "arm", *[c for c in frame.columns if c.startswith("decision_")]):
        frame[c] = frame[c].astype(str)
    return frame
