"""Bayesian campaign decisioning: pooled and hierarchical uplift models with NumPyro.

For one randomized experiment with customer segments (e.g. Hillstrom's
history segments), :class:`BayesianUplift` fits

* a **pooled** model: one treatment effect for everyone, pre-treatment
  covariates as controls;
* a **hierarchical** model: the treatment effect varies by segment with
  partial pooling, in the non-centred parameterisation, and every segment has
  its own baseline;

for a binary outcome (Bernoulli, logit link) or a continuous one (Gaussian on
the standardized outcome), with NUTS (NumPyro) and ArviZ diagnostics.  Its
result objects give the effect on the model scale (log-odds for a binary
outcome) and as **uplift**: the average over the segment's rows of
``P(y=1 | treated, x) - P(y=1 | control, x)`` (outcome units for the Gaussian
family), computed per posterior draw, with ``P(effect > 0)`` and, given a
breakeven uplift ``cost / margin``, ``P(uplift > breakeven)``.  Prior and
posterior predictive checks compare the implied outcome rate with the observed
one.  The decision tiers built on these live in :mod:`manylift.policy.tiers`.

Model (hierarchical, binary outcome; ``s(i)`` the segment of row ``i``,
``W_i`` 1 if treated, ``x_i`` the standardized covariates)::

    logit P(y_i = 1) = a_s(i) + tau_s(i) W_i + x_i' beta
    tau_s = mu_tau + sigma_tau z_s        z_s ~ N(0, 1)      (non-centred)
    mu_tau ~ N(0, effect_scale^2)         sigma_tau ~ HalfNormal(effect_sd_scale)
    a_s ~ N(intercept_loc, intercept_scale^2)   beta_k ~ N(0, covariate_scale^2)

The baselines ``a_s`` are not pooled: segments usually differ a lot in their
base rate and are well measured on it, and a pooled baseline in either
parameterisation mixes poorly then (its R-hat was the worst in our tests).
The pooled model drops the segment terms (``a_s = alpha``, ``tau_s = tau ~
N(0, effect_scale^2)``).  The Gaussian family replaces the Bernoulli-logit
likelihood by ``y_i ~ N(eta_i, sigma^2)``, ``sigma ~ HalfNormal(noise_scale)``,
with ``y`` standardized (so the prior scales are in outcome standard
deviations) and effects reported back in outcome units.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from manylift._core.checks import check_in, check_positive_int, check_probability, example_ids
from manylift._core.errors import (
    ColumnError,
    ConvergenceWarning,
    DataError,
    DataWarning,
    ModelError,
)
from manylift._core.rng import seed_int
from manylift.single._data import resolve_control

__all__ = [
    "BayesPriors",
    "BayesianUplift",
    "BayesDiagnostics",
    "OverallEffect",
    "SegmentEffects",
    "PredictiveCheck",
    "resolve_control",
]

_FAMILIES = ("bernoulli", "gaussian")
_MODELS = ("pooled", "hierarchical")
_CHAIN_METHODS = ("vectorized", "sequential", "parallel")


# --------------------------------------------------------------------------
# priors
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class BayesPriors:
    """Scales of the weakly informative priors (all overridable).

    Scales are on the linear-predictor scale: log-odds for a binary outcome,
    standard deviations of the outcome for the Gaussian family.  Covariates are
    standardized (numeric) or 0/1 dummies (categorical), so one scale fits all
    slopes.

    Parameters
    ----------
    intercept_loc : float or None, default=None
        Prior mean of the intercept (control log-odds at average covariates).
        ``None`` centres it on the observed outcome rate, ``logit(mean y)``
        (0 for the standardized Gaussian outcome), so that the prior
        predictive rates sit around plausible values whatever the base rate.
    intercept_scale : float, default=1.5
        Prior sd of the intercept: a factor of about e^3 = 20 either way on the
        odds at two sd.
    effect_scale : float, default=1.0
        Prior sd of the (mean) treatment effect.  An e-mail that multiplies the
        odds of conversion by more than e^2 = 7.4 is already two sd out.
    effect_sd_scale : float, default=0.5
        Half-normal scale of the between-segment sd of the effect (how much
        segments may differ).
    covariate_scale : float, default=1.0
        Prior sd of each covariate slope (per sd of a numeric covariate).
    noise_scale : float, default=1.0
        Half-normal scale of the residual sd (Gaussian family; outcome sd units).

    Examples
    --------
    >>> BayesPriors(effect_scale=0.5).effect_scale
    0.5
    """

    intercept_loc: float | None = None
    intercept_scale: float = 1.5
    effect_scale: float = 1.0
    effect_sd_scale: float = 0.5
    covariate_scale: float = 1.0
    noise_scale: float = 1.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "intercept_loc":
                if v is not None and not np.isfinite(v):
                    raise ModelError(
                        f"The 'intercept_loc' parameter of BayesPriors must be a finite number "
                        f"or None; got {v!r} instead."
                    )
                continue
            if not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
                raise ModelError(
                    f"The {f.name!r} parameter of BayesPriors must be a positive number; "
                    f"got {v!r} instead."
                )

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------
def _summ(draws: np.ndarray, breakeven: float | None = None) -> dict:
    """Posterior summary of 1-d draws: mean, sd, 10/90% and 2.5/97.5% quantiles."""
    q = np.quantile(draws, [0.025, 0.10, 0.90, 0.975])
    out = {
        "mean": float(np.mean(draws)),
        "sd": float(np.std(draws, ddof=1)) if draws.size > 1 else 0.0,
        "lo": float(q[0]),
        "q10": float(q[1]),
        "q90": float(q[2]),
        "hi": float(q[3]),
        "p_positive": float(np.mean(draws > 0)),
    }
    if breakeven is not None:
        out["p_breakeven"] = float(np.mean(draws > breakeven))
    return out


@dataclass(frozen=True, eq=False)
class OverallEffect:
    """The average effect over all rows, per posterior draw.

    Attributes
    ----------
    effect_draws : ndarray, shape (n_draws,)
        The treatment effect on the model scale (log-odds for a binary outcome,
        outcome units for the Gaussian family); for the hierarchical model the
        population mean ``mu_tau``.
    uplift_draws : ndarray, shape (n_draws,)
        Mean over all rows of the predicted treated-minus-control outcome
        (probability for a binary outcome), per draw.
    breakeven : float or None
        Uplift above which treating pays (``cost / margin``), if given.
    scale : str
        ``"log-odds"`` or ``"outcome units"``.
    """

    effect_draws: np.ndarray
    uplift_draws: np.ndarray
    breakeven: float | None = None
    scale: str = "log-odds"

    @property
    def effect(self) -> dict:
        return _summ(self.effect_draws)

    @property
    def uplift(self) -> dict:
        return _summ(self.uplift_draws, self.breakeven)

    @property
    def p_positive(self) -> float:
        return float(np.mean(self.uplift_draws > 0))

    def to_frame(self) -> pd.DataFrame:
        rows = {f"effect ({self.scale})": self.effect, "uplift": self.uplift}
        return pd.DataFrame(rows).T

    def __repr__(self) -> str:
        u = self.uplift
        return (
            f"OverallEffect(uplift={u['mean']:.4g} [95% {u['lo']:.4g}, {u['hi']:.4g}], "
            f"P(uplift>0)={u['p_positive']:.3f}, n_draws={self.uplift_draws.size})"
        )


@dataclass(frozen=True, eq=False)
class SegmentEffects:
    """Per-segment raw lift, counts and posterior effects.

    Attributes
    ----------
    segments : tuple of str
        Segment labels, sorted.
    n, n_treated, n_control : ndarray of int, shape (n_segments,)
        Row counts.
    raw_lift : ndarray, shape (n_segments,)
        Difference in mean outcome, treated minus control, within the segment
        (NaN where an arm is empty).
    effect_draws : ndarray, shape (n_segments, n_draws)
        Treatment effect on the model scale per segment and draw.
    uplift_draws : ndarray, shape (n_segments, n_draws)
        Mean over the segment's rows of the predicted treated-minus-control
        outcome, per draw.
    breakeven : float or None
        Uplift above which treating pays (``cost / margin``), if given.
    model : str
        ``"hierarchical"`` or ``"pooled"``.
    scale : str
        ``"log-odds"`` or ``"outcome units"``.
    """

    segments: tuple
    n: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    raw_lift: np.ndarray
    effect_draws: np.ndarray
    uplift_draws: np.ndarray
    breakeven: float | None = None
    model: str = "hierarchical"
    scale: str = "log-odds"

    def with_breakeven(self, breakeven: float | None) -> SegmentEffects:
        """The same effects with another breakeven uplift (for P(uplift > breakeven))."""
        from dataclasses import replace

        return replace(self, breakeven=None if breakeven is None else float(breakeven))

    @property
    def p_positive(self) -> np.ndarray:
        return np.mean(self.uplift_draws > 0, axis=1)

    @property
    def p_breakeven(self) -> np.ndarray | None:
        if self.breakeven is None:
            return None
        return np.mean(self.uplift_draws > self.breakeven, axis=1)

    def to_frame(self) -> pd.DataFrame:
        """One row per segment: counts, raw lift, effect and uplift summaries, probabilities."""
        recs = []
        for k, name in enumerate(self.segments):
            e = _summ(self.effect_draws[k])
            u = _summ(self.uplift_draws[k], self.breakeven)
            rec = {
                "segment": name,
                "n": int(self.n[k]),
                "n_treated": int(self.n_treated[k]),
                "n_control": int(self.n_control[k]),
                "raw_lift": float(self.raw_lift[k]),
                "effect_mean": e["mean"],
                "effect_q10": e["q10"],
                "effect_q90": e["q90"],
                "effect_lo": e["lo"],
                "effect_hi": e["hi"],
                "uplift_mean": u["mean"],
                "uplift_sd": u["sd"],
                "uplift_q10": u["q10"],
                "uplift_q90": u["q90"],
                "uplift_lo": u["lo"],
                "uplift_hi": u["hi"],
                "p_positive": u["p_positive"],
            }
            if self.breakeven is not None:
                rec["p_breakeven"] = u["p_breakeven"]
            recs.append(rec)
        return pd.DataFrame.from_records(recs)

    def __repr__(self) -> str:
        return (
            f"SegmentEffects(model={self.model!r}, n_segments={len(self.segments)}, "
            f"n_draws={self.uplift_draws.shape[1]}, breakeven={self.breakeven})\n"
            + self.to_frame()[["segment", "n", "raw_lift", "uplift_mean", "uplift_lo",
                               "uplift_hi", "p_positive"]].to_string(index=False)
        )


@dataclass(frozen=True, eq=False)
class BayesDiagnostics:
    """MCMC diagnostics (ArviZ rank-normalized split R-hat, bulk/tail ESS, divergences).

    Attributes
    ----------
    rhat_max, ess_bulk_min, ess_tail_min : float
        Worst values over all scalar parameters.
    divergences : int
        Divergent transitions after warm-up, all chains.
    n_draws, n_chains : int
    rhat_threshold : float
        R-hat above this fails (default 1.01).
    ess_threshold : float
        Bulk or tail ESS below this fails (default 100 per chain).
    table : pandas.DataFrame
        Per-parameter ``rhat``, ``ess_bulk``, ``ess_tail``.
    """

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    n_draws: int
    n_chains: int
    rhat_threshold: float
    ess_threshold: float
    table: pd.DataFrame = field(repr=False)

    @property
    def problems(self) -> list[str]:
        out = []
        if not self.rhat_max <= self.rhat_threshold:
            worst = self.table["rhat"].fillna(np.inf).idxmax()
            out.append(f"R-hat is {self.rhat_max:.3f} (> {self.rhat_threshold}) for {worst}")
        ess = min(self.ess_bulk_min, self.ess_tail_min)
        if not ess >= self.ess_threshold:
            worst = self.table[["ess_bulk", "ess_tail"]].min(axis=1).fillna(0).idxmin()
            out.append(
                f"the effective sample size is {ess:.0f} (< {self.ess_threshold:.0f}) for {worst}"
            )
        if self.divergences > 0:
            out.append(
                f"{self.divergences} of {self.n_draws * self.n_chains} draws came from "
                f"divergent transitions"
            )
        return out

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict:
        return {
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": int(self.divergences),
            "passed": self.passed,
        }

    def __repr__(self) -> str:
        return (
            f"BayesDiagnostics(rhat_max={self.rhat_max:.4f}, ess_bulk_min={self.ess_bulk_min:.0f}, "
            f"ess_tail_min={self.ess_tail_min:.0f}, divergences={self.divergences}, "
            f"passed={self.passed})"
        )


@dataclass(frozen=True, eq=False)
class PredictiveCheck:
    """A prior or posterior predictive check of the outcome rate.

    Attributes
    ----------
    kind : str
        ``"prior"`` or ``"posterior"``.
    observed : float
        The observed mean outcome (conversion rate for a binary outcome).
    draws : ndarray, shape (n_draws,)
        The mean outcome implied by each draw: for the prior check, the mean of
        the predicted probabilities (the implied rate); for the posterior
        check, the mean of a replicated data set (includes sampling noise).
    row_values : ndarray
        A sample of row-level predicted probabilities / means (for histograms
        of the implied per-customer rates).
    groups : pandas.DataFrame
        Per segment x arm: ``observed``, predictive ``mean``, ``lo``, ``hi``
        (95%) and ``p_value`` = P(replicated >= observed).
    """

    kind: str
    observed: float
    draws: np.ndarray
    row_values: np.ndarray = field(repr=False)
    groups: pd.DataFrame = field(repr=False)

    @property
    def p_value(self) -> float:
        """Share of predictive draws at or above the observed value."""
        return float(np.mean(self.draws >= self.observed))

    @property
    def interval(self) -> tuple[float, float]:
        lo, hi = np.quantile(self.draws, [0.025, 0.975])
        return float(lo), float(hi)

    @property
    def covers_observed(self) -> bool:
        lo, hi = self.interval
        return bool(lo <= self.observed <= hi)

    def to_dict(self) -> dict:
        lo, hi = self.interval
        return {
            "observed": self.observed,
            "mean": float(np.mean(self.draws)),
            "lo": lo,
            "hi": hi,
            "p_value": self.p_value,
        }

    def to_frame(self) -> pd.DataFrame:
        return self.groups.copy()

    def __repr__(self) -> str:
        lo, hi = self.interval
        return (
            f"PredictiveCheck(kind={self.kind!r}, observed={self.observed:.4g}, "
            f"predictive 95% [{lo:.4g}, {hi:.4g}], p_value={self.p_value:.3f})"
        )


# --------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------
_CONTROL_WORDS = re.compile(r"\b(control|no|none|holdout|hold-out)\b", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class _Design:
    treatment: np.ndarray  # 0/1 float
    outcome: np.ndarray  # raw outcome (float)
    y_model: np.ndarray  # outcome on the model scale (standardized for gaussian)
    X: np.ndarray  # standardized covariates, (n, k)
    covariate_names: tuple
    segment_index: np.ndarray  # int, (n,)
    segments: tuple
    y_loc: float
    y_scale: float
    control: object
    family: str


def _prepare(data, treatment, outcome, segment, covariates, control, family) -> _Design:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"`data` must be a pandas DataFrame; got {type(data).__name__}.")
    if len(data) == 0:
        raise DataError("The data has no rows. Pass a non-empty table.")
    covariates = list(covariates or [])
    needed = [treatment, outcome] + ([segment] if segment is not None else []) + covariates
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ColumnError(
            f"Column(s) {example_ids(missing)} not found in the data; available columns: "
            f"{example_ids(list(data.columns), 20)}. Check the column names."
        )
    for role, col in (("outcome", outcome), ("segment", segment)):
        if col is not None and col == treatment:
            raise ModelError(f"The {role} column {col!r} is also the treatment column.")
    overlap = [c for c in covariates if c in (treatment, outcome, segment)]
    if overlap:
        raise ModelError(
            f"Covariate(s) {example_ids(overlap)} are also the treatment, outcome or segment "
            f"column. Remove them from `covariates`."
        )
    for col in [treatment] + ([segment] if segment is not None else []):
        n_na = int(data[col].isna().sum())
        if n_na:
            raise DataError(
                f"Column {col!r} has {n_na} missing value(s) (e.g. rows "
                f"{example_ids(np.flatnonzero(data[col].isna().to_numpy()))}). Drop those rows first."
            )
    ctrl = resolve_control(data[treatment], control)
    t_col = data[treatment]
    is_control = (t_col == ctrl).to_numpy() | (t_col.astype(str) == str(ctrl)).to_numpy()
    w = (~is_control).astype(float)
    if w.sum() == 0 or w.sum() == len(w):
        raise DataError(
            f"Column {treatment!r} has {int(w.sum())} treated and {int(len(w) - w.sum())} control "
            f"rows (control value {ctrl!r}); both arms are needed."
        )
    try:
        y = pd.to_numeric(data[outcome], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise DataError(
            f"Outcome column {outcome!r} must be numeric; got values like "
            f"{example_ids(data[outcome].astype(str).unique()[:5])}."
        ) from None
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise DataError(
            f"Outcome column {outcome!r} has {bad.size} missing or non-finite value(s) at rows "
            f"{example_ids(bad)}. Drop or impute those rows first."
        )
    if family == "bernoulli":
        other = ~np.isin(y, (0.0, 1.0))
        if other.any():
            vals = pd.unique(y[other])
            raise DataError(
                f"Outcome column {outcome!r} must hold only 0/1 for family='bernoulli'; "
                f"{int(other.sum())} row(s) hold other values ({example_ids(vals)}). Use "
                f"family='gaussian' for a continuous outcome."
            )
        y_loc, y_scale = 0.0, 1.0
        y_model = y
    else:
        y_loc = float(y.mean())
        y_scale = float(y.std())
        if not y_scale > 0:
            raise DataError(f"Outcome column {outcome!r} is constant ({y_loc!r}); nothing to model.")
        y_model = (y - y_loc) / y_scale

    blocks, names = [], []
    for c in covariates:
        col = data[c]
        n_na = int(col.isna().sum())
        if n_na:
            raise DataError(
                f"Covariate {c!r} has {n_na} missing value(s) (e.g. rows "
                f"{example_ids(np.flatnonzero(col.isna().to_numpy()))}). Drop or impute them first."
            )
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x = col.to_numpy(dtype=float)
            if not np.isfinite(x).all():
                raise DataError(f"Covariate {c!r} has non-finite values. Drop or fix those rows.")
            sd = x.std()
            if not sd > 0:
                warnings.warn(f"Covariate {c!r} is constant; it is left out.", DataWarning,
                              stacklevel=3)
                continue
            blocks.append(((x - x.mean()) / sd)[:, None])
            names.append(c)
        else:
            cats = sorted(col.astype(str).unique())
            codes = col.astype(str).to_numpy()
            for cat in cats[1:]:  # drop the first level: the intercept carries it
                blocks.append((codes == cat).astype(float)[:, None])
                names.append(f"{c}={cat}")
    X = np.hstack(blocks) if blocks else np.zeros((len(y), 0))

    if segment is None:
        seg_names = ("all",)
        seg_idx = np.zeros(len(y), dtype=np.int32)
    else:
        labels = data[segment].astype(str).to_numpy()
        seg_names_arr, seg_idx = np.unique(labels, return_inverse=True)
        seg_names = tuple(str(s) for s in seg_names_arr)
        seg_idx = seg_idx.astype(np.int32)
        counts_t = np.bincount(seg_idx, weights=w, minlength=len(seg_names))
        counts = np.bincount(seg_idx, minlength=len(seg_names))
        one_arm = [seg_names[k] for k in range(len(seg_names))
                   if counts_t[k] == 0 or counts_t[k] == counts[k]]
        if one_arm:
            warnings.warn(
                f"{len(one_arm)} segment(s) have only one arm ({example_ids(one_arm)}); their "
                f"effects rest on the prior and the other segments (partial pooling).",
                DataWarning, stacklevel=3,
            )
    return _Design(
        treatment=w, outcome=y, y_model=y_model, X=X, covariate_names=tuple(names),
        segment_index=seg_idx, segments=seg_names, y_loc=y_loc, y_scale=y_scale,
        control=ctrl, family=family,
    )


def _raw_lift(d: _Design):
    S = len(d.segments)
    idx, w, y = d.segment_index, d.treatment, d.outcome
    n = np.bincount(idx, minlength=S)
    nt = np.bincount(idx, weights=w, minlength=S)
    nc = n - nt
    st = np.bincount(idx, weights=w * y, minlength=S)
    sc = np.bincount(idx, weights=(1 - w) * y, minlength=S)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where((nt > 0) & (nc > 0), st / np.maximum(nt, 1) - sc / np.maximum(nc, 1), np.nan)
    return n.astype(int), nt.astype(int), nc.astype(int), lift


# --------------------------------------------------------------------------
# the NumPyro model
# --------------------------------------------------------------------------
def _numpyro_model(W, X, seg, y=None, *, n_segments, hierarchical, family, priors, intercept_loc):
    import numpyro
    import numpyro.distributions as dist

    k = X.shape[1]
    if k:
        beta = numpyro.sample(
            "beta", dist.Normal(0.0, priors.covariate_scale).expand([k]).to_event(1)
        )
        lin = X @ beta
    else:
        lin = 0.0
    if hierarchical:
        mu = numpyro.sample("effect_mean", dist.Normal(0.0, priors.effect_scale))
        sd = numpyro.sample("effect_sd", dist.HalfNormal(priors.effect_sd_scale))
        z = numpyro.sample("effect_z", dist.Normal(0.0, 1.0).expand([n_segments]).to_event(1))
        tau = numpyro.deterministic("effect", mu + sd * z)
        base = numpyro.sample(
            "baseline",
            dist.Normal(intercept_loc, priors.intercept_scale).expand([n_segments]).to_event(1),
        )
        eta = base[seg] + tau[seg] * W + lin
    else:
        alpha = numpyro.sample("alpha", dist.Normal(intercept_loc, priors.intercept_scale))
        tau = numpyro.sample("effect", dist.Normal(0.0, priors.effect_scale))
        eta = alpha + tau * W + lin
    if family == "gaussian":
        sigma = numpyro.sample("noise_sd", dist.HalfNormal(priors.noise_scale))
        numpyro.sample("y", dist.Normal(eta, sigma), obs=y)
    else:
        numpyro.sample("y", dist.BernoulliLogits(eta), obs=y)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


# --------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------
class BayesianUplift:
    """Pooled or hierarchical Bayesian uplift model fitted with NumPyro NUTS.

    Parameters
    ----------
    model : {"hierarchical", "pooled"}, default="hierarchical"
        ``"hierarchical"``: segment-specific effects and baselines with partial
        pooling (non-centred); ``"pooled"``: one effect for all rows.
    family : {"bernoulli", "gaussian"}, default="bernoulli"
        Bernoulli with logit link for a 0/1 outcome; Gaussian for a continuous
        outcome such as spend (on the standardized outcome).
    priors : BayesPriors, default=None
        Prior scales; ``None`` uses :class:`BayesPriors` defaults.
    num_chains : int, default=4
    num_warmup : int, default=1000
    num_samples : int, default=1000
        Draws kept per chain.
    target_accept : float, default=0.95
        NUTS target acceptance probability (high: sparse segments make the
        hierarchical posterior funnel-shaped); raise it to 0.99 when there
        are divergences.
    max_tree_depth : int, default=10
    chain_method : {"vectorized", "sequential", "parallel"}, default="vectorized"
        How NumPyro runs the chains; ``"vectorized"`` runs them in one
        compiled program (fastest on CPU for these small models).
    rhat_threshold : float, default=1.01
    min_ess : float, default=None
        Bulk and tail ESS below this trigger a :class:`ConvergenceWarning`;
        ``None`` means 100 per chain.
    random_state : int, default=0
        Seeds ``jax.random.PRNGKey``; the same seed gives the same draws on
        the same backend.
    progress_bar : bool, default=False

    Attributes
    ----------
    posterior_ : arviz.InferenceData
        Posterior draws (groups ``posterior``, ``sample_stats``) with dims
        ``chain``, ``draw``, ``segment``, ``covariate``.
    samples_ : dict of ndarray
        Flattened draws (chains concatenated) of every site.
    diagnostics_ : BayesDiagnostics
    segments_ : tuple of str
    covariate_names_ : tuple of str
    control_ : object
        The control value of the treatment column.

    References
    ----------
    Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn sampler. JMLR 15.
    Phan, D., Pradhan, N. and Jankowiak, M. (2019). Composable effects for
    flexible and accelerated probabilistic programming in NumPyro. arXiv:1912.11554.
    Betancourt, M. and Girolami, M. (2015). Hamiltonian Monte Carlo for
    hierarchical models (non-centred parameterisation). In Current Trends in
    Bayesian Methodology with Applications.
    Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Buerkner, P.-C.
    (2021). Rank-normalization, folding, and localization: an improved R-hat.
    Bayesian Analysis 16(2).
    Gelman, A. et al. (2020). Bayesian workflow. arXiv:2011.01808.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"w": rng.integers(0, 2, 2000), "seg": rng.choice(list("ab"), 2000)})
    >>> df["y"] = (rng.random(2000) < 0.2 + 0.1 * df["w"]).astype(int)
    >>> fit = BayesianUplift(num_warmup=200, num_samples=200, num_chains=2).fit(
    ...     df, treatment="w", outcome="y", segment="seg")
    >>> 0.03 < fit.overall_effect().uplift["mean"] < 0.17
    True
    """

    def __init__(self, model="hierarchical", family="bernoulli", priors=None, num_chains=4,
                 num_warmup=1000, num_samples=1000, target_accept=0.95, max_tree_depth=10,
                 chain_method="vectorized", rhat_threshold=1.01, min_ess=None, random_state=0,
                 progress_bar=False):
        self.model = model
        self.family = family
        self.priors = priors
        self.num_chains = num_chains
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.target_accept = target_accept
        self.max_tree_depth = max_tree_depth
        self.chain_method = chain_method
        self.rhat_threshold = rhat_threshold
        self.min_ess = min_ess
        self.random_state = random_state
        self.progress_bar = progress_bar

    # -- validation --------------------------------------------------------
    def _check_params(self):
        where = "BayesianUplift"
        check_in("model", self.model, _MODELS, where)
        check_in("family", self.family, _FAMILIES, where)
        check_in("chain_method", self.chain_method, _CHAIN_METHODS, where)
        check_positive_int("num_chains", self.num_chains, where)
        check_positive_int("num_warmup", self.num_warmup, where)
        check_positive_int("num_samples", self.num_samples, where)
        check_positive_int("max_tree_depth", self.max_tree_depth, where)
        check_probability("target_accept", self.target_accept, where)
        if self.priors is not None and not isinstance(self.priors, BayesPriors):
            raise ModelError(
                f"The 'priors' parameter of {where} must be a BayesPriors instance or None; "
                f"got {type(self.priors).__name__} instead."
            )

    # -- fitting -------------------------------------------------------------
    def fit(self, data, *, treatment, outcome, segment=None, covariates=None, control=None):
        """Fit the model with NUTS.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per customer.
        treatment : str
            Treatment column: 0/1, booleans, or arm labels. Every value other
            than the control value counts as treated (several e-mail versions
            become "any e-mail").
        outcome : str
            Outcome column (0/1 for ``family="bernoulli"``).
        segment : str, default=None
            Segment column (any type; labels are compared as strings). ``None``
            puts every row in one segment ``"all"``.
        covariates : list of str, default=None
            Pre-treatment controls: numeric ones are standardized, others
            one-hot encoded (first level dropped).
        control : scalar, default=None
            The control value of ``treatment``; see :func:`resolve_control`.

        Returns
        -------
        self
        """
        import arviz as az
        import jax
        from numpyro.infer import MCMC, NUTS

        self._check_params()
        priors = self.priors or BayesPriors()
        d = _prepare(data, treatment, outcome, segment, covariates, control, self.family)
        hierarchical = self.model == "hierarchical"
        if priors.intercept_loc is not None:
            loc = float(priors.intercept_loc)
        elif self.family == "bernoulli":
            n = len(d.outcome)
            rate = np.clip(d.outcome.mean(), 0.5 / n, 1 - 0.5 / n)
            loc = float(np.log(rate / (1 - rate)))
        else:
            loc = 0.0
        self.intercept_loc_ = loc
        self.design_ = d
        self.priors_ = priors
        self.segments_ = d.segments
        self.covariate_names_ = d.covariate_names
        self.control_ = d.control
        kwargs = dict(n_segments=len(d.segments), hierarchical=hierarchical, family=self.family,
                      priors=priors, intercept_loc=loc)
        self._model_kwargs = kwargs
        arrays = (d.treatment.astype(np.float32), d.X.astype(np.float32), d.segment_index)
        kernel = NUTS(
            _numpyro_model, target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
        )
        mcmc = MCMC(
            kernel, num_warmup=self.num_warmup, num_samples=self.num_samples,
            num_chains=self.num_chains, chain_method=self.chain_method,
            progress_bar=self.progress_bar,
        )
        with warnings.catch_warnings():
            # NumPyro warns when fewer devices than chains exist; chains then run in one
            # program, which is what we want on CPU.
            warnings.filterwarnings("ignore", message=".*There are not enough devices.*")
            mcmc.run(
                jax.random.PRNGKey(seed_int(self.random_state)), *arrays,
                y=d.y_model.astype(np.float32), extra_fields=("diverging",), **kwargs,
            )
        grouped = {k: np.asarray(v, dtype=float) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
        self.samples_ = {k: v.reshape((-1,) + v.shape[2:]) for k, v in grouped.items()}
        dims = {"beta": ["covariate"]}
        if hierarchical:
            dims.update({"effect": ["segment"], "effect_z": ["segment"],
                         "baseline": ["segment"]})
        coords = {"segment": list(d.segments), "covariate": list(d.covariate_names)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.posterior_ = az.from_dict(
                posterior=grouped, sample_stats={"diverging": diverging},
                coords=coords, dims=dims,
            )
        self.diagnostics_ = self._diagnostics(grouped, int(diverging.sum()))
        if not self.diagnostics_.passed:
            warnings.warn(
                f"The {self.model} model's sampler did not converge cleanly: "
                + "; ".join(self.diagnostics_.problems)
                + f". Do not trust the intervals yet. Fix: increase num_warmup (now "
                f"{self.num_warmup}, try {2 * self.num_warmup}) and num_samples, and raise "
                f"target_accept (now {self.target_accept}, try "
                f"{min(0.99, round(self.target_accept + (1 - self.target_accept) / 2, 3))}).",
                ConvergenceWarning, stacklevel=2,
            )
        return self

    def _diagnostics(self, grouped, divergences) -> BayesDiagnostics:
        import arviz as az

        rows = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, arr in grouped.items():
                if name == "effect_z":
                    continue  # its transform `effect` is reported
                flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
                labels = self._labels(name, flat.shape[2])
                for j in range(flat.shape[2]):
                    x = flat[:, :, j]
                    if x.shape[0] == 1:
                        # ArviZ needs two chains; split-R-hat on one chain compares its halves
                        half = x.shape[1] // 2
                        x = x[:, : 2 * half].reshape(2, half)
                    rows[labels[j]] = {
                        "rhat": float(az.rhat(x)),
                        "ess_bulk": float(az.ess(x, method="bulk")),
                        "ess_tail": float(az.ess(x, method="tail")),
                    }
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "parameter"
        # a parameter that never moves (e.g. a constant) gives NaN; treat as failing
        rhat = table["rhat"].fillna(np.inf)
        min_ess = self.min_ess if self.min_ess is not None else 100.0 * self.num_chains
        return BayesDiagnostics(
            rhat_max=float(rhat.max()),
            ess_bulk_min=float(table["ess_bulk"].fillna(0).min()),
            ess_tail_min=float(table["ess_tail"].fillna(0).min()),
            divergences=int(divergences),
            n_draws=int(self.num_samples),
            n_chains=int(self.num_chains),
            rhat_threshold=float(self.rhat_threshold),
            ess_threshold=float(min_ess),
            table=table,
        )

    def _labels(self, name, k):
        if name in ("effect", "baseline") and k == len(self.segments_) and self.model == "hierarchical":
            return [f"{name}[{s}]" for s in self.segments_]
        if name == "beta":
            return [f"beta[{c}]" for c in self.covariate_names_]
        return [name] if k == 1 else [f"{name}[{j}]" for j in range(k)]

    def _check_fitted(self):
        if not hasattr(self, "samples_"):
            raise ModelError("This BayesianUplift is not fitted yet; call fit(...) first.")

    # -- posterior functionals --------------------------------------------------
    def _params(self, samples):
        """(alpha_per_segment (D,S), tau_per_segment (D,S), beta (D,k), noise (D,) or None)."""
        d = self.design_
        S = len(d.segments)
        if self.model == "hierarchical":
            base = samples["baseline"]
            tau = samples["effect"]
        else:
            base = np.repeat(samples["alpha"][:, None], S, axis=1)
            tau = np.repeat(samples["effect"][:, None], S, axis=1)
        D = base.shape[0]
        beta = samples.get("beta", np.zeros((D, 0)))
        noise = samples.get("noise_sd")
        return base, tau, beta, noise

    def _predict_means(self, base, tau, beta, chunk=256):
        """Per draw: mean over each segment's rows (and overall) of mu1 - mu0.

        Returns uplift per segment (S, D) and overall (D,), on the outcome scale.
        """
        d = self.design_
        S, D = len(d.segments), base.shape[0]
        idx = d.segment_index
        counts = np.bincount(idx, minlength=S).astype(float)
        onehot = np.zeros((S, len(idx)))
        onehot[idx, np.arange(len(idx))] = 1.0
        seg_up = np.empty((S, D))
        all_up = np.empty(D)
        for start in range(0, D, chunk):
            sl = slice(start, min(D, start + chunk))
            eta0 = base[sl][:, idx] + (beta[sl] @ d.X.T if beta.shape[1] else 0.0)  # (c, n)
            t = tau[sl][:, idx]
            if self.family == "bernoulli":
                u = _sigmoid(eta0 + t) - _sigmoid(eta0)
            else:
                u = t * d.y_scale
            sums = u @ onehot.T  # (c, S)
            with np.errstate(invalid="ignore", divide="ignore"):
                seg_up[:, sl] = (sums / counts).T
            all_up[sl] = u.mean(axis=1)
        return seg_up, all_up

    def _effects(self):
        if not hasattr(self, "_effects_cache"):
            base, tau, beta, _ = self._params(self.samples_)
            seg_up, all_up = self._predict_means(base, tau, beta)
            self._effects_cache = (tau, seg_up, all_up)
        return self._effects_cache

    def overall_effect(self, breakeven=None) -> OverallEffect:
        """The average effect over all rows (per draw).

        Parameters
        ----------
        breakeven : float, default=None
            Uplift above which treating pays (``cost / margin``); adds
            ``P(uplift > breakeven)`` to the summary.
        """
        self._check_fitted()
        _, _, all_up = self._effects()
        if self.model == "hierarchical":
            eff = self.samples_["effect_mean"]
        else:
            eff = self.samples_["effect"]
        scale = "log-odds" if self.family == "bernoulli" else "outcome units"
        if self.family == "gaussian":
            eff = eff * self.design_.y_scale
        return OverallEffect(effect_draws=np.asarray(eff), uplift_draws=all_up,
                             breakeven=None if breakeven is None else float(breakeven),
                             scale=scale)

    def segment_effects(self, breakeven=None) -> SegmentEffects:
        """Per-segment raw lift, counts, effect and uplift draws.

        Parameters
        ----------
        breakeven : float, default=None
            Uplift above which treating pays (``cost / margin``); adds
            ``p_breakeven`` = P(uplift > breakeven) per segment.
        """
        self._check_fitted()
        tau, seg_up, _ = self._effects()
        n, nt, nc, lift = _raw_lift(self.design_)
        eff = tau.T
        if self.family == "gaussian":
            eff = eff * self.design_.y_scale
        return SegmentEffects(
            segments=self.design_.segments, n=n, n_treated=nt, n_control=nc, raw_lift=lift,
            effect_draws=np.asarray(eff), uplift_draws=seg_up,
            breakeven=None if breakeven is None else float(breakeven), model=self.model,
            scale="log-odds" if self.family == "bernoulli" else "outcome units",
        )

    # -- predictive checks -----------------------------------------------------
    def _row_means(self, base, tau, beta, noise):
        """Row-level predicted means (D, n) on the outcome scale (generator: chunks)."""
        d = self.design_
        idx = d.segment_index
        eta = base[:, idx] + tau[:, idx] * d.treatment[None, :]
        if beta.shape[1]:
            eta = eta + beta @ d.X.T
        if self.family == "bernoulli":
            return _sigmoid(eta)
        return d.y_loc + d.y_scale * eta

    def _check(self, kind, params, rng, replicate: bool) -> PredictiveCheck:
        d = self.design_
        base, tau, beta, noise = params
        D = base.shape[0]
        S = len(d.segments)
        group = d.segment_index * 2 + d.treatment.astype(int)
        G = 2 * S
        gcount = np.bincount(group, minlength=G).astype(float)
        onehot = np.zeros((G, len(group)))
        onehot[group, np.arange(len(group))] = 1.0
        rates = np.empty(D)
        grates = np.empty((D, G))
        row_sample = []
        n_keep = max(1, 20000 // max(D, 1))
        for start in range(0, D, 64):
            sl = slice(start, min(D, start + 64))
            sub = (base[sl], tau[sl], beta[sl], None if noise is None else noise[sl])
            mu = self._row_means(*sub)
            if replicate:
                if self.family == "bernoulli":
                    yrep = (rng.random(mu.shape) < mu).astype(float)
                else:
                    yrep = mu + d.y_scale * sub[3][:, None] * rng.standard_normal(mu.shape)
            else:
                yrep = mu
            rates[sl] = yrep.mean(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                grates[sl] = (yrep @ onehot.T) / gcount
            cols = rng.choice(mu.shape[1], size=min(n_keep, mu.shape[1]), replace=False)
            row_sample.append(mu[:, cols].ravel())
        with np.errstate(invalid="ignore", divide="ignore"):
            obs_g = np.bincount(group, weights=d.outcome, minlength=G) / gcount
        recs = []
        for g in range(G):
            if gcount[g] == 0:
                continue
            q = np.quantile(grates[:, g], [0.025, 0.975])
            recs.append({
                "segment": d.segments[g // 2],
                "arm": "treated" if g % 2 else "control",
                "n": int(gcount[g]),
                "observed": float(obs_g[g]),
                "mean": float(grates[:, g].mean()),
                "lo": float(q[0]),
                "hi": float(q[1]),
                "p_value": float(np.mean(grates[:, g] >= obs_g[g])),
            })
        return PredictiveCheck(
            kind=kind, observed=float(d.outcome.mean()), draws=rates,
            row_values=np.concatenate(row_sample), groups=pd.DataFrame.from_records(recs),
        )

    def prior_predictive(self, num_samples=500, random_state=None) -> PredictiveCheck:
        """Prior predictive check: the outcome rates the priors imply for these rows.

        ``draws`` holds, per prior draw, the mean over rows of the predicted
        probability (the implied rate); ``row_values`` a sample of the
        implied per-customer probabilities.

        Parameters
        ----------
        num_samples : int, default=500
        random_state : int, default=None
            Defaults to the estimator's ``random_state``.
        """
        import jax
        from numpyro.infer import Predictive

        self._check_fitted()
        check_positive_int("num_samples", num_samples, "prior_predictive")
        seed = seed_int(self.random_state if random_state is None else random_state)
        d = self.design_
        sites = ["alpha", "beta", "effect", "effect_mean", "baseline", "noise_sd"]
        pred = Predictive(_numpyro_model, num_samples=num_samples, return_sites=sites)
        out = pred(jax.random.PRNGKey(seed), d.treatment.astype(np.float32),
                   d.X.astype(np.float32), d.segment_index, **self._model_kwargs)
        samples = {k: np.asarray(v, dtype=float) for k, v in out.items()}
        if d.X.shape[1] == 0:
            samples.pop("beta", None)
        return self._check("prior", self._params(samples), np.random.default_rng(seed),
                           replicate=False)

    def posterior_predictive(self, num_draws=500, random_state=None) -> PredictiveCheck:
        """Posterior predictive check: replicated outcome rates against the observed one.

        For ``num_draws`` posterior draws (evenly spaced), a replicated data
        set is simulated for the same rows; ``draws`` holds its mean outcome
        and ``groups`` the same per segment and arm.  ``p_value`` is the share
        of replicated rates at or above the observed rate (near 0 or 1 is a
        misfit).

        Parameters
        ----------
        num_draws : int, default=500
        random_state : int, default=None
            Defaults to the estimator's ``random_state``.
        """
        self._check_fitted()
        check_positive_int("num_draws", num_draws, "posterior_predictive")
        seed = seed_int(self.random_state if random_state is None else random_state)
        total = next(iter(self.samples_.values())).shape[0]
        keep = np.unique(np.linspace(0, total - 1, min(num_draws, total)).astype(int))
        sub = {k: v[keep] for k, v in self.samples_.items()}
        return self._check("posterior", self._params(sub), np.random.default_rng(seed + 1),
                           replicate=True)

    def __repr__(self) -> str:
        fitted = hasattr(self, "samples_")
        return (
            f"BayesianUplift(model={self.model!r}, family={self.family!r}, "
            f"num_chains={self.num_chains}, num_warmup={self.num_warmup}, "
            f"num_samples={self.num_samples}, target_accept={self.target_accept}, "
            f"random_state={self.random_state}{', fitted' if fitted else ''})"
        )
