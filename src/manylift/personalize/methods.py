"""The five personalization methods of Shchetkina and Berman (Appendix A.2).

Each is a :class:`PersonalizationPolicy` fitted on one part of an experiment
and applied to new units; ``predict`` returns the arm with the highest score:

* ``"ols"``: one linear regression of the outcome on the covariates, the arm
  indicators and all arm x covariate interactions (eqs. 13-15);
* ``"s_learner"``: one LightGBM model with the arm as a feature (eqs. 16-17);
* ``"t_learner"``: one LightGBM model per arm (eqs. 18-19);
* ``"causal_forest"``: EconML's ``CausalForestDML`` with a discrete
  multi-valued treatment (a multi-arm causal forest); effects relative to the
  control, the control scored 0 (eq. 20).  The known randomization
  probabilities are used as the propensity model (``DummyClassifier``);
* ``"policy_tree"``: EconML's ``DRPolicyTree`` of depth 2 (Zhou, Athey and
  Wager 2023) on doubly robust scores built from LightGBM outcome models and the
  known randomization probabilities.  (The paper feeds the causal forest's
  scores to grf's policy tree; EconML builds its own doubly robust scores.)

The paper uses XGBoost; we use LightGBM, another gradient-boosted tree library.
"""

from __future__ import annotations

import numpy as np

from manylift._core.checks import check_in, check_positive_int
from manylift._core.errors import ModelError
from manylift._core.rng import seed_int
from manylift.personalize._bootstrap import prepare_arrays
from manylift.single._models import make_regressor

__all__ = ["METHODS", "PersonalizationPolicy"]

METHODS = ("ols", "s_learner", "t_learner", "causal_forest", "policy_tree")


def _matrix(covariates) -> np.ndarray:
    try:
        x = np.asarray(covariates, dtype=float)
    except (TypeError, ValueError):
        raise ModelError("The covariates of PersonalizationPolicy.predict must be numeric (encoded "
                         "as for fit).") from None
    x = x[:, None] if x.ndim == 1 else x
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if x.ndim != 2 or bad.size:
        raise ModelError(f"The covariates of PersonalizationPolicy.predict must be a finite matrix; "
                         f"{bad.size} row(s) hold NaN or inf (e.g. row {bad[:1].tolist()}).")
    return x


