"""Default nuisance models (small, single-threaded LightGBM or linear) and cross-fitting glue."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from manylift._core.errors import ModelError
from manylift._core.rng import seed_int

__all__ = ["make_regressor", "make_classifier", "cross_fit_outcome", "cross_fit_proba"]


def make_regressor(model="lightgbm", random_state=0, n_estimators: int = 200):
    """A regressor: ``"lightgbm"``, ``"linear"`` or any scikit-learn regressor (cloned)."""
    if isinstance(model, str):
        if model == "lightgbm":
            from lightgbm import LGBMRegressor

            return LGBMRegressor(
                n_estimators=n_estimators, learning_rate=0.05, num_leaves=15,
                min_child_samples=20, subsample=0.8, subsample_freq=1,
                random_state=seed_int(random_state), n_jobs=1, verbose=-1,
            )
        if model == "linear":
            from sklearn.linear_model import LinearRegression

            return LinearRegression()
        raise ModelError(
            f"The 'model' parameter must be 'lightgbm', 'linear' or a scikit-learn regressor; "
            f"got {model!r} instead."
        )
    if not hasattr(model, "fit") or not hasattr(model, "predict"):
        raise ModelError(f"The 'model' parameter must have fit and predict; got {model!r} instead.")
    return clone(model)


def make_classifier(model="lightgbm", random_state=0, n_estimators: int = 200):
    """A classifier: ``"lightgbm"``, ``"logistic"`` or any scikit-learn classifier (cloned)."""
    if isinstance(model, str):
        if model in ("lightgbm", "gbm"):
            from lightgbm import LGBMClassifier

            return LGBMClassifier(
                n_estimators=n_estimators, learning_rate=0.05, num_leaves=15,
                min_child_samples=20, subsample=0.8, subsample_freq=1,
                random_state=seed_int(random_state), n_jobs=1, verbose=-1,
            )
        if model == "logistic":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        raise ModelError(
            f"The 'model' parameter must be 'gbm', 'lightgbm', 'logistic' or a scikit-learn "
            f"classifier; got {model!r} instead."
        )
    if not hasattr(model, "predict_proba"):
        raise ModelError(f"The 'model' parameter must have predict_proba; got {model!r} instead.")
    return clone(model)


def cross_fit_proba(x, labels, model, n_folds=5, random_state=0) -> np.ndarray:
    """Out-of-fold class probabilities, shape (n, n_classes) for classes 0..K."""
    labels = np.asarray(labels, dtype=int)
    n_classes = int(labels.max()) + 1
    out = np.zeros((len(labels), n_classes))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed_int(random_state))
    for train, test in folds.split(x, labels):
        m = clone(model).fit(x[train], labels[train])
        proba = m.predict_proba(x[test])
        classes = np.asarray(getattr(m, "classes_", np.arange(proba.shape[1])), dtype=int)
        out[np.ix_(test, classes)] = proba
    return out


def cross_fit_outcome(x, outcome, treatment, model, n_folds=5, random_state=0) -> np.ndarray:
    """Out-of-fold conditional means ``mu_k(x)`` of every arm, shape (n, K + 1).

    One model per arm, fitted on that arm's rows of the training folds and
    predicted for every row of the held-out fold.
    """
    treatment = np.asarray(treatment, dtype=int)
    n_arms = int(treatment.max()) + 1
    out = np.zeros((len(outcome), n_arms))
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed_int(random_state))
    for train, test in folds.split(x):
        for k in range(n_arms):
            rows = train[treatment[train] == k]
            if rows.size < 2:
                out[test, k] = outcome[treatment == k].mean()
                continue
            m = clone(model).fit(x[rows], outcome[rows])
            out[test, k] = m.predict(x[test])
    return out
