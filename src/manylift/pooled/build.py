"""From validated data to the sampler's arrays: features, holdout, codes, design."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift._core.errors import TooFewUnitsError
from manylift.data.experiment import ExperimentData
from manylift.features.exposure import ExposureFeatures, FeatureArrays
from manylift.features.holdout import holdout_split
from manylift.pooled.holdout import HoldoutArrays, make_holdout_arrays
from manylift.sampler.design import CategoricalTerm, Design, build_design

__all__ = ["ModelInputs", "build_inputs", "campaign_codes", "compact_codes",
           "merge_sparse_levels_counts", "holdout_split_hashed"]

TERMS = ("campaign", "week", "cell", "activity")


def compact_codes(values: np.ndarray, calibration: np.ndarray):
    """Codes over the levels seen in calibration (unseen levels in holdout -> -1)."""
    levels = pd.unique(values[calibration])
    levels = np.sort(levels) if levels.dtype.kind in "iuf" else levels
    index = pd.Index(levels)
    codes = index.get_indexer(values)
    return codes.astype(np.int64), levels


def campaign_codes(column: pd.Series, calibration: np.ndarray):
    """:func:`compact_codes` of the campaign column (labels as strings, in order of first
    appearance in calibration; numeric ids sorted), without a Python string per row:
    factorized once, then only the distinct labels are converted."""
    if pd.api.types.is_numeric_dtype(column):
        return compact_codes(column.to_numpy(), calibration)
    codes_all, uniques = pd.factorize(column, sort=False)
    first = pd.unique(codes_all[np.asarray(calibration, bool)])
    first = first[first >= 0]
    lookup = np.full(len(uniques) + 1, -1, np.int64)  # the last slot catches missing (-1)
    lookup[first] = np.arange(first.size)
    levels = np.asarray([str(v) for v in np.asarray(uniques, dtype=object)[first]], dtype=object)
    return lookup[codes_all], levels


def merge_sparse_levels(values: np.ndarray, treated: np.ndarray, neighbours, min_rows: int = 20):
    """Map levels with fewer than ``min_rows`` treated or control rows onto a neighbour.

    A level whose rows are (nearly) all in one arm cannot identify its
    treatment interaction apart from its baseline effect; merging it into the
    nearest level (``neighbours(level)`` lists candidates in order of
    preference) keeps the fixed block well conditioned.  Returns the mapping
    ``{level: merged level}`` and the mapped values.
    """
    uniq, inv = np.unique(values, return_inverse=True)
    nt = np.bincount(inv, weights=np.asarray(treated).astype(float), minlength=uniq.size)
    n_all = np.bincount(inv, minlength=uniq.size)
    mapping = merge_sparse_levels_counts(uniq, nt, n_all - nt, neighbours, min_rows)
    if all(k == v for k, v in mapping.items()):
        return mapping, values
    return mapping, np.array([mapping[int(v)] for v in uniq])[inv]


def _cell_neighbours(n_stock: int, n_cells: int):
    def nb(c):
        if c == n_cells - 1:  # never treated: merge into the oldest, lowest-stock cell
            return [(n_cells - 2) - (n_stock - 1)]
        r, s = divmod(c, n_stock)
        out = [(r, s - 1), (r, s + 1), (r - 1, s), (r + 1, s)]
        return [a * n_stock + b for a, b in out
                if 0 <= b < n_stock and 0 <= a < (n_cells - 1) // n_stock]
    return nb


@dataclass(frozen=True, repr=False)
class ModelInputs:
    """Everything the pooled model needs, split into calibration and holdout."""

    design: Design
    features: ExposureFeatures
    arrays: FeatureArrays  # all rows
    holdout: np.ndarray  # bool, all rows
    codes: dict  # term -> codes over all rows (-1 where unseen in calibration)
    levels: dict  # term -> level labels
    y_mean: float
    customer_index: np.ndarray  # all rows -> 0..n-1
    customer_ids: np.ndarray  # n
    level_maps: dict  # "cell"/"activity": {original level: merged level}
    holdout_arrays: HoldoutArrays | None = None  # the holdout rows' data, built once
    # a fit over several processes: this process's share and the global counts
    # (n_processes, process_id, rows, customers, calibration_rows, holdout_rows)
    distributed: dict | None = None


def build_inputs(data: ExperimentData, *, holdout_min_rows: int = 6, holdout: bool = True,
                 min_level_rows: int = 20, features: ExposureFeatures | None = None,
                 random_intercept: bool = True, random_state=0, comm=None) -> ModelInputs:
    """Features, the calibration / holdout split, level codes and the sampler's design.

    ``random_intercept`` (default True) gives every customer a random intercept u0_i
    next to uI_i and the covariate slopes (``R_i = [1, W, X]``); False is the source
    study's exact specification (``R_i = [W, X]``).  See docs/pooled.md for why the
    intercept is the default.

    ``comm`` (a :class:`manylift._core.distributed.Collectives`): ``data`` is this
    process's share of whole customers in a fit over several processes, and every
    global quantity comes from per-process summaries (:func:`_build_inputs_distributed`).
    """
    if comm is not None:
        return _build_inputs_distributed(data, comm, holdout_min_rows=holdout_min_rows,
                                         holdout=holdout, min_level_rows=min_level_rows,
                                         features=features, random_intercept=random_intercept,
                                         random_state=random_state)
    f = data.frame
    cust_idx, cust_ids = pd.factorize(f["customer_id"], sort=False)
    if len(cust_ids) < 2:
        raise TooFewUnitsError(
            f"The pooled model needs at least 2 customers; the data has {len(cust_ids)}. "
            f"Pool more experiments or use the single-experiment toolkit (manylift analyze)."
        )
    hold = (holdout_split(cust_idx, holdout_min_rows, random_state) if holdout
            else np.zeros(len(f), bool))
    cal = ~hold
    # a clone: the caller's features object is never fitted in place (scikit-learn's rule)
    fe = copy.deepcopy(features) if features is not None else ExposureFeatures()
    fe.fit(f, data.covariates, data.activity_col, rows=cal)
    fa = fe.transform(f)
    treated = f["treated"].to_numpy()
    cell_map, cell = merge_sparse_levels(fa.cell[cal], treated[cal],
                                         _cell_neighbours(fe.n_stock_bins, fe.n_cells), min_level_rows)
    act_map, _ = merge_sparse_levels(fa.activity[cal], treated[cal],
                                     lambda a: [a - 1, a + 1], min_level_rows)
    raw = {
        "week": f["week"].to_numpy(),
        "cell": np.array([cell_map.get(int(c), -1) for c in range(fe.n_cells)])[fa.cell],
        "activity": np.array([act_map.get(int(a), -1) for a in range(fe.n_activity_bins)])[fa.activity],
    }
    codes, levels = {}, {}
    codes["campaign"], levels["campaign"] = campaign_codes(f["campaign_id"], cal)
    for t in TERMS[1:]:
        codes[t], levels[t] = compact_codes(raw[t], cal)
    for t in ("campaign", "week"):
        if len(levels[t]) < 2:
            raise TooFewUnitsError(
                f"The pooled model needs at least 2 {t}s with both arms; the calibration data "
                f"has {len(levels[t])}. Pool more {t}s."
            )
    y = f["outcome"].to_numpy(float)
    y_mean = float(y[cal].mean())
    w = f["treated"].to_numpy(float) - 0.5
    X = fa.X
    prop = fa.prop_treated
    dense = np.column_stack([np.ones(len(f)), X, w, prop, w * prop])
    dense_names = (["intercept"] + [f"betabar[{c}]" for c in data.covariates]
                   + ["taubar", "gamma[prop_treated]", "gammaI[prop_treated]"])
    terms = []
    for t in TERMS:
        terms.append(CategoricalTerm(f"gamma[{t}]", codes[t][cal], len(levels[t]), False))
    names_w = {"campaign": "tau_c", "week": "tau_t", "cell": "gammaI[cell]",
               "activity": "gammaI[activity]"}
    for t in TERMS:
        terms.append(CategoricalTerm(names_w[t], codes[t][cal], len(levels[t]), True))
    # customers: calibration rows keep the global customer index (holdout customers all have
    # calibration rows, since only customers with >= 6 rows lose one)
    cust_cal = cust_idx[cal]
    design = build_design(y[cal] - y_mean, cust_cal, len(cust_ids), w[cal], X[cal],
                          dense[cal], dense_names, terms, list(data.covariates),
                          random_intercept=random_intercept)
    customer_index = cust_idx.astype(np.int64)
    arrays = make_holdout_arrays(f, hold, campaigns=data.campaigns,
                                 campaign_attributes=data.campaign_attributes, codes=codes,
                                 prop_treated=prop, customer_index=customer_index)
    return ModelInputs(design, fe, fa, hold, codes, levels, y_mean, customer_index,
                       np.asarray(cust_ids), {"cell": cell_map, "activity": act_map}, arrays)



# ---------------------------------------------------------------------------
# several processes, each with whole customers
# ---------------------------------------------------------------------------
def merge_sparse_levels_counts(levels, n_treated, n_control, neighbours, min_rows: int = 20):
    """:func:`merge_sparse_levels` from per-level counts (``levels`` sorted, with their
    treated and control row counts), as a fit over several processes has them after
    summing: the same merges, step for step.  Returns ``{level: merged level}``."""
    levels = np.asarray(levels, np.int64)
    n_treated, n_control = np.asarray(n_treated, float), np.asarray(n_control, float)
    mapping: dict = {}

    def root(v):
        while v in mapping:
            v = mapping[v]
        return v

    for _ in range(1000):
        mapped = np.array([root(int(v)) for v in levels]) if mapping else levels
        lv, inv = np.unique(mapped, return_inverse=True)
        nt = np.bincount(inv, weights=n_treated, minlength=lv.size)
        nc = np.bincount(inv, weights=n_treated + n_control, minlength=lv.size) - nt
        bad = [int(v) for v, a, b in zip(lv, nt, nc, strict=True) if min(a, b) < min_rows]
        if not bad or lv.size <= 1:
            return {int(k): int(root(k)) for k in levels}
        v = bad[0]
        present = set(int(x) for x in lv)
        target = next((c for c in neighbours(v) if root(c) in present and root(c) != v), None)
        if target is None:
            others = sorted(present - {v}, key=lambda c: abs(c - v))
            target = others[0]
        mapping[v] = root(target)
    raise RuntimeError("merge_sparse_levels_counts did not converge")  # pragma: no cover


def holdout_split_hashed(customer_ids: np.ndarray, week: np.ndarray, customer_codes: np.ndarray,
                         min_rows: int = 6, random_state=0) -> np.ndarray:
    """One row per customer with at least ``min_rows`` rows, chosen by a hash of (customer
    id, week, seed): the same rows whichever process holds the customer, so a fit over
    several processes has the same calibration set as one over one process (the
    one-process fit's :func:`~manylift.features.holdout.holdout_split` draws keys in row
    order instead)."""
    from manylift.data.partition import _splitmix64, customer_hash

    seed = np.uint64(int(random_state) if random_state is not None else 0) * np.uint64(
        0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        key = _splitmix64(customer_hash(customer_ids)
                          ^ _splitmix64(np.asarray(week).astype(np.int64).view(np.uint64) + seed))
    codes = np.asarray(customer_codes)
    n = codes.size
    order = np.lexsort((key, codes))
    first = np.ones(n, bool)
    first[1:] = codes[order][1:] != codes[order][:-1]
    chosen = order[first]
    counts = np.bincount(codes)
    out = np.zeros(n, bool)
    out[chosen[counts[codes[chosen]] >= min_rows]] = True
    return out


def _global_levels(comm, values: np.ndarray) -> np.ndarray:
    """The sorted union of every process's levels (numbers, or text sorted as text)."""
    uniq = pd.unique(values)
    if uniq.dtype.kind in "iu":
        return np.unique(np.concatenate(comm.gather(np.asarray(uniq, np.int64))))
    if uniq.dtype.kind == "f":
        return np.unique(np.concatenate(comm.gather(np.asarray(uniq, np.float64))))
    return np.array(sorted(set().union(*comm.gather_strings([str(u) for u in uniq]))),
                    dtype=object)


