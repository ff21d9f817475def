"""The one factory of nuisance models (LightGBM settings live here) and cross-fitting glue.

Every outcome, propensity and final-stage model of the single-experiment
commands (CATE learners, ATE estimators, positivity, personalization methods,
policy trees) comes from :func:`make_regressor` / :func:`make_classifier`, so
their settings are in one place: small, regularised, single-threaded and
deterministic LightGBM models, or linear ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from manylift._core.errors import ModelError
from manylift._core.rng import seed_int

__all__ = ["LIGHTGBM_DEFAULTS", "cross_fit_outcome", "cross_fit_proba", "make_classifier",
           "make_regressor"]

#: Settings of every LightGBM nuisance model (overridable per call).
LIGHTGBM_DEFAULTS = dict(
    n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
    subsample=0.8, subsample_freq=1, colsample_bytree=1.0,
    n_jobs=1, verbose=-1, deterministic=True, force_row_wise=True,
)


def _lightgbm_params(random_state, **overrides) -> dict:
    unknown = set(overrides) - set(LIGHTGBM_DEFAULTS)
    if unknown:
        raise ModelError(f"Unknown LightGBM setting(s) {sorted(unknown)}; the settings are "
                         f"{sorted(LIGHTGBM_DEFAULTS)}.")
    params = {**LIGHTGBM_DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    params["random_state"] = seed_int(random_state)
    return params


def make_regressor(model="lightgbm", random_state=0, **lightgbm):
    """A regressor: ``"lightgbm"``, ``"linear"`` or any scikit-learn regressor (cloned).

    ``**lightgbm`` overrides :data:`LIGHTGBM_DEFAULTS` (``n_estimators``,
    ``learning_rate``, ``num_leaves``, ``min_child_samples``, ...).
    """
    if isinstance(model, str):
        if model in ("lightgbm", "gbm"):
            from lightgbm import LGBMRegressor

            return LGBMRegressor(**_lightgbm_params(random_state, **lightgbm))
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


def make_classifier(model="lightgbm", random_state=0, **lightgbm):
    """A classifier: ``"lightgbm"`` (or ``"gbm"``), ``"logistic"`` or any scikit-learn
    classifier (cloned).  ``**lightgbm`` overrides :data:`LIGHTGBM_DEFAULTS`."""
    if isinstance(model, str):
        if model in ("lightgbm", "gbm"):
            from lightgbm import LGBMClassifier

            return LGBMClassifier(**_lightgbm_params(random_state, **lightgbm))
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
