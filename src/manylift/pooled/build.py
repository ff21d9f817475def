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

__all__ = ["ModelInputs", "build_inputs", "campaign_codes", "compact_codes"]

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
    mapping: dict = {}

    def root(v):
        while v in mapping:
            v = mapping[v]
        return v

    for _ in range(1000):
        uniq, inv_all = np.unique(values, return_inverse=True)
        mapped = np.array([root(int(v)) for v in uniq])[inv_all] if mapping else values
        lv, inv = np.unique(mapped, return_inverse=True)
        nt = np.bincount(inv, weights=treated.astype(float), minlength=lv.size)
        nc = np.bincount(inv, minlength=lv.size) - nt
        bad = [int(v) for v, a, b in zip(lv, nt, nc, strict=True) if min(a, b) < min_rows]
        if not bad or lv.size <= 1:
            return {int(k): int(root(k)) for k in np.unique(values)}, mapped
        v = bad[0]
        present = set(int(x) for x in lv)
        target = next((c for c in neighbours(v) if root(c) in present and root(c) != v), None)
        if target is None:
            others = sorted(present - {v}, key=lambda c: abs(c - v))
            target = others[0]
        mapping[v] = root(target)
    raise RuntimeError("merge_sparse_levels did not converge")  # pragma: no cover


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


def build_inputs(data: ExperimentData, *, holdout_min_rows: int = 6, holdout: bool = True,
                 min_level_rows: int = 20, features: ExposureFeatures | None = None,
                 random_intercept: bool = True, random_state=0) -> ModelInputs:
    """Features, the calibration / holdout split, level codes and the sampler's design.

    ``random_intercept`` (default True) gives every customer a random intercept u0_i
    next to uI_i and the covariate slopes (``R_i = [1, W, X]``); False is the source
    study's exact specification (``R_i = [W, X]``).  See docs/pooled.md for why the
    intercept is the default.
    """
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
