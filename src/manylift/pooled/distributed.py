"""The pooled model over several processes, each holding whole customers (docs/scaling.md).

``fit_processes(model, data, comm)`` (what ``manylift fit --processes P`` runs) fits a
:class:`~manylift.pooled.model.PooledModel` over the P processes of a
:class:`~manylift._core.distributed.Collectives` (:func:`manylift._core.distributed.start`),
``data`` being this process's share of whole customers
(:func:`load_process_data`)::

    comm = start(P, I, "host0:1234")
    data = load_process_data("data/", None, comm)
    fit = fit_processes(PooledModel(n_chains=4), data, comm, checkpoint="out/checkpoint.npz")
    fit.save("out/")                       # process 0 writes

It runs:

1. :func:`~manylift.pooled.build.build_inputs` with ``comm``: this process's rows, global
   bins, level codes, merges, means and F'F;
2. the sharded JAX sweep over the devices of all processes
   (:class:`~manylift.sampler.sharding.ShardedJaxBackend` with ``comm``), every
   process running the same program on its own customers;
3. per-customer summaries of uI_i accumulated where the customers are; the group
   averages (all, campaign, week) accumulated as per-process partial sums and summed
   once at the end;
4. process 0 gathers the per-customer summaries and writes the outputs
   (``results.json``, ``customers.parquet``, ``posterior.nc``).

Checkpoints are per process (``checkpoint.p<I>.npz``, with the one before kept as
``.prev.npz``); on resume the processes agree on the last sweep all of them saved.

Not distributed yet (a fit over several processes leaves them out and says so in
``results.json``): the holdout validation and policy evaluation, the comparison with
isolated per-campaign regressions, the decomposition, the scoring model and the
HTML report; they need rows of every process in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from manylift._core.atomic import atomic_path, write_json
from manylift._core.errors import SamplerError
from manylift.data.io import write_parquet
from manylift.pooled.fit import SCHEMA_VERSION, PooledFit

__all__ = ["DistributedFit", "fit_processes", "process_checkpoint", "load_process_data",
           "together"]

NOT_DISTRIBUTED = ("holdout validation, policy evaluation, the comparison with isolated "
                   "regressions, the decomposition, the scoring model and the report are "
                   "computed by fits on one process (docs/scaling.md)")


def together(comm, fn, what: str):
    """Run ``fn()`` on every process and agree on the outcome: if it raised a manylift
    error on any process, every process raises one error naming them (so none is left
    waiting in a collective for a process that stopped)."""
    from manylift._core.distributed import DistributedError
    from manylift._core.errors import ManyliftError

    try:
        out, msg = fn(), ""
    except ManyliftError as exc:
        out, msg = None, f"{type(exc).__name__}: {exc}"
    msgs = comm.gather_strings([msg])
    bad = [(p, m[0]) for p, m in enumerate(msgs) if m[0]]
    if bad:
        if len(bad) == 1 and bad[0][0] == comm.process_id and comm.n_processes == 1:
            raise DistributedError(bad[0][1])
        raise DistributedError(f"{what} failed on process(es) {[p for p, _ in bad]}: "
                               + " | ".join(f"process {p}: {m}" for p, m in bad))
    return out


def load_process_data(exposures, campaigns, comm, *, drop_incomplete: bool = False,
                      customer_col: str = "customer_id", campaign_col: str = "campaign_id",
                      week_col: str = "week", treatment_col: str = "treated", **kwargs):
    """This process's share of whole customers, validated.

    A partitioned folder (``manylift partition``): this process reads only its buckets
    (:func:`~manylift.data.partition.process_buckets`), row group by row group.  A file:
    every process reads it and keeps the customers whose hash falls to it (memory: the
    whole file; partition it for less).  Checks that need all rows are done over all
    processes: every intervention must have treated and control rows somewhere (or,
    with ``drop_incomplete``, those without are dropped everywhere), and date weeks count
    from the earliest date of any process.  ``kwargs``: those of
    :meth:`~manylift.data.experiment.ExperimentData.from_frame`.
    """
    from manylift._core.errors import InterventionArmError
    from manylift.data.experiment import ExperimentData
    from manylift.data.io import read_table
    from manylift.data.partition import (
        bucket_of,
        is_partitioned,
        process_buckets,
        read_partition_info,
    )
    from manylift.pooled.build import _global_levels

    def needed(available):
        """Only the columns the fit uses (all of them with covariates='auto')."""
        cov = kwargs.get("covariates")
        if isinstance(cov, str) and cov == "auto":
            return None
        act = kwargs.get("activity_col") or ("usage_30d" if "usage_30d" in available else None)
        cols = [customer_col, campaign_col, week_col, treatment_col,
                kwargs.get("outcome_col", "outcome"), kwargs.get("propensity_col"), act,
                *(cov or [])]
        return [c for c in dict.fromkeys(cols) if c is not None and c in available]

    def read():
        from manylift._core.errors import MissingColumnError

        if is_partitioned(exposures):
            info = read_partition_info(exposures)
            frame = read_table(exposures, buckets=process_buckets(
                info.n_buckets, comm.n_processes, comm.process_id),
                columns=needed(list(info.columns)) if info.columns else None)
        else:
            frame = read_table(exposures)
        for c in (customer_col, campaign_col, week_col, treatment_col):
            if c not in frame.columns:
                raise MissingColumnError(f"The exposures have no column {c!r}; its columns are "
                                         f"{list(frame.columns)}. Pass the --*-col options.")
        if comm.n_processes > 1 and not is_partitioned(exposures):
            frame = frame.loc[bucket_of(frame[customer_col].to_numpy(), comm.n_processes)
                              == comm.process_id]
        return frame

    frame = together(comm, read, "Reading the exposures")
    # weeks as dates count from the earliest date of any process (as from_frame on all rows)
    wk = frame[week_col]
    if not (pd.api.types.is_integer_dtype(wk) or pd.api.types.is_float_dtype(wk)):
        d = pd.to_datetime(wk)
        first = np.array([d.min().value if len(d) else np.iinfo(np.int64).max], np.int64)
        gmin = pd.Timestamp(int(min(x[0] for x in comm.gather(first))))
        frame = frame.assign(**{week_col: ((d - gmin).dt.days // 7).astype(np.int64)})
    # every intervention needs both arms over all processes
    camp = frame[campaign_col]
    camp = camp.to_numpy() if pd.api.types.is_numeric_dtype(camp) else camp.astype(str).to_numpy()
    weeks = frame[week_col].to_numpy()
    camps, wks = _global_levels(comm, camp), _global_levels(comm, weeks)
    iv = (pd.Index(camps).get_indexer(camp).astype(np.int64) * len(wks)
          + pd.Index(wks).get_indexer(weeks))
    n_iv = len(camps) * len(wks)
    t = pd.to_numeric(frame[treatment_col], errors="coerce").fillna(0).to_numpy(float)
    ct = comm.sum(np.concatenate([np.bincount(iv, weights=t, minlength=n_iv),
                                  np.bincount(iv, minlength=n_iv).astype(float)]))
    nt, nall = ct[:n_iv], ct[n_iv:]
    incomplete = (nall > 0) & ((nt == 0) | (nt == nall))
    if incomplete.any():
        k = np.flatnonzero(incomplete)
        ex = ", ".join(f"campaign {camps[i // len(wks)]!r} week {wks[i % len(wks)]!r}"
                       for i in k[:3])
        if not drop_incomplete:
            raise InterventionArmError(
                f"{k.size} intervention(s) have no treated or no control rows in any process "
                f"(e.g. {ex}); their effect cannot be estimated. Drop them or pass "
                f"--drop-incomplete to leave them out of the fit.")
        if comm.is_main:
            import warnings

            from manylift._core.errors import DataWarning

            warnings.warn(f"Dropped {k.size} intervention(s) with no treated or no control "
                          f"rows (--drop-incomplete).", DataWarning, stacklevel=2)
        frame = frame.loc[~incomplete[iv]]
    camp_table = read_table(campaigns) if campaigns is not None else None
    return together(comm, lambda: ExperimentData.from_frame(
        frame, camp_table, customer_col=customer_col, campaign_col=campaign_col,
        week_col=week_col, treatment_col=treatment_col, check_arms=False, **kwargs),
        "Validating the exposures")


def process_checkpoint(checkpoint: str | os.PathLike, comm) -> Path:
    """This process's checkpoint file: ``<stem>.p<I>.npz`` next to ``checkpoint``."""
    p = Path(checkpoint)
    return p.with_name(f"{p.stem}.p{comm.process_id}{p.suffix or '.npz'}")


