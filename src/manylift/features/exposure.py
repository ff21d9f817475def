"""Exposure-history and activity features (docs/features.md, ``V`` and ``X``).

Computed only from *earlier treated* interventions of the same customer:

* recency = weeks since the last treatment, binned (0,2], (2,4], (4,6], (6,8], >8;
* treatment stock = sum over earlier treatments of ``decay ** (weeks since)``,
  binned into quintiles (edges fitted on previously treated calibration rows);
* the recency x stock interaction cells (25) plus a never-treated cell;
* activity level: 7 quantile bins of the activity column;
* proportion treated in the intervention, centred at its calibration mean;
* covariates ``X``: ``log1p`` of the usage windows, mean-centred.

:class:`ExposureFeatures` is a transformer: ``fit`` stores bin edges and
means, ``transform`` applies them to any data (so new data is binned the same
way).  Everything is vectorised (no Python loop over customers or rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift._core.errors import DataError, ModelError

__all__ = ["ExposureFeatures", "FeatureArrays", "exposure_history", "history_state",
           "RECENCY_EDGES"]

RECENCY_EDGES = (2.0, 4.0, 6.0, 8.0)


def exposure_history(
    customer: np.ndarray, week: np.ndarray, treated: np.ndarray, decay: float = 0.75,
    prior: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Recency and treatment stock of each row from earlier treated rows.

    Rows must be sorted by customer, then week, with at most one row per
    customer per week.

    Parameters
    ----------
    customer, week, treated : ndarray (n,)
    decay : float, default=0.75
    prior : (last_treated, stock, stock_week), each ndarray (n,), default=None
        History from before these rows (scoring new rows with the state a fit stored,
        :func:`history_state`): per row, the customer's last treated week before the
        rows (NaN if never), and its treatment stock at week ``stock_week`` counting the
        treatments up to and including that week (0 if never). Only the values on a
        customer's first row are read.

    Returns
    -------
    recency : ndarray of float
        Weeks since the customer's last *earlier* treatment; ``inf`` if never treated.
    stock : ndarray of float
        ``sum over earlier treated rows k of decay ** (week - week_k)``; 0 if never.
    """
    customer = np.asarray(customer)
    week = np.asarray(week, dtype=np.int64)
    treated = np.asarray(treated).astype(bool)
    n = customer.size
    if n == 0:
        return np.zeros(0), np.zeros(0)
    new = np.ones(n, dtype=bool)
    new[1:] = customer[1:] != customer[:-1]
    if np.any(~new[1:] & (week[1:] <= week[:-1])):
        raise DataError(
            "exposure_history needs rows sorted by customer then week, one row per customer "
            "per week; sort the data (ExperimentData does this for you)."
        )
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    # index of the last treated row strictly before each row, within the customer
    pos = np.where(treated, np.arange(n), -1)
    prev = np.empty(n, dtype=np.int64)
    prev[0] = -1
    prev[1:] = np.maximum.accumulate(pos)[:-1]
    has = prev >= start
    recency = np.full(n, np.inf)
    recency[has] = week[has] - week[prev[has]]
    # stock_i = decay^t_i * sum_{k<i, treated} decay^-t_k, with t relative to the
    # customer's first week so the powers stay within float64 range.
    rel = week - week[start]
    if rel.max() > 2000:
        raise DataError(
            f"A customer's history spans {int(rel.max())} periods; treatment stock supports at "
            f"most 2000. Use weekly periods or a shorter window."
        )
    contrib = np.where(treated, decay ** (-rel.astype(float)), 0.0)
    csum = pd.Series(contrib).groupby(start).cumsum().to_numpy() - contrib  # exclusive
    stock = np.where(has, decay ** rel.astype(float) * csum, 0.0)
    if prior is not None:
        last0, stock0, week0 = (np.asarray(a, float)[start] for a in prior)
        had = np.isfinite(last0)
        recency = np.where(~has & had, week - np.where(had, last0, 0), recency)
        if np.any(had & (week <= np.where(had, week0, -np.inf))):
            raise DataError(
                "New rows must come after the history they continue: some rows are in a week "
                "at or before the customer's last week in the fitted data. Score only later "
                "weeks, or refit with these rows.")
        stock = stock + np.where(had, stock0 * decay ** (week - np.where(had, week0, 0)), 0.0)
    # Equal histories must give equal stocks: the powers above leave ulp-level noise,
    # and stocks are heavily tied (e.g. "one treatment k weeks ago"), so without
    # rounding, rows on a quintile edge would be split between two bins at random.
    stock = np.round(stock, 12)
    return recency, stock


