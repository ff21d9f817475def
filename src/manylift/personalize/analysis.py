"""The whole personalization analysis of one experiment (what ``manylift personalize`` runs).

1. Split the experiment 70/30 within arm (one split for everything below).
2. Estimate sigma, rho, s, sigma_eps (:func:`estimate_parameters`).
3. Predicted gain: Algorithm 2 at the estimates, F = N(0, s^2), the uniform
   arm chosen from noisy means of an experiment the size of the training part;
   95% interval from pushing the bootstrap replicates of the parameters
   through the same Monte Carlo.  Also the gain given the observed arm means.
4. Empirical gain of the five methods by IPW on the holdout
   (:func:`compare_methods`), and the arm each method recommends for every row.
5. Sensitivity curves and elasticities around the estimates.

Gains are in outcome units per customer, relative to the best uniform arm.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.rng import as_generator, seed_int
from manylift.personalize._bootstrap import (
    MIN_ROWS_PER_ARM,
    Interval,
    holdout_mask,
    percentile_interval,
    prepare_arrays,
)
from manylift.personalize.empirical import MethodComparison, compare_methods
from manylift.personalize.estimation import ParameterEstimates, estimate_parameters
from manylift.personalize.methods import METHODS
from manylift.personalize.montecarlo import GainSimulation, simulate_gain
from manylift.personalize.sensitivity import SensitivityResult, sensitivity
from manylift.single.data import SingleData, plain, resolve_control
from manylift.single.progress import as_progress

__all__ = [
    "PersonalizationResult",
    "analyze_personalization",
    "personalize_frame",
    "resolve_control",
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
    assignments : pandas.DataFrame or None
        One row per input row: ``row_id``, ``split`` (``"train"`` or ``"holdout"``),
        ``arm`` (the arm the row had) and ``recommended_<method>`` (the arm each
        method assigns it; in-sample for training rows).
    covariates_source : str
        How the covariates were chosen (see :class:`~manylift.single.SingleData`).
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
    assignments: pd.DataFrame | None = field(default=None, repr=False)
    covariates_source: str = "named"

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
        """The ``results.json`` content (keys in ``docs/personalize.md``)."""
        comp = self.comparison
        out = {
            "schema_version": SCHEMA_VERSION,
            "command": "personalize",
            "data": {
                "rows": self.n, "arms": [str(a) for a in self.arms], "n_arms": len(self.arms),
                "control": str(self.control), "outcome": self.outcome_name,
                "treatment": self.treatment_name, "covariates": list(self.covariate_names),
                "train_rows": self.parameters.n_train, "holdout_rows": self.parameters.n_test,
                "covariates_source": self.covariates_source,
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
                                 "gain_change": r["gain_change"], "elasticity": r["elasticity"]}
                for r in self.sensitivity.elasticities.to_dict(orient="records")
            },
            "largest_lever": {"parameter": self.sensitivity.largest_lever["parameter"],
                              "change": self.sensitivity.largest_lever["change"],
                              "gain_change": float(self.sensitivity.largest_lever["gain_change"])},
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

    def summary_lines(self) -> list[str]:
        """The headline in words, for the terminal."""
        pg = self.predicted_gain
        best = plain(self.best_uniform_arm)
        lines = [
            f"best uniform arm: {best} (mean {self.outcome_name} "
            f"{self.arm_means[self.best_uniform_arm]:.4g} per customer)",
            f"predicted gain from personalization: {pg.estimate:.4g} (95% interval {pg.lo:.4g} "
            f"to {pg.hi:.4g}) in outcome units ({self.outcome_name}) per customer, relative to "
            f"the best uniform arm ({best}, given to everyone)",
        ]
        if self.comparison is not None and self.comparison.methods:
            lines.append("measured gain of each method on the holdout (IPW), same units:")
            for name, r in self.comparison.methods.items():
                lines.append(f"  {name:14s} {r.gain:+.4g} (se {r.gain_se:.2g})")
        top = self.sensitivity.largest_lever
        lines.append(f"largest lever: a {top['change']} {top['parameter']} changes the predicted "
                     f"gain by {top['gain_change']:+.3g}")
        return lines

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
    progress=False,
) -> PersonalizationResult:
    """Will personalization beat the best uniform arm in this experiment?

    Parameters
    ----------
    outcome : array of shape (n,)
    arm : array of shape (n,)
        Arm labels; two or more arms, randomized.
    covariates : DataFrame or array of shape (n, p)
        Numeric pre-treatment covariates (a DataFrame gives their names).
    control : label, default=None
        The control arm (baseline of the causal forest); default 0, the label
        reading like a control, else the first label.
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
    progress : bool, default=False
        Stage lines and progress bars on standard error.

    Returns
    -------
    PersonalizationResult

    References
    ----------
    Shchetkina, A. and Berman, R. (2024). When Is Heterogeneity Actionable for
    Personalization? Sections 5-6, Algorithm 2.
    """
    data = prepare_arrays(outcome, arm, covariates, control, "analyze_personalization")
    return _analyze(data, methods=methods, test_size=test_size, n_bins=n_bins,
                    n_bootstrap=n_bootstrap, n_sims=n_sims, n_individuals=n_individuals,
                    n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                    min_child_samples=min_child_samples, forest_trees=forest_trees,
                    grid_size=grid_size, random_state=random_state, n_jobs=n_jobs,
                    outcome_name=outcome_name, treatment_name=treatment_name, truth=truth,
                    progress=progress)


def _analyze(data: SingleData, *, methods, test_size, n_bins, n_bootstrap, n_sims,
             n_individuals, n_estimators, learning_rate, num_leaves, min_child_samples,
             forest_trees, grid_size, random_state, n_jobs, outcome_name, treatment_name, truth,
             progress) -> PersonalizationResult:
    prog = as_progress(progress, "personalize")
    y, codes, labels = data.outcome, data.treatment, data.arms
    x = pd.DataFrame(data.covariates, columns=data.covariate_names)
    labelled = np.asarray(labels, dtype=object)[codes]
    rng = as_generator(random_state)
    test = holdout_mask(codes, test_size, rng)
    seed = seed_int(rng)
    learner = dict(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                   min_child_samples=min_child_samples, n_jobs=n_jobs)
    prog.stage(f"estimating sigma, rho, s and sigma_eps: T-learner on {int((~test).sum()):,} "
               f"training rows, {n_bootstrap} bootstrap replicates on {int(test.sum()):,} "
               f"holdout rows")
    params = estimate_parameters(
        y, labelled, x, control=labels[0], test=test, n_bins=n_bins, n_bootstrap=n_bootstrap,
        random_state=seed, progress=prog, **learner,
    )
    point = params.point()
    n_per_arm = int(np.bincount(codes[~test]).min())
    mc = dict(n_individuals=n_individuals, n_per_arm=n_per_arm, random_state=seed)
    prog.stage(f"predicted gain: Algorithm 2 Monte Carlo ({n_sims} replicates) at the estimates "
               f"and at each bootstrap replicate")
    predicted = simulate_gain(point, n_sims=n_sims, **mc)
    reps = params.replicate_parameters()
    n_sims_rep = max(100, n_sims // 4)
    rep_gains = np.array([simulate_gain(p, n_sims=n_sims_rep, **mc).gain
                          for p in prog.bar(reps, desc="predicted-gain bootstrap")])
    predicted_gain = percentile_interval(predicted.gain, rep_gains)
    given = simulate_gain(point, arm_means=[params.arm_means[a] for a in labels], n_sims=n_sims, **mc)

    comparison, assignments = None, None
    if methods:
        prog.stage(f"training {len(methods)} personalization method(s) on 70% and evaluating "
                   f"them by IPW on the holdout")
        comparison = compare_methods(
            y, labelled, x, methods=methods, control=labels[0], test=test, n_bootstrap=n_bootstrap,
            forest_trees=forest_trees, random_state=seed, progress=prog, **learner,
        )
        assignments = _assignments(data, comparison, test)
    sens = sensitivity(point, grid_size=grid_size, n_sims=max(200, n_sims // 2),
                       n_sims_elasticity=max(1000, 2 * n_sims), n_individuals=min(n_individuals, 300),
                       n_per_arm=n_per_arm, random_state=seed, progress=prog)
    return PersonalizationResult(
        parameters=params, predicted=predicted, predicted_gain=predicted_gain,
        predicted_given_means=given, comparison=comparison, sensitivity=sens, arms=labels,
        control=labels[0], outcome_name=outcome_name, treatment_name=treatment_name,
        n=data.n, covariate_names=list(data.covariate_names), truth=truth,
        assignments=assignments, covariates_source=data.covariates_source,
    )


def _assignments(data: SingleData, comparison: MethodComparison, test) -> pd.DataFrame:
    """The arm each method recommends for every row (the per-unit export)."""
    labels = np.asarray([plain(a) for a in data.arms], dtype=object)
    out = pd.DataFrame({"row_id": data.row_ids,
                        "split": np.where(test, "holdout", "train"),
                        "arm": labels[data.treatment]})
    for name, policy in comparison.policies.items():
        out[f"recommended_{name}"] = labels[policy.predict_codes(data.covariates)]
    for c in out.columns[2:]:
        out[c] = out[c].astype(str)
    return out


def personalize_frame(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str,
    *,
    control=None,
    covariates=None,
    allow_imbalanced=(),
    allow_duplicates: bool | None = None,
    id: str | None = None,  # noqa: A002 - the column's role, as on the command line
    **options,
) -> PersonalizationResult:
    """Run :func:`analyze_personalization` on a DataFrame with named columns.

    The table goes through :meth:`manylift.single.SingleData.from_frame`, the
    preparer of every single-experiment command (a randomized experiment: the
    covariates must pass the randomization balance check).

    Parameters
    ----------
    frame : pandas.DataFrame
    treatment : str
        Column of arm labels (0/1 or names).
    outcome : str
        Numeric outcome column.
    control : label, default=None
        See :func:`resolve_control`.
    covariates : list of str, "auto" or None, default=None
        Pre-treatment columns (categorical ones one-hot encoded); ``None`` the
        pre-treatment columns a built-in dataset declares; ``"auto"`` every other
        numeric column.
    allow_imbalanced : iterable of str, default=()
        Covariates kept although the balance check flags them.
    allow_duplicates : bool, default=None
        Keep rows equal in every column (default: refuse them, unless the
        dataset declares that rows may repeat).
    id : str, default=None
        Column identifying rows in ``assignments`` (default: the row position).
    **options
        Passed to :func:`analyze_personalization`.

    Examples
    --------
    >>> from manylift.simulate.multiarm import simulate_multiarm
    >>> d = simulate_multiarm(n=3000, random_state=0).data
    >>> r = personalize_frame(d, "arm", "outcome", covariates=["x1", "x2", "x3", "x4"],
    ...                       methods=("ols",), n_bootstrap=20, n_sims=200, grid_size=3,
    ...                       n_estimators=50)
    >>> r.best_uniform_arm
    'arm_2'
    """
    data = SingleData.from_frame(
        frame, treatment, outcome, covariates, control=control, id=id, randomized=True,
        allow_imbalanced=allow_imbalanced, allow_duplicates=allow_duplicates,
        min_rows_per_arm=MIN_ROWS_PER_ARM, require_covariates=True, where="personalize",
    )
    defaults = {k: p.default for k, p in inspect.signature(analyze_personalization).parameters.items()
                if p.kind == p.KEYWORD_ONLY and k not in ("control", "outcome_name",
                                                          "treatment_name")}
    unknown = set(options) - set(defaults)
    if unknown:
        from manylift._core.errors import ModelError

        raise ModelError(f"Unknown option(s) of personalize_frame: {sorted(unknown)}; the options "
                         f"are {sorted(defaults)}.")
    return _analyze(data, outcome_name=outcome, treatment_name=treatment,
                    **{**defaults, **options})
