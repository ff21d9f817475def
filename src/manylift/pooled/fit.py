"""``PooledFit``: the posterior of a pooled fit, its summaries and its files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from manylift._core.atomic import atomic_path, write_json
from manylift.data.io import write_parquet
from manylift.pooled.isolated import data_overview, pooled_vs_isolated
from manylift.sampler.design import effect_coding

__all__ = ["PooledFit", "posterior_summary", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


def posterior_summary(draws) -> dict:
    """``{"mean", "sd", "lo", "hi"}`` of draws (lo/hi the 2.5% and 97.5% quantiles)."""
    x = np.asarray(draws, float).ravel()
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "lo": float(np.quantile(x, 0.025)), "hi": float(np.quantile(x, 0.975))}


def _frac(groups: np.ndarray, n_groups: int, codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Row shares of each level within each group (G x L)."""
    ct = np.bincount(groups.astype(np.int64) * n_levels + codes, minlength=n_groups * n_levels)
    ct = ct.reshape(n_groups, n_levels).astype(float)
    return ct / np.maximum(ct.sum(axis=1, keepdims=True), 1)


class PooledFit:
    """The result of :meth:`PooledModel.fit`.

    Attributes
    ----------
    posterior : arviz.InferenceData
        Low-dimensional parameters with ``chain`` / ``draw`` dims.
    customers : pandas.DataFrame
        ``customer_id, mean, sd, lo, hi`` of uI_i (streaming Welford mean and sd;
        the 95% interval is the normal approximation mean +/- 1.96 sd).
    """

    def __init__(self, model, data, inputs, run, customers, spec):
        self.model = model
        self.data = data
        self.inputs = inputs
        self.run = run
        self._acc = customers
        self.spec = spec
        self.timings: dict = {}  # seconds of the fit's stages (PooledModel.fit fills it)
        self._effects_draws = self._compute_effect_draws()
        self.posterior = self._to_inference_data()

    # -- parameters per draw -------------------------------------------
    def full_effects(self, term: str) -> np.ndarray:
        """Level effects (chains, draws, L) of a categorical term (sum to zero)."""
        d = self.inputs.design
        b = d.term_names.index(term)
        A = effect_coding(d.n_levels[b])
        return self.run.theta[..., d.term_slices[term]] @ A.T

    def param(self, name: str) -> np.ndarray:
        return self.run.theta[..., self.inputs.design.names.index(name)]

    def holdout_posterior(self):
        """The :class:`~manylift.pooled.holdout.HoldoutPosterior` of the functional draws:
        their coefficients, the effect coding of each term and the spooled holdout uI."""
        from manylift.pooled.holdout import HoldoutPosterior

        d = self.inputs.design
        fd = np.asarray(self._acc.functional_draws)
        theta = np.asarray(self.run.theta)[fd[:, 0], fd[:, 1]]
        effects = {t: (d.term_slices[t], effect_coding(d.n_levels[d.term_names.index(t)]))
                   for t in ("tau_c", "tau_t", "gammaI[cell]", "gammaI[activity]")}
        return HoldoutPosterior(theta=theta, effects=effects, names=list(d.names),
                                read_uI=self._acc.read_holdout_uI,
                                draw_index=(fd[:, 0] * self.model.n_draws + fd[:, 1]).astype(
                                    np.int64),
                                random_state=int(self.model.random_state))

    def _compute_effect_draws(self) -> dict:
        inp = self.inputs
        cal = ~inp.holdout
        codes = {t: inp.codes[t][cal] for t in ("campaign", "week", "cell", "activity")}
        L = {t: len(inp.levels[t]) for t in codes}
        prop = inp.arrays.prop_treated[cal]
        taubar = self.param("taubar")
        g_prop = self.param("gammaI[prop_treated]")
        eff = {"tau_c": self.full_effects("tau_c"), "tau_t": self.full_effects("tau_t"),
               "cell": self.full_effects("gammaI[cell]"),
               "activity": self.full_effects("gammaI[activity]")}
        term_of = {"campaign": "tau_c", "week": "tau_t", "cell": "cell", "activity": "activity"}
        out = {}
        for gname, gcodes, G in (("all", np.zeros(prop.size, np.int64), 1),
                                 ("campaign", codes["campaign"], L["campaign"]),
                                 ("week", codes["week"], L["week"])):
            total = taubar[..., None] + np.zeros(G)
            for t in codes:
                fr = _frac(gcodes, G, codes[t], L[t])
                total = total + eff[term_of[t]] @ fr.T
            mean_prop = np.bincount(gcodes, weights=prop, minlength=G) / np.maximum(
                np.bincount(gcodes, minlength=G), 1)
            total = total + g_prop[..., None] * mean_prop
            total = total + self._acc.group_draws[gname]
            out[gname] = total
        out["average_effect"] = out.pop("all")[..., 0]
        return out

    def _to_inference_data(self):
        import arviz as az

        inp = self.inputs
        r = self.run
        covs = list(self.data.covariates)
        omega = r.omega
        ui = inp.design.ui_index
        post = {
            "average_effect": self._effects_draws["average_effect"],
            "taubar": self.param("taubar"),
            "sigma": np.sqrt(r.sigma2),
            "sigma_u": np.sqrt(omega[..., ui, ui]),
            "tau_c": self.full_effects("tau_c"),
            "tau_t": self.full_effects("tau_t"),
            "campaign_effect": self._effects_draws["campaign"],
            "week_effect": self._effects_draws["week"],
            "gammaI_cell": self.full_effects("gammaI[cell]"),
            "gammaI_activity": self.full_effects("gammaI[activity]"),
            "gammaI_prop_treated": self.param("gammaI[prop_treated]"),
            "betabar": np.stack([self.param(f"betabar[{c}]") for c in covs], -1)
            if covs else np.zeros(r.sigma2.shape + (0,)),
            "Omega": omega,
        }
        if inp.design.random_intercept:
            post["sigma_u0"] = np.sqrt(omega[..., 0, 0])
        coords = {
            "campaign": [str(c) for c in inp.levels["campaign"]],
            "week": [int(w) if np.issubdtype(np.asarray(inp.levels["week"]).dtype, np.integer)
                     else str(w) for w in inp.levels["week"]],
            "cell": [int(c) for c in inp.levels["cell"]],
            "activity_bin": [int(a) for a in inp.levels["activity"]],
            "covariate": covs,
            "coef": list(inp.design.r_names), "coef2": list(inp.design.r_names),
        }
        dims = {"tau_c": ["campaign"], "tau_t": ["week"], "campaign_effect": ["campaign"],
                "week_effect": ["week"], "gammaI_cell": ["cell"],
                "gammaI_activity": ["activity_bin"], "betabar": ["covariate"],
                "Omega": ["coef", "coef2"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = az.from_dict(
                posterior=post, coords=coords, dims=dims,
                sample_stats={"lp": r.loglik[:, self.model.n_warmup:][:, self.model.thin - 1::
                                                                       self.model.thin]},
            )
        return idata

    # -- summaries ------------------------------------------------------
    @property
    def customers(self) -> pd.DataFrame:
        m, s = self._acc.mean, self._acc.sd
        return pd.DataFrame({"customer_id": self.inputs.customer_ids, "mean": m, "sd": s,
                             "lo": m - 1.959964 * s, "hi": m + 1.959964 * s})

    def summary(self, var_names=("average_effect", "taubar", "sigma_u", "sigma",
                                 "gammaI_prop_treated")) -> pd.DataFrame:
        """Headline parameters: mean, sd, 95% interval, R-hat, bulk and tail ESS (ArviZ)."""
        import arviz as az

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = az.summary(self.posterior, var_names=list(var_names), hdi_prob=0.95,
                           kind="all", stat_focus="mean")
        post = self.posterior.posterior
        lo = [float(post[v].quantile(0.025)) for v in var_names]
        hi = [float(post[v].quantile(0.975)) for v in var_names]
        return pd.DataFrame({"mean": s["mean"].to_numpy(), "sd": s["sd"].to_numpy(),
                             "lo": lo, "hi": hi, "r_hat": s["r_hat"].to_numpy(),
                             "ess_bulk": s["ess_bulk"].to_numpy(),
                             "ess_tail": s["ess_tail"].to_numpy()}, index=list(var_names))

    # the scalars results.json reports, checked for convergence (campaign_effect and
    # week_effect per level)
    REPORTED = ("average_effect", "taubar", "sigma", "sigma_u", "campaign_effect",
                "week_effect")
    RHAT_MAX, ESS_MIN = 1.01, 400

    def _diagnostic_arrays(self) -> tuple[dict, dict]:
        import arviz as az

        names = list(self.REPORTED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rhat = az.rhat(self.posterior, var_names=names) if self.model.n_chains > 1 else None
            ess = az.ess(self.posterior, var_names=names)
        return ({v: np.ravel(rhat[v].values) for v in names} if rhat is not None else {},
                {v: np.ravel(ess[v].values) for v in names})

    def diagnostics(self) -> dict:
        """Worst R-hat (None with one chain: it needs two) and smallest bulk ESS over the
        reported scalars (average effect, taubar, sigma, sigma_u, campaign and week effects)."""
        rhat, ess = self._diagnostic_arrays()

        def worst(d, fn):
            vals = np.concatenate(list(d.values())) if d else np.zeros(0)
            vals = vals[np.isfinite(vals)]
            return float(fn(vals)) if vals.size else None

        return {"rhat_max": worst(rhat, np.max), "ess_bulk_min": worst(ess, np.min)}

    def convergence_warnings(self) -> list[str]:
        """Plain-words warnings when a reported scalar has R-hat > 1.01 or bulk ESS < 400
        (the thresholds Stan and ArviZ advise: Vehtari et al. 2021, "Rank-normalization,
        folding, and localization: an improved R-hat"), each saying what to do."""
        rhat, ess = self._diagnostic_arrays()
        out = []
        m = self.model
        if m.n_chains < 2:
            out.append("R-hat cannot be computed with one chain, so convergence is not "
                       "checked: run at least 2 chains (--chains 4).")

        def names(d, bad):
            return [f"{k} ({int(np.sum(bad(v)))} of {v.size})" if v.size > 1 else k
                    for k, v in d.items() if np.any(bad(v))]

        high = names(rhat, lambda v: np.isfinite(v) & (v > self.RHAT_MAX))
        if high:
            worst = max(float(np.nanmax(rhat[k.split(" ")[0]])) for k in high)
            out.append(f"R-hat above {self.RHAT_MAX} (worst {worst:.3f}) for {', '.join(high)}: "
                       f"the chains disagree, so these posteriors are not reliable yet. Run "
                       f"longer (--warmup {2 * m.n_warmup} --draws {2 * m.n_draws}) or more "
                       f"chains.")
        low = names(ess, lambda v: np.isfinite(v) & (v < self.ESS_MIN))
        if low:
            worst = min(float(np.nanmin(ess[k.split(" ")[0]])) for k in low)
            need = int(np.ceil(m.n_draws * self.ESS_MIN / max(worst, 1.0)))
            out.append(f"Bulk effective sample size below {self.ESS_MIN} (smallest "
                       f"{worst:.0f}) for {', '.join(low)}: intervals are rough. Run more "
                       f"draws (about --draws {need}) or more chains.")
        return out

    def results(self, holdout: bool = True) -> dict:
        """The ``results.json`` content (keys of docs/results.md).

        ``holdout=False`` leaves out the holdout validation and policy evaluation
        (``manylift.workflows`` computes and times them as stages of their own).
        """
        inp = self.inputs
        d = self.data
        return {
            "schema_version": SCHEMA_VERSION,
            "effects": self._effects_section(),
            "sampler": {**self._sampler_section(),
                        "compile_seconds": self.timings.get("compile")},
            "model": self._model_section(),
            "data": {
                "rows": d.n_rows, "customers": d.n_customers, "campaigns": d.n_campaigns,
                "weeks": d.n_weeks, "holdout_rows": int(inp.holdout.sum()),
                "calibration_rows": int((~inp.holdout).sum()),
                "covariates": list(d.covariates), "activity_col": d.activity_col,
                **data_overview(self),
            },
            "isolated": pooled_vs_isolated(self),
            "features": inp.features.to_dict(),
            **(self._holdout_results() if holdout else {}),
        }

    def _effects_section(self) -> dict:
        """``results.json``'s ``effects``: posterior summaries of the headline parameters."""
        post = self.posterior.posterior
        cust = self.customers
        return {
            "unit": "outcome units (treated minus control)",
            "average_effect": posterior_summary(post["average_effect"]),
            "taubar": posterior_summary(post["taubar"]),
            "sigma_u": posterior_summary(post["sigma_u"]),
            "sigma": posterior_summary(post["sigma"]),
            "campaigns": {str(c): posterior_summary(post["campaign_effect"].sel(campaign=str(c)))
                          for c in post["campaign"].values},
            "weeks": {str(w): posterior_summary(post["week_effect"].sel(week=w))
                      for w in post["week"].values},
            "customers_above_zero": float((cust["lo"] > 0).mean()),
            "customers_below_zero": float((cust["hi"] < 0).mean()),
        }

    def _sampler_section(self) -> dict:
        """``results.json``'s ``sampler``: settings, speed and convergence."""
        diag = self.diagnostics() if self.model.n_chains > 1 or self.model.n_draws >= 4 else {}
        return {
            "chains": self.model.n_chains, "draws": self.model.n_draws,
            "warmup": self.model.n_warmup, "thin": self.model.thin,
            "seconds": self.run.seconds, "sweeps_per_second": self.run.sweeps_per_second,
            "backend": self.run.backend, "rhat_max": diag.get("rhat_max"),
            "ess_bulk_min": diag.get("ess_bulk_min"),
            "warnings": self.convergence_warnings() if diag else [],
            "expansion": bool(self.spec.expansion),
            "interweave": bool(self.spec.interweave), "seed": int(self.model.random_state),
        }

    def _model_section(self) -> dict:
        design = self.inputs.design
        return {"random_intercept": bool(design.random_intercept),
                "random_coefficients": list(design.r_names),
                "fixed_coefficients": int(design.K)}

    # -- holdout evaluation and effects (pooled/holdout.py) ----------------
    def evaluate(self, cost="auto", scores: str = "aipw"):
        """Posterior holdout validation (AUTOC, BLP slope) and policy evaluation.

        See :func:`manylift.pooled.holdout.evaluate`; ``cost`` and ``scores`` as there.
        """
        from manylift.pooled.holdout import evaluate

        return evaluate(self, cost=cost, scores=scores)

    def effects(self):
        """Campaign-average effects, sorted, against isolated per-campaign regressions."""
        from manylift.pooled.holdout import campaign_effects

        return campaign_effects(self)

    def _holdout_results(self) -> dict:
        if not np.asarray(self.inputs.holdout).any():
            return {"validation": None, "policy": None}
        return self.evaluate().to_dict()

    # -- scoring new rows (pooled/scoring.py) ---------------------------------
    def scoring_model(self):
        """The :class:`~manylift.pooled.scoring.ScoringModel` of this fit (what scoring
        new rows needs; saved as model.json, model.parquet, customer_draws.npy)."""
        from manylift.pooled.scoring import ScoringModel

        if getattr(self, "_scoring", None) is None:
            self._scoring = ScoringModel.from_fit(self)
        return self._scoring

    def predict_effect(self, new_rows, history=None, **kwargs):
        """Posterior of the effect of treating each new row, and the decision: see
        :meth:`manylift.pooled.scoring.ScoringModel.predict_effect` (same arguments)."""
        return self.scoring_model().predict_effect(new_rows, history, **kwargs)

    @staticmethod
    def load(directory: str | os.PathLike):
        """A fit read back from its run folder: :func:`manylift.pooled.scoring.load_run`."""
        from manylift.pooled.scoring import load_run

        return load_run(directory)

    def save(self, directory: str | os.PathLike, extra: dict | None = None,
             results: dict | None = None) -> Path:
        """Write ``results.json``, ``customers.parquet``, ``posterior.nc`` and the scoring
        model (``model.json``, ``model.parquet``, ``customer_draws.npy``), atomically.

        ``results`` replaces :meth:`results` (``manylift.workflows`` assembles it);
        ``extra`` adds sections to it (e.g. ``decomposition``, ``overlap``, computed by
        layers below this one). The whole analysis, report included, is
        ``manylift.PooledModel(...).fit(data).report(path)`` or ``manylift fit``.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", {**(results if results is not None
                                             else self.results()), **(extra or {})})
        write_parquet(out / "customers.parquet", self.customers)
        with atomic_path(out / "posterior.nc", suffix=".nc") as tmp:
            self.posterior.to_netcdf(str(tmp), engine="h5netcdf")
        self.scoring_model().save(out)
        return out

    def __repr__(self) -> str:
        post = self.posterior.posterior
        ae = posterior_summary(post["average_effect"])
        return (f"PooledFit(average_effect={ae['mean']:.3f} [{ae['lo']:.3f}, {ae['hi']:.3f}], "
                f"chains={self.model.n_chains}, draws={self.model.n_draws}, "
                f"backend={self.run.backend!r})")