def _build_inputs_distributed(data: ExperimentData, comm, *, holdout_min_rows: int,
                              holdout: bool, min_level_rows: int,
                              features: ExposureFeatures | None, random_intercept: bool,
                              random_state) -> ModelInputs:
    """:func:`build_inputs` for this process's whole customers, with every global quantity
    from per-process summaries through ``comm``:

    * the holdout rows by a hash of (customer, week, seed) (:func:`holdout_split_hashed`);
    * each intervention's share treated from summed counts;
    * stock and activity bin edges: exact quantiles over all processes;
    * cell and activity merges from summed counts (:func:`merge_sparse_levels_counts`);
    * level codes over the union of the levels (sorted: numbers by value, text as text);
    * the outcome mean and covariate means from sums; F'F summed over processes.
    """
    from dataclasses import replace

    f = data.frame
    cust_idx, cust_ids = pd.factorize(f["customer_id"], sort=False)
    counts = comm.sum(np.array([len(cust_ids), len(f), int(len(cust_ids) == 0)], np.int64))
    if counts[2]:  # raised on every process alike (no process is left in a collective)
        raise TooFewUnitsError(
            f"{int(counts[2])} of the {comm.n_processes} processes hold no customer; use fewer "
            f"processes or more buckets (manylift partition --buckets).")
    if counts[0] < 2:
        raise TooFewUnitsError(f"The pooled model needs at least 2 customers; the data has "
                               f"{int(counts[0])}.")
    hold = (holdout_split_hashed(f["customer_id"].to_numpy(), f["week"].to_numpy(), cust_idx,
                                 holdout_min_rows, random_state)
            if holdout else np.zeros(len(f), bool))
    cal = ~hold
    treated = f["treated"].to_numpy()
    # each intervention's share treated, from counts summed over processes
    camp_all = _global_levels(comm, f["campaign_id"].to_numpy())
    week_all = _global_levels(comm, f["week"].to_numpy())
    ci = pd.Index(camp_all).get_indexer(f["campaign_id"].to_numpy()
                                        if camp_all.dtype != object
                                        else f["campaign_id"].astype(str).to_numpy())
    wi = pd.Index(week_all).get_indexer(f["week"].to_numpy())
    cell_iv = ci.astype(np.int64) * len(week_all) + wi
    n_iv = len(camp_all) * len(week_all)
    iv = comm.sum(np.concatenate([np.bincount(cell_iv, weights=treated.astype(float),
                                              minlength=n_iv),
                                  np.bincount(cell_iv, minlength=n_iv).astype(float)]))
    share = (iv[:n_iv] / np.maximum(iv[n_iv:], 1))[cell_iv]
    fe = features or ExposureFeatures()
    fe.fit(f, data.covariates, data.activity_col, rows=cal, comm=comm, prop_treated=share)
    fa = fe.transform(f, prop_treated=share)
    maps = {}
    for name, vals, L, nb in (
            ("cell", fa.cell, fe.n_cells, _cell_neighbours(fe.n_stock_bins, fe.n_cells)),
            ("activity", fa.activity, fe.n_activity_bins, lambda a: [a - 1, a + 1])):
        v = vals[cal].astype(np.int64)
        tot = comm.sum(np.concatenate([np.bincount(v, weights=treated[cal].astype(float),
                                                   minlength=L),
                                       np.bincount(v, minlength=L).astype(float)]))
        nt, nall = tot[:L], tot[L:]
        present = np.flatnonzero(nall > 0)
        maps[name] = merge_sparse_levels_counts(present, nt[present], (nall - nt)[present], nb,
                                                min_level_rows)
    cell_map, act_map = maps["cell"], maps["activity"]
    raw = {
        "campaign": f["campaign_id"].astype(str).to_numpy() if not
        pd.api.types.is_numeric_dtype(f["campaign_id"]) else f["campaign_id"].to_numpy(),
        "week": f["week"].to_numpy(),
        "cell": np.array([cell_map.get(int(c), -1) for c in range(fe.n_cells)])[fa.cell],
        "activity": np.array([act_map.get(int(a), -1) for a in range(fe.n_activity_bins)])[fa.activity],
    }
    codes, levels = {}, {}
    for t in TERMS:
        levels[t] = _global_levels(comm, raw[t][cal])
        codes[t] = pd.Index(levels[t]).get_indexer(raw[t]).astype(np.int64)
    for t in ("campaign", "week"):
        if len(levels[t]) < 2:
            raise TooFewUnitsError(
                f"The pooled model needs at least 2 {t}s with both arms; the calibration data "
                f"has {len(levels[t])}. Pool more {t}s.")
    y = f["outcome"].to_numpy(float)
    ys = comm.sum(np.array([y[cal].sum(), float(cal.sum()), float(hold.sum())]))
    y_mean = float(ys[0] / ys[1])
    w = treated.astype(float) - 0.5
    X = fa.X
    prop = fa.prop_treated
    dense = np.column_stack([np.ones(len(f)), X, w, prop, w * prop])
    dense_names = (["intercept"] + [f"betabar[{c}]" for c in data.covariates]
                   + ["taubar", "gamma[prop_treated]", "gammaI[prop_treated]"])
    terms = [CategoricalTerm(f"gamma[{t}]", codes[t][cal], len(levels[t]), False) for t in TERMS]
    names_w = {"campaign": "tau_c", "week": "tau_t", "cell": "gammaI[cell]",
               "activity": "gammaI[activity]"}
    terms += [CategoricalTerm(names_w[t], codes[t][cal], len(levels[t]), True) for t in TERMS]
    design = build_design(y[cal] - y_mean, cust_idx[cal], len(cust_ids), w[cal], X[cal],
                          dense[cal], dense_names, terms, list(data.covariates),
                          random_intercept=random_intercept)
    design = replace(design, FtF=comm.sum(design.FtF))  # F'F is a sum over rows
    dist = {"n_processes": comm.n_processes, "process_id": comm.process_id,
            "rows": int(counts[1]), "customers": int(counts[0]),
            "calibration_rows": int(ys[1]), "holdout_rows": int(ys[2])}
    return ModelInputs(design, fe, fa, hold, codes, levels, y_mean, cust_idx.astype(np.int64),
                       np.asarray(cust_ids), {"cell": cell_map, "activity": act_map},
                       distributed=dist)
