"""Conditional average treatment effect (CATE) learners behind one interface.

:class:`CateLearner` wraps EconML's estimators (we do not re-write them) with
manylift's conventions: ``fit(outcome, treatment, covariates)`` returns the
learner, ``effect(covariates)`` gives the effect of each arm versus control on
the natural scale, ``effect_interval(covariates, alpha)`` its pointwise
interval.  Treatment codes are 0 (control) and 1..K (arms); with K > 1 the
effects have one column per arm.

Methods
-------
``s``              S-learner (one outcome model with the arm as a feature).
``t``              T-learner (one outcome model per arm).
``x``              X-learner (Kunzel et al. 2019).
``dr``             DR-learner (Kennedy 2023), final model = the regressor.
``linear_dml``     EconML LinearDML (effect linear in the covariates).
``nonparam_dml``   EconML NonParamDML (final model = the regressor; binary
                   only in EconML, so fitted per arm against control).
``causal_forest``  EconML CausalForestDML (generalized random forest).

Intervals are analytic where EconML has them (``linear_dml``,
``causal_forest``) and otherwise from EconML's bootstrap with
``n_bootstrap`` refits.

Also here: :func:`cross_fit_effects` (out-of-sample effects for every row,
each from a learner not trained on it) and :func:`select_learner` (model
selection by the R-loss on a validation split).  Optuna tuning is not
available (optuna is not installed with manylift).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from manylift._core.checks import as_1d_float, check_in, check_positive_int
from manylift._core.errors import DataError, ModelError
from manylift._core.rng import seed_int
from manylift.single._models import (
    cross_fit_outcome,
    cross_fit_proba,
    make_classifier,
    make_regressor,
)
from manylift.single.positivity import _covariate_matrix

__all__ = [
    "LEARNERS",
    "CateLearner",
    "LearnerSelection",
    "cross_fit_effects",
    "r_loss",
    "select_learner",
]

LEARNERS = ("s", "t", "x", "dr", "linear_dml", "nonparam_dml", "causal_forest")
_ANALYTIC = ("linear_dml", "causal_forest")


def _treatment_codes(treatment, n=None) -> np.ndarray:
    w = as_1d_float("treatment", treatment, n=n)
    if np.any(w != np.round(w)) or w.min() < 0:
        raise DataError(
            "'treatment' must hold integer arm codes 0 (control), 1, ..., K; got values such as "
            f"{np.unique(w)[:5].tolist()}. Use manylift.single.SingleData.from_frame to encode labels."
        )
    codes = w.astype(int)
    counts = np.bincount(codes)
    empty = np.flatnonzero(counts < 2)
    if codes.max() < 1 or empty.size:
        raise DataError(
            f"Every arm code 0..{codes.max()} needs at least 2 rows; arm(s) {empty.tolist()} "
            f"have fewer. Recode the arms consecutively."
        )
    return codes


class CateLearner:
    """One CATE learner (EconML underneath) with manylift's interface.

    Parameters
    ----------
    method : str, default="causal_forest"
        One of ``s, t, x, dr, linear_dml, nonparam_dml, causal_forest``.
    model : {"lightgbm", "linear"} or scikit-learn regressor, default="lightgbm"
        Outcome / final-stage regressor.
    propensity_model : {"gbm", "logistic"} or classifier, default="gbm"
    n_estimators : int, default=200
        Trees of the LightGBM nuisance models and of the causal forest.
    n_folds : int, default=3
        Cross-fitting folds of the DML / DR learners.
    inference : bool, default=True
        Prepare pointwise intervals (bootstrap for learners without analytic ones).
    n_bootstrap : int, default=50
        Bootstrap refits for the intervals of s, t, x, dr, nonparam_dml.
    min_samples_leaf : int, default=10
        Causal forest leaf size.
    random_state : int, default=0

    Attributes
    ----------
    estimators_ : list
        The fitted EconML estimator(s) (one per arm for ``nonparam_dml`` with K > 1).
    n_arms_ : int
        Number of treated arms K.

    References
    ----------
    Kunzel, S. R., Sekhon, J. S., Bickel, P. J., & Yu, B. (2019). Metalearners for
    estimating heterogeneous treatment effects using machine learning. PNAS, 116(10).
    Kennedy, E. H. (2023). Towards optimal doubly robust estimation of
    heterogeneous causal effects. Electronic Journal of Statistics, 17(2).
    Nie, X., & Wager, S. (2021). Quasi-oracle estimation of heterogeneous
    treatment effects. Biometrika, 108(2), 299-319.
    Athey, S., Tibshirani, J., & Wager, S. (2019). Generalized random forests.
    Annals of Statistics, 47(2), 1148-1178.
    Battocchi, K., et al. (2019). EconML: A Python package for ML-based
    heterogeneous treatment effects estimation.

    Examples
    --------
    >>> from manylift.simulate.single import simulate_experiment
    >>> sim = simulate_experiment(1000, random_state=0)
    >>> x = sim.frame[sim.covariates].to_numpy()
    >>> cl = CateLearner("linear_dml", n_estimators=50).fit(
    ...     sim.frame["outcome"], sim.frame["treatment"], x)
    >>> tau = cl.effect(x)
    >>> float(np.corrcoef(tau, sim.tau[:, 0])[0, 1]) > 0.8
    True
    """

    def __init__(self, method: str = "causal_forest", *, model="lightgbm",
                 propensity_model="gbm", n_estimators: int = 200, n_folds: int = 3,
                 inference: bool = True, n_bootstrap: int = 50, min_samples_leaf: int = 10,
                 random_state=0):
        self.method = method
        self.model = model
        self.propensity_model = propensity_model
        self.n_estimators = n_estimators
        self.n_folds = n_folds
        self.inference = inference
        self.n_bootstrap = n_bootstrap
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    # scikit-learn-style parameter access (so that clone-like copies are easy)
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "method", "model", "propensity_model", "n_estimators", "n_folds", "inference",
            "n_bootstrap", "min_samples_leaf", "random_state")}

    def clone(self, **overrides) -> CateLearner:
        params = self.get_params()
        params.update(overrides)
        method = params.pop("method")
        return CateLearner(method, **params)

    def __repr__(self) -> str:
        return f"CateLearner(method={self.method!r}, model={self._model_name()!r})"

    def _model_name(self) -> str:
        return self.model if isinstance(self.model, str) else type(self.model).__name__

    def _build(self):
        from econml.dml import CausalForestDML, LinearDML, NonParamDML
        from econml.dr import DRLearner
        from econml.metalearners import SLearner, TLearner, XLearner

        rs = seed_int(self.random_state)

        def reg():
            return make_regressor(self.model, random_state=rs, n_estimators=self.n_estimators)

        def clf():
            return make_classifier(self.propensity_model, random_state=rs,
                                   n_estimators=self.n_estimators)

        m = self.method
        if m == "s":
            return SLearner(overall_model=reg())
        if m == "t":
            return TLearner(models=reg())
        if m == "x":
            return XLearner(models=reg(), propensity_model=clf())
        if m == "dr":
            return DRLearner(model_propensity=clf(), model_regression=reg(), model_final=reg(),
                             cv=self.n_folds, random_state=rs)
        if m == "linear_dml":
            return LinearDML(model_y=reg(), model_t=clf(), discrete_treatment=True,
                             cv=self.n_folds, random_state=rs)
        if m == "nonparam_dml":
            return NonParamDML(model_y=reg(), model_t=clf(), model_final=reg(),
                               discrete_treatment=True, cv=self.n_folds, random_state=rs)
        return CausalForestDML(model_y=reg(), model_t=clf(), discrete_treatment=True,
                               cv=self.n_folds, n_estimators=max(4, self.n_estimators // 4 * 4),
                               min_samples_leaf=self.min_samples_leaf, random_state=rs, n_jobs=1)

    def _inference_arg(self):
        if not self.inference:
            return None
        if self.method in _ANALYTIC:
            return "auto"
        from econml.inference import BootstrapInference

        return BootstrapInference(n_bootstrap_samples=int(self.n_bootstrap), n_jobs=1)

    def fit(self, outcome, treatment, covariates) -> CateLearner:
        """Fit on (outcome, arm codes 0..K, covariates); returns ``self``."""
        check_in("method", self.method, LEARNERS, "CateLearner")
        check_positive_int("n_folds", self.n_folds, "CateLearner", minimum=2)
        check_positive_int("n_bootstrap", self.n_bootstrap, "CateLearner", minimum=2)
        w = _treatment_codes(treatment)
        y = as_1d_float("outcome", outcome, n=w.size)
        x = _covariate_matrix(covariates, n=w.size)
        self.n_arms_ = int(w.max())
        self.n_features_in_ = x.shape[1]
        per_arm = self.method == "nonparam_dml" and self.n_arms_ > 1
        self.estimators_ = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            groups = range(1, self.n_arms_ + 1) if per_arm else [None]
            for arm in groups:
                est = self._build()
                if arm is None:
                    yy, ww, xx = y, w, x
                else:
                    rows = (w == 0) | (w == arm)
                    yy, ww, xx = y[rows], (w[rows] == arm).astype(int), x[rows]
                est.fit(yy, ww, X=xx, inference=self._inference_arg())
                self.estimators_.append(est)
        return self

    def _check_fitted(self, covariates):
        if not hasattr(self, "estimators_"):
            raise ModelError("This CateLearner is not fitted yet; call fit(outcome, treatment, "
                             "covariates) first.")
        x = _covariate_matrix(covariates)
        if x.shape[1] != self.n_features_in_:
            raise DataError(f"'covariates' has {x.shape[1]} columns; the learner was fitted "
                            f"with {self.n_features_in_}.")
        return x

    def _per_arm(self, fn):
        cols = []
        for arm in range(1, self.n_arms_ + 1):
            if len(self.estimators_) > 1:
                cols.append(fn(self.estimators_[arm - 1], 0, 1))
            else:
                cols.append(fn(self.estimators_[0], 0, arm))
        return cols

    def effect(self, covariates) -> np.ndarray:
        """Effect of each arm versus control: shape (n,) for one arm, (n, K) for several."""
        x = self._check_fitted(covariates)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cols = self._per_arm(lambda est, t0, t1: np.ravel(est.effect(x, T0=t0, T1=t1)))
        out = np.column_stack(cols)
        return out[:, 0] if self.n_arms_ == 1 else out

    def effect_interval(self, covariates, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``1 - alpha`` interval of :meth:`effect` (lower, upper)."""
        x = self._check_fitted(covariates)
        if not self.inference:
            raise ModelError(f"{self!r} was fitted with inference=False; refit with "
                             f"inference=True to get intervals.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pairs = self._per_arm(
                lambda est, t0, t1: est.effect_interval(x, T0=t0, T1=t1, alpha=alpha))
        lo = np.column_stack([np.ravel(p[0]) for p in pairs])
        hi = np.column_stack([np.ravel(p[1]) for p in pairs])
        if self.n_arms_ == 1:
            return lo[:, 0], hi[:, 0]
        return lo, hi