def _agree_on_resume(path: Path, comm) -> bool:
    """Pick the last sweep every process has a checkpoint for (the latest or the one
    before, which ``keep_previous`` keeps), put that file at ``path``; False if some
    process has none (then all start afresh)."""
    from manylift.sampler.driver import load_checkpoint, previous_checkpoint

    prev = Path(previous_checkpoint(path))

    def sweep(p: Path) -> int:
        return int(load_checkpoint(p)["sweep"]) if p.exists() else -1

    mine = np.array([sweep(path), sweep(prev)], np.int64)
    allv = np.stack(comm.gather(mine))
    if np.any(allv.max(axis=1) < 0):
        return False
    common = set(allv[0][allv[0] >= 0])
    for row in allv[1:]:
        common &= set(row[row >= 0])
    if not common:
        raise SamplerError(
            f"The processes' checkpoints are at sweeps that do not match ({allv.tolist()}: "
            f"latest and previous per process), so they cannot resume together. Delete the "
            f"checkpoint.p*.npz files (or run without --resume) to start afresh.")
    target = max(common)
    if mine[0] != target:  # this process got one write further: go back to the previous
        os.replace(prev, path)
    return True


class _DataSummary:
    """What a distributed fit keeps of its ExperimentData (not the rows)."""

    def __init__(self, covariates, activity_col):
        self.covariates, self.activity_col = tuple(covariates), activity_col


