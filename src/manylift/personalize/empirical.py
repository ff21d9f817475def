"""Empirical gain of personalization methods over the best uniform arm (section 5.2).

Every method is trained on the training part (70% by default) and its
policy evaluated on the holdout by IPW (eq. 9) with the known randomization
probabilities, through :func:`manylift.evaluation.multiarm_policy_value`.  The
benchmark is the uniform policy that gives everyone the arm with the best
training mean, evaluated on the same holdout; a method's gain is the
difference of the two IPW values, and its standard error comes from a paired
bootstrap of the holdout rows (the same resamples for every method).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_positive_int
from manylift._core.errors import ModelError
from manylift._core.rng import as_generator, seed_int
from manylift.evaluation import multiarm_policy_value
from manylift.personalize._bootstrap import holdout_mask, prepare_arrays
from manylift.personalize.methods import METHODS, PersonalizationPolicy
from manylift.single.progress import as_progress

__all__ = ["MethodResult", "MethodComparison", "compare_methods"]


@dataclass(frozen=True)
class MethodResult:
    """IPW value of one method's policy on the holdout and its gain over the uniform arm."""

    method: str
    value: float
    se: float
    gain: float
    gain_se: float
    arm_shares: dict

    def to_dict(self) -> dict:
        return {"value": self.value, "se": self.se, "gain": self.gain, "gain_se": self.gain_se}


@dataclass(frozen=True)
class MethodComparison:
    """Result of :func:`compare_methods`.

    Attributes
    ----------
    arms : list
        Arm labels (the control first).
    best_uniform_arm : label
        The arm with the best training mean: the benchmark.
    uniform_value, uniform_se : float
        Its IPW value on the holdout and bootstrap SE.
    train_arm_means : dict
        Training mean of every arm.
    methods : dict
        Method name -> :class:`MethodResult`.
    assignment_shares : pandas.DataFrame
        Share of the holdout each method assigns to each arm (rows methods,
        columns arms).
    profiles : dict
        Method name -> DataFrame (rows: assigned arm, columns: covariates) of
        the covariate means of the holdout units assigned to each arm,
        standardized by the holdout mean and sd of each covariate (the
        heatmap of the paper's Figure 11).  Arms nobody gets are left out.
    assignments : dict
        Method name -> holdout arm codes (not in ``to_frame``).
    n_train, n_test : int
    policies : dict
        Method name -> the fitted :class:`PersonalizationPolicy` (to assign new rows).
    """

    arms: list
    best_uniform_arm: object
    uniform_value: float
    uniform_se: float
    train_arm_means: dict
    methods: dict
    assignment_shares: pd.DataFrame = field(repr=False)
    profiles: dict = field(repr=False)
    assignments: dict = field(repr=False)
    n_train: int = 0
    n_test: int = 0
    policies: dict = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        rows = [{"method": "best_uniform", "value": self.uniform_value, "se": self.uniform_se,
                 "gain": 0.0, "gain_se": 0.0, "relative_gain": 0.0}]
        for name, r in self.methods.items():
            rel = r.gain / self.uniform_value if self.uniform_value else float("nan")
            rows.append({"method": name, **r.to_dict(), "relative_gain": rel})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {name: r.to_dict() for name, r in self.methods.items()}

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {r.gain:+.4g} (se {r.gain_se:.2g})" for k, r in self.methods.items())
        return (
            f"MethodComparison(best uniform arm {self.best_uniform_arm!r} = {self.uniform_value:.4g} "
            f"(se {self.uniform_se:.2g}); gains {parts}; {self.n_test} holdout rows)"
        )


