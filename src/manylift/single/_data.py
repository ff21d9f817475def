"""Turn a single-experiment table into validated arrays.

One row per customer: a treatment column holding 0/1 or arm labels, a numeric
outcome, covariates (numeric; categorical ones are one-hot encoded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from manylift._core.checks import example_ids
from manylift._core.errors import (
    ColumnTypeError,
    DataError,
    EmptyDataError,
    MissingColumnError,
    NonFiniteError,
    PropensityError,
    TreatmentValueError,
)

__all__ = ["SingleData", "prepare_single", "resolve_control"]

_CONTROL_WORD = re.compile(r"(^|[^a-z])(control|no|none|holdout)([^a-z]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class SingleData:
    """Validated arrays of one experiment.

    Attributes
    ----------
    outcome : ndarray (n,)
    treatment : ndarray (n,) of int
        0 = control, k = ``arms[k]``.
    covariates : ndarray (n, p)
    covariate_names : list of str
        After one-hot encoding (``"zip_code=Urban"``).
    arms : list
        Labels of the arms as in the data; ``arms[0]`` is the control.
    propensity : ndarray (n, K + 1) or None
        Known assignment probabilities, if given.
    """

    outcome: np.ndarray
    treatment: np.ndarray
    covariates: np.ndarray
    covariate_names: list
    arms: list
    propensity: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.outcome.shape[0])

    @property
    def n_arms(self) -> int:
        """Number of treated arms K."""
        return len(self.arms) - 1

    def arm_names(self) -> list[str]:
        return [str(a) for a in self.arms]

    def subset(self, rows) -> SingleData:
        rows = np.asarray(rows)
        return SingleData(
            outcome=self.outcome[rows], treatment=self.treatment[rows],
            covariates=self.covariates[rows], covariate_names=self.covariate_names,
            arms=self.arms,
            propensity=None if self.propensity is None else self.propensity[rows],
        )

    def __repr__(self) -> str:
        counts = np.bincount(self.treatment, minlength=len(self.arms))
        arms = ", ".join(f"{a!s}: {c}" for a, c in zip(self.arms, counts))
        return (f"SingleData(n={self.n}, covariates={len(self.covariate_names)}, "
                f"arms={{{arms}}})")


def resolve_control(values, control=None):
    """Find the control label among the treatment values.

    ``control`` if given; else 0 if present; else the only label containing
    the word "control", "no", "none" or "holdout" (case-insensitive).
    """
    labels = pd.unique(pd.Series(values).dropna())
    listed = sorted(labels.tolist(), key=str)
    if control is not None:
        for lab in labels:
            if lab == control or str(lab) == str(control):
                return lab
        raise TreatmentValueError(
            f"The control value {control!r} is not in the treatment column; its values are "
            f"{example_ids(listed, 10)}. Pass one of them with --control / control=."
        )
    numeric = [lab for lab in labels if isinstance(lab, int | float | np.integer | np.floating)
               and not isinstance(lab, bool | np.bool_)]
    if labels.size and len(numeric) == labels.size and {float(v) for v in numeric} <= {0.0, 1.0}:
        return 0  # a 0/1 column: 0 is the control, even when no row has it (caught downstream)
    for lab in labels:
        if isinstance(lab, bool | np.bool_) and not lab:
            return False  # a True/False treatment column: False is the control
        if isinstance(lab, int | float | np.integer | np.floating) and float(lab) == 0:
            return lab
    hits = [lab for lab in labels if isinstance(lab, str) and _CONTROL_WORD.search(lab)]
    if len(hits) == 1:
        return hits[0]
    raise TreatmentValueError(
        f"Cannot tell which treatment value is the control: values are "
        f"{example_ids(listed, 10)} ({'several' if hits else 'none'} look like a control). "
        f"Name it with --control VALUE (control= in Python)."
    )


def prepare_single(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: list[str] | None = None,
    *,
    control=None,
    propensity: str | None = None,
) -> SingleData:
    """Validate a one-row-per-customer table and return arrays.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data (never modified).
    treatment : str
        Column with 0/1 or arm labels.
    outcome : str
        Numeric outcome column.
    covariates : list of str, default=None
        Pre-treatment columns; default every other numeric column (check that
        none of them is measured after treatment).  Categorical (text,
        boolean or category) columns named here are one-hot encoded (first
        level dropped).
    control : scalar, default=None
        The control value (see :func:`resolve_control`).
    propensity : str, default=None
        Column with the known probability of the *treated* arm (binary data only).
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"The data must be a pandas DataFrame; got {type(frame).__name__}.")
    if len(frame) == 0:
        raise EmptyDataError("The data has no rows.")
    for role, col in (("treatment", treatment), ("outcome", outcome)):
        if col not in frame.columns:
            raise MissingColumnError(
                f"The {role} column {col!r} is not in the data; columns are "
                f"{example_ids(list(frame.columns), 12)}. Pass the right name with --{role}."
            )
    if propensity is not None and propensity not in frame.columns:
        raise MissingColumnError(f"The propensity column {propensity!r} is not in the data.")
    if covariates is None:
        skip = {treatment, outcome, propensity}
        covariates = [c for c in frame.columns
                      if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
                      and not pd.api.types.is_bool_dtype(frame[c])]
    else:
        covariates = list(covariates)
        missing = [c for c in covariates if c not in frame.columns]
        if missing:
            raise MissingColumnError(
                f"{len(missing)} covariate column(s) are not in the data: "
                f"{example_ids(missing)}. Columns are {example_ids(list(frame.columns), 12)}."
            )
        bad = [c for c in covariates if c in (treatment, outcome)]
        if bad:
            raise DataError(f"The covariates may not include the treatment or outcome column ({bad}).")
    if not covariates:
        raise DataError(
            "No covariates: the data has no other numeric column. Name them with --covariates a,b,c."
        )

    y_raw = frame[outcome]
    if not pd.api.types.is_numeric_dtype(y_raw) or pd.api.types.is_bool_dtype(y_raw):
        if pd.api.types.is_bool_dtype(y_raw):
            y_raw = y_raw.astype(float)
        else:
            raise ColumnTypeError(
                f"The outcome column {outcome!r} must be numeric; it has dtype {y_raw.dtype} "
                f"(e.g. {example_ids(y_raw.head(3).tolist())})."
            )
    y = y_raw.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise NonFiniteError(
            f"The outcome column {outcome!r} has {bad.size} missing or non-finite value(s) "
            f"(rows {example_ids(bad)}). Drop or impute those rows first."
        )

    w_raw = frame[treatment]
    if w_raw.isna().any():
        rows = np.flatnonzero(w_raw.isna().to_numpy())
        raise TreatmentValueError(
            f"The treatment column {treatment!r} has {rows.size} missing value(s) "
            f"(rows {example_ids(rows)}). Drop those rows first."
        )
    ctrl = resolve_control(w_raw, control)
    labels = pd.unique(w_raw)
    others = sorted([lab for lab in labels if not (lab == ctrl)], key=str)
    if not others:
        raise TreatmentValueError(
            f"The treatment column {treatment!r} holds only the control value {ctrl!r}; "
            f"an experiment needs at least one treated arm."
        )
    arms = [ctrl, *others]
    codes = np.zeros(len(frame), dtype=int)
    w_values = w_raw.to_numpy()
    for k, lab in enumerate(others, start=1):
        codes[w_values == lab] = k
    counts = np.bincount(codes, minlength=len(arms))
    small = [f"{arms[k]!r} ({counts[k]} rows)" for k in range(len(arms)) if counts[k] < 2]
    if small:
        raise TreatmentValueError(
            f"Every arm needs at least 2 rows; {', '.join(small)} do not. Drop or merge those arms."
        )

    parts, names = [], []
    for c in covariates:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            vals = col.to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(vals))
            if bad.size:
                raise NonFiniteError(
                    f"The covariate {c!r} has {bad.size} missing or non-finite value(s) "
                    f"(rows {example_ids(bad)}). Impute or drop them first."
                )
            parts.append(vals[:, None])
            names.append(str(c))
        else:
            if col.isna().any():
                raise NonFiniteError(
                    f"The categorical covariate {c!r} has {int(col.isna().sum())} missing value(s). "
                    f"Fill them (e.g. with 'missing') first."
                )
            levels = sorted(pd.unique(col.astype(str)).tolist())
            if len(levels) > 200:
                raise ColumnTypeError(
                    f"The covariate {c!r} has {len(levels)} distinct text values; one-hot encoding "
                    f"it would be unwieldy. Is it an id column? Leave it out of --covariates."
                )
            as_str = col.astype(str).to_numpy()
            for lev in levels[1:]:
                parts.append((as_str == lev).astype(float)[:, None])
                names.append(f"{c}={lev}")
    x = np.hstack(parts) if parts else np.empty((len(frame), 0))

    prop = None
    if propensity is not None:
        if len(arms) != 2:
            raise PropensityError(
                "A propensity column is supported for binary treatments only; with several arms "
                "leave it out (randomized=True uses the arm shares)."
            )
        e = frame[propensity].to_numpy(dtype=float)
        bad = np.flatnonzero(~((e > 0) & (e < 1)))
        if bad.size:
            raise PropensityError(
                f"The propensity column {propensity!r} has {bad.size} value(s) outside (0, 1) "
                f"(rows {example_ids(bad)}). Propensities must be strictly between 0 and 1."
            )
        prop = np.column_stack([1 - e, e])
    return SingleData(outcome=y, treatment=codes, covariates=x, covariate_names=names,
                      arms=arms, propensity=prop)