def history_state(customer: np.ndarray, week: np.ndarray, treated: np.ndarray,
                  decay: float = 0.75) -> pd.DataFrame:
    """Each customer's exposure history at the end of the rows: what scoring later weeks
    needs (:func:`exposure_history`'s ``prior``).

    Rows sorted by customer, then week. Returns one row per customer: ``customer_id``,
    ``last_week`` (the customer's last week in the rows), ``last_treated_week`` (NaN if
    never treated) and ``stock`` (the treatment stock at ``last_week``, counting the
    treatments up to and including that week).
    """
    customer = np.asarray(customer)
    week = np.asarray(week, np.int64)
    treated = np.asarray(treated).astype(bool)
    codes, ids = pd.factorize(customer, sort=False)
    n = ids.size
    last_week = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_week, codes, week)
    tw = np.where(treated, week, np.iinfo(np.int64).min)
    last_t = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_t, codes, tw)
    ever = last_t > np.iinfo(np.int64).min
    # stock at the last week: sum over treated rows of decay^(last_week - week)
    contrib = np.where(treated, decay ** (last_week[codes] - week).astype(float), 0.0)
    stock = np.round(np.bincount(codes, weights=contrib, minlength=n), 12)
    return pd.DataFrame({"customer_id": ids, "last_week": last_week,
                         "last_treated_week": np.where(ever, last_t, np.nan).astype(float),
                         "stock": stock})


@dataclass(frozen=True, repr=False)
class FeatureArrays:
    """The model's per-row features as compact arrays (no dense design).

    Attributes
    ----------
    X : ndarray (n_rows, p) float
        Centred ``log1p`` covariates (customer-specific slopes).
    cell : ndarray int
        Recency x stock cell 0..24 (``rec_bin * 5 + stock_bin``), 25 = never treated.
    activity : ndarray int
        Activity bin 0..n_activity_bins-1 (all zeros if no activity column).
    prop_treated : ndarray float
        Share treated in the intervention, centred.
    recency, stock : ndarray float
        The raw history values (recency ``inf`` if never treated).
    recency_bin, stock_bin : ndarray int
        Their bins (-1 where never treated).
    """

    X: np.ndarray
    cell: np.ndarray
    activity: np.ndarray
    prop_treated: np.ndarray
    recency: np.ndarray
    stock: np.ndarray
    recency_bin: np.ndarray
    stock_bin: np.ndarray

    def __repr__(self) -> str:
        return f"FeatureArrays(n_rows={len(self.cell):,}, p={self.X.shape[1]})"