def compare_methods(
    outcome,
    arm,
    covariates,
    *,
    methods=METHODS,
    control=None,
    test=None,
    test_size: float = 0.3,
    propensity=None,
    n_bootstrap: int = 200,
    n_estimators: int = 200,
    learning_rate: float = 0.05,
    num_leaves: int = 15,
    min_child_samples: int = 50,
    forest_trees: int = 200,
    min_samples_leaf: int = 20,
    random_state=0,
    n_jobs: int = 1,
    progress=False,
) -> MethodComparison:
    """Train personalization methods on 70% and evaluate them by IPW on the 30% holdout.

    Parameters
    ----------
    outcome, arm, covariates
        As in :func:`manylift.personalize.estimate_parameters`.
    methods : sequence of str, default=all five
        Any of ``"ols", "s_learner", "t_learner", "causal_forest", "policy_tree"``.
    control : label, default=None
        The control arm (baseline of the causal forest).
    test : bool array, default=None
        Holdout rows; default a random ``test_size`` share of each arm.
    test_size : float, default=0.3
    propensity : array of shape (m,), default=None
        Known assignment probability of each arm (in ``arms`` order); default
        the arm shares in all the data (complete randomization).
    n_bootstrap : int, default=200
        Paired bootstrap replicates of the holdout for the SEs.
    n_estimators, learning_rate, num_leaves, min_child_samples, forest_trees, min_samples_leaf
        Learner options, see :class:`PersonalizationPolicy`.
    random_state : int, Generator or None, default=0
    n_jobs : int, default=1
    progress : bool, default=False
        A progress bar over the methods (standard error).

    Returns
    -------
    MethodComparison

    References
    ----------
    Shchetkina and Berman (2024), section 5.2, eq. (9) and Table 4.
    """
    where = "compare_methods"
    data = prepare_arrays(outcome, arm, covariates, control, where)
    y, codes, labels = data.outcome, data.treatment, data.arms
    x, names = data.covariates, data.covariate_names
    methods = list(methods)
    for name in methods:
        if name not in METHODS:
            raise ModelError(
                f"The 'methods' parameter of {where} must hold names from {list(METHODS)}; got {name!r}."
            )
    n_bootstrap = check_positive_int("n_bootstrap", n_bootstrap, where, minimum=0)
    m = len(labels)
    rng = as_generator(random_state)
    if test is None:
        test = holdout_mask(codes, test_size, rng)
    test = np.asarray(test, dtype=bool)
    train = ~test
    if propensity is None:
        e = np.bincount(codes, minlength=m) / codes.size
    else:
        e = np.asarray(propensity, dtype=float).reshape(-1)
        if e.shape[0] != m or np.any(e <= 0) or not np.isclose(e.sum(), 1.0):
            raise ModelError(
                f"The 'propensity' parameter of {where} must hold {m} positive probabilities summing "
                f"to 1 (one per arm, in the order {labels}); got {propensity!r} instead."
            )

    train_means = np.bincount(codes[train], weights=y[train], minlength=m) / np.bincount(
        codes[train], minlength=m)
    best = int(np.argmax(train_means))
    y_te, a_te, x_te = y[test], codes[test], x[test]
    n_te = y_te.shape[0]
    uniform = np.full(n_te, best)
    boot_seed = seed_int(rng)  # one seed: every method sees the same bootstrap resamples
    uni = multiarm_policy_value(y_te, a_te, e, uniform, n_bootstrap=n_bootstrap, random_state=boot_seed)

    results, shares, profiles, assignments, fitted = {}, {}, {}, {}, {}
    mean_x = x_te.mean(axis=0)
    sd_x = x_te.std(axis=0)
    sd_x[sd_x == 0] = 1.0
    z_te = (x_te - mean_x) / sd_x
    for name in as_progress(progress, "personalize").bar(methods, desc="personalization methods",
                                                          unit="method"):
        policy = PersonalizationPolicy(
            name, control=labels[0], n_estimators=n_estimators, learning_rate=learning_rate,
            num_leaves=num_leaves, min_child_samples=min_child_samples, forest_trees=forest_trees,
            min_samples_leaf=min_samples_leaf, random_state=seed_int(random_state), n_jobs=n_jobs,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EconML/LightGBM chatter about defaults
            policy.fit(y[train], np.asarray(labels, dtype=object)[codes[train]],
                       pd.DataFrame(x[train], columns=names))
            assign = policy.predict_codes(x_te)
        r = multiarm_policy_value(y_te, a_te, e, assign, n_bootstrap=n_bootstrap,
                                  random_state=boot_seed, versus=uniform)
        arm_share = np.bincount(assign, minlength=m) / n_te
        results[name] = MethodResult(
            method=name, value=r.estimate, se=r.std_err, gain=float(r.difference),
            gain_se=float(r.difference_std_err if r.difference_std_err is not None else np.nan),
            arm_shares={lab: float(s) for lab, s in zip(labels, arm_share)},
        )
        shares[name] = arm_share
        assignments[name] = assign
        fitted[name] = policy
        used = [k for k in range(m) if arm_share[k] > 0]
        profiles[name] = pd.DataFrame(
            [z_te[assign == k].mean(axis=0) for k in used],
            index=pd.Index([labels[k] for k in used], name="arm"),
            columns=names,
        )
    share_frame = pd.DataFrame.from_dict(shares, orient="index", columns=labels)
    share_frame.index.name = "method"
    return MethodComparison(
        arms=labels,
        best_uniform_arm=labels[best],
        uniform_value=uni.estimate,
        uniform_se=uni.std_err,
        train_arm_means={lab: float(v) for lab, v in zip(labels, train_means)},
        methods=results,
        assignment_shares=share_frame,
        profiles=profiles,
        assignments=assignments,
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        policies=fitted,
    )
