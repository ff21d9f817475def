"""Shallow, readable targeting trees that maximise profit (EconML's PolicyTree / DRPolicyTree).

``method="policy_tree"`` fits :class:`econml.policy.PolicyTree` to the
per-customer rewards of each action: 0 for control and
margin x Gamma_ik - cost_k for arm k, with Gamma the (A)IPW effect scores of
the training sample (Athey and Wager 2021).  ``method="dr_policy_tree"`` fits
:class:`econml.policy.DRPolicyTree`, which estimates its own doubly robust
scores, on the profit-scale outcome margin x y - cost x 1{treated}.

The fitted rules print as indented text (``rules_``), the form a marketing
team can apply without a model: ``if x <= a:`` / ``else:`` blocks, with a
one-hot column ``zip_code=Urban`` written ``if zip_code != 'Urban':``.
"""

from __future__ import annotations

import warnings

import numpy as np

from manylift._core.checks import as_1d_float, check_in, check_positive_int
from manylift._core.errors import DataError, ModelError
from manylift._core.rng import seed_int
from manylift.policy.profit import _costs
from manylift.single._models import make_classifier, make_regressor
from manylift.single.positivity import _covariate_matrix

__all__ = ["ProfitPolicyTree"]


class ProfitPolicyTree:
    """A depth-limited policy tree that maximises profit.

    Parameters
    ----------
    method : {"policy_tree", "dr_policy_tree"}, default="policy_tree"
    max_depth : int, default=2
    min_samples_leaf : int, default=50
    random_state : int, default=0

    Attributes
    ----------
    estimator_ : econml.policy.PolicyTree or DRPolicyTree
    rules_ : str
        The tree as indented text.
    arm_names_ : list of str

    References
    ----------
    Athey, S., & Wager, S. (2021). Policy learning with observational data.
    Econometrica, 89(1), 133-161.
    Zhou, Z., Athey, S., & Wager, S. (2023). Offline multi-action policy
    learning: generalization and optimization. Operations Research, 71(1), 148-183.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 2))
    >>> scores = 2 * x[:, 0] + rng.normal(size=400)
    >>> t = ProfitPolicyTree(max_depth=1, min_samples_leaf=20).fit(
    ...     None, None, x, scores=scores, cost=0.0, margin=1.0, feature_names=["a", "b"])
    >>> print(t.rules_.splitlines()[0].split("<=")[0].strip())
    if a
    """

    def __init__(self, method: str = "policy_tree", *, max_depth: int = 2,
                 min_samples_leaf: int = 50, random_state=0):
        self.method = method
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"ProfitPolicyTree(method={self.method!r}, max_depth={self.max_depth})"

    def fit(self, outcome, treatment, covariates, *, cost, margin, scores=None,
            feature_names=None, arm_names=None) -> ProfitPolicyTree:
        """Fit the tree; returns ``self``.

        The argument order is that of every learner in manylift (outcome,
        treatment, covariates).

        Parameters
        ----------
        outcome, treatment : arrays (n,) or None
            Outcome and arm codes (needed by ``method="dr_policy_tree"``; ``None``
            for ``method="policy_tree"``, which uses ``scores``).
        covariates : array (n, p)
        cost : float or array (K,)
        margin : float
        scores : array (n,) or (n, K)
            Effect scores (``method="policy_tree"``).
        feature_names, arm_names : list of str, default=None
        """
        from econml.policy import DRPolicyTree, PolicyTree

        check_in("method", self.method, ["policy_tree", "dr_policy_tree"], "ProfitPolicyTree")
        check_positive_int("max_depth", self.max_depth, "ProfitPolicyTree")
        check_positive_int("min_samples_leaf", self.min_samples_leaf, "ProfitPolicyTree")
        x = _covariate_matrix(covariates)
        rs = seed_int(self.random_state)
        if not margin > 0:
            raise ModelError(f"'margin' must be positive; got {margin!r}.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.method == "policy_tree":
                if scores is None:
                    raise ModelError("method='policy_tree' needs 'scores' (effect scores of the "
                                     "training sample, e.g. from policy.effect_scores).")
                s = np.asarray(scores, dtype=float)
                s = s[:, None] if s.ndim == 1 else s
                if s.shape[0] != x.shape[0]:
                    raise DataError(f"'scores' has {s.shape[0]} rows; 'covariates' has {x.shape[0]}.")
                k = s.shape[1]
                c = _costs(cost, k)
                rewards = np.column_stack([np.zeros(x.shape[0]), margin * s - c[None, :]])
                est = PolicyTree(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                 random_state=rs)
                est.fit(x, rewards)
            else:
                if outcome is None or treatment is None:
                    raise ModelError("method='dr_policy_tree' needs 'outcome' and 'treatment'.")
                w = np.asarray(treatment).astype(int)
                y = as_1d_float("outcome", outcome, n=x.shape[0])
                k = int(w.max())
                c = _costs(cost, k)
                profit_y = margin * y - np.where(w > 0, c[np.clip(w - 1, 0, k - 1)], 0.0)
                est = DRPolicyTree(
                    model_propensity=make_classifier("lightgbm", rs, n_estimators=100),
                    model_regression=make_regressor("lightgbm", rs, n_estimators=100),
                    max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                    cv=3, random_state=rs)
                est.fit(profit_y, w, X=x)
        self.estimator_ = est
        self.n_arms_ = k
        self.feature_names_ = (list(feature_names) if feature_names is not None
                               else [f"x{j}" for j in range(x.shape[1])])
        self.arm_names_ = (list(arm_names) if arm_names is not None
                           else ["control"] + [f"arm {j}" for j in range(1, k + 1)])
        self.rules_ = self._export_text()
        return self

    def predict(self, covariates) -> np.ndarray:
        """Arm code per customer (0 = control)."""
        if not hasattr(self, "estimator_"):
            raise ModelError("This ProfitPolicyTree is not fitted yet; call fit first.")
        x = _covariate_matrix(covariates)
        return np.asarray(self.estimator_.predict(x)).astype(int)

    def _tree(self):
        est = self.estimator_
        return est.policy_model_.tree_ if hasattr(est, "policy_model_") else est.tree_

    def _export_text(self) -> str:
        tree = self._tree()
        left, right = tree.children_left, tree.children_right
        feature, threshold = tree.feature, tree.threshold
        value = np.asarray(tree.value)
        lines: list[str] = []

        def leaf_label(node):
            v = value[node].reshape(-1)
            if v.size == self.n_arms_:  # DRPolicyTree stores treated arms only
                v = np.concatenate([[0.0], v])
            arm = int(np.argmax(v))
            return f"{self.arm_names_[arm] if arm < len(self.arm_names_) else arm}"

        def condition(node):
            name = self.feature_names_[feature[node]]
            thr = float(threshold[node])
            column, eq, level = name.partition("=")
            if eq and 0 < thr < 1:  # a one-hot column: the split separates the level
                return f"{column} != {level!r}", f"{column} == {level!r}"
            return f"{name} <= {thr:.4g}", f"{name} > {thr:.4g}"

        def walk(node, depth):
            pad = "    " * depth
            if left[node] == -1:
                lines.append(f"{pad}-> {leaf_label(node)}")
                return
            yes, no = condition(node)
            lines.append(f"{pad}if {yes}:")
            walk(left[node], depth + 1)
            lines.append(f"{pad}else:  # {no}")
            walk(right[node], depth + 1)

        walk(0, 0)
        return "\n".join(lines)
