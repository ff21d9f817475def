"""The whole personalization analysis of one experiment (what ``manylift personalize`` runs).

1. Split the experiment 70/30 within arm (one split for everything below).
2. Estimate sigma, rho, s, sigma_eps (:func:`estimate_parameters`).
3. Predicted gain: Algorithm 2 at the estimates, F = N(0, s^2), the uniform
   arm chosen from noisy means of an experiment the size of the training part;
   95% interval from pushing the bootstrap replicates of the parameters
   through the same Monte Carlo.  Also the gain given the observed arm means.
4. Empirical gain of the five methods by IPW on the holdout
   (:func:`compare_methods`).
5. Sensitivity curves and elasticities around the estimates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import example_ids
from manylift._core.errors import ColumnError
from manylift._core.rng import as_generator, seed_int
from manylift.personalize._common import (
    Interval,
    check_outcome,
    covariate_matrix,
    encode_arms,
    holdout_mask,
    percentile_interval,
)
from manylift.personalize.empirical import MethodComparison, compare_methods
from manylift.personalize.estimation import ParameterEstimates, estimate_parameters
from manylift.personalize.methods import METHODS
from manylift.personalize.montecarlo import GainSimulation, simulate_gain
from manylift.personalize.sensitivity import SensitivityResult, sensitivity
from manylift.single._data import resolve_control

__all__ = [
    "PersonalizationResult",
    "analyze_personalization",
    "personalize_frame",
    "resolve_control",
    "prepare_covariates",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PersonalizationResult:
    """Everything the personalization analysis found.

    Attributes
    ----------
    parameters : ParameterEstimates
    predicted : GainSimulation
        Algorithm 2 at the point estimates (normal F).
    predicted_gain : Interval
        ``predicted.gain`` with a 95% interval from the parameter bootstrap.
    predicted_given_means : GainSimulation
        Algorithm 2 with the arm means fixed at the observed ones.
    comparison : MethodComparison or None
        Empirical IPW gains of the methods (None when ``methods=()``).
    sensitivity : SensitivityResult
    arms : list
    control : label
    outcome_name, treatment_name : str
    n : int
    covariate_names : list of str
    truth : dict or None
        The simulator's truth when the data were simulated.
    """

    parameters: ParameterEstimates
    predicted: GainSimulation
    predicted_gain: Interval
    predicted_given_means: GainSimulation
    comparison: MethodComparison | None
    sensitivity: SensitivityResult = field(repr=False)
    arms: list = field(default_factory=list)
    control: object = None
    outcome_name: str = "outcome"
    treatment_name: str = "arm"
    n: int = 0
    covariate_names: list = field(default_factory=list, repr=False)
    truth: dict | None = field(default=None, repr=False)

    @property
    def arm_means(self) -> dict:
        return self.parameters.arm_means

    @property
    def best_uniform_arm(self):
        if self.comparison is not None:
            return self.comparison.best_uniform_arm
        means = self.parameters.arm_means
        return max(means, key=means.get)

    def to_frame(self) -> pd.DataFrame:
        """The methods table with the model's predicted gain as a last row (Table 4)."""
        frame = self.comparison.to_frame() if self.comparison is not None else pd.DataFrame()
        uniform = self.comparison.uniform_value if self.comparison is not None else np.nan
        row = pd.DataFrame([{
            "method": "model_prediction", "value": uniform + self.predicted_gain.estimate,
            "se": np.nan, "gain": self.predicted_gain.estimate, "gain_se": self.predicted.gain_se,
            "relative_gain": self.predicted_gain.estimate / uniform if uniform else np.nan,
        }])
        return pd.concat([frame, row], ignore_index=True)

    def to_results(self) -> dict:
        """The ``results.json`` content (DESIGN.md section 5b, ``personalize``)."""
        comp = self.comparison
        out = {
            "schema_version": SCHEMA_VERSION,
            "command": "personalize",
            "data": {
                "rows": self.n, "arms": [str(a) for a in self.arms], "n_arms": len(self.arms),
                "control": str(self.control), "outcome": self.outcome_name,
                "treatment": self.treatment_name, "covariates": list(self.covariate_names),
                "train_rows": self.parameters.n_train, "holdout_rows": self.parameters.n_test,
            },
            "parameters": self.parameters.to_dict(),
            "parameters_detail": {
                "sigma_by_arm": {str(k): v for k, v in self.parameters.sigma_by_arm.items()},
                "rho_pairs": self.parameters.rho_pairs.to_dict(orient="records"),
                "n_bins": self.parameters.n_bins,
            },
            "arm_means": {str(k): v for k, v in self.arm_means.items()},
            "arm_counts": {str(k): v for k, v in self.parameters.arm_counts.items()},
            "best_uniform_arm": str(self.best_uniform_arm),
            "predicted_gain": {**self.predicted_gain.to_dict(), "mc_se": self.predicted.gain_se},
            "predicted_oracle_gain": {"estimate": self.predicted.oracle_gain,
                                      "mc_se": self.predicted.oracle_gain_se},
            "predicted_gain_given_arm_means": {"estimate": self.predicted_given_means.gain,
                                               "mc_se": self.predicted_given_means.gain_se},
            "monte_carlo": {"n_sims": self.predicted.n_sims,
                            "n_individuals": self.predicted.n_individuals,
                            "n_per_arm": self.predicted.n_per_arm},
            "methods": comp.to_dict() if comp is not None else {},
            "elasticities": {
                r["parameter"]: {"change": r["change"], "new_gain": r["new_gain"],
                                 "elasticity": r["elasticity"]}
                for r in self.sensitivity.elasticities.to_dict(orient="records")
            },
        }
        if comp is not None:
            out["best_uniform"] = {"value": comp.uniform_value, "se": comp.uniform_se,
                                   "train_arm_means": {str(k): v for k, v in comp.train_arm_means.items()}}
            out["assignment_shares"] = {
                m: {str(a): float(v) for a, v in row.items()}
                for m, row in comp.assignment_shares.to_dict(orient="index").items()
            }
        if self.truth is not None:
            out["truth"] = self.truth
        return out

    def __repr__(self) -> str:
        p = self.parameters
        comp = ""
        if self.comparison is not None:
            best = max(self.comparison.methods.values(), key=lambda r: r.gain, default=None)
            if best is not None:
                comp = f"; best method {best.method} gain {best.gain:+.4g} (se {best.gain_se:.2g})"
        return (
            f"PersonalizationResult({len(self.arms)} arms, best uniform {self.best_uniform_arm!r}; "
            f"sigma={p.sigma.estimate:.3g}, rho={p.rho.estimate:.3g}, s={p.s.estimate:.3g}, "
            f"sigma_eps={p.sigma_eps.estimate:.3g}; predicted gain {self.predicted_gain!r}{comp})"
        )


