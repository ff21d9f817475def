"""A repeated-experiment marketing program with known truth.

In the spirit of the telecom setting of the source study (Web Appendix and
section 3 of "Learning from Many Experiments"): campaigns with goal / action /
reward attributes and campaign-specific treated shares between about 0.58 and
0.86; weekly interventions; eligibility rules that depend on observed usage
(so campaigns reach different but overlapping customers, independently of
their attributes); each customer in at most one intervention a week; usage
covariates that evolve over time; and a treatment effect made of a mean,
campaign and week deviations, observed heterogeneity (usage level, fatigue
from treatment stock, recovery with recency) and unobserved customer
responsiveness correlated with the customer's covariate slopes.

Two outcome models (``mode``):

* ``"realistic"`` (the default): the outcome a marketing program produces, which does
  not follow the pooled model's equations: ``y = baseline_i + m + tau * W + eps`` with
  a 0/1 treatment (the effect is there only when treated), a customer baseline level
  only partly explained by the covariates (``ProgramSpec.baseline_sd``), and treated
  shares spread over 0.58-0.86 per campaign (``ProgramSpec.treated_share``).  A model
  can be trusted on real data only if it recovers the truth of data like these.
* ``"model"``: the pooled model's outcome exactly, with the treatment effect-coded,
  ``y = m + tau * (W - 1/2) + eps`` and no customer baseline (the source study's
  specification): for exactness tests of the sampler.

In both, ``Y(1) - Y(0) = tau`` on the natural scale.  ``ProgramSpec(post_treatment=True)``
adds a column measured after treatment (``spend_next_30d``, moved by the treatment), as
exports often hold: it must never be used as a covariate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_in, check_positive_int
from manylift._core.errors import DataWarning, ModelError
from manylift._core.rng import as_generator
from manylift.data.experiment import ExperimentData

__all__ = ["simulate_program", "ProgramTruth", "ProgramSpec", "GOALS", "ACTIONS", "REWARDS"]

GOALS = ("wakeup", "cross_sell", "retention", "development")
ACTIONS = ("recharge", "data_pack", "international", "none")
REWARDS = ("credit", "promo", "bonus")
_RULES = ("dormant", "active", "any")
COVARIATES = ("usage_7d", "usage_8_14d", "usage_15_30d")
ACTIVITY = "usage_30d"


@dataclass(frozen=True)
class ProgramSpec:
    """The knobs of the simulated program (defaults: effects in outcome units).

    ``taubar`` is the mean effect at the average intervention; ``sigma_u`` the
    sd of the unobserved responsiveness uI; ``sigma_campaign`` and
    ``sigma_week`` the sd of the campaign and week deviations; ``activity_slope``
    the effect gradient per sd of log 30-day usage; ``fatigue_per_stock`` the
    loss of effect per unit of treatment stock; ``recovery`` the effect regained
    as recency grows (half of it after ``recovery_weeks``); ``sigma`` the noise sd.

    Realistic mode only: ``baseline_sd`` is the sd of each customer's baseline level
    (outcome units), whose correlation with the customer's usual usage level (which the
    covariates see, noisily) is ``baseline_corr_level``, so the covariates explain only
    part of it.  ``treated_share``: the campaigns' treated shares, a constant, a range
    ``(lo, hi)`` drawn uniformly, or None (realistic: uniform on (0.58, 0.86); model:
    about 0.79, clipped to that range).  ``post_treatment`` adds ``spend_next_30d``.
    """

    taubar: float = 1.0
    sigma_u: float = 1.5
    sigma_campaign: float = 0.5
    sigma_week: float = 0.3
    activity_slope: float = 0.4
    fatigue_per_stock: float = 0.6
    recovery: float = 0.4
    recovery_weeks: float = 4.0
    sigma: float = 6.0
    participation: float | None = None
    decay: float = 0.75
    slope_sd: tuple[float, ...] = (1.0, 0.7, 0.5)
    corr_u_slope: float = 0.4
    betabar: tuple[float, ...] = (3.0, 1.5, 1.0)
    baseline_sd: float = 4.0
    baseline_corr_level: float = 0.5
    treated_share: float | tuple[float, float] | None = None
    post_treatment: bool = False


@dataclass(frozen=True, repr=False)
class ProgramTruth:
    """Everything the simulator knows and the model must recover.

    Attributes
    ----------
    rows : pandas.DataFrame
        Aligned with ``data.frame`` (same order): ``customer_id, campaign_id,
        week, tau`` (true effect, natural scale) and its components ``taubar,
        campaign, week_effect, observed, unobserved``, plus ``recency``
        (weeks since last treatment, inf if never), ``stock`` (decayed
        treatment stock), ``y0, y1`` (potential outcomes without noise... plus
        the same noise draw, so ``outcome`` equals one of them).
    customers : pandas.DataFrame
        ``customer_id, u_I`` (true unobserved responsiveness), the slope
        deviations ``u_<covariate>`` and ``level`` (the customer's usual log
        weekly usage; rule "dormant" campaigns reach a row only when
        ``log1p(usage_7d) < level``, rule "active" only when
        ``log1p(usage_7d) >= level - 0.3``, rule "any" always).
    campaigns : pandas.DataFrame
        ``campaign_id, goal, action, reward, treated_share, rule, tau_c``
        (deviation) and ``average_effect`` (mean of tau over its rows).
    weeks : pandas.DataFrame
        ``week, tau_t`` and ``average_effect``.
    params : dict
        Scalars: taubar, sigma_u, sigma, average_effect, and Omega.
    """

    rows: pd.DataFrame
    customers: pd.DataFrame
    campaigns: pd.DataFrame
    weeks: pd.DataFrame
    params: dict = field(default_factory=dict)

    def component_sds(self, rows=None) -> dict[str, float]:
        """True finite-population sd of each effect component over ``rows`` (a boolean mask
        or index of ``self.rows``; default all rows): unobserved (uI_i), observed (activity
        and exposure history), week (tau_t) and campaign (tau_c), in outcome units."""
        r = self.rows if rows is None else (self.rows[rows] if np.asarray(rows).dtype == bool
                                            else self.rows.iloc[rows])
        return {"unobserved": float(r["unobserved"].std(ddof=0)),
                "observed": float(r["observed"].std(ddof=0)),
                "week": float(r["week_effect"].std(ddof=0)),
                "campaign": float(r["campaign"].std(ddof=0))}

    def sd_shares(self, rows=None) -> dict[str, float]:
        """True shares s_f / sum s_f of the finite-population sds (the source study's
        definition, Table 4 of "Learning from Many Experiments")."""
        sd = self.component_sds(rows)
        tot = sum(sd.values())
        return {k: v / tot for k, v in sd.items()}

    def variance_shares(self, rows=None) -> dict[str, float]:
        """True shares s_f^2 / sum s_f^2 (the squared definition)."""
        sd = self.component_sds(rows)
        tot = sum(v**2 for v in sd.values())
        return {k: v**2 / tot for k, v in sd.items()}

    def to_dict(self) -> dict:
        """JSON-ready summary (what ``manylift simulate`` writes to truth.json)."""
        return {
            "params": self.params,
            "sd_share": self.sd_shares(),
            "variance_share": self.variance_shares(),
            "campaigns": {
                str(r.campaign_id): {"tau_c": r.tau_c, "average_effect": r.average_effect}
                for r in self.campaigns.itertuples()
            },
            "weeks": {int(r.week): {"tau_t": r.tau_t, "average_effect": r.average_effect}
                      for r in self.weeks.itertuples()},
        }

    def __repr__(self) -> str:
        p = self.params
        return (f"ProgramTruth(average_effect={p['average_effect']:.3f}, taubar={p['taubar']}, "
                f"sigma_u={p['sigma_u']}, rows={len(self.rows):,})")


def _sum_to_zero(x: np.ndarray) -> np.ndarray:
    return x - x.mean()


def simulate_program(
    n_customers: int = 2000,
    n_campaigns: int = 20,
    n_weeks: int = 30,
    *,
    rows_per_customer: float | None = None,
    spec: ProgramSpec | None = None,
    mode: str = "realistic",
    random_state=0,
) -> tuple[ExperimentData, ProgramTruth]:
    """Simulate a repeated-experiment marketing program with known truth.

    Parameters
    ----------
    n_customers : int, default=2000
    n_campaigns : int, default=20
        The paper's program had 140.
    n_weeks : int, default=30
        The paper's program had 96.
    rows_per_customer : float, default=None
        Target mean number of interventions per customer; default
        ``0.3 * n_weeks`` (28 at the paper's 96 weeks), capped at ``n_weeks``.
    spec : ProgramSpec, default=None
        Effect sizes and noise (see :class:`ProgramSpec`).
    mode : {"realistic", "model"}, default="realistic"
        ``"realistic"``: 0/1 treatment in the outcome, customer baselines partly outside
        the covariates, treated shares spread over 0.58-0.86; ``"model"``: the pooled
        model's equations exactly (effect-coded treatment, no customer baseline).
    random_state : int or Generator, default=0

    Returns
    -------
    data : ExperimentData
        With the campaign table (goal, action, reward, cost).
    truth : ProgramTruth

    Examples
    --------
    >>> data, truth = simulate_program(300, 6, 12, random_state=1)
    >>> data.n_campaigns, data.n_weeks
    (6, 12)
    """
    n_customers = check_positive_int("n_customers", n_customers, "simulate_program", 2)
    n_campaigns = check_positive_int("n_campaigns", n_campaigns, "simulate_program", 2)
    n_weeks = check_positive_int("n_weeks", n_weeks, "simulate_program", 2)
    spec = spec or ProgramSpec()
    check_in("mode", mode, ("realistic", "model"), "simulate_program")
    realistic = mode == "realistic"
    rng = as_generator(random_state)
    n, C, T = n_customers, n_campaigns, n_weeks
    target = rows_per_customer if rows_per_customer is not None else 0.3 * T
    if not 0 < target <= T:
        raise ModelError(
            f"The 'rows_per_customer' parameter of simulate_program must be in (0, n_weeks="
            f"{T}]; got {target!r} instead."
        )
    # Eligibility turns some candidates away; the share that gets through is
    # measured as the weeks go by and the participation rate raised to match, so
    # the realised rows per customer stay near the target whatever the rule mix.
    base_rate = target / T
    n_wanted = n_taken = 0

    # -- campaigns ---------------------------------------------------------
    goal = rng.integers(0, len(GOALS), C)
    action = rng.integers(0, len(ACTIONS), C)
    reward = rng.integers(0, len(REWARDS), C)
    # make sure every level appears when there are enough campaigns
    for arr, k in ((goal, len(GOALS)), (action, len(ACTIONS)), (reward, len(REWARDS))):
        if C >= k:
            arr[rng.permutation(C)[:k]] = np.arange(k)
    share = np.clip(rng.normal(0.79, 0.05, C), 0.58, 0.86)
    # one uniform per campaign whatever the share option, so that programs that differ only
    # in their treated shares share every other draw (same customers, usage and effects);
    # none in the model mode's default, which keeps its earlier programs draw for draw
    ts = spec.treated_share
    u_share = rng.random(C) if (realistic or ts is not None) else None
    if ts is not None:
        lo, hi = (float(ts), float(ts)) if np.isscalar(ts) else (float(ts[0]), float(ts[1]))
        if not 0 < lo <= hi < 1:
            raise ModelError(f"The 'treated_share' field of ProgramSpec must be a share or a "
                             f"range (lo, hi) inside (0, 1); got {ts!r} instead.")
        share = lo + (hi - lo) * u_share
    elif realistic:
        share = 0.58 + 0.28 * u_share
    rule = rng.integers(0, len(_RULES), C)  # independent of attributes
    frequency = rng.uniform(0.3, 1.0, C)  # share of weeks a campaign runs
    attr_effect = 0.5 * (goal == 0) - 0.5 * (action == 2)
    tau_c = _sum_to_zero(attr_effect + rng.normal(0, spec.sigma_campaign, C))
    camp_ids = np.array([f"K{c + 1:03d}" for c in range(C)])

    # -- weeks -------------------------------------------------------------
    trend = np.linspace(-0.5, 0.5, T) * spec.sigma_week
    tau_t = _sum_to_zero(trend + rng.normal(0, spec.sigma_week, T))
    week_base = _sum_to_zero(rng.normal(0, 2.0, T))
    camp_base = _sum_to_zero(rng.normal(0, 3.0, C))

    # -- customers ---------------------------------------------------------
    q = 1 + len(COVARIATES)
    sd = np.array([spec.sigma_u, *spec.slope_sd])
    corr = np.eye(q)
    corr[0, 1:] = corr[1:, 0] = spec.corr_u_slope
    if np.linalg.eigvalsh(corr).min() < 0:
        raise ModelError(
            f"The 'corr_u_slope' field of ProgramSpec must leave a valid correlation matrix "
            f"(|corr_u_slope| <= 1/sqrt({q - 1}) = {1 / np.sqrt(q - 1):.3f} with "
            f"{q - 1} covariates); got {spec.corr_u_slope!r} instead."
        )
    omega = corr * np.outer(sd, sd)
    u = rng.multivariate_normal(np.zeros(q), omega, size=n)
    u_I = u[:, 0]
    level = rng.normal(3.0, 0.9, n)  # log weekly minutes
    log_w = level + rng.normal(0, 0.5, n)
    hist = [np.exp(log_w)] * 4  # last four weekly usages (minutes)

    # -- weekly loop (vectorised over customers) ---------------------------
    last_treat = np.full(n, -np.inf)
    stock = np.zeros(n)
    out_cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "cust", "camp", "week", "w", "u7", "u8", "u15", "u30", "stock", "rec")}
    for t in range(T):
        u7, u8 = hist[-1], hist[-2]
        u15 = (hist[-3] + hist[-4]) * (16 / 14)
        u30 = u7 + u8 + u15
        active = rng.random(C) < frequency
        if not active.any():
            active[rng.integers(C)] = True
        act_idx = np.flatnonzero(active)
        rel = np.log1p(u7) - level  # below own usual level -> dormant
        if spec.participation is not None:
            participation = spec.participation
        else:
            pass_rate = n_taken / n_wanted if n_wanted else 1.0
            participation = min(1.0, base_rate / max(pass_rate, 0.05))
        want = rng.random(n) < participation
        chosen = np.full(n, -1)
        for _ in range(3):  # rejection: draw an active campaign, keep it if eligible
            cand = act_idx[rng.integers(0, act_idx.size, n)]
            r = rule[cand]
            elig = (r == 2) | ((r == 0) & (rel < 0.0)) | ((r == 1) & (rel >= -0.3))
            take = want & (chosen < 0) & elig
            chosen[take] = cand[take]
        idx = np.flatnonzero(chosen >= 0)
        n_wanted += int(want.sum())
        n_taken += idx.size
        c = chosen[idx]
        w = (rng.random(idx.size) < share[c]).astype(np.int8)
        # exposure history *before* this week (only earlier treated interventions)
        rec = t - last_treat[idx]
        # compact dtypes: at paper scale (16M rows) every byte per row is 16 MB
        out_cols["cust"].append(idx.astype(np.int32))
        out_cols["camp"].append(c.astype(np.int32))
        out_cols["week"].append(np.full(idx.size, t, dtype=np.int32))
        out_cols["w"].append(w)
        out_cols["u7"].append(u7[idx])
        out_cols["u8"].append(u8[idx])
        out_cols["u15"].append(u15[idx])
        out_cols["u30"].append(u30[idx])
        out_cols["stock"].append(stock[idx])
        out_cols["rec"].append(rec)
        # update history: stock decays weekly, a treatment adds 1 (counts from next week on)
        stock *= spec.decay
        treated_now = idx[w == 1]
        stock[treated_now] += 1.0
        last_treat[treated_now] = t
        # usage evolves (AR(1) in logs around the customer's level)
        log_w = level + 0.7 * (log_w - level) + rng.normal(0, 0.45, n)
        hist = [*hist[1:], np.exp(log_w)]

    cat = {}
    for k in list(out_cols):
        cat[k] = np.concatenate(out_cols.pop(k))
    # stock at week t is the decayed sum over treatments s < t of decay^(t - s):
    # the loop stored the value *after* decaying at t-1 and adding at t-1 -> multiply once more.
    cat["stock"] = cat["stock"] * spec.decay
    order = np.lexsort((cat["week"], cat["cust"]))
    for k in list(cat):  # one column at a time keeps the peak at one extra column
        cat[k] = cat[k][order]
    del order
    N = cat["cust"].size
    cust, camp, week, w = cat["cust"], cat["camp"], cat["week"], cat["w"]

    # -- effects -----------------------------------------------------------
    la = np.log1p(cat["u30"])
    activity_z = (la - la.mean()) / la.std()
    rec = cat["rec"]
    never = ~np.isfinite(rec)
    recovery = np.where(never, spec.recovery,
                        spec.recovery * (1 - 0.5 ** (np.where(never, 0, rec) / spec.recovery_weeks)))
    fatigue = -spec.fatigue_per_stock * cat["stock"] + recovery
    observed_raw = spec.activity_slope * activity_z + fatigue
    observed = observed_raw - observed_raw.mean()  # taubar is the effect at the average row
    unobserved = u_I[cust]
    tau = spec.taubar + tau_c[camp] + tau_t[week] + observed + unobserved
    del la, activity_z, never, recovery, fatigue, observed_raw

    X = np.column_stack([np.log1p(cat["u7"]), np.log1p(cat["u8"]), np.log1p(cat["u15"])])
    Xc = X - X.mean(axis=0)
    beta = np.asarray(spec.betabar) + u[cust, 1:]
    base = 40.0 + camp_base[camp] + week_base[week] + np.einsum("ij,ij->i", Xc, beta)
    del X, Xc, beta
    eps = rng.normal(0, spec.sigma, N)
    if realistic:
        # a customer's own level, only partly seen by the covariates (through the usual
        # usage level that drives them); the effect only when treated (0/1 treatment)
        z_level = (level - level.mean()) / level.std()
        rho = spec.baseline_corr_level
        c_i = spec.baseline_sd * (rho * z_level + np.sqrt(1 - rho**2) * rng.normal(0, 1, n))
        base = base + c_i[cust]
        y0 = base + eps
        y1 = base + tau + eps
    else:
        c_i = np.zeros(n)
        y0 = base - tau / 2 + eps
        y1 = base + tau / 2 + eps
    y = np.where(w == 1, y1, y0)
    post = None
    if spec.post_treatment:
        # spend in the following 30 days: moved by the treatment (through y), so it must
        # never be a covariate
        post = np.maximum(0.0, 0.8 * y + rng.normal(0, 0.5 * spec.sigma, N))
    del base, eps

    campaign_cat = pd.Categorical.from_codes(camp, categories=camp_ids)
    frame = pd.DataFrame({
        "customer_id": cust.astype(np.int64) + 1,
        "campaign_id": campaign_cat,
        "week": week.astype(np.int64) + 1,
        "treated": w,
        "outcome": y,
        "usage_7d": cat["u7"],
        "usage_8_14d": cat["u8"],
        "usage_15_30d": cat["u15"],
        "usage_30d": cat["u30"],
    })
    if post is not None:
        frame["spend_next_30d"] = post
    for k in ("u7", "u8", "u15", "u30"):
        del cat[k]  # the frame holds its own copies
    costs = np.round(rng.uniform(0.05, 0.6, C), 2)
    campaigns = pd.DataFrame({
        "campaign_id": camp_ids,
        "goal": np.array(GOALS)[goal],
        "action": np.array(ACTIONS)[action],
        "reward": np.array(REWARDS)[reward],
        "cost": costs,
    })
    with warnings.catch_warnings():
        # a tiny program can have an intervention whose few rows all landed in one arm; the
        # simulator drops it on purpose (the truth is re-aligned below), so no user warning
        warnings.simplefilter("ignore", DataWarning)
        data = ExperimentData.from_frame(
            frame, campaigns, covariates=list(COVARIATES), activity_col=ACTIVITY,
            drop_incomplete_interventions=True,
        )
    del frame, y  # data.frame holds its own (validated, sorted) copy
    # drop_incomplete may remove a few rows at tiny sizes: align the truth by key.
    rows = pd.DataFrame({
        "customer_id": cust.astype(np.int64) + 1, "campaign_id": campaign_cat,
        "week": week.astype(np.int64) + 1, "tau": tau, "taubar": spec.taubar, "campaign": tau_c[camp],
        "week_effect": tau_t[week], "observed": observed, "unobserved": unobserved,
        "recency": rec, "stock": cat["stock"], "y0": y0, "y1": y1,
    })
    if post is not None:
        rows["spend_next_30d"] = post
    if len(rows) != data.n_rows:
        key = data.frame[["customer_id", "week"]]
        rows = key.merge(rows, on=["customer_id", "week"], how="left")
    if post is not None:
        # in the exposures as an export would have it (not a covariate: it is not one)
        data.frame["spend_next_30d"] = rows["spend_next_30d"].to_numpy()
    camp_avg = rows.groupby("campaign_id", observed=False)["tau"].mean()
    week_avg = rows.groupby("week")["tau"].mean()
    campaigns_truth = campaigns.assign(
        treated_share=share, rule=np.array(_RULES)[rule], frequency=frequency, tau_c=tau_c,
        average_effect=camp_avg.reindex(camp_ids).to_numpy(),
    )
    weeks_truth = pd.DataFrame({"week": np.arange(1, T + 1), "tau_t": tau_t})
    weeks_truth["average_effect"] = week_avg.reindex(weeks_truth["week"]).to_numpy()
    customers = pd.DataFrame({"customer_id": np.arange(1, n + 1), "u_I": u_I})
    for k, name in enumerate(COVARIATES):
        customers[f"u_{name}"] = u[:, 1 + k]
    customers["level"] = level  # usual log weekly usage: the eligibility rules compare to it
    customers["baseline"] = c_i  # the customer's own level outside the covariates (realistic)
    seen = np.unique(cust)
    params = {
        "mode": mode,
        "taubar": spec.taubar, "sigma_u": spec.sigma_u, "sigma": spec.sigma,
        "sigma_u_sample": float(np.std(u_I[seen], ddof=1)),
        "baseline_sd": spec.baseline_sd if realistic else 0.0,
        "share_treated": float(w.mean()),
        "average_effect": float(rows["tau"].mean()),
        "sigma_campaign": float(tau_c.std()), "sigma_week": float(tau_t.std()),
        "Omega": omega.tolist(), "betabar": list(spec.betabar), "decay": spec.decay,
        "n_customers": n, "n_campaigns": C, "n_weeks": T,
    }
    return data, ProgramTruth(rows, customers, campaigns_truth, weeks_truth, params)
