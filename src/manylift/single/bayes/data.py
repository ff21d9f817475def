"""The design of the Bayesian uplift models, collapsed into cells of identical rows.

Rows that share the segment, the arm and every covariate value share the
linear predictor, so their likelihood is a function of counts alone:

* Bernoulli: the product of ``p^y (1 - p)^(1 - y)`` over the ``n_c`` rows of
  cell ``c`` is ``p^(s_c) (1 - p)^(n_c - s_c)`` with ``s_c`` the cell's successes,
  i.e. the binomial likelihood without its constant;
* Gaussian: ``sum_i log N(y_i | eta, sigma)`` depends on the rows only through
  ``n_c``, ``sum y`` and ``sum y^2``.

The collapse is exact (the same posterior); it is what makes a table whose
covariates are categorical or binary (segment, arm, 0/1 flags: a few hundred
cells for 64,000 rows) fast.  With a continuous covariate most cells hold one
row and the model runs on the rows as before.

The design is reparameterised for the sampler: numeric covariates are
standardized, and covariates and the treatment indicator are centred within
each segment (over all rows for the pooled model).  Centring moves the
intercept to the log-odds at the segment's average covariates and treated share
and leaves the effect coefficients unchanged; it decorrelates the intercepts
from the slopes and the effect, which halves the NUTS steps per draw.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from manylift._core.checks import example_ids
from manylift._core.errors import DataError, DataWarning, ModelError
from manylift.single.data import SingleData, plain

__all__ = ["BayesDesign", "build_design"]


@dataclass(frozen=True, eq=False)
class BayesDesign:
    """Cells of identical rows and everything the model and its functionals need.

    Attributes
    ----------
    n : ndarray (C,)
        Rows per cell.
    y_sum, y_sumsq : ndarray (C,)
        Sum (successes for a 0/1 outcome) and sum of squares of the outcome on
        the model scale (standardized for the Gaussian family).
    treated : ndarray (C,)
        1 for cells of treated rows (any arm other than the control), else 0.
    treated_centred : ndarray (C,)
        ``treated`` minus the segment's treated share (``treated_share``).
    X : ndarray (C, k)
        Standardized covariates (numeric) and 0/1 dummies, centred within segment.
    segment_index : ndarray (C,) of int
    segments : tuple of str
    treated_share : ndarray (S,)
    covariate_names : tuple of str
    family : str
    y_loc, y_scale : float
        Standardization of the Gaussian outcome (0, 1 for Bernoulli).
    control : object
        The control value of the treatment column.
    n_rows : int
    collapsed : bool
        Whether identical rows were merged into cells.
    """

    n: np.ndarray
    y_sum: np.ndarray
    y_sumsq: np.ndarray
    treated: np.ndarray
    treated_centred: np.ndarray
    X: np.ndarray
    segment_index: np.ndarray
    segments: tuple
    treated_share: np.ndarray
    covariate_names: tuple
    family: str
    y_loc: float
    y_scale: float
    control: object
    n_rows: int
    collapsed: bool = True
    info: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return int(self.n.size)

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    @property
    def outcome_mean(self) -> float:
        """Observed mean outcome (outcome units)."""
        return float(self.y_loc + self.y_scale * self.y_sum.sum() / self.n.sum())

    def model_arrays(self) -> dict:
        """The float32 / int32 arrays the NumPyro model takes."""
        return {"treated": self.treated_centred.astype(np.float32),
                "X": self.X.astype(np.float32),
                "segment": self.segment_index.astype(np.int32),
                "n": self.n.astype(np.float32)}

    def observed(self) -> dict:
        return {"y_sum": self.y_sum.astype(np.float32),
                "y_sumsq": self.y_sumsq.astype(np.float32)}

    def raw_lift(self):
        """Per segment: rows, treated rows, control rows, treated mean minus control mean."""
        S, idx = self.n_segments, self.segment_index
        n = np.bincount(idx, weights=self.n, minlength=S)
        nt = np.bincount(idx, weights=self.n * self.treated, minlength=S)
        nc = n - nt
        total = self.y_loc * self.n + self.y_scale * self.y_sum  # outcome units
        st = np.bincount(idx, weights=total * self.treated, minlength=S)
        sc = np.bincount(idx, weights=total * (1 - self.treated), minlength=S)
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = np.where((nt > 0) & (nc > 0), st / np.maximum(nt, 1) - sc / np.maximum(nc, 1),
                            np.nan)
        return n.astype(int), nt.astype(int), nc.astype(int), lift

    def __repr__(self) -> str:
        return (f"BayesDesign(rows={self.n_rows}, cells={self.n_cells}, segments="
                f"{self.n_segments}, covariates={len(self.covariate_names)}, "
                f"family={self.family!r})")


def build_design(data: SingleData, *, hierarchical: bool, family: str | None = None,
                 collapse: bool = True) -> BayesDesign:
    """The design of one model (pooled: one segment ``"all"``) from prepared data.

    Parameters
    ----------
    data : SingleData
        Every arm other than the control counts as treated.
    hierarchical : bool
        Use ``data.segment`` (required) as the segments; else one segment.
    family : {"bernoulli", "gaussian"}, default=None
        ``None`` takes ``data.family``.
    collapse : bool, default=True
        Merge identical rows into cells (exact); False keeps one cell per row.
    """
    family = data.family if family is None else family
    y = data.outcome
    if family == "bernoulli":
        other = ~np.isin(y, (0.0, 1.0))
        if other.any():
            raise DataError(
                f"The outcome column {data.columns.get('outcome')!r} must hold only 0/1 for "
                f"family='bernoulli'; {int(other.sum())} row(s) hold other values "
                f"({example_ids([plain(v) for v in np.unique(y[other])])}). Use "
                f"family='gaussian' for a continuous outcome."
            )
        y_loc, y_scale, y_model = 0.0, 1.0, y
    elif family == "gaussian":
        y_loc, y_scale = float(y.mean()), float(y.std())
        y_model = (y - y_loc) / y_scale
    else:
        raise ModelError(f"The 'family' parameter must be 'bernoulli' or 'gaussian'; got "
                         f"{family!r} instead.")
    treated = data.treated
    if hierarchical:
        if data.segment is None:
            raise ModelError("The hierarchical model needs a segment column (segment=...).")
        seg_names, seg_idx = np.unique(data.segment, return_inverse=True)
        segments = tuple(str(s) for s in seg_names)
    else:
        segments, seg_idx = ("all",), np.zeros(data.n, dtype=np.int64)
    S = len(segments)
    counts = np.bincount(seg_idx, minlength=S).astype(float)
    share = np.bincount(seg_idx, weights=treated, minlength=S) / counts
    if hierarchical:
        one_arm = [segments[k] for k in range(S) if share[k] in (0.0, 1.0)]
        if one_arm:
            warnings.warn(
                f"{len(one_arm)} segment(s) have only one arm ({example_ids(one_arm)}); their "
                f"effects rest on the prior and the other segments (partial pooling).",
                DataWarning, stacklevel=3,
            )

    # standardize numeric covariates; dummies stay 0/1; then centre within segment
    x = data.covariates.astype(float).copy()
    names = list(data.covariate_names)
    numeric = [j for j, nm in enumerate(names)
               if nm in data.encoder.columns and nm not in data.encoder.levels]
    for j in numeric:
        sd = x[:, j].std()
        if sd > 0:
            x[:, j] = (x[:, j] - x[:, j].mean()) / sd
    if hierarchical and data.segment is not None and data.columns.get("segment") in \
            data.encoder.columns:
        raise ModelError(
            f"The segment column {data.columns['segment']!r} is also a covariate; the "
            f"hierarchical model gives every segment its own baseline already. Remove it from "
            f"the covariates.")

    key = np.column_stack([seg_idx, treated, x]) if x.size else np.column_stack([seg_idx, treated])
    if collapse:
        # rows with the same segment, arm and covariates share the linear predictor
        _, first, cell = np.unique(key, axis=0, return_index=True, return_inverse=True)
        cell = cell.reshape(-1)
    else:
        first, cell = np.arange(data.n), np.arange(data.n)
    C = first.size
    n = np.bincount(cell, minlength=C).astype(float)
    y_sum = np.bincount(cell, weights=y_model, minlength=C)
    y_sumsq = np.bincount(cell, weights=y_model**2, minlength=C)
    seg_c = seg_idx[first]
    w_c = treated[first]
    x_c = x[first]
    # centre with the row-weighted segment means (cells weighted by their row counts)
    if x_c.shape[1]:
        sums = np.zeros((S, x_c.shape[1]))
        np.add.at(sums, seg_c, x_c * n[:, None])
        x_c = x_c - (sums / counts[:, None])[seg_c]
    return BayesDesign(
        n=n, y_sum=y_sum, y_sumsq=y_sumsq, treated=w_c, treated_centred=w_c - share[seg_c],
        X=x_c, segment_index=seg_c.astype(np.int64), segments=segments, treated_share=share,
        covariate_names=tuple(names), family=family, y_loc=y_loc, y_scale=y_scale,
        control=data.control, n_rows=data.n, collapsed=collapse,
    )
