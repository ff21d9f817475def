"""Posterior functionals of a pooled fit on the holdout rows.

Per retained *functional* draw (the draws for which the sampler kept the
holdout customers' uI, ``PooledFit._acc.functional_draws``) the predicted
effect of every holdout row is

    tau_hat_ij = taubar + tau_t + tau_c + gammaI_cell + gammaI_activity
                 + gammaI_prop * prop_ij + uI_i

(docs/pooled.md). From it: the posterior of AUTOC and of the BLP slope
(validation) and of the values of the company's, the model's and a random
policy (policy evaluation), all from the holdout rows' scores built with the
row propensity.

Scores. The IPW score W y / e - (1 - W) y / (1 - e) is unbiased but carries
the outcome's level: with outcomes around 40 and 80% treated its sd is about
100 outcome units, and AUTOC or a policy gain of a few units is unmeasurable on
thousands of rows (measured: sd 102 against 15 on a simulated program). By
default the scores are therefore AIPW with a constant outcome model per
intervention, mu0 = mu1 = the intervention's mean outcome in the *calibration*
rows (``scores="aipw"``; fall back to the campaign's, then the overall,
calibration mean): the IPW score of the outcome centred at a baseline fitted
on other rows, still unbiased under randomization. ``scores="ipw"`` gives the
raw IPW scores of the paper. The company's value is the mean outcome
either way.

Sampling uncertainty of the holdout. A posterior draw fixes tau_hat; the
holdout is still one sample of customers. Each draw therefore also reweights
the holdout customers with one Bayesian-bootstrap draw (Dirichlet(1, ..., 1),
one weight per customer, :func:`manylift.evaluation.bayesian_bootstrap_weights`)
that every policy, AUTOC and Shapley payoff of that draw shares, so intervals
and P(beats) carry model and sampling uncertainty and comparisons are paired.
The model-only versions (equal weights) are kept alongside (``*_model_only``).

Definitions follow "Learning from Many Experiments: A Hierarchical Bayesian
Framework for Decomposing Marketing Treatment Heterogeneity" (the paper),
sections 4.4 and 6 and Table App-3, except for the scores above.

The functionals work through the draws in blocks (:meth:`HoldoutComponents.blocks`),
so no (draws x holdout rows) array other than the stored components is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from manylift._core.checks import check_in
from manylift._core.errors import DataError
from manylift.evaluation import (
    aipw_scores,
    bayesian_bootstrap_weights,
    blp_slope_many,
    compare_policies_many,
    ipw_scores,
    rank_summary_many,
)
from manylift.pooled.isolated import isolated_campaign_effects

__all__ = [
    "HoldoutArrays",
    "HoldoutComponents",
    "PolicyEvaluation",
    "ValidationResult",
    "CampaignEffects",
    "HoldoutEvaluation",
    "evaluate",
    "campaign_effects",
    "evaluate_policies",
    "calibration_baseline",
    "ComponentBlock",
    "HoldoutPosterior",
    "holdout_arrays",
    "make_holdout_arrays",
    "holdout_components",
    "holdout_problem",
    "propensity_bins",
    "validate_holdout",
]

COMPONENTS = ("campaign", "week", "observed", "unobserved")
#: Validation and policy evaluation need at least this many holdout rows in each arm.
MIN_ROWS_PER_ARM = 2
#: Draws per block in the block-wise functionals (bounded memory).
BLOCK_DRAWS = 32


def _summary(draws) -> dict:
    # local copy of pooled.fit.posterior_summary (fit imports this module lazily)
    x = np.asarray(draws, float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "lo": float("nan"), "hi": float("nan")}
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "lo": float(np.quantile(x, 0.025)), "hi": float(np.quantile(x, 0.975))}


# -- the holdout rows' data ------------------------------------------------------


@dataclass(frozen=True, repr=False)
class HoldoutArrays:
    """The data of the holdout rows that every functional needs (no posterior draws).

    Built once, by :func:`manylift.pooled.build.build_inputs` (``ModelInputs.holdout_arrays``).

    Attributes
    ----------
    outcome, treatment, propensity : ndarray (n,)
        Treatment 0/1; propensity from the data (the intervention's treated share
        unless the data gave one).
    intervention : ndarray (n,) of int
        Code of the row's intervention (campaign x week).
    customer : ndarray (n,) of int
        Code of the row's customer among the holdout customers (the unit of the
        Bayesian bootstrap).
    campaign_id : ndarray (n,) of str
    campaign_share : ndarray (n,)
        Treated share of the row's campaign over all its rows (the paper's
        "propensity" of a campaign, used for the propensity bins).
    cost : ndarray (n,) or None
        Cost of treating the row (the campaign table's ``cost`` column), outcome units.
    attributes : dict
        ``{attribute: ndarray (n,) of str}`` of the campaign table, per row.
    baseline : ndarray (n,) or None
        The outcome model of the AIPW scores (mu0 = mu1 = the intervention's mean
        outcome in the calibration rows); None for raw IPW scores.
    codes : dict
        ``{"campaign", "week", "cell", "activity"}`` -> (n,) int codes of the model's
        levels (-1 where a level was never seen in calibration): the fixed part of
        tau_hat is a lookup of each draw's level effects.
    prop_treated : ndarray (n,)
        The row's centred proportion treated (the continuous part of V).
    customer_index : ndarray (n,) of int
        Index of the row's customer among all customers (where the sampler's uI is).
    """

    outcome: np.ndarray
    treatment: np.ndarray
    propensity: np.ndarray
    intervention: np.ndarray
    customer: np.ndarray
    campaign_id: np.ndarray
    campaign_share: np.ndarray
    cost: np.ndarray | None = None
    attributes: dict = field(default_factory=dict)
    baseline: np.ndarray | None = None
    codes: dict = field(default_factory=dict)
    prop_treated: np.ndarray | None = None
    customer_index: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.outcome.shape[0])

    @property
    def score_kind(self) -> str:
        return "ipw" if self.baseline is None else "aipw_intervention_mean"

    def scores(self) -> np.ndarray:
        """Effect scores of the holdout rows: AIPW with ``baseline`` (IPW without one)."""
        if self.baseline is None:
            return ipw_scores(self.outcome, self.treatment, self.propensity)
        return aipw_scores(self.outcome, self.treatment, self.propensity, self.baseline,
                           self.baseline)

    def with_options(self, cost="auto", scores: str = "aipw", campaigns=None) -> HoldoutArrays:
        """The same rows with another cost rule or score (see :func:`make_holdout_arrays`)."""
        check_in("scores", scores, SCORES, "HoldoutArrays.with_options")
        out = self
        if cost != "auto":
            out = replace(out, cost=_resolve_cost(campaigns, self.campaign_id, cost))
        if scores == "ipw" and out.baseline is not None:
            out = replace(out, baseline=None)
        elif scores == "aipw" and out.baseline is None:
            raise DataError("These holdout arrays were built with scores='ipw'; rebuild them "
                            "(holdout_arrays(fit, scores='aipw')) to get the AIPW baseline.")
        return out

    def __repr__(self) -> str:
        return (f"HoldoutArrays(rows={self.n_rows}, scores={self.score_kind!r}, "
                f"cost={'yes' if self.cost is not None else 'no'})")


def holdout_problem(treatment) -> str | None:
    """Why validation and policy evaluation cannot run on these holdout rows (None if they can)."""
    w = np.asarray(treatment)
    if w.size == 0:
        return ("No customer has at least 6 rows (PooledModel's holdout_min_rows), so no row "
                "was held out: validation and policy evaluation need customers with at least 6 "
                "rows (one of each such customer's rows is held out).")
    n1 = int((w == 1).sum())
    n0 = int(w.size - n1)
    if min(n0, n1) < MIN_ROWS_PER_ARM:
        return (f"The holdout has {w.size} row(s), {n1} treated and {n0} control: validation and "
                f"policy evaluation need at least {MIN_ROWS_PER_ARM} of each, i.e. more "
                f"customers with at least 6 rows (one of each such customer's rows is held out).")
    return None


def _campaign_table(campaigns):
    if campaigns is None:
        return None
    return campaigns.set_index(campaigns["campaign_id"].astype(str))


def _resolve_cost(campaigns, campaign_id: np.ndarray, cost) -> np.ndarray | None:
    """Cost per holdout row (outcome units) or None; ``campaigns`` is the campaign table."""
    if cost is None:
        return None
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        return np.full(campaign_id.size, float(cost))
    table = _campaign_table(campaigns)
    name = "cost" if cost == "auto" else cost
    if table is None or name not in table.columns:
        if cost == "auto":
            return None
        raise DataError(f"'cost' names column {cost!r}, which the campaign table does not have "
                        f"(columns: {[] if table is None else list(table.columns)}). Pass cost=None "
                        f"or the name of a campaign column in outcome units.")
    out = pd.Series(campaign_id).map(table[name].astype(float)).to_numpy(float)
    if np.isnan(out).any():
        raise DataError(f"{int(np.isnan(out).sum())} holdout row(s) have no {name!r} in the "
                        f"campaign table; fill it for every campaign or pass cost=None.")
    return out


def calibration_baseline(outcome, calibration, intervention, campaign) -> np.ndarray:
    """Per row: the mean outcome of its intervention's calibration rows (else its campaign's,
    else all calibration rows'). Holdout rows never enter their own baseline.

    ``intervention`` and ``campaign`` are labels or integer codes, one per row.
    """
    y = np.asarray(outcome, float)
    cal = np.asarray(calibration, bool)
    overall = float(y[cal].mean())

    def group_mean(labels):
        codes = pd.factorize(np.asarray(labels))[0]
        n_groups = int(codes.max()) + 1
        cnt = np.bincount(codes[cal], minlength=n_groups)
        tot = np.bincount(codes[cal], weights=y[cal], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (tot / cnt)[codes]  # nan where the group has no calibration row

    out = group_mean(intervention)
    miss = np.isnan(out)
    if miss.any():
        out[miss] = group_mean(campaign)[miss]
    out[np.isnan(out)] = overall
    return out


SCORES = ("aipw", "ipw")


def make_holdout_arrays(frame: pd.DataFrame, holdout: np.ndarray, *, campaigns=None,
                        campaign_attributes=(), codes: dict | None = None, prop_treated=None,
                        customer_index=None, cost="auto", scores: str = "aipw"
                        ) -> HoldoutArrays:
    """The holdout rows' :class:`HoldoutArrays` from the validated frame (all rows).

    Parameters
    ----------
    frame : pandas.DataFrame
        ``ExperimentData.frame`` (canonical columns).
    holdout : bool ndarray (rows,)
    campaigns : pandas.DataFrame, optional
        The campaign table (attributes, cost).
    campaign_attributes : sequence of str
    codes, prop_treated, customer_index : all rows, optional
        The model's level codes, centred proportion treated and customer index;
        only the holdout rows are kept.
    cost : "auto", str, float or None, default="auto"
        As in :func:`evaluate_policies`.
    scores : {"aipw", "ipw"}, default="aipw"
        AIPW with the intervention's calibration mean as outcome model, or raw IPW
        (see the module docstring).
    """
    check_in("scores", scores, SCORES, "make_holdout_arrays")
    hold = np.asarray(holdout, bool)
    f = frame
    # integer codes of every row (labels only for the holdout rows): at paper scale, 16.8
    # million Python strings of the campaign ids would cost more than a gigabyte
    camp_code, camp_labels = pd.factorize(f["campaign_id"], sort=False)
    week_code, week_labels = pd.factorize(f["week"], sort=False)
    inter_all = camp_code.astype(np.int64) * len(week_labels) + week_code
    treated = f["treated"].to_numpy(float)
    share = (np.bincount(camp_code, weights=treated, minlength=len(camp_labels))
             / np.bincount(camp_code, minlength=len(camp_labels)))
    campaign_id = np.asarray(camp_labels.astype(str), dtype=object)[camp_code[hold]]
    baseline = None
    if scores == "aipw" and hold.any():
        baseline = calibration_baseline(f["outcome"].to_numpy(float), ~hold, inter_all,
                                        camp_code)[hold]
    attrs = {}
    table = _campaign_table(campaigns)
    for a in list(campaign_attributes or []):
        attrs[a] = pd.Series(campaign_id).map(table[a].astype(str)).to_numpy(object)
    return HoldoutArrays(
        outcome=f["outcome"].to_numpy(float)[hold],
        treatment=f["treated"].to_numpy()[hold].astype(np.int64),
        propensity=f["propensity"].to_numpy(float)[hold],
        intervention=pd.factorize(inter_all[hold])[0].astype(np.int64),
        customer=pd.factorize(f["customer_id"].to_numpy()[hold])[0].astype(np.int64),
        campaign_id=campaign_id,
        campaign_share=share[camp_code[hold]],
        cost=_resolve_cost(campaigns, campaign_id, cost),
        attributes=attrs,
        baseline=baseline,
        codes={k: np.asarray(v)[hold].astype(np.int64) for k, v in (codes or {}).items()},
        prop_treated=None if prop_treated is None else np.asarray(prop_treated, float)[hold],
        customer_index=None if customer_index is None else np.asarray(customer_index)[hold],
    )


def holdout_arrays(fit, cost="auto", scores: str = "aipw") -> HoldoutArrays:
    """The holdout rows' data of a fit: ``fit.inputs.holdout_arrays`` (built once by
    ``build_inputs``), with another cost rule or score when asked."""
    return fit.inputs.holdout_arrays.with_options(cost, scores,
                                                  getattr(fit.data, "campaigns", None))


# -- per-draw components of tau_hat ------------------------------------------------


@dataclass(frozen=True, repr=False)
class HoldoutPosterior:
    """What the holdout functionals need from a posterior, per functional draw.

    Attributes
    ----------
    theta : ndarray (D, K)
        The fixed coefficients of each functional draw.
    effects : dict
        ``{term: (slice, A)}``: a term's level effects are ``theta[:, slice] @ A.T``
        (sum-to-zero effect coding).
    names : list of str
        Names of theta's columns.
    read_uI : callable
        ``read_uI(slice) -> ndarray (b, n_holdout)`` float32: the holdout customers'
        uI in those functional draws (read from the sampler's spool, block by block).
    draw_index : ndarray (D,) of int
        ``chain * n_draws + draw``: seeds each draw's Bayesian-bootstrap weights.
    random_state : int
    """

    theta: np.ndarray
    effects: dict
    names: list
    read_uI: object
    draw_index: np.ndarray
    random_state: int = 0

    @property
    def n_draws(self) -> int:
        return int(self.theta.shape[0])

    def param(self, name: str, draws: slice = slice(None)) -> np.ndarray:
        return self.theta[draws, self.names.index(name)]

    def level_effects(self, term: str, draws: slice = slice(None)) -> np.ndarray:
        sl, A = self.effects[term]
        return self.theta[draws, sl] @ A.T


@dataclass(frozen=True, repr=False)
class ComponentBlock:
    """The components of tau_hat for a block of b draws (float32 (b, n) arrays).

    ``parts_sd``: per draw, the finite-population sd over the rows of the observed
    component's parts (``activity``, ``exposure``, ``proportion_treated``).
    """

    taubar: np.ndarray
    campaign: np.ndarray
    week: np.ndarray
    observed: np.ndarray
    unobserved: np.ndarray
    parts_sd: dict = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        return int(self.taubar.shape[0])

    def tau_hat(self, include=COMPONENTS, *, impute_mean: bool = False) -> np.ndarray:
        """taubar plus the components in ``include``, shape (b, n).

        ``include`` may name ``"customer"`` for observed + unobserved. With
        ``impute_mean`` every excluded component enters at its holdout mean in
        that draw (XPER's expectation over the excluded component, exact for an
        additive tau_hat); without it, excluded components are 0.
        """
        names = set()
        for name in include:
            if name == "customer":
                names |= {"observed", "unobserved"}
            elif name in COMPONENTS:
                names.add(name)
            else:
                raise DataError(f"Unknown tau_hat component {name!r}; use any of "
                                f"{[*COMPONENTS, 'customer']}.")
        n = self.campaign.shape[1]
        # taubar plus the excluded components' means, as one column, then the included
        # components added in place: one (b, n) array, no temporaries
        col = np.asarray(self.taubar, np.float64).copy()
        if impute_mean:
            for name in COMPONENTS:
                if name not in names:
                    col += self._means[name]
        out = np.empty((col.size, n), np.float32)
        out[:] = col.astype(np.float32)[:, None]
        for name in COMPONENTS:
            if name in names:
                out += getattr(self, name)
        return out

    @cached_property
    def _means(self) -> dict:
        """Per draw, each component's mean over the rows (float32, as added to tau_hat)."""
        return {name: getattr(self, name).mean(axis=1, dtype=np.float64).astype(np.float32)
                for name in COMPONENTS}


def _gather(eff: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Level effects (b, L) at the rows' codes (b, n) float32; unseen levels (-1) get 0."""
    out = eff.astype(np.float32)[:, np.maximum(codes, 0)]
    if (codes < 0).any():
        out[:, codes < 0] = 0.0
    return out


def _block_size(n_rows: int) -> int:
    """Draws per block: about 8 million numbers per (b, n) array (32 MB in float32)."""
    return int(max(1, min(BLOCK_DRAWS, 8_000_000 // max(n_rows, 1))))


class HoldoutComponents:
    """Per-draw components of tau_hat on the holdout rows, produced block by block.

    Built from a posterior (:func:`holdout_components`: each block is computed
    from the draws' coefficients and the spooled uI, so no (draws x rows) array
    exists for all draws at once) or from explicit (D, n) arrays (tests, small
    problems): ``HoldoutComponents(arrays, taubar=..., campaign=..., week=...,
    observed=..., unobserved=...)``.

    Attributes
    ----------
    arrays : HoldoutArrays
    n_draws, n_rows : int
    draw_index : ndarray (D,) of int
        Seeds each draw's Bayesian-bootstrap weights, so any blocking gives the
        same numbers.
    random_state : int
        Seed of the Bayesian bootstrap.
    """

    def __init__(self, arrays: HoldoutArrays, taubar=None, campaign=None, week=None,
                 observed=None, unobserved=None, *, draw_index=None, observed_parts_sd=None,
                 random_state: int = 0, posterior: HoldoutPosterior | None = None,
                 block_size: int | None = None):
        self.arrays = arrays
        self.posterior = posterior
        if posterior is None:
            self._stored = {"taubar": np.asarray(taubar, float)}
            for k, v in (("campaign", campaign), ("week", week), ("observed", observed),
                         ("unobserved", unobserved)):
                self._stored[k] = np.asarray(v, np.float32)
            self._parts = {k: np.asarray(v, float) for k, v in (observed_parts_sd or {}).items()}
            n_draws = self._stored["taubar"].shape[0]
            self.random_state = int(random_state)
        else:
            n_draws = posterior.n_draws
            self.random_state = int(posterior.random_state)
            draw_index = posterior.draw_index if draw_index is None else draw_index
        self.n_draws = int(n_draws)
        self.draw_index = (np.arange(self.n_draws, dtype=np.int64) if draw_index is None
                           else np.asarray(draw_index, np.int64))
        self.block_size = block_size or _block_size(arrays.n_rows)

    # the rows' data, for convenience
    @property
    def outcome(self) -> np.ndarray:
        return self.arrays.outcome

    @property
    def treatment(self) -> np.ndarray:
        return self.arrays.treatment

    @property
    def propensity(self) -> np.ndarray:
        return self.arrays.propensity

    @property
    def intervention(self) -> np.ndarray:
        return self.arrays.intervention

    @property
    def n_rows(self) -> int:
        return self.arrays.n_rows

    def blocks(self, size: int | None = None):
        """Slices of at most ``size`` draws (default ``block_size``), covering all draws."""
        size = size or self.block_size
        for start in range(0, self.n_draws, size):
            yield slice(start, min(start + size, self.n_draws))

    def block(self, draws: slice) -> ComponentBlock:
        """The components of the draws in ``draws`` (a slice)."""
        if self.posterior is None:
            st = self._stored
            return ComponentBlock(st["taubar"][draws], st["campaign"][draws], st["week"][draws],
                                  st["observed"][draws], st["unobserved"][draws],
                                  {k: v[draws] for k, v in self._parts.items()})
        post, a = self.posterior, self.arrays
        cell = _gather(post.level_effects("gammaI[cell]", draws), a.codes["cell"])
        activity = _gather(post.level_effects("gammaI[activity]", draws), a.codes["activity"])
        g_prop = post.param("gammaI[prop_treated]", draws)
        prop = a.prop_treated
        # the paper's footnote: the proportion treated's sd is sd(share) x |coefficient|
        parts = {"activity": activity.std(axis=1, dtype=np.float64),
                 "exposure": cell.std(axis=1, dtype=np.float64),
                 "proportion_treated": np.abs(g_prop) * float(np.std(prop))}
        observed = cell
        observed += activity
        del activity
        observed += (g_prop[:, None] * prop[None, :]).astype(np.float32)
        return ComponentBlock(
            taubar=post.param("taubar", draws).astype(float),
            campaign=_gather(post.level_effects("tau_c", draws), a.codes["campaign"]),
            week=_gather(post.level_effects("tau_t", draws), a.codes["week"]),
            observed=observed,
            unobserved=np.asarray(post.read_uI(draws), np.float32),
            parts_sd=parts)

    def tau_hat(self, include=COMPONENTS, draws: slice = slice(None), *,
                impute_mean: bool = False) -> np.ndarray:
        """taubar plus the components in ``include`` for ``draws`` (default all: a (D, n)
        array, for small problems and tests; the functionals work block by block)."""
        return self.block(draws).tau_hat(include, impute_mean=impute_mean)

    def weights(self, draws: slice = slice(None)) -> np.ndarray:
        """The Bayesian-bootstrap row weights of the ``draws`` block (each row sums to 1)."""
        return bayesian_bootstrap_weights(self.arrays.customer, self.draw_index[draws],
                                          self.random_state, dtype=np.float64)

    def scores(self) -> np.ndarray:
        return self.arrays.scores()

    def __getattr__(self, name):
        # campaign, week, observed, unobserved, taubar of all draws (small problems, tests)
        if name in ("taubar", *COMPONENTS):
            return getattr(self.block(slice(None)), name)
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"HoldoutComponents(draws={self.n_draws}, holdout_rows={self.n_rows})"


def holdout_components(fit, cost="auto", scores: str = "aipw") -> HoldoutComponents:
    """The components of tau_hat on the holdout rows of a fit, block by block.

    Parameters
    ----------
    fit : PooledFit
    cost : "auto", str, float or None, default="auto"
        Stored in ``arrays.cost`` (see :func:`evaluate_policies`).
    scores : {"aipw", "ipw"}, default="aipw"
        See :func:`make_holdout_arrays`.

    Returns
    -------
    HoldoutComponents
    """
    hold = np.asarray(fit.inputs.holdout, bool)
    if not hold.any():
        raise DataError(
            "The fit has no holdout rows (PooledModel(holdout=False), or no customer has "
            "holdout_min_rows rows); refit with holdout=True or a smaller holdout_min_rows.")
    return HoldoutComponents(holdout_arrays(fit, cost, scores), posterior=fit.holdout_posterior())


def _components(x) -> HoldoutComponents:
    return x if isinstance(x, HoldoutComponents) else holdout_components(x)


def progress_blocks(blocks, h: HoldoutComponents, show: bool, what: str):
    """The blocks, with a progress bar over draws when ``show``."""
    if not show:
        yield from blocks
        return
    from tqdm.auto import tqdm

    with tqdm(total=h.n_draws, unit="draw", desc=what, dynamic_ncols=True,
              mininterval=0.5) as bar:
        for sl in blocks:
            yield sl
            bar.update(sl.stop - sl.start)


# -- validation ----------------------------------------------------------------

TOC_GRID = np.linspace(0.02, 1.0, 50)


@dataclass(frozen=True, repr=False)
class ValidationResult:
    """Posterior of the holdout validation metrics of tau_hat.

    Attributes
    ----------
    autoc : ndarray (D,)
        AUTOC of the ranking by tau_hat, per draw, with the draw's
        Bayesian-bootstrap weights (model and sampling uncertainty; outcome units).
    autoc_model_only : ndarray (D,)
        The same with equal weights (model uncertainty only).
    blp_slope : ndarray (D,)
        BLP calibration slope of tau_hat, per draw (1 = well calibrated, 0 = no
        signal); model uncertainty only.
    n_rows : int
    toc_q, toc : ndarray
        The grid of shares and the TOC curve per draw (D, len(toc_q)), with the
        bootstrap weights.
    """

    autoc: np.ndarray
    blp_slope: np.ndarray
    n_rows: int
    toc_q: np.ndarray | None = None
    toc: np.ndarray | None = None
    autoc_model_only: np.ndarray | None = None
    scores: str = "ipw"

    def toc_band(self) -> dict | None:
        """Posterior mean and 95% band of the TOC curve on the grid ``toc_q``."""
        if self.toc is None:
            return None
        return {"q": self.toc_q.tolist(), "mean": self.toc.mean(axis=0).tolist(),
                "lo": np.quantile(self.toc, 0.025, axis=0).tolist(),
                "hi": np.quantile(self.toc, 0.975, axis=0).tolist()}

    def to_dict(self) -> dict:
        out = {"autoc": _summary(self.autoc), "blp_slope": _summary(self.blp_slope),
               "holdout_rows": self.n_rows, "scores": self.scores}
        if self.autoc_model_only is not None:
            out["autoc_model_only"] = _summary(self.autoc_model_only)
        band = self.toc_band()
        if band is not None:
            out["toc_curve"] = band
        return out

    def to_frame(self) -> pd.DataFrame:
        d = self.to_dict()
        return pd.DataFrame({k: d[k] for k in ("autoc", "autoc_model_only", "blp_slope")
                             if k in d}).T

    def __repr__(self) -> str:
        a, b = _summary(self.autoc), _summary(self.blp_slope)
        return (f"ValidationResult(autoc={a['mean']:.4g} [{a['lo']:.4g}, {a['hi']:.4g}], "
                f"blp_slope={b['mean']:.3g} [{b['lo']:.3g}, {b['hi']:.3g}], "
                f"holdout_rows={self.n_rows})")


def validate_holdout(fit_or_components, *, progress: bool = False) -> ValidationResult:
    """Posterior of AUTOC and of the BLP slope of tau_hat on the holdout.

    AUTOC ranks holdout rows by tau_hat with IPW scores (row propensity), per
    draw with the draw's Bayesian-bootstrap weights (and without them in
    ``autoc_model_only``); the BLP regression has intervention fixed effects and
    weights 1/(e(1-e)).

    Parameters
    ----------
    fit_or_components : PooledFit or HoldoutComponents

    Returns
    -------
    ValidationResult

    References
    ----------
    Yadlowsky, S. et al. (2025). Evaluating treatment prioritization rules via
    rank-weighted average treatment effects. JASA. Chernozhukov, V. et al. (2018).
    Generic machine learning inference on heterogeneous treatment effects.
    Rubin, D. B. (1981). The Bayesian bootstrap.
    """
    h = _components(fit_or_components)
    problem = holdout_problem(h.treatment)
    if problem:
        raise DataError(problem)
    a = h.arrays
    scores = a.scores()
    autoc, autoc0, slope, toc = [], [], [], []
    for sl in progress_blocks(h.blocks(), h, progress, "holdout validation"):
        tau = h.block(sl).tau_hat()
        # one sort per draw: AUTOC with and without the draw's bootstrap weights, and the TOC
        r = rank_summary_many(scores, tau, weights=h.weights(sl), q=TOC_GRID)
        autoc.append(r["autoc"])
        autoc0.append(r["autoc_equal"])
        toc.append(r["toc"])
        slope.append(blp_slope_many(a.outcome, a.treatment, a.propensity, tau,
                                    groups=a.intervention))
    return ValidationResult(autoc=np.concatenate(autoc), blp_slope=np.concatenate(slope),
                            n_rows=h.n_rows, toc_q=TOC_GRID, toc=np.concatenate(toc),
                            autoc_model_only=np.concatenate(autoc0), scores=a.score_kind)


# -- policy evaluation -----------------------------------------------------------


def propensity_bins(campaign_share: np.ndarray, campaign_id: np.ndarray, n_bins: int = 3):
    """Bin rows by their campaign's treated share: campaigns, not rows, are cut into bins.

    Edges are the 1/3 and 2/3 quantiles of the campaigns' treated shares (one
    value per campaign, as the paper's Table App-3 bins campaigns); campaigns
    with equal shares always share a bin. Returns ``(bin per row, labels)``
    with bin -1 for no row, labels like ``"[0.58, 0.77)"`` (the last bin closed).
    """
    camp = pd.Series(campaign_share, index=campaign_id).groupby(level=0).first()
    shares = camp.to_numpy(float)
    edges = np.quantile(shares, np.linspace(0, 1, n_bins + 1))
    # a campaign goes to the last bin whose lower edge it reaches (ties stay together)
    camp_bin = np.clip(np.searchsorted(edges[1:-1], shares, side="right"), 0, n_bins - 1)
    used = sorted(set(camp_bin.tolist()))
    labels = []
    for k in used:
        s = shares[camp_bin == k]
        close = "]" if k == used[-1] else ")"
        labels.append(f"[{s.min():.2f}, {s.max():.2f}{close}")
    remap = {k: i for i, k in enumerate(used)}
    bin_of = pd.Series([remap[k] for k in camp_bin], index=camp.index)
    return bin_of.reindex(campaign_id).to_numpy(int), labels


_METRICS = ("value", "net_value")


def _policy_blocks(a: HoldoutArrays, tau: np.ndarray, w: np.ndarray, subsets: dict,
                   cost: np.ndarray | None) -> dict:
    """Per subset, per-draw values of the three policies, with and without the weights."""
    args = (a.outcome, a.treatment, a.propensity, tau)
    kw = {"cost": cost, "groups": a.intervention, "mu": a.baseline,
          "subsets": {key: _mask(rows, a.n_rows) for key, rows in subsets.items()}}
    boot = compare_policies_many(*args, weights=w, **kw)
    model_only = compare_policies_many(*args, **kw)
    out = {}
    for key in subsets:
        t = {}
        for pol in ("company", "random", "model"):
            t[pol] = {"share_targeted": boot[key].share_targeted[pol]}
            for m in _METRICS:
                t[pol][m] = getattr(boot[key], m)[pol]
                t[pol][m + "_model_only"] = getattr(model_only[key], m)[pol]
        out[key] = t
    return out


def _mask(rows: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[rows] = True
    return m


def _finish_table(blocks: list[dict], rows: int) -> dict:
    """Concatenate the blocks and add the model's gains and P(beats)."""
    t = {pol: {k: np.concatenate([b[pol][k] for b in blocks]) for k in blocks[0][pol]}
         for pol in ("company", "random", "model")}
    m = t["model"]
    for suffix in ("", "_model_only"):
        net_m = m["net_value" + suffix]
        for other in ("company", "random"):
            net_o = t[other]["net_value" + suffix]
            gain = net_m - net_o
            with np.errstate(divide="ignore", invalid="ignore"):
                m[f"gain_over_{other}{suffix}"] = gain
                m[f"gain_over_{other}_pct{suffix}"] = 100 * gain / np.abs(net_o)
            m[f"p_beats_{other}{suffix}"] = float(np.mean(gain > 0))
    t["rows"] = rows
    return t


def _summarise(table: dict) -> dict:
    out = {"rows": table["rows"]}
    for k in ("campaigns", "share_range"):
        if k in table:
            out[k] = table[k]
    for pol in ("company", "random", "model"):
        out[pol] = {k: (v if isinstance(v, float) else _summary(v))
                    for k, v in table[pol].items()}
    return out


@dataclass(frozen=True, repr=False)
class PolicyEvaluation:
    """Posterior IPW values of the company's, a random and the model's policy.

    Attributes
    ----------
    overall : dict
        Per-draw arrays: ``overall[policy][metric]`` for policy in company,
        random, model and metric in value, net_value, share_targeted, each with
        the Bayesian-bootstrap weights (model and sampling uncertainty), and
        ``value_model_only``, ``net_value_model_only`` (equal weights); the model
        also has ``gain_over_company``, ``gain_over_random`` (outcome units per
        row), their ``_pct`` versions, the probabilities ``p_beats_company``,
        ``p_beats_random`` and the ``_model_only`` versions of all of them.
    by_attribute : dict
        ``{attribute: {level: table}}`` with tables like ``overall`` on the rows
        of the campaigns with that attribute level.
    by_propensity_bin : dict
        ``{label: table}``: campaigns binned by their treated share (thirds of the
        campaigns); each table also has ``campaigns`` (count) and ``share_range``.
    cost_aware : bool
        Whether the model treats when tau_hat > cost (else tau_hat > 0).
    """

    overall: dict
    by_attribute: dict
    by_propensity_bin: dict
    cost_aware: bool
    scores: str = "ipw"

    def to_dict(self) -> dict:
        return {
            "unit": "outcome units per holdout row",
            "cost_aware": self.cost_aware,
            "scores": self.scores,
            "uncertainty": "posterior draws x Bayesian bootstrap of holdout customers "
                           "(*_model_only: posterior draws alone)",
            **_summarise(self.overall),
            "by_attribute": {a: {lv: _summarise(t) for lv, t in d.items()}
                             for a, d in self.by_attribute.items()},
            "by_propensity_bin": {k: _summarise(t) for k, t in self.by_propensity_bin.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for pol in ("company", "random", "model"):
            for k, v in self.overall[pol].items():
                s = {"mean": v, "sd": 0.0, "lo": v, "hi": v} if isinstance(v, float) else _summary(v)
                rows.append({"policy": pol, "metric": k, **s})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        s = {p: _summary(self.overall[p]["net_value"]) for p in ("company", "random", "model")}
        return ("PolicyEvaluation(" + ", ".join(f"{p}={v['mean']:.4g}" for p, v in s.items())
                + f", p_beats_company={self.overall['model']['p_beats_company']:.2f}, "
                f"cost_aware={self.cost_aware})")


def evaluate_policies(fit, cost="auto", components: HoldoutComponents | None = None, *,
                      progress: bool = False) -> PolicyEvaluation:
    """Posterior policy evaluation on the holdout (docs/results.md).

    Policies: *company* (as randomized: assignment = the row's propensity, so its
    IPW value is the mean outcome), *model* (treat if tau_hat > cost, cost 0 when
    there is none) and *random* (as many rows as the model within each
    intervention, uniformly; evaluated exactly as its expectation over random
    choices). Values by IPW with the row propensity; ``net_value`` subtracts
    the cost of the rows treated. Every draw reweights the holdout customers
    with one Bayesian-bootstrap draw shared by the three policies (and by every
    subgroup); the ``_model_only`` numbers use equal weights.

    Parameters
    ----------
    fit : PooledFit or None
        Only needed when ``cost`` is not the one stored in ``components``.
    cost : "auto", str, float or None, default="auto"
        ``"auto"``: the campaign table's ``cost`` column when it has one, else 0;
        a column name of the campaign table; a constant (outcome units); None: no cost.
    components : HoldoutComponents, optional
        Reuse precomputed components (their ``arrays.cost`` is used when
        ``cost="auto"``).

    Returns
    -------
    PolicyEvaluation

    References
    ----------
    Dudik, M., Langford, J. and Li, L. (2011). Doubly robust policy evaluation and
    learning. ICML. Rubin, D. B. (1981). The Bayesian bootstrap.
    """
    h = components if components is not None else holdout_components(fit, cost)
    a = h.arrays
    problem = holdout_problem(a.treatment)
    if problem:
        raise DataError(problem)
    c = a.cost if cost == "auto" else _resolve_cost(
        getattr(getattr(fit, "data", None), "campaigns", None), a.campaign_id, cost)
    subsets = {("overall",): np.arange(a.n_rows)}
    for attr, vals in a.attributes.items():
        for lv in pd.unique(vals[pd.notna(vals)]):
            subsets[("attr", attr, str(lv))] = np.flatnonzero(vals == lv)
    bins, labels = propensity_bins(a.campaign_share, a.campaign_id)
    for k, lab in enumerate(labels):
        subsets[("prop", lab)] = np.flatnonzero(bins == k)
    parts: dict = {key: [] for key in subsets}
    for sl in progress_blocks(h.blocks(), h, progress, "policy values"):
        tables = _policy_blocks(a, h.block(sl).tau_hat(), h.weights(sl), subsets, c)
        for key in subsets:
            parts[key].append(tables[key])
    tables = {key: _finish_table(parts[key], int(rows.size)) for key, rows in subsets.items()}
    by_attr: dict = {}
    by_bin: dict = {}
    for key, t in tables.items():
        if key[0] == "attr":
            by_attr.setdefault(key[1], {})[key[2]] = t
        elif key[0] == "prop":
            rows = subsets[key]
            t["campaigns"] = int(pd.unique(a.campaign_id[rows]).size)
            sh = a.campaign_share[rows]
            t["share_range"] = [float(sh.min()), float(sh.max())]
            by_bin[key[1]] = t
    return PolicyEvaluation(tables[("overall",)], by_attr, by_bin, cost_aware=c is not None,
                            scores=a.score_kind)


# -- campaign effects: pooled vs isolated ------------------------------------------


@dataclass(frozen=True, repr=False)
class CampaignEffects:
    """Campaign-average effects of the pooled fit next to isolated per-campaign regressions.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per campaign, sorted by the pooled posterior mean: ``campaign_id,
        mean, sd, lo, hi`` (pooled posterior of the campaign-average effect),
        ``isolated, isolated_se, isolated_lo, isolated_hi`` (OLS of the outcome on
        treatment, the covariates and week fixed effects on the campaign's
        calibration rows, standard errors clustered by customer;
        :mod:`manylift.pooled.isolated`), ``width_ratio`` (isolated / pooled
        interval width: the precision gain of pooling), and
        ``pooled_rel_width``, ``isolated_rel_width`` (interval width / |mean|).
    share_above_zero, share_below_zero : float
        Share of campaigns whose pooled 95% interval lies above / below zero.
    """

    table: pd.DataFrame
    share_above_zero: float
    share_below_zero: float

    def to_dict(self) -> dict:
        r = self.table.replace([np.inf, -np.inf], np.nan)
        return {
            "share_above_zero": self.share_above_zero,
            "share_below_zero": self.share_below_zero,
            "isolated_share_above_zero": float((r["isolated_lo"] > 0).mean()),
            "isolated_share_below_zero": float((r["isolated_hi"] < 0).mean()),
            "median_width_ratio": float(np.nanmedian(r["width_ratio"])),
            "campaigns": {str(row.campaign_id): {
                "pooled": {"mean": row.mean, "sd": row.sd, "lo": row.lo, "hi": row.hi},
                "isolated": {"estimate": row.isolated, "se": row.isolated_se,
                             "lo": row.isolated_lo, "hi": row.isolated_hi},
                "width_ratio": row.width_ratio} for row in r.itertuples()},
        }

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return (f"CampaignEffects(campaigns={len(self.table)}, above_zero="
                f"{self.share_above_zero:.2f}, below_zero={self.share_below_zero:.2f}, "
                f"median_width_ratio={float(np.nanmedian(self.table['width_ratio'])):.2f})")


def campaign_effects(fit) -> CampaignEffects:
    """Pooled campaign-average effects, sorted, against isolated per-campaign regressions.

    Parameters
    ----------
    fit : PooledFit

    Returns
    -------
    CampaignEffects
    """
    post = fit.posterior.posterior["campaign_effect"]
    draws = np.asarray(post).reshape(-1, post.shape[-1])
    labels = [str(c) for c in post["campaign"].values]
    inp = fit.inputs
    iso = isolated_campaign_effects(fit.data.frame, inp.arrays.X, ~np.asarray(inp.holdout, bool),
                                    inp.codes["campaign"], inp.levels["campaign"])
    iso = iso.set_index("campaign")
    rows = []
    for k, c in enumerate(labels):
        s = _summary(draws[:, k])
        est, se = float(iso.loc[c, "estimate"]), float(iso.loc[c, "se"])
        width = 2 * 1.959964 * se
        with np.errstate(divide="ignore", invalid="ignore"):
            rows.append({"campaign_id": c, **s, "isolated": est, "isolated_se": se,
                         "isolated_lo": est - 1.959964 * se, "isolated_hi": est + 1.959964 * se,
                         "width_ratio": width / (s["hi"] - s["lo"]),
                         "pooled_rel_width": (s["hi"] - s["lo"]) / abs(s["mean"]),
                         "isolated_rel_width": np.float64(width) / abs(est)})
    table = pd.DataFrame(rows).sort_values("mean", ascending=False).reset_index(drop=True)
    return CampaignEffects(table, float((table["lo"] > 0).mean()),
                           float((table["hi"] < 0).mean()))


@dataclass(frozen=True, repr=False)
class HoldoutEvaluation:
    """Holdout validation and policy evaluation of a pooled fit.

    ``validation`` and ``policy`` are None when the holdout cannot support them;
    ``problem`` then says why (and what data would fix it).
    """

    validation: ValidationResult | None
    policy: PolicyEvaluation | None
    problem: str | None = None

    def to_dict(self) -> dict:
        out = {"validation": None if self.validation is None else self.validation.to_dict(),
               "policy": None if self.policy is None else self.policy.to_dict()}
        if self.problem:
            out["holdout_problem"] = self.problem
        return out

    def to_frame(self) -> pd.DataFrame:
        return self.policy.to_frame() if self.policy is not None else pd.DataFrame()

    def __repr__(self) -> str:
        if self.problem:
            return f"HoldoutEvaluation(problem={self.problem!r})"
        return f"HoldoutEvaluation({self.validation!r}, {self.policy!r})"


def evaluate(fit, cost="auto", scores: str = "aipw", *, progress: bool = False
             ) -> HoldoutEvaluation:
    """:func:`validate_holdout` and :func:`evaluate_policies` on one set of components.

    A holdout without both arms (or without rows) gives a ``HoldoutEvaluation``
    whose ``problem`` explains what is missing, instead of an error. ``scores``
    as in :func:`holdout_arrays`.
    """
    hold = np.asarray(fit.inputs.holdout, bool)
    w = fit.data.frame.loc[hold, "treated"].to_numpy()
    problem = holdout_problem(w)
    if problem:
        return HoldoutEvaluation(None, None, problem)
    h = holdout_components(fit, cost, scores)
    return HoldoutEvaluation(validate_holdout(h, progress=progress),
                             evaluate_policies(fit, cost, components=h, progress=progress))