def cross_fit_effects(learner: CateLearner, outcome, treatment, covariates, *, n_folds: int = 2,
                      intervals: bool = False, random_state=0):
    """Out-of-sample effects for every row: each from a learner not trained on it.

    Returns ``effect`` (n,) or (n, K); with ``intervals=True`` a tuple
    ``(effect, lower, upper)``.
    """
    w = _treatment_codes(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    x = _covariate_matrix(covariates, n=w.size)
    k = int(w.max())
    shape = (w.size,) if k == 1 else (w.size, k)
    eff, lo, hi = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed_int(random_state))
    for train, test in folds.split(x, w):
        cl = learner.clone(inference=intervals).fit(y[train], w[train], x[train])
        eff[test] = cl.effect(x[test])
        if intervals:
            lo[test], hi[test] = cl.effect_interval(x[test])
    return (eff, lo, hi) if intervals else eff


def r_loss(outcome, treatment, effect, mean_outcome, propensity) -> float:
    """The R-loss (Nie and Wager 2021) of an effect estimate on held-out data.

    ``mean((y - m(x) - sum_k (1{W = k} - e_k(x)) tau_k(x))^2)`` with ``m`` the
    outcome mean ignoring treatment and ``e_k`` the arm probabilities
    (``propensity`` of shape (n,) for one arm or (n, K + 1)).  Lower is better;
    it ranks learners by how well they explain outcome residuals with
    treatment residuals.
    """
    w = _treatment_codes(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    m = as_1d_float("mean_outcome", mean_outcome, n=w.size)
    tau = np.asarray(effect, dtype=float).reshape(w.size, -1)
    e = np.asarray(propensity, dtype=float)
    e = np.column_stack([1 - e, e]) if e.ndim == 1 else e
    resid_t = np.column_stack([(w == k).astype(float) - e[:, k] for k in range(1, e.shape[1])])
    return float(np.mean((y - m - np.sum(resid_t * tau, axis=1)) ** 2))


@dataclass(frozen=True)
class LearnerSelection:
    """R-loss of each learner on a validation split; lower is better."""

    table: pd.DataFrame
    best: str
    learners: dict = field(repr=False, default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        body = "\n".join(f"  {r['learner']:<15} r_loss={r['r_loss']:.5g}"
                         for r in self.table.to_dict("records"))
        return f"LearnerSelection(best={self.best!r}\n{body}\n)"


def select_learner(learners: dict, outcome, treatment, covariates, *,
                   validation_share: float = 0.3, random_state=0) -> LearnerSelection:
    """Fit each learner on a training split and rank them by R-loss on the validation split.

    The nuisances of the R-loss (outcome mean m(x) and arm probabilities)
    are cross-fitted on the validation split only, so no learner's training
    data enters its score.  A row ``"zero_effect"`` (tau = 0) is the
    baseline every useful learner must beat.

    Parameters
    ----------
    learners : dict of name -> CateLearner
    outcome, treatment, covariates : arrays
    validation_share : float, default=0.3
    random_state : int, default=0

    Returns
    -------
    LearnerSelection
        ``table`` (learner, r_loss), ``best`` and the fitted ``learners``.
    """
    if not learners:
        raise ModelError("select_learner needs at least one learner in 'learners'.")
    w = _treatment_codes(treatment)
    y = as_1d_float("outcome", outcome, n=w.size)
    x = _covariate_matrix(covariates, n=w.size)
    rs = seed_int(random_state)
    train, valid = train_test_split(np.arange(w.size), test_size=validation_share,
                                    random_state=rs, stratify=w)
    xv, yv, wv = x[valid], y[valid], w[valid]
    m = cross_fit_outcome(xv, yv, np.zeros_like(wv), make_regressor("lightgbm", rs),
                          n_folds=3, random_state=rs)[:, 0]
    e = cross_fit_proba(xv, wv, make_classifier("logistic", rs), n_folds=3, random_state=rs)
    rows = [{"learner": "zero_effect", "r_loss": r_loss(yv, wv, np.zeros((wv.size, int(w.max()))),
                                                         m, e)}]
    fitted = {}
    for name, learner in learners.items():
        cl = learner.clone(inference=False).fit(y[train], w[train], x[train])
        fitted[name] = cl
        rows.append({"learner": name, "r_loss": r_loss(yv, wv, cl.effect(xv), m, e)})
    table = pd.DataFrame(rows).sort_values("r_loss", kind="stable").reset_index(drop=True)
    best = next(r for r in table["learner"] if r != "zero_effect") if len(table) > 1 else None
    return LearnerSelection(table=table, best=best, learners=fitted)