class ExposureFeatures:
    """Fit bin edges and means on calibration data; apply them to any data.

    Parameters
    ----------
    decay : float, default=0.75
        Weekly decay of the treatment stock.
    recency_edges : tuple of float, default=(2, 4, 6, 8)
        Right-closed recency bin edges; the last bin is ``> edges[-1]``.
    n_stock_bins : int, default=5
        Quantile bins of the stock among previously treated rows.
    n_activity_bins : int, default=7
        Quantile bins of the activity column.
    log_covariates : bool, default=True
        Apply ``log1p`` to the covariates (they must be >= 0).

    Attributes
    ----------
    stock_edges_, activity_edges_, covariate_means_, prop_mean_ : fitted values.

    Examples
    --------
    >>> from manylift.simulate.program import simulate_program
    >>> data, _ = simulate_program(200, 4, 10, random_state=0)
    >>> fe = ExposureFeatures().fit(data.frame, data.covariates, data.activity_col)
    >>> fe.n_cells
    26
    """

    def __init__(self, decay: float = 0.75, recency_edges=RECENCY_EDGES, n_stock_bins: int = 5,
                 n_activity_bins: int = 7, log_covariates: bool = True):
        self.decay = decay
        self.recency_edges = tuple(recency_edges)
        self.n_stock_bins = n_stock_bins
        self.n_activity_bins = n_activity_bins
        self.log_covariates = log_covariates

    @property
    def n_recency_bins(self) -> int:
        return len(self.recency_edges) + 1

    @property
    def n_cells(self) -> int:
        return self.n_recency_bins * self.n_stock_bins + 1

    def _history(self, frame: pd.DataFrame, prior=None):
        return exposure_history(frame["customer_id"].to_numpy(), frame["week"].to_numpy(),
                                frame["treated"].to_numpy(), self.decay, prior)

    def _X(self, frame: pd.DataFrame, covariates) -> np.ndarray:
        if not covariates:
            return np.zeros((len(frame), 0))
        X = frame.loc[:, list(covariates)].to_numpy(dtype=float)
        if self.log_covariates:
            neg = (X < 0).any(axis=0)
            if neg.any():
                bad = [c for c, b in zip(covariates, neg, strict=True) if b]
                raise DataError(
                    f"Covariate(s) {bad} have negative values, so log1p cannot be applied. "
                    f"Pass log_covariates=False (CLI: --no-log-covariates) or transform them."
                )
            X = np.log1p(X)
        return X

    @staticmethod
    def _share_treated(frame: pd.DataFrame) -> np.ndarray:
        return frame.groupby(["campaign_id", "week"], sort=False, observed=True)["treated"] \
            .transform("mean").to_numpy(dtype=float)

    def fit(self, frame: pd.DataFrame, covariates=(), activity_col: str | None = None,
            rows: np.ndarray | None = None) -> ExposureFeatures:
        """Learn bin edges and means.

        Parameters
        ----------
        frame : DataFrame
            Canonical frame of :class:`~manylift.data.ExperimentData` (all rows,
            sorted by customer and week; history is computed over all of them).
        covariates : sequence of str
        activity_col : str or None
        rows : bool mask, default=None
            The calibration rows the edges and means are fitted on (default all).
        """
        if not 0 < self.decay < 1:
            raise ModelError(f"The 'decay' parameter must be in (0, 1); got {self.decay!r}.")
        mask = np.ones(len(frame), bool) if rows is None else np.asarray(rows, bool)
        rec, stock = self._history(frame)
        treated_before = np.isfinite(rec) & mask
        qs = np.linspace(0, 1, self.n_stock_bins + 1)[1:-1]
        self.stock_edges_ = (np.quantile(stock[treated_before], qs)
                             if treated_before.any() else np.zeros(len(qs)))
        self.activity_col_ = activity_col
        if activity_col:
            a = frame[activity_col].to_numpy(dtype=float)[mask]
            qa = np.linspace(0, 1, self.n_activity_bins + 1)[1:-1]
            self.activity_edges_ = np.quantile(a, qa)
        else:
            self.activity_edges_ = np.zeros(0)
        self.covariates_ = tuple(covariates)
        X = self._X(frame, covariates)
        self.covariate_means_ = X[mask].mean(axis=0) if X.shape[1] else np.zeros(0)
        self.prop_mean_ = float(self._share_treated(frame)[mask].mean())
        return self

    def transform(self, frame: pd.DataFrame, prior=None, prop_treated=None,
                  recency_stock=None) -> FeatureArrays:
        """Apply the fitted edges and means to ``frame`` (sorted by customer, week).

        ``prior``: the exposure history before these rows (:func:`exposure_history`), for
        new rows that continue a fitted program; ``recency_stock``: the rows' recency and
        stock computed elsewhere (from a longer history). ``prop_treated``: the share
        treated in each row's intervention, when ``frame`` does not hold the whole
        intervention (new rows to score); default: computed from ``frame``.
        """
        if not hasattr(self, "stock_edges_"):
            raise ModelError("This ExposureFeatures is not fitted yet; call fit(...) first.")
        rec, stock = (self._history(frame, prior) if recency_stock is None
                      else (np.asarray(recency_stock[0], float),
                            np.asarray(recency_stock[1], float)))
        ever = np.isfinite(rec)
        rbin = np.where(ever, np.searchsorted(np.asarray(self.recency_edges), np.where(ever, rec, 0),
                                              side="left"), -1)
        sbin = np.where(ever, np.searchsorted(self.stock_edges_, stock, side="right"), -1)
        sbin = np.minimum(sbin, self.n_stock_bins - 1)
        cell = np.where(ever, rbin * self.n_stock_bins + sbin, self.n_cells - 1)
        if self.activity_col_:
            a = frame[self.activity_col_].to_numpy(dtype=float)
            act = np.searchsorted(self.activity_edges_, a, side="right")
        else:
            act = np.zeros(len(frame), dtype=np.int64)
        X = self._X(frame, self.covariates_) - self.covariate_means_
        prop = (self._share_treated(frame) if prop_treated is None
                else np.asarray(prop_treated, float)) - self.prop_mean_
        return FeatureArrays(X=X, cell=cell.astype(np.int32), activity=act.astype(np.int32),
                             prop_treated=prop, recency=rec, stock=stock,
                             recency_bin=rbin.astype(np.int32), stock_bin=sbin.astype(np.int32))

    def to_dict(self) -> dict:
        """The fitted edges and means (stored with a fit so new data is binned the same way)."""
        return {
            "decay": self.decay, "recency_edges": list(self.recency_edges),
            "n_stock_bins": self.n_stock_bins, "n_activity_bins": self.n_activity_bins,
            "log_covariates": self.log_covariates,
            "stock_edges": list(map(float, self.stock_edges_)),
            "activity_col": self.activity_col_,
            "activity_edges": list(map(float, self.activity_edges_)),
            "covariates": list(self.covariates_),
            "covariate_means": list(map(float, self.covariate_means_)),
            "prop_mean": self.prop_mean_,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ExposureFeatures:
        """A fitted transformer from :meth:`to_dict` (as a fit stores it in model.json)."""
        fe = cls(decay=d["decay"], recency_edges=d["recency_edges"],
                 n_stock_bins=d["n_stock_bins"], n_activity_bins=d["n_activity_bins"],
                 log_covariates=d["log_covariates"])
        fe.stock_edges_ = np.asarray(d["stock_edges"], float)
        fe.activity_col_ = d["activity_col"]
        fe.activity_edges_ = np.asarray(d["activity_edges"], float)
        fe.covariates_ = tuple(d["covariates"])
        fe.covariate_means_ = np.asarray(d["covariate_means"], float)
        fe.prop_mean_ = float(d["prop_mean"])
        return fe

    def __repr__(self) -> str:
        return (f"ExposureFeatures(decay={self.decay}, recency_edges={self.recency_edges}, "
                f"n_stock_bins={self.n_stock_bins}, n_activity_bins={self.n_activity_bins})")