def _global_counts(comm, groups: np.ndarray, n_groups: int, codes: np.ndarray, n_levels: int):
    """Rows per (group, level), summed over processes: (G, L)."""
    ct = np.bincount(groups.astype(np.int64) * n_levels + codes, minlength=n_groups * n_levels)
    return comm.sum(ct.astype(np.float64)).reshape(n_groups, n_levels)


class DistributedFit(PooledFit):
    """The posterior of a fit over several processes (the same posterior as
    :class:`~manylift.pooled.fit.PooledFit`; the group averages and fractions summed over
    processes).  ``customers`` is every customer's summary on process 0 (this process's
    elsewhere)."""

    def __init__(self, model, data, inputs, run, customers, spec, comm, frac, mean_prop,
                 customers_frame):
        self.comm = comm
        self._frac_global, self._mean_prop = frac, mean_prop
        self._customers_frame = customers_frame
        super().__init__(model, data, inputs, run, customers, spec)

    def _compute_effect_draws(self) -> dict:
        taubar = self.param("taubar")
        g_prop = self.param("gammaI[prop_treated]")
        eff = {"campaign": self.full_effects("tau_c"), "week": self.full_effects("tau_t"),
               "cell": self.full_effects("gammaI[cell]"),
               "activity": self.full_effects("gammaI[activity]")}
        out = {}
        for gname in ("all", "campaign", "week"):
            G = self._mean_prop[gname].size
            total = taubar[..., None] + np.zeros(G)
            for t, fr in self._frac_global[gname].items():
                total = total + eff[t] @ fr.T
            total = total + g_prop[..., None] * self._mean_prop[gname]
            out[gname] = total + self._acc.group_draws[gname]
        out["average_effect"] = out.pop("all")[..., 0]
        return out

    @property
    def customers(self) -> pd.DataFrame:
        return self._customers_frame

    def results(self) -> dict:
        inp = self.inputs
        dist = inp.distributed
        return {
            "schema_version": SCHEMA_VERSION,
            "effects": self._effects_section(),
            "sampler": {**self._sampler_section(),
                        "processes": dist["n_processes"], "devices": self._devices},
            "model": self._model_section(),
            "data": {
                "rows": dist["rows"], "customers": dist["customers"],
                "campaigns": len(inp.levels["campaign"]), "weeks": len(inp.levels["week"]),
                "holdout_rows": dist["holdout_rows"],
                "calibration_rows": dist["calibration_rows"],
                "covariates": list(self.data.covariates), "activity_col": self.data.activity_col,
            },
            "features": inp.features.to_dict(),
            "levels": {t: [v.item() if isinstance(v, np.generic) else v for v in lv]
                       for t, lv in inp.levels.items()},
            "validation": None, "policy": None,
            "not_distributed": NOT_DISTRIBUTED,
        }

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Process 0 writes ``results.json``, ``customers.parquet`` and ``posterior.nc``
        (atomically); the other processes write nothing."""
        out = Path(directory)
        if not self.comm.is_main:
            return out
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", {**self.results(), **(extra or {})})
        write_parquet(out / "customers.parquet", self.customers)
        with atomic_path(out / "posterior.nc", suffix=".nc") as tmp:
            self.posterior.to_netcdf(str(tmp), engine="h5netcdf")
        return out


def fit_processes(model, data, comm, *, checkpoint=None, resume=False, stop_after=None):
    """:meth:`PooledModel.fit <manylift.pooled.model.PooledModel.fit>` over the processes of
    ``comm`` (see the module docstring); returns a :class:`DistributedFit`.  Pass ``data``
    without keeping a reference: the rows are freed once they are on the devices."""
    from manylift.pooled.build import build_inputs
    from manylift.pooled.model import StreamingCustomers
    from manylift.sampler.driver import run_sampler
    from manylift.sampler.sharding import ShardedJaxBackend, make_mesh
    from manylift.sampler.state import ModelSpec

    settings = model.settings()
    settings.validate()
    spec = model.spec or ModelSpec()
    inputs = build_inputs(data, holdout_min_rows=model.holdout_min_rows, holdout=model.holdout,
                          features=model.features, random_intercept=model.random_intercept,
                          random_state=model.random_state, comm=comm)
    design = inputs.design
    backend = ShardedJaxBackend(design, spec, settings.n_chains, mesh=make_mesh(),
                                dtype=model.dtype, comm=comm)
    cal = ~inputs.holdout
    cust_cal = inputs.customer_index[cal]
    n = design.n_customers
    codes = {t: inputs.codes[t][cal] for t in ("campaign", "week", "cell", "activity")}
    L = {t: len(inputs.levels[t]) for t in codes}
    prop = inputs.arrays.prop_treated[cal]
    group_codes = {"all": (np.zeros(cust_cal.size, np.int64), 1),
                   "campaign": (codes["campaign"], L["campaign"]),
                   "week": (codes["week"], L["week"])}
    groups, frac, mean_prop = {}, {}, {}
    for g, (gc, G) in group_codes.items():
        rows = comm.sum(np.bincount(gc, minlength=G).astype(np.float64))
        # this process's part of the group averages of uI (divided by the global counts)
        M = sp.csr_matrix((np.ones(gc.size), (gc, cust_cal)), shape=(G, n))
        groups[g] = sp.diags(1.0 / np.maximum(rows, 1)) @ M
        frac[g] = {t: _global_counts(comm, gc, G, codes[t], L[t]) / np.maximum(rows, 1)[:, None]
                   for t in ("campaign", "week", "cell", "activity")}
        mean_prop[g] = comm.sum(np.bincount(gc, weights=prop, minlength=G)) / np.maximum(rows, 1)
    # what the rest needs of the data and the per-row features (the rows themselves are
    # in the backend now): free them, as the caller passed the data on (the CLI keeps no
    # reference), so a process holds its rows once during sampling
    import dataclasses

    data = _DataSummary(data.covariates, data.activity_col)
    inputs = dataclasses.replace(inputs, arrays=None)
    acc = StreamingCustomers(n, groups, np.zeros(0, np.int64), settings.n_chains,
                             settings.n_draws, model.max_functional_draws, design.ui_index)
    ck = process_checkpoint(checkpoint, comm) if checkpoint is not None else None
    if resume and ck is not None:
        resume = _agree_on_resume(ck, comm)
    run = run_sampler(backend, settings, on_draw=acc, accumulator=acc, checkpoint=ck,
                      resume=resume, progress=model.progress and comm.is_main,
                      stop_after=stop_after, keep_previous=True)
    if stop_after is not None and stop_after < settings.total_sweeps:
        return None
    for g in acc.group_draws:  # the partial group averages, summed once
        acc.group_draws[g] = comm.sum(acc.group_draws[g])
    ids = inputs.customer_ids
    mean, sd = comm.gather(acc.mean), comm.gather(acc.sd)
    if np.asarray(ids).dtype.kind in "iu":
        all_ids = comm.gather(np.asarray(ids, np.int64))
    else:
        all_ids = [np.array(x, object) for x in comm.gather_strings([str(i) for i in ids])]
    m, s = np.concatenate(mean), np.concatenate(sd)
    frame = pd.DataFrame({"customer_id": np.concatenate(all_ids), "mean": m, "sd": s,
                          "lo": m - 1.959964 * s, "hi": m + 1.959964 * s})
    fit = DistributedFit(model, data, inputs, run, acc, spec, comm, frac, mean_prop, frame)
    fit._devices = int(backend.mesh.devices.size)
    if ck is not None:
        from manylift.sampler.driver import previous_checkpoint

        fit._checkpoints = [ck, Path(previous_checkpoint(ck))]
    return fit