class PersonalizationPolicy:
    """A personalization policy learned from a randomized multi-arm experiment.

    Parameters
    ----------
    method : {"ols", "s_learner", "t_learner", "causal_forest", "policy_tree"}, default="t_learner"
        See the module docstring.
    control : label, default=None
        The control arm (the causal forest's baseline).  Default: the first arm
        in sorted order.
    n_estimators, learning_rate, num_leaves, min_child_samples
        LightGBM options (outcome models of every boosting-based method).
    forest_trees : int, default=200
        Trees of the causal forest (rounded up to a multiple of 4).
    min_samples_leaf : int, default=20
        Minimum leaf size of the causal forest and of the policy tree.
    max_depth : int, default=2
        Depth of the policy tree.
    random_state : int or None, default=0
    n_jobs : int, default=1

    Attributes
    ----------
    arms_ : list
        Arm labels in score-column order (the control first).
    covariate_names_ : list of str
    model_ : object
        The fitted model(s).

    References
    ----------
    Shchetkina and Berman (2024), Appendix A.2.  Athey, Tibshirani and Wager
    (2019), Generalized random forests.  Zhou, Athey and Wager (2023), Offline
    multi-action policy learning.  Ke et al. (2017), LightGBM.

    Examples
    --------
    >>> from manylift.simulate.multiarm import simulate_multiarm
    >>> d = simulate_multiarm(n=3000, n_arms=3, sigma=1.0, rho=0.0, s=0.1, random_state=0).data
    >>> pol = PersonalizationPolicy("ols").fit(d["outcome"], d["arm"], d.filter(like="x"))
    >>> sorted(set(pol.predict(d.filter(like="x"))))
    ['arm_1', 'arm_2', 'control']
    """

    def __init__(
        self,
        method: str = "t_learner",
        *,
        control=None,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        forest_trees: int = 200,
        min_samples_leaf: int = 20,
        max_depth: int = 2,
        random_state=0,
        n_jobs: int = 1,
    ):
        self.method = method
        self.control = control
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.forest_trees = forest_trees
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- helpers ---------------------------------------------------------
    def _lgbm(self):
        return make_regressor(
            "lightgbm", self.random_state, n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, n_jobs=self.n_jobs,
        )

    @staticmethod
    def _ols_design(x: np.ndarray, codes: np.ndarray, m: int) -> np.ndarray:
        dummies = np.zeros((x.shape[0], m - 1))
        rows = codes > 0
        dummies[np.flatnonzero(rows), codes[rows] - 1] = 1.0
        inter = (dummies[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
        return np.hstack([x, dummies, inter])

    @staticmethod
    def _s_design(x: np.ndarray, codes: np.ndarray, m: int) -> np.ndarray:
        return np.hstack([x, np.eye(m)[codes]])

    # -- API -------------------------------------------------------------
    def fit(self, outcome, arm, covariates) -> PersonalizationPolicy:
        """Fit on the training rows; returns ``self``.

        The argument order is that of every learner in manylift (and EconML's
        ``fit(Y, T, X)``): outcome, treatment (arm labels), covariates.
        """
        where = f"PersonalizationPolicy({self.method!r}).fit"
        check_in("method", self.method, METHODS, "PersonalizationPolicy")
        data = prepare_arrays(outcome, arm, covariates, self.control, where)
        y, codes, labels = data.outcome, data.treatment, data.arms
        x, names = data.covariates, data.covariate_names
        m = len(labels)
        self.arms_ = labels
        self.covariate_names_ = names
        if self.method == "ols":
            from sklearn.linear_model import LinearRegression

            self.model_ = LinearRegression().fit(self._ols_design(x, codes, m), y)
        elif self.method == "s_learner":
            self.model_ = self._lgbm().fit(self._s_design(x, codes, m), y)
        elif self.method == "t_learner":
            self.model_ = [self._lgbm().fit(x[codes == k], y[codes == k]) for k in range(m)]
        elif self.method == "causal_forest":
            from econml.dml import CausalForestDML
            from sklearn.dummy import DummyClassifier

            trees = check_positive_int("forest_trees", self.forest_trees, "PersonalizationPolicy")
            self.model_ = CausalForestDML(
                model_y=self._lgbm(),
                model_t=DummyClassifier(strategy="prior"),
                discrete_treatment=True,
                categories=list(range(m)),
                n_estimators=int(4 * np.ceil(trees / 4)),
                min_samples_leaf=self.min_samples_leaf,
                cv=2,
                random_state=seed_int(self.random_state),
                n_jobs=self.n_jobs,
            ).fit(y, codes, X=x)
        else:  # policy_tree
            from econml.policy import DRPolicyTree
            from sklearn.dummy import DummyClassifier

            self.model_ = DRPolicyTree(
                model_regression=self._lgbm(),
                model_propensity=DummyClassifier(strategy="prior"),
                categories=list(range(m)),
                max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf,
                cv=2,
                random_state=seed_int(self.random_state),
            ).fit(y, codes, X=x)
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise ModelError("This PersonalizationPolicy is not fitted yet; call fit(...) first.")

    def predict_scores(self, covariates) -> np.ndarray:
        """Scores of shape (n, m) whose row-wise argmax is the policy.

        Predicted outcomes per arm for ``ols``, ``s_learner`` and ``t_learner``;
        predicted effects relative to the control (control = 0) for
        ``causal_forest``; a one-hot matrix of the chosen arm for ``policy_tree``.
        """
        self._check_fitted()
        x = _matrix(covariates)
        if x.shape[1] != len(self.covariate_names_):
            raise ModelError(
                f"PersonalizationPolicy was fitted on {len(self.covariate_names_)} covariates; got "
                f"{x.shape[1]}. Pass the same columns in the same order."
            )
        n, m = x.shape[0], len(self.arms_)
        if self.method == "ols":
            return np.column_stack([
                self.model_.predict(self._ols_design(x, np.full(n, k), m)) for k in range(m)
            ])
        if self.method == "s_learner":
            return np.column_stack([
                self.model_.predict(self._s_design(x, np.full(n, k), m)) for k in range(m)
            ])
        if self.method == "t_learner":
            return np.column_stack([mod.predict(x) for mod in self.model_])
        if self.method == "causal_forest":
            effects = np.asarray(self.model_.const_marginal_effect(x)).reshape(n, m - 1)
            return np.hstack([np.zeros((n, 1)), effects])
        chosen = np.asarray(self.model_.predict(x)).astype(int).reshape(-1)
        return np.eye(m)[chosen]

    def predict_codes(self, covariates) -> np.ndarray:
        """The assigned arm as integer codes (index into ``arms_``)."""
        return np.asarray(self.predict_scores(covariates)).argmax(axis=1)

    def predict(self, covariates) -> np.ndarray:
        """The assigned arm label of every unit."""
        codes = self.predict_codes(covariates)
        return np.asarray(self.arms_, dtype=object)[codes]

    def __repr__(self) -> str:
        fitted = f", arms={self.arms_}" if hasattr(self, "arms_") else ""
        return f"PersonalizationPolicy(method={self.method!r}, random_state={self.random_state!r}{fitted})"