def analyze_personalization(
    outcome,
    arm,
    covariates,
    *,
    control=None,
    methods=METHODS,
    test_size: float = 0.3,
    n_bins: int = 10,
    n_bootstrap: int = 200,
    n_sims: int = 2000,
    n_individuals: int = 500,
    n_estimators: int = 200,
    learning_rate: float = 0.05,
    num_leaves: int = 15,
    min_child_samples: int = 50,
    forest_trees: int = 200,
    grid_size: int = 21,
    random_state=0,
    n_jobs: int = 1,
    outcome_name: str = "outcome",
    treatment_name: str = "arm",
    truth: dict | None = None,
) -> PersonalizationResult:
    """Will personalization beat the best uniform arm in this experiment?

    Parameters
    ----------
    outcome : array of shape (n,)
    arm : array of shape (n,)
        Arm labels; two or more arms, randomized.
    covariates : DataFrame or array of shape (n, p)
        Numeric pre-treatment covariates.
    control : label, default=None
        The control arm (baseline of the causal forest); default the first label.
    methods : sequence of str, default=all five
        Personalization methods to evaluate; ``()`` to skip the empirical part.
    test_size : float, default=0.3
        Holdout share (within each arm).
    n_bins : int, default=10
        Quantile bins of the stratified sigma and rho estimators.
    n_bootstrap : int, default=200
        Bootstrap replicates (parameter intervals, predicted-gain interval,
        method SEs).
    n_sims, n_individuals : int
        Monte Carlo size of the predicted gain.
    n_estimators, learning_rate, num_leaves, min_child_samples, forest_trees
        Learner options.
    grid_size : int, default=21
        Points per sensitivity curve.
    random_state : int or None, default=0
    n_jobs : int, default=1

    Returns
    -------
    PersonalizationResult

    References
    ----------
    Shchetkina and Berman (2024), sections 5-6, Algorithm 2.
    """
    where = "analyze_personalization"
    y = check_outcome(outcome)
    codes, labels = encode_arms(arm, control, where)
    x, names = covariate_matrix(covariates, y.shape[0], where)
    labelled = np.asarray(labels, dtype=object)[codes]
    rng = as_generator(random_state)
    test = holdout_mask(codes, test_size, rng)
    seed = seed_int(rng)
    learner = dict(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                   min_child_samples=min_child_samples, n_jobs=n_jobs)
    params = estimate_parameters(
        y, labelled, x, control=labels[0], test=test, n_bins=n_bins, n_bootstrap=n_bootstrap,
        random_state=seed, **learner,
    )
    point = params.point()
    n_per_arm = int(np.bincount(codes[~test]).min())
    mc = dict(n_individuals=n_individuals, n_per_arm=n_per_arm, random_state=seed)
    predicted = simulate_gain(point, n_sims=n_sims, **mc)
    reps = params.replicate_parameters()
    n_sims_rep = max(100, n_sims // 4)
    rep_gains = np.array([simulate_gain(p, n_sims=n_sims_rep, **mc).gain for p in reps])
    predicted_gain = percentile_interval(predicted.gain, rep_gains)
    given = simulate_gain(point, arm_means=[params.arm_means[a] for a in labels], n_sims=n_sims, **mc)

    comparison = None
    if methods:
        comparison = compare_methods(
            y, labelled, x, methods=methods, control=labels[0], test=test, n_bootstrap=n_bootstrap,
            forest_trees=forest_trees, random_state=seed, **learner,
        )
    sens = sensitivity(point, grid_size=grid_size, n_sims=max(200, n_sims // 2),
                       n_sims_elasticity=max(1000, 2 * n_sims), n_individuals=min(n_individuals, 300),
                       n_per_arm=n_per_arm, random_state=seed)
    return PersonalizationResult(
        parameters=params, predicted=predicted, predicted_gain=predicted_gain,
        predicted_given_means=given, comparison=comparison, sensitivity=sens, arms=labels,
        control=labels[0], outcome_name=outcome_name, treatment_name=treatment_name,
        n=int(y.shape[0]), covariate_names=names, truth=truth,
    )


_CONTROL_PATTERN = re.compile(r"control|\bno\b", re.IGNORECASE)


def prepare_covariates(frame: pd.DataFrame, covariates=None, exclude=()) -> pd.DataFrame:
    """Covariate matrix of a frame: the given columns (categorical ones one-hot
    encoded), or every numeric column not in ``exclude`` (DESIGN.md section 5b)."""
    if covariates is None:
        cols = [c for c in frame.columns
                if c not in set(exclude) and pd.api.types.is_numeric_dtype(frame[c])
                and not pd.api.types.is_bool_dtype(frame[c])]
        if not cols:
            raise ColumnError(
                "No numeric covariate columns besides the treatment and outcome; pass --covariates a,b,c."
            )
        return frame[cols].astype(float)
    missing = [c for c in covariates if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"Covariate column(s) {example_ids(missing)} not in the data; available columns: "
            f"{example_ids(list(frame.columns), 20)}."
        )
    parts = []
    for c in covariates:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            parts.append(col.astype(float).rename(str(c)))
        else:
            dummies = pd.get_dummies(col.astype("string"), prefix=str(c), drop_first=True, dtype=float)
            parts.append(dummies)
    return pd.concat(parts, axis=1)


def personalize_frame(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str,
    *,
    control=None,
    covariates=None,
    **options,
) -> PersonalizationResult:
    """Run :func:`analyze_personalization` on a DataFrame with named columns.

    Parameters
    ----------
    frame : pandas.DataFrame
    treatment : str
        Column of arm labels (0/1 or names).
    outcome : str
        Numeric outcome column.
    control : label, default=None
        See :func:`resolve_control`.
    covariates : list of str, default=None
        Covariate columns (categorical ones one-hot encoded); default every
        other numeric column.
    **options
        Passed to :func:`analyze_personalization`.

    Examples
    --------
    >>> from manylift.simulate.multiarm import simulate_multiarm
    >>> d = simulate_multiarm(n=3000, random_state=0).data
    >>> r = personalize_frame(d, "arm", "outcome", methods=("ols",), n_bootstrap=20,
    ...                       n_sims=200, grid_size=3, n_estimators=50)
    >>> r.best_uniform_arm
    'arm_2'
    """
    for name, col in (("treatment", treatment), ("outcome", outcome)):
        if col not in frame.columns:
            raise ColumnError(
                f"The {name} column {col!r} is not in the data; available columns: "
                f"{example_ids(list(frame.columns), 20)}."
            )
    if not pd.api.types.is_numeric_dtype(frame[outcome]):
        raise ColumnError(f"The outcome column {outcome!r} must be numeric; got dtype {frame[outcome].dtype}.")
    labels = pd.unique(frame[treatment].dropna())
    control = resolve_control(labels, control)
    x = prepare_covariates(frame, covariates, exclude=(treatment, outcome))
    return analyze_personalization(
        frame[outcome].to_numpy(dtype=float), frame[treatment].to_numpy(dtype=object), x,
        control=control, outcome_name=outcome, treatment_name=treatment, **options,
    )
