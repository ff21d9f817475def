"""Priors and model of Bayesian campaign decisioning, and the estimator :class:`BayesianUplift`.

For one randomized experiment with customer segments (e.g. Hillstrom's
history segments) it fits

* a **pooled** model: one treatment effect for everyone, pre-treatment
  covariates as controls;
* a **hierarchical** model: the treatment effect varies by segment with
  partial pooling, in the non-centred parameterisation, and every segment has
  its own baseline;

for a binary outcome (Bernoulli, logit link) or a continuous one (Gaussian on
the standardized outcome), with NUTS (NumPyro) and ArviZ diagnostics, on cells
of identical rows (:mod:`manylift.single.bayes.data`: exact, and fast when the
covariates are categorical).  Effects are reported on the model scale (log-odds
for a binary outcome) and as **uplift**: the average over the segment's rows of
``P(y=1 | treated, x) - P(y=1 | control, x)`` (outcome units for the Gaussian
family), per posterior draw.

Model (hierarchical, binary outcome; ``s(i)`` the segment of row ``i``,
``W_i`` 1 if treated, ``x_i`` the standardized covariates, both centred within
the segment: ``~`` marks a centred value)::

    logit P(y_i = 1) = a_s(i) + tau_s(i) W~_i + x~_i' beta
    tau_s = mu_tau + sigma_tau z_s        z_s ~ N(0, 1)      (non-centred)
    mu_tau ~ N(0, effect_scale^2)         sigma_tau ~ HalfNormal(effect_sd_scale)
    a_s ~ N(intercept_loc, intercept_scale^2)   beta_k ~ N(0, covariate_scale^2)

``a_s`` is the segment's log-odds at its average covariates and treated share;
centring leaves ``tau_s`` and ``beta`` unchanged and makes the posterior far
easier to sample (the intercepts no longer trade off against the slopes and
the effect).  The baselines are not pooled: segments usually differ a lot in
their base rate and are well measured on it.  The pooled model drops the
segment terms (``a_s = alpha``, ``tau_s = tau ~ N(0, effect_scale^2)``; design
centred over all rows).  The Gaussian family replaces the Bernoulli-logit
likelihood by ``y_i ~ N(eta_i, sigma^2)``, ``sigma ~ HalfNormal(noise_scale)``,
with ``y`` standardized (so the prior scales are in outcome standard
deviations) and effects reported back in outcome units.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, fields

import numpy as np

from manylift._core.checks import check_in, check_positive_int, check_probability
from manylift._core.errors import ConvergenceWarning, ModelError
from manylift._core.rng import seed_int
from manylift.single.bayes.checks import (
    PredictiveCheck,
    diagnose,
    predictive_check,
)
from manylift.single.bayes.data import BayesDesign, build_design
from manylift.single.bayes.results import OverallEffect, SegmentEffects
from manylift.single.data import SingleData

__all__ = ["SMALL_DESIGN_CELLS", "BayesPriors", "BayesianUplift", "numpyro_model"]

_FAMILIES = ("auto", "bernoulli", "gaussian")
#: Designs with at most this many cells get 1,000 + 1,000 iterations by default (cheap);
#: larger ones 400 + 500 (enough effective draws, at a third of the cost per iteration).
SMALL_DESIGN_CELLS = 5000
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
        Prior mean of the intercept: the log-odds at the segment's average
        covariates and treated share (the design is centred within segment).
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
# the NumPyro model (on cells of identical rows)
# --------------------------------------------------------------------------
def numpyro_model(treated, X, segment, n, y_sum=None, y_sumsq=None, *, n_segments,
                  hierarchical, family, priors, intercept_loc):
    """The pooled or hierarchical uplift model on cells (see :mod:`.data`).

    ``treated`` is the centred treatment indicator and ``X`` the centred,
    standardized covariates of every cell; ``n`` its rows; ``y_sum`` / ``y_sumsq``
    the sufficient statistics of the outcome (``None`` for prior predictive draws).
    """
    import jax.numpy as jnp
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
        eta = base[segment] + tau[segment] * treated + lin
    else:
        alpha = numpyro.sample("alpha", dist.Normal(intercept_loc, priors.intercept_scale))
        tau = numpyro.sample("effect", dist.Normal(0.0, priors.effect_scale))
        eta = alpha + tau * treated + lin
    if family == "gaussian":
        sigma = numpyro.sample("noise_sd", dist.HalfNormal(priors.noise_scale))
        if y_sum is not None:
            # sum over a cell's rows of log N(y | eta, sigma), up to a constant
            ss = y_sumsq - 2.0 * eta * y_sum + n * eta**2
            numpyro.factor("y", jnp.sum(-n * jnp.log(sigma) - 0.5 * ss / sigma**2))
    elif y_sum is not None:
        # sum over a cell's rows of the Bernoulli log-likelihood: s eta - n log(1 + e^eta)
        numpyro.factor("y", jnp.sum(y_sum * eta - n * _softplus(eta)))


def _softplus_impl():
    """log(1 + e^x) with its derivative, the logistic, written out: the gradient is the
    sampler's inner loop, and this is about 20% faster than differentiating
    ``jnp.logaddexp`` (which also guards infinities that cannot occur here)."""
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def softplus(x):
        return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))

    @softplus.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus(x), jax.nn.sigmoid(x) * t

    return softplus


def _softplus(x):
    global _SOFTPLUS
    if _SOFTPLUS is None:
        _SOFTPLUS = _softplus_impl()
    return _SOFTPLUS(x)


_SOFTPLUS = None


# --------------------------------------------------------------------------
# where warm-up starts
# --------------------------------------------------------------------------
def _starting_point(d: BayesDesign, hierarchical: bool, priors, loc: float, n_chains: int,
                    seed: int):
    """Mass-matrix blocks, an initial inverse mass matrix and dispersed initial values.

    NUTS starts its warm-up with an identity mass matrix; here the parameters'
    scales differ by two orders of magnitude (a segment baseline measured on
    thousands of rows, a between-segment sd known to a factor of two), so the first
    adaptation windows took trajectories of 60 to 100 leapfrog steps and warm-up
    cost twice the draws.  The inverse of the Fisher information of the likelihood
    at the observed rates (plus the prior precision) is a good first guess of the
    posterior covariance of the intercepts, effects and slopes (the design is
    centred, so their blocks are nearly uncorrelated); warm-up then refines it.
    Chains start at the observed segment rates, dispersed by two posterior sds in
    every parameter (so R-hat still compares chains from different places).
    Written by hand: NumPyro takes an initial mass matrix but does not estimate one.
    Used for designs of more than ``SMALL_DESIGN_CELLS`` cells (37% fewer leapfrog
    steps in the hierarchical warm-up on Hillstrom with a continuous covariate); for
    a few cells a step costs little and the extra blocks slow each step more than
    they save.
    """
    import jax.numpy as jnp

    S, k = d.n_segments, d.X.shape[1]
    idx = d.segment_index
    rows = np.bincount(idx, weights=d.n, minlength=S)
    if d.family == "bernoulli":
        rate = np.clip(np.bincount(idx, weights=d.y_sum, minlength=S) / rows, 0.5 / rows,
                       1 - 0.5 / rows)
        centre = np.log(rate / (1 - rate))
        weight = d.n * (rate * (1 - rate))[idx]  # Fisher information per cell
    else:
        centre = np.bincount(idx, weights=d.y_sum, minlength=S) / rows
        weight = d.n.astype(float)  # standardized outcome: residual variance at most 1
    w_c = d.treated_centred
    var_base = 1.0 / (np.bincount(idx, weights=weight, minlength=S)
                      + 1.0 / priors.intercept_scale**2)
    info_tau = np.bincount(idx, weights=weight * w_c**2, minlength=S)
    rng = np.random.default_rng(seed)
    # JAX's default float (float64 when another part of the process enabled x64, as the
    # pooled sampler's JAX backend does): NUTS needs the starting point and its draws alike
    fdt = jnp.result_type(float)
    init, inv = {}, {}
    if k:
        info_beta = (d.X * weight[:, None]).T @ d.X + np.eye(k) / priors.covariate_scale**2
        cov_beta = np.linalg.inv(info_beta)
        inv[("beta",)] = jnp.asarray(cov_beta, dtype=fdt)
        init["beta"] = rng.multivariate_normal(np.zeros(k), 4 * cov_beta, n_chains)
    if hierarchical:
        var_mean = 1.0 / (info_tau.sum() + 1.0 / priors.effect_scale**2)
        # one diagonal block for the segment parameters (each extra block costs time per
        # leapfrog step, which matters when the rows collapse to a few cells); the sd of
        # the effects (log scale) and the standardized effects keep unit scales
        diag = ("baseline", "effect_mean", "effect_sd", "effect_z")
        inv[diag] = jnp.asarray(np.concatenate([var_base, [var_mean], [1.0], np.ones(S)]),
                                dtype=fdt)
        init["baseline"] = centre[None, :] + 2 * np.sqrt(var_base) * rng.standard_normal(
            (n_chains, S))
        init["effect_mean"] = 2 * np.sqrt(var_mean) * rng.standard_normal(n_chains)
        init["effect_sd"] = np.log(0.5 * priors.effect_sd_scale) + rng.standard_normal(n_chains)
        init["effect_z"] = rng.standard_normal((n_chains, S))
        dense = [("beta",)] if k > 1 else []
    else:
        n_all = rows.sum()
        var_alpha = 1.0 / (weight.sum() + 1.0 / priors.intercept_scale**2)
        var_tau = 1.0 / (info_tau.sum() + 1.0 / priors.effect_scale**2)
        # the pooled model has few parameters: one dense block for all but the noise sd
        block = np.zeros((2 + k, 2 + k))
        block[0, 0], block[1, 1] = var_alpha, var_tau
        if k:
            block[2:, 2:] = cov_beta
            inv.pop(("beta",))
        names = ("alpha", "effect", "beta") if k else ("alpha", "effect")
        inv = {names: jnp.asarray(block, dtype=fdt)}
        base = centre[0] if d.family == "gaussian" else np.log(
            d.y_sum.sum() / (n_all - d.y_sum.sum()))
        init["alpha"] = base + 2 * np.sqrt(var_alpha) * rng.standard_normal(n_chains)
        init["effect"] = 2 * np.sqrt(var_tau) * rng.standard_normal(n_chains)
        dense = [names]
    if d.family == "gaussian":
        init["noise_sd"] = np.log(0.9) + 0.1 * rng.standard_normal(n_chains)
    if not dense:
        dense = False
        inv = None  # NumPyro's block structure needs a dense block; keep its default then
    if d.family == "gaussian" and inv is not None:
        inv[("noise_sd",)] = jnp.asarray([1.0 / (2.0 * rows.sum())], dtype=fdt)
    init = {name: jnp.asarray(v, dtype=fdt) for name, v in init.items()}
    if n_chains == 1:
        init = {name: v[0] for name, v in init.items()}
    return dense, inv, init


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
    family : {"auto", "bernoulli", "gaussian"}, default="auto"
        Bernoulli with logit link for a 0/1 outcome; Gaussian for a continuous
        outcome such as spend (on the standardized outcome); ``"auto"`` picks
        by the outcome's values.
    priors : BayesPriors, default=None
        Prior scales; ``None`` uses :class:`BayesPriors` defaults.
    n_chains : int, default=4
    n_warmup : int or None, default=None
        Warm-up (adaptation) iterations per chain.  ``None``: 1,000 when the
        design has at most ``SMALL_DESIGN_CELLS`` cells (every iteration is cheap),
        else 400.
    n_draws : int or None, default=None
        Draws kept per chain.  ``None``: 1,000 for a small design, else 500 (4 x 500
        = 2,000 draws: bulk and tail ESS of about 650 to 2,000 on the Hillstrom
        models with a continuous covariate, above the 100 per chain the
        diagnostics require).  The values used are ``n_warmup_`` and ``n_draws_``.
    target_accept : float, default=0.95
        NUTS target acceptance probability (high: sparse segments make the
        hierarchical posterior funnel-shaped); raise it to 0.99 when there are
        divergences.
    max_tree_depth : int, default=10
    chain_method : {"vectorized", "sequential", "parallel"}, default="vectorized"
        How NumPyro runs the chains; ``"vectorized"`` runs them in one
        compiled program (fastest on CPU for these small models).
    collapse : bool, default=True
        Fit on cells of identical rows (exact, see :mod:`manylift.single.bayes.data`);
        False fits every row (for checking the collapse).
    rhat_threshold : float, default=1.01
    min_ess : float, default=None
        Bulk and tail ESS below this trigger a :class:`ConvergenceWarning`;
        ``None`` means 100 per chain.
    random_state : int, default=0
        Seeds ``jax.random.PRNGKey``; the same seed gives the same draws on
        the same backend.
    progress_bar : bool, default=False
        NumPyro's progress bar (standard error).

    Attributes
    ----------
    posterior_ : arviz.InferenceData
        Posterior draws (groups ``posterior``, ``sample_stats``) with dims
        ``chain``, ``draw``, ``segment``, ``covariate``.
    samples_ : dict of ndarray
        Flattened draws (chains concatenated) of every site.
    diagnostics_ : BayesDiagnostics
    design_ : BayesDesign
        The cells the model was fitted on.
    segments_ : tuple of str
    covariate_names_ : tuple of str
    control_ : object
        The control value of the treatment column.
    family_ : str
    n_warmup_, n_draws_ : int
        The warm-up and draws per chain used.
    intercept_loc_ : float
    seconds_ : float
        Sampling time (warm-up and draws, including compilation).

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
    >>> fit = BayesianUplift(n_warmup=200, n_draws=200, n_chains=2).fit(
    ...     df, treatment="w", outcome="y", segment="seg", allow_duplicates=True)
    >>> 0.03 < fit.overall_effect().uplift["mean"] < 0.17
    True
    """

    def __init__(self, model="hierarchical", family="auto", priors=None, n_chains=4,
                 n_warmup=None, n_draws=None, target_accept=0.95, max_tree_depth=10,
                 chain_method="vectorized", collapse=True, rhat_threshold=1.01, min_ess=None,
                 random_state=0, progress_bar=False):
        self.model = model
        self.family = family
        self.priors = priors
        self.n_chains = n_chains
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.target_accept = target_accept
        self.max_tree_depth = max_tree_depth
        self.chain_method = chain_method
        self.collapse = collapse
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
        check_positive_int("n_chains", self.n_chains, where)
        for name in ("n_warmup", "n_draws"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name), where)
        check_positive_int("max_tree_depth", self.max_tree_depth, where)
        check_probability("target_accept", self.target_accept, where)
        if self.priors is not None and not isinstance(self.priors, BayesPriors):
            raise ModelError(
                f"The 'priors' parameter of {where} must be a BayesPriors instance or None; "
                f"got {type(self.priors).__name__} instead."
            )

    # -- fitting -------------------------------------------------------------
    def fit(self, data, *, treatment=None, outcome=None, segment=None, covariates=None,
            control=None, allow_imbalanced=(), allow_duplicates=None):
        """Fit the model with NUTS.

        Parameters
        ----------
        data : pandas.DataFrame or SingleData
            One row per customer; a :class:`~manylift.single.SingleData` is used as
            prepared (the column arguments are then ignored).
        treatment : str
            Treatment column: 0/1, booleans, or arm labels. Every value other
            than the control value counts as treated (several e-mail versions
            become "any e-mail").
        outcome : str
            Outcome column (0/1 for ``family="bernoulli"``).
        segment : str, default=None
            Segment column (any type; labels are compared as strings).  Required
            by the hierarchical model.
        covariates : list of str, "auto" or None, default=None
            Pre-treatment controls: numeric ones are standardized, others
            one-hot encoded (first level dropped).  ``None``: the pre-treatment
            columns a built-in dataset declares, else none.
        control : scalar, default=None
            The control value of ``treatment``; see :func:`resolve_control`.
        allow_imbalanced, allow_duplicates
            See :meth:`SingleData.from_frame` (the experiment is randomized: every
            covariate and the segment column must pass the balance check).

        Returns
        -------
        self
        """
        self._check_params()
        if isinstance(data, SingleData):
            prepared = data
        else:
            if treatment is None or outcome is None:
                raise ModelError("BayesianUplift.fit needs treatment= and outcome= column names "
                                 "(or a prepared SingleData).")
            prepared = SingleData.from_frame(
                data, treatment, outcome, covariates, control=control, segment=segment,
                family=self.family, randomized=True, allow_imbalanced=allow_imbalanced,
                allow_duplicates=allow_duplicates, where="BayesianUplift")
        hierarchical = self.model == "hierarchical"
        if hierarchical and prepared.segment is None:
            raise ModelError("The hierarchical model needs a segment column: pass segment=... "
                             "(or use model='pooled').")
        family = prepared.family if self.family == "auto" else self.family
        d = build_design(prepared, hierarchical=hierarchical, family=family,
                         collapse=self.collapse)
        return self._fit_design(d, prepared.covariates_source)

    def _fit_design(self, d: BayesDesign, covariates_source: str = "named"):
        import arviz as az
        import jax
        from numpyro.infer import MCMC, NUTS

        priors = self.priors or BayesPriors()
        hierarchical = self.model == "hierarchical"
        if priors.intercept_loc is not None:
            loc = float(priors.intercept_loc)
        elif d.family == "bernoulli":
            rate = np.clip(d.outcome_mean, 0.5 / d.n_rows, 1 - 0.5 / d.n_rows)
            loc = float(np.log(rate / (1 - rate)))
        else:
            loc = 0.0
        self.intercept_loc_ = loc
        self.design_ = d
        self.family_ = d.family
        self.priors_ = priors
        self.segments_ = d.segments
        self.covariate_names_ = d.covariate_names
        self.control_ = d.control
        self.covariates_source_ = covariates_source
        kwargs = dict(n_segments=d.n_segments, hierarchical=hierarchical, family=d.family,
                      priors=priors, intercept_loc=loc)
        self._model_kwargs = kwargs
        # correlated covariates (Hillstrom's "bought men's" and "bought women's merchandise")
        # have correlated slopes: a dense mass matrix for them, a diagonal one for the
        # segment parameters; warm-up starts from the curvature of the likelihood
        small = d.n_cells <= SMALL_DESIGN_CELLS
        if small:
            # few cells: a leapfrog step costs little, and NumPyro's identity start is as
            # fast overall (the extra mass-matrix blocks cost more per step than they save)
            if not hierarchical:
                dense = True
            else:
                dense = [("beta",)] if d.X.shape[1] > 1 else False
            inv_mass, init = None, None
        else:
            dense, inv_mass, init = _starting_point(d, hierarchical, priors, loc,
                                                    self.n_chains, seed_int(self.random_state))
        kernel = NUTS(numpyro_model, target_accept_prob=self.target_accept,
                      max_tree_depth=self.max_tree_depth, dense_mass=dense,
                      inverse_mass_matrix=inv_mass)
        self.n_warmup_ = self.n_warmup if self.n_warmup is not None else (1000 if small else 400)
        self.n_draws_ = self.n_draws if self.n_draws is not None else (1000 if small else 500)
        mcmc = MCMC(kernel, num_warmup=self.n_warmup_, num_samples=self.n_draws_,
                    num_chains=self.n_chains, chain_method=self.chain_method,
                    progress_bar=self.progress_bar)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # NumPyro warns when fewer devices than chains exist; chains then run in one
            # program, which is what we want on CPU.
            warnings.filterwarnings("ignore", message=".*There are not enough devices.*")
            mcmc.run(jax.random.PRNGKey(seed_int(self.random_state)), **d.model_arrays(),
                     **d.observed(), extra_fields=("diverging",), init_params=init, **kwargs)
        # np.asarray waits for the draws (JAX dispatches asynchronously): time after it
        grouped = {k: np.asarray(v, dtype=float)
                   for k, v in mcmc.get_samples(group_by_chain=True).items()}
        self.seconds_ = time.perf_counter() - t0
        diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
        self.samples_ = {k: v.reshape((-1,) + v.shape[2:]) for k, v in grouped.items()}
        dims = {"beta": ["covariate"]}
        if hierarchical:
            dims.update({"effect": ["segment"], "effect_z": ["segment"], "baseline": ["segment"]})
        coords = {"segment": list(d.segments), "covariate": list(d.covariate_names)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.posterior_ = az.from_dict(posterior=grouped,
                                           sample_stats={"diverging": diverging},
                                           coords=coords, dims=dims)
        self.diagnostics_ = diagnose(grouped, int(diverging.sum()), self._labels,
                                     n_chains=self.n_chains, n_draws=self.n_draws_,
                                     rhat_threshold=self.rhat_threshold, min_ess=self.min_ess)
        if not self.diagnostics_.passed:
            warnings.warn(
                f"The {self.model} model's sampler did not converge cleanly: "
                + "; ".join(self.diagnostics_.problems)
                + f". Do not trust the intervals yet. Fix: increase n_warmup (now "
                f"{self.n_warmup_}, try {2 * self.n_warmup_}) and n_draws (now {self.n_draws_}; "
                f"CLI: --warmup, "
                f"--draws), and raise target_accept (now {self.target_accept}, try "
                f"{min(0.99, round(self.target_accept + (1 - self.target_accept) / 2, 3))}).",
                ConvergenceWarning, stacklevel=3,
            )
        return self

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
        """(baseline per segment (D,S), effect per segment (D,S), beta (D,k), noise (D,) or None)."""
        S = self.design_.n_segments
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

    def _uplift(self, base, tau, beta, chunk=128):
        """Per draw: mean over each segment's rows (and over all rows) of mu1 - mu0,
        on the outcome scale; each cell weighted by its rows.

        Written for memory traffic (draws x cells can be 2,000 x 60,000): float32, one
        gather of the per-segment terms and one product with the covariates per chunk
        of draws, in place.
        """
        from scipy.special import expit

        d = self.design_
        S, D = d.n_segments, base.shape[0]
        idx = d.segment_index
        rows = np.bincount(idx, weights=d.n, minlength=S)
        weights = np.zeros((d.n_cells, S), dtype=np.float32)
        weights[np.arange(d.n_cells), idx] = d.n
        x = d.X.astype(np.float32)
        seg_up = np.empty((S, D))
        all_up = np.empty(D)
        for start in range(0, D, chunk):
            sl = slice(start, min(D, start + chunk))
            if d.family == "bernoulli":
                # eta at control: baseline - tau x (treated share) + x'beta (centred design)
                offset = (base[sl] - tau[sl] * d.treated_share[None, :]).astype(np.float32)
                eta = beta[sl].astype(np.float32) @ x.T if x.shape[1] else \
                    np.zeros((sl.stop - sl.start, d.n_cells), np.float32)
                eta += offset[:, idx]
                p0 = expit(eta)
                eta += tau[sl].astype(np.float32)[:, idx]
                u = expit(eta)
                u -= p0
            else:
                u = (tau[sl] * d.y_scale).astype(np.float32)[:, idx]
            sums = (u @ weights).astype(float)  # (c, S)
            with np.errstate(invalid="ignore", divide="ignore"):
                seg_up[:, sl] = (sums / rows).T
            all_up[sl] = sums.sum(axis=1) / rows.sum()
        return seg_up, all_up

    def _effects(self):
        if not hasattr(self, "_effects_cache"):
            base, tau, beta, _ = self._params(self.samples_)
            seg_up, all_up = self._uplift(base, tau, beta)
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
        eff = self.samples_["effect_mean" if self.model == "hierarchical" else "effect"]
        scale = "log-odds" if self.family_ == "bernoulli" else "outcome units"
        if self.family_ == "gaussian":
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
        n, nt, nc, lift = self.design_.raw_lift()
        eff = tau.T
        if self.family_ == "gaussian":
            eff = eff * self.design_.y_scale
        return SegmentEffects(
            segments=self.design_.segments, n=n, n_treated=nt, n_control=nc, raw_lift=lift,
            effect_draws=np.asarray(eff), uplift_draws=seg_up,
            breakeven=None if breakeven is None else float(breakeven), model=self.model,
            scale="log-odds" if self.family_ == "bernoulli" else "outcome units",
        )

    # -- predictive checks -----------------------------------------------------
    def prior_predictive(self, n_draws=500, random_state=None) -> PredictiveCheck:
        """Prior predictive check: the outcome rates the priors imply for these rows.

        ``draws`` holds, per prior draw, the mean over rows of the predicted
        probability (the implied rate); ``row_values`` a sample of the
        implied per-customer probabilities.

        Parameters
        ----------
        n_draws : int, default=500
        random_state : int, default=None
            Defaults to the estimator's ``random_state``.
        """
        import jax
        from numpyro.infer import Predictive

        self._check_fitted()
        check_positive_int("n_draws", n_draws, "prior_predictive")
        seed = seed_int(self.random_state if random_state is None else random_state)
        d = self.design_
        sites = ["alpha", "beta", "effect", "effect_mean", "baseline", "noise_sd"]
        pred = Predictive(numpyro_model, num_samples=n_draws, return_sites=sites)
        out = pred(jax.random.PRNGKey(seed), **d.model_arrays(), **self._model_kwargs)
        samples = {k: np.asarray(v, dtype=float) for k, v in out.items()}
        if d.X.shape[1] == 0:
            samples.pop("beta", None)
        return predictive_check(d, "prior", self._params(samples), np.random.default_rng(seed),
                                replicate=False)

    def posterior_predictive(self, n_draws=500, random_state=None) -> PredictiveCheck:
        """Posterior predictive check: replicated outcome rates against the observed one.

        For ``n_draws`` posterior draws (evenly spaced), a replicated data
        set is simulated for the same rows; ``draws`` holds its mean outcome
        and ``groups`` the same per segment and arm.  ``p_value`` is the share
        of replicated rates at or above the observed rate (near 0 or 1 is a
        misfit).

        Parameters
        ----------
        n_draws : int, default=500
        random_state : int, default=None
            Defaults to the estimator's ``random_state``.
        """
        self._check_fitted()
        check_positive_int("n_draws", n_draws, "posterior_predictive")
        seed = seed_int(self.random_state if random_state is None else random_state)
        total = next(iter(self.samples_.values())).shape[0]
        keep = np.unique(np.linspace(0, total - 1, min(n_draws, total)).astype(int))
        sub = {k: v[keep] for k, v in self.samples_.items()}
        return predictive_check(self.design_, "posterior", self._params(sub),
                                np.random.default_rng(seed + 1), replicate=True)

    def __repr__(self) -> str:
        fitted = hasattr(self, "samples_")
        return (
            f"BayesianUplift(model={self.model!r}, family={self.family!r}, "
            f"n_chains={self.n_chains}, n_warmup={self.n_warmup}, "
            f"n_draws={self.n_draws}, target_accept={self.target_accept}, "
            f"random_state={self.random_state}{', fitted' if fitted else ''})"
        )
