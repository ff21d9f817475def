"""One table preparer for the single-experiment commands (``analyze``, ``bayes``, ``personalize``).

:class:`SingleData` turns a one-row-per-customer table into validated arrays,
with one set of rules for all three commands:

* **treatment**: 0/1, booleans or arm labels; the control is ``control=`` if
  given, else 0 (or False), else the only label containing the word control /
  no / none / holdout (``"No E-Mail"``), otherwise an error asks for it.  Arm
  codes are 0 for the control and 1..K for the other labels, sorted.
* **outcome**: numeric; ``family`` is ``"bernoulli"`` for a 0/1 outcome and
  ``"gaussian"`` otherwise (or as given).
* **covariates**: only the columns named, ``"auto"`` (every other numeric
  column, opt-in) or, by default, the pre-treatment columns a built-in dataset
  declares (none for any other table).  Text, boolean and category columns are
  one-hot encoded (first level dropped, ``"zip_code=Urban"``); the encoding is
  kept (:meth:`SingleData.transform`) so new rows are encoded the same way.
* **randomization balance**: in a randomized experiment every covariate (and the
  segment column) must have the same distribution in every arm.  Each treated
  arm is compared with the control by :func:`manylift.data.balance.balance_table`
  (categorical columns one dummy per level, the error naming the column); a
  column with ``|SMD| > 0.1`` *and* ``p < 0.001`` is refused
  (:class:`~manylift._core.errors.ImbalanceError`) unless listed in
  ``allow_imbalanced``: the treatment moved it, so it was measured after
  treatment and would absorb the effect.
* **duplicates**: rows equal in every column are refused unless
  ``allow_duplicates`` (or the dataset declares that rows may repeat).
* **subsampling**: ``sample=N`` keeps a seeded random N rows (in file order).

Every error names the column, the offending values or rows and the fix, with
plain values (``2``, not ``np.int64(2)``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import example_ids
from manylift._core.errors import (
    ColumnTypeError,
    DataError,
    DataWarning,
    DuplicateRowError,
    EmptyDataError,
    ImbalanceError,
    MissingColumnError,
    ModelError,
    NonFiniteError,
    PropensityError,
    TreatmentValueError,
)
from manylift._core.rng import as_generator
from manylift.data.balance import BALANCE_ALPHA, SMD_THRESHOLD, balance_table, check_balance
from manylift.data.datasets import ATTRS_KEY

__all__ = ["CovariateEncoder", "SingleData", "plain", "resolve_control"]

_CONTROL_WORD = re.compile(r"(^|[^a-z])(control|no|none|holdout)([^a-z]|$)", re.IGNORECASE)
_FAMILIES = ("auto", "bernoulli", "gaussian")
_MAX_LEVELS = 200


def plain(value):
    """A value as a user wrote it: numpy scalars become Python scalars (``2``, not
    ``np.int64(2)``); floats that are whole numbers print without ``.0``."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _show(values, k: int = 5) -> str:
    """Up to ``k`` plain values for a message: ``'abc', 2, 'x' and 3 more``."""
    return example_ids([plain(v) for v in values], k)


def resolve_control(values, control=None):
    """Find the control label among the treatment values.

    ``control`` if given; else 0 (or False) for a 0/1 or boolean column; else
    the only label containing the word "control", "no", "none" or "holdout"
    (case-insensitive).  Raises :class:`TreatmentValueError` naming the values
    and the fix otherwise.

    Examples
    --------
    >>> resolve_control(["Mens E-Mail", "No E-Mail", "Womens E-Mail"])
    'No E-Mail'
    >>> resolve_control([1, 0, 1])
    0
    """
    labels = pd.unique(pd.Series(values).dropna())
    listed = sorted(labels.tolist(), key=str)
    if control is not None:
        for lab in labels:
            if lab == control or str(plain(lab)) == str(control):
                return lab
        raise TreatmentValueError(
            f"The control value {plain(control)!r} is not in the treatment column; its values "
            f"are {_show(listed, 10)}. Pass one of them with --control / control=."
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
        f"{_show(listed, 10)} ({'several' if hits else 'none'} look like a control). "
        f"Name it with --control VALUE (control= in Python)."
    )


# --------------------------------------------------------------------------
# covariate encoding
# --------------------------------------------------------------------------
def _refuse_missing_category(name, col: pd.Series) -> None:
    """A categorical covariate with missing values: refused, naming the column and rows."""
    if col.isna().any():
        rows = np.flatnonzero(col.isna().to_numpy())
        raise NonFiniteError(
            f"The categorical covariate {name!r} has {rows.size} missing value(s) "
            f"(rows {_show(rows)}). Fill them (e.g. with 'missing') or drop those rows."
        )


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


@dataclass(frozen=True)
class CovariateEncoder:
    """How the named covariate columns become the numeric matrix (kept to encode new rows).

    Attributes
    ----------
    columns : tuple of str
        The covariate columns as named by the user.
    levels : dict
        For each categorical column, its sorted levels (as text); the first is
        the reference level (no dummy).
    names : tuple of str
        Names of the encoded columns (``"history"``, ``"zip_code=Urban"``).
    """

    columns: tuple = ()
    levels: dict = field(default_factory=dict)
    names: tuple = ()

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns) -> CovariateEncoder:
        levels, names = {}, []
        for c in columns:
            col = frame[c]
            if _is_numeric(col):
                names.append(str(c))
                continue
            _refuse_missing_category(c, col)
            labs = sorted(pd.unique(col.astype(str)).tolist())
            if len(labs) > _MAX_LEVELS:
                raise ColumnTypeError(
                    f"The covariate {c!r} has {len(labs)} distinct text values; one-hot encoding "
                    f"it would be unwieldy. Is it an id column? Leave it out of the covariates."
                )
            levels[str(c)] = tuple(labs)
            names += [f"{c}={lev}" for lev in labs[1:]]
        return cls(columns=tuple(str(c) for c in columns), levels=levels, names=tuple(names))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded matrix (n, p) of ``frame``'s covariate columns.

        Raises a :class:`DataError` naming the column for a missing column, a
        missing or non-numeric value, or a category level not seen when fitting.
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"New rows must be a pandas DataFrame with the covariate columns "
                            f"{list(self.columns)}; got {type(frame).__name__}.")
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise MissingColumnError(
                f"{len(missing)} covariate column(s) are not in the data: {_show(missing)}. "
                f"Columns are {_show(list(frame.columns), 12)}."
            )
        parts = []
        for c in self.columns:
            col = frame[c]
            if c not in self.levels:
                vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                bad = np.flatnonzero(~np.isfinite(vals))
                if bad.size:
                    shown = col.iloc[bad[:5]].tolist()
                    raise NonFiniteError(
                        f"The covariate {c!r} has {bad.size} missing, non-finite or non-numeric "
                        f"value(s) (e.g. {_show(shown)} in rows {_show(bad)}). Impute or drop "
                        f"those rows first."
                    )
                parts.append(vals[:, None])
                continue
            _refuse_missing_category(c, col)
            labs = self.levels[c]
            text = col.astype(str).to_numpy()
            unseen = sorted(set(pd.unique(text)) - set(labs))
            if unseen:
                raise DataError(
                    f"The covariate {c!r} has level(s) {_show(unseen)} not seen in the fitted "
                    f"data (levels {_show(labs, 10)}). Map them to one of those levels first."
                )
            for lev in labs[1:]:
                parts.append((text == lev).astype(float)[:, None])
        return np.hstack(parts) if parts else np.empty((len(frame), 0))

    def __repr__(self) -> str:
        return f"CovariateEncoder(columns={list(self.columns)}, encoded={len(self.names)})"


# --------------------------------------------------------------------------
# the prepared data
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SingleData:
    """Validated arrays of one experiment (one row per customer).

    Build it with :meth:`from_frame` (a table with named columns) or
    :meth:`from_arrays` (arrays, for the array-level functions).

    Attributes
    ----------
    outcome : ndarray (n,)
    treatment : ndarray (n,) of int
        0 = control, k = ``arms[k]``.
    covariates : ndarray (n, p)
        Encoded covariates (numeric as they are, categorical one-hot).
    covariate_names : list of str
        Names of the encoded columns (``"zip_code=Urban"``).
    arms : list
        Labels of the arms as in the data; ``arms[0]`` is the control.
    propensity : ndarray (n, K + 1) or None
        Known assignment probabilities, if given.
    family : str
        ``"bernoulli"`` (0/1 outcome) or ``"gaussian"``.
    segment : ndarray (n,) of str or None
        Segment labels (``segment=``), as text.
    row_ids : ndarray (n,)
        Identifier of every row: the ``id`` column when given, else the row's
        position in the input table (0-based, before any subsampling).
    columns : dict
        The column names of each role (``treatment``, ``outcome``, ``segment``,
        ``propensity``, ``id``, ``covariates``).
    encoder : CovariateEncoder
        Encodes new rows (:meth:`transform`).
    covariates_source : str
        ``"named"``, ``"auto"`` (every other numeric column, opt-in), ``"dataset"``
        (the pre-treatment columns a built-in dataset declares) or ``"none"``.
    balance : pandas.DataFrame or None
        The randomization balance table: per treated arm (``arm``) and covariate
        (``column``; ``covariate`` is the dummy for a categorical column),
        ``smd, difference, z, p_value, imbalanced``.
    randomized : bool
        Whether the data were declared a randomized experiment with constant
        assignment shares (the balance check then refuses imbalanced columns).
    rows_in : int
        Rows of the input table (before subsampling).
    dataset : str or None
        The built-in dataset the table came from.
    """

    outcome: np.ndarray
    treatment: np.ndarray
    covariates: np.ndarray
    covariate_names: list
    arms: list
    propensity: np.ndarray | None = None
    family: str = "gaussian"
    segment: np.ndarray | None = None
    row_ids: np.ndarray | None = None
    columns: dict = field(default_factory=dict)
    encoder: CovariateEncoder = field(default_factory=CovariateEncoder)
    covariates_source: str = "named"
    balance: pd.DataFrame | None = field(default=None, repr=False)
    randomized: bool = False
    rows_in: int = 0
    dataset: str | None = None

    # -- sizes and labels -----------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.outcome.shape[0])

    @property
    def n_arms(self) -> int:
        """Number of treated arms K."""
        return len(self.arms) - 1

    @property
    def control(self):
        return self.arms[0]

    @property
    def treated(self) -> np.ndarray:
        """1.0 for every non-control row (all treated arms together), else 0.0."""
        return (self.treatment > 0).astype(float)

    @property
    def covariate_columns(self) -> list[str]:
        """The covariate columns as named (before encoding)."""
        return list(self.encoder.columns)

    def arm_names(self) -> list[str]:
        return [str(plain(a)) for a in self.arms]

    def arm_counts(self) -> np.ndarray:
        return np.bincount(self.treatment, minlength=len(self.arms))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode the covariate columns of new rows as the fitted data were encoded."""
        return self.encoder.transform(frame)

    def subset(self, rows) -> SingleData:
        """The same data restricted to ``rows`` (indices or a boolean mask)."""
        rows = np.asarray(rows)

        def pick(a):
            return None if a is None else a[rows]

        from dataclasses import replace

        return replace(self, outcome=self.outcome[rows], treatment=self.treatment[rows],
                       covariates=self.covariates[rows], propensity=pick(self.propensity),
                       segment=pick(self.segment), row_ids=pick(self.row_ids))

    def __repr__(self) -> str:
        arms = ", ".join(f"{plain(a)!s}: {c}" for a, c in zip(self.arms, self.arm_counts()))
        return (f"SingleData(n={self.n}, covariates={len(self.covariate_names)}, "
                f"arms={{{arms}}}, family={self.family!r})")

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        treatment: str,
        outcome: str,
        covariates=None,
        *,
        control=None,
        segment: str | None = None,
        propensity: str | None = None,
        id: str | None = None,  # noqa: A002 - the column's role, as on the command line
        family: str = "auto",
        randomized: bool | None = None,
        allow_imbalanced=(),
        allow_duplicates: bool | None = None,
        sample: int | None = None,
        random_state=0,
        min_rows_per_arm: int = 2,
        require_covariates: bool = False,
        where: str = "the analysis",
    ) -> SingleData:
        """Validate a one-row-per-customer table and return arrays.

        Parameters
        ----------
        frame : pandas.DataFrame
            The data (never modified).
        treatment : str
            Column with 0/1, booleans or arm labels.
        outcome : str
            Numeric outcome column.
        covariates : list of str, "auto", "none" or None, default=None
            Pre-treatment columns.  ``None``: the pre-treatment columns a built-in
            dataset declares (``frame.attrs["manylift_dataset"]``), else none;
            ``"auto"``: every other numeric column (opt-in; balance-checked);
            ``"none"`` or ``[]``: none.  Text, boolean and category columns are
            one-hot encoded (first level dropped).
        control : scalar, default=None
            The control value (see :func:`resolve_control`).
        segment : str, default=None
            Segment column (any type; labels compared as text).
        propensity : str, default=None
            Column with the known probability of the *treated* arm (binary data only).
        id : str, default=None
            Column identifying rows in the per-unit exports (default: row position).
        family : {"auto", "bernoulli", "gaussian"}, default="auto"
            ``"auto"``: bernoulli for a 0/1 outcome, else gaussian.
        randomized : bool, default=None
            A randomized experiment with constant assignment shares: the balance
            check then refuses covariates (and the segment column) that differ
            between arms.  ``None``: what the dataset declares, else False.
        allow_imbalanced : iterable of str, default=()
            Columns kept even if the balance check flags them (CLI:
            ``--allow-imbalanced``).
        allow_duplicates : bool, default=None
            Keep rows equal in every column (CLI: ``--allow-duplicates``).  ``None``:
            what the dataset declares, else False (duplicates are refused).
        sample : int, default=None
            Keep a seeded random subsample of this many rows (in file order).
        random_state : int, default=0
            Seed of the subsample.
        min_rows_per_arm : int, default=2
        require_covariates : bool, default=False
            Raise when no covariate is named (commands that model heterogeneity).
        where : str
            The caller, for messages.

        Returns
        -------
        SingleData

        Examples
        --------
        >>> from manylift.data.datasets import load_hillstrom
        >>> d = SingleData.from_frame(load_hillstrom(), "segment", "conversion")
        >>> d.arms[0], d.family, d.covariates_source
        ('No E-Mail', 'bernoulli', 'dataset')
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"The data must be a pandas DataFrame; got {type(frame).__name__}.")
        if len(frame) == 0:
            raise EmptyDataError("The data has no rows.")
        if family not in _FAMILIES:
            raise ModelError(f"The 'family' parameter of {where} must be one of "
                             f"{list(_FAMILIES)}; got {family!r} instead.")
        info = frame.attrs.get(ATTRS_KEY) or {}
        roles = {"treatment": treatment, "outcome": outcome, "segment": segment,
                 "propensity": propensity, "id": id}
        for role, col in roles.items():
            if col is not None and col not in frame.columns:
                raise MissingColumnError(
                    f"The {role} column {col!r} is not in the data; columns are "
                    f"{_show(list(frame.columns), 12)}. Pass the right name with --{role}."
                )
        used = [c for c in roles.values() if c is not None]
        dup_roles = sorted({c for c in used if used.count(c) > 1})
        if dup_roles:
            raise DataError(f"The column {dup_roles[0]!r} is given for two roles "
                            f"({', '.join(r for r, c in roles.items() if c == dup_roles[0])}); "
                            f"each role needs its own column.")
        # the segment may also be a covariate (analyze summarises effects by a covariate)
        cov_cols, source = _covariate_columns(frame, covariates, used, info, where,
                                              clash=[c for c in used if c != segment])
        if require_covariates and not cov_cols:
            raise DataError(
                f"{where} needs covariates (pre-treatment columns) to model who responds; none "
                f"were named. Name them with --covariates a,b,c (covariates=[...] in Python), or "
                f"pass --covariates auto to use every other numeric column."
            )

        rows_in = len(frame)
        positions = np.arange(rows_in)
        if sample is not None:
            if isinstance(sample, bool) or not isinstance(sample, int | np.integer) or sample < 2:
                raise DataError(f"The subsample size must be an integer of at least 2 rows; "
                                f"got {sample!r}.")
            if sample < rows_in:
                positions = np.sort(as_generator(random_state).choice(rows_in, int(sample),
                                                                     replace=False))
                frame = frame.iloc[positions]

        if allow_duplicates is None:
            allow_duplicates = bool(info.get("rows_may_repeat", False))
        if not allow_duplicates:
            _check_duplicates(frame, positions)

        y, fam = _outcome(frame[outcome], outcome, positions, family)
        codes, arms = _treatment(frame[treatment], treatment, control, positions,
                                 min_rows_per_arm)
        encoder = CovariateEncoder.fit(frame, cov_cols)
        x = encoder.transform(frame)
        x, encoder = _drop_constant(x, encoder, frame)

        seg = None
        if segment is not None:
            col = frame[segment]
            if col.isna().any():
                rows = positions[np.flatnonzero(col.isna().to_numpy())]
                raise DataError(f"The segment column {segment!r} has {rows.size} missing "
                                f"value(s) (rows {_show(rows)}). Drop those rows or fill them.")
            seg = col.astype(str).to_numpy()

        prop = None
        if propensity is not None:
            prop = _propensity(frame[propensity], propensity, positions, len(arms))

        if randomized is None:
            randomized = bool(info.get("randomized", False)) and propensity is None
        balance = None
        if len(arms) > 1 and (cov_cols or segment is not None):
            balance = _balance(frame, encoder, segment, codes, arms)
            if randomized:
                _refuse_imbalance(balance, allow_imbalanced, arms)

        ids = frame[id].to_numpy() if id is not None else positions
        columns = {"treatment": treatment, "outcome": outcome, "segment": segment,
                   "propensity": propensity, "id": id, "covariates": list(encoder.columns)}
        return cls(outcome=y, treatment=codes, covariates=x,
                   covariate_names=list(encoder.names), arms=arms, propensity=prop, family=fam,
                   segment=seg, row_ids=np.asarray(ids), columns=columns, encoder=encoder,
                   covariates_source=source, balance=balance, randomized=bool(randomized),
                   rows_in=rows_in, dataset=info.get("name"))

    @classmethod
    def from_arrays(cls, outcome, treatment, covariates=None, *, control=None,
                    first_label_control: bool = False, min_rows_per_arm: int = 2,
                    where: str = "the analysis") -> SingleData:
        """Validate arrays: an outcome, arm labels and an already numeric covariate matrix.

        Parameters
        ----------
        outcome : array (n,)
        treatment : array (n,)
            Arm labels (0/1, booleans or names).
        covariates : DataFrame or array (n, p), default=None
            Numeric covariates; a DataFrame gives the names, an array ``x1..xp``.
        control : scalar, default=None
            See :func:`resolve_control`.
        first_label_control : bool, default=False
            When the control cannot be told from the labels, use the first label
            in sorted order instead of raising (for methods where the control
            plays no special role).
        min_rows_per_arm : int, default=2
        where : str
            The caller, for messages.
        """
        y_ser = pd.Series(np.asarray(outcome).reshape(-1))
        w_ser = pd.Series(np.asarray(treatment, dtype=object).reshape(-1))
        if y_ser.size == 0:
            raise EmptyDataError(f"{where}: the data has no rows.")
        if w_ser.size != y_ser.size:
            raise DataError(f"{where}: 'treatment' has {w_ser.size} rows but 'outcome' has "
                            f"{y_ser.size}.")
        positions = np.arange(y_ser.size)
        if w_ser.isna().any():
            rows = np.flatnonzero(w_ser.isna().to_numpy())
            raise TreatmentValueError(
                f"The arm (treatment) values of {where} have {rows.size} missing value(s) at "
                f"row(s) {_show(rows)}. Drop those rows first.")
        # object arrays of numbers: let pandas infer a numeric dtype so 0/1 is recognised
        w_ser = pd.Series(pd.array(w_ser.tolist()))
        if control is None and first_label_control:
            try:
                control = resolve_control(w_ser)
            except TreatmentValueError:
                control = sorted(pd.unique(w_ser).tolist(), key=lambda v: (str(type(v)), str(v)))[0]
        y, fam = _outcome(y_ser, "outcome", positions, "auto")
        codes, arms = _treatment(w_ser, "treatment", control, positions, min_rows_per_arm,
                                 where=where)
        if covariates is None:
            x, names = np.empty((y.size, 0)), []
        elif isinstance(covariates, pd.DataFrame):
            names = [str(c) for c in covariates.columns]
            bad = [c for c in covariates.columns if not _is_numeric(covariates[c])
                   and not pd.api.types.is_bool_dtype(covariates[c])]
            if bad:
                raise DataError(f"The covariates of {where} must be numeric; column(s) "
                                f"{_show(bad)} are not. One-hot encode them first (or pass the "
                                f"table through SingleData.from_frame).")
            x = covariates.to_numpy(dtype=float)
        else:
            try:
                x = np.asarray(covariates, dtype=float)
            except (TypeError, ValueError):
                raise DataError(f"The covariates of {where} must be numeric.") from None
            if x.ndim == 1:
                x = x[:, None]
            names = [f"x{j + 1}" for j in range(x.shape[1])] if x.ndim == 2 else []
        if x.ndim != 2 or x.shape[0] != y.size:
            raise DataError(f"The covariates of {where} must be a matrix with {y.size} rows; got "
                            f"shape {x.shape}.")
        bad_rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad_rows.size:
            raise NonFiniteError(
                f"The covariates of {where} have non-finite values (NaN or inf) in "
                f"{bad_rows.size} row(s), e.g. row(s) {_show(bad_rows)}. Drop or impute them first.")
        encoder = CovariateEncoder(columns=tuple(names), names=tuple(names))
        return cls(outcome=y, treatment=codes, covariates=x, covariate_names=names, arms=arms,
                   family=fam, row_ids=positions, encoder=encoder, rows_in=int(y.size),
                   columns={"treatment": "treatment", "outcome": "outcome", "covariates": names})


# --------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------
def _covariate_columns(frame, covariates, used, info, where, clash):
    if isinstance(covariates, str):
        key = covariates.strip().lower()
        if key == "auto":
            cols = [c for c in frame.columns if c not in used and _is_numeric(frame[c])]
            return cols, "auto"
        if key == "none":
            return [], "none"
        raise DataError(
            f"The 'covariates' of {where} must be a list of column names, 'auto' or 'none'; got "
            f"the string {covariates!r}. Pass [{covariates!r}] for one column."
        )
    if covariates is None:
        declared = [c for c in info.get("pre_treatment", ()) if c in frame.columns
                    and c not in used]
        return declared, ("dataset" if declared else "none")
    cols = list(covariates)
    if not cols:
        return [], "none"
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            f"{len(missing)} covariate column(s) are not in the data: {_show(missing)}. "
            f"Columns are {_show(list(frame.columns), 12)}."
        )
    bad = [c for c in cols if c in clash]
    if bad:
        raise DataError(
            f"The covariates may not include the treatment, outcome, propensity or id column "
            f"({_show(bad)}). Remove {_show(bad)} from the covariates."
        )
    repeated = sorted({c for c in cols if cols.count(c) > 1})
    if repeated:
        raise DataError(f"The covariate(s) {_show(repeated)} are named twice; name each once.")
    return cols, "named"


def _check_duplicates(frame: pd.DataFrame, positions: np.ndarray) -> None:
    try:
        repeat = frame.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable cells (lists): compare their text
        repeat = frame.astype(str).duplicated(keep="first").to_numpy()
    if not repeat.any():
        return
    rows = np.flatnonzero(repeat)
    # the first row of each group of identical rows, to say which row each repeat copies
    first = frame.astype(str).groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    firsts = {}
    for i, g in enumerate(first):
        firsts.setdefault(g, i)
    pairs = [f"row {plain(positions[r])} repeats row {plain(positions[firsts[first[r]]])}"
             for r in rows[:3]]
    raise DuplicateRowError(
        f"{rows.size} row(s) repeat an earlier row exactly (every column equal; e.g. "
        f"{'; '.join(pairs)}). A duplicated customer counts twice in every estimate. Drop the "
        f"repeats (e.g. df.drop_duplicates()), or pass --allow-duplicates "
        f"(allow_duplicates=True) if distinct customers truly share every value."
    )


def _outcome(col: pd.Series, name: str, positions, family: str):
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    if not pd.api.types.is_numeric_dtype(col):
        num = pd.to_numeric(col, errors="coerce")
        bad = np.flatnonzero((num.isna() & col.notna()).to_numpy())
        if bad.size:
            shown = col.iloc[bad[:5]].tolist()
            raise ColumnTypeError(
                f"The outcome column {name!r} must be numeric; {bad.size} value(s) are not "
                f"numbers (e.g. {_show(shown)} in row(s) {_show(positions[bad])}). Fix or drop "
                f"those rows."
            )
        col = num
    y = col.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise NonFiniteError(
            f"The outcome column {name!r} has {bad.size} missing or non-finite value(s) "
            f"(rows {_show(positions[bad])}). Drop or impute those rows first."
        )
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    if family == "auto":
        family = "bernoulli" if binary else "gaussian"
    elif family == "bernoulli" and not binary:
        other = ~np.isin(y, (0.0, 1.0))
        raise DataError(
            f"The outcome column {name!r} must hold only 0/1 for family='bernoulli'; "
            f"{int(other.sum())} row(s) hold other values ({_show(pd.unique(y[other]))}). Use "
            f"family='gaussian' (--family gaussian) for a continuous outcome."
        )
    if family == "gaussian" and not np.std(y) > 0:
        raise DataError(f"The outcome column {name!r} is constant ({plain(y[0])!r}); there is "
                        f"no effect to estimate.")
    return y, family


def _treatment(col: pd.Series, name: str, control, positions, min_rows: int,
               where: str = "the analysis"):
    if col.isna().any():
        rows = positions[np.flatnonzero(col.isna().to_numpy())]
        raise TreatmentValueError(
            f"The treatment column {name!r} has {rows.size} missing value(s) "
            f"(rows {_show(rows)}). Drop those rows first."
        )
    ctrl = resolve_control(col, control)
    values = col.to_numpy()
    is_ctrl = (col == ctrl).to_numpy(dtype=bool) | (
        col.astype(str) == str(plain(ctrl))).to_numpy(dtype=bool)
    n_ctrl = int(is_ctrl.sum())
    if n_ctrl == 0:
        raise TreatmentValueError(
            f"The treatment column {name!r} has no control rows: no row holds the control value "
            f"{plain(ctrl)!r} (values are {_show(sorted(pd.unique(col).tolist(), key=str), 10)}). "
            f"An experiment needs control customers to compare with; if the control is coded "
            f"differently, name it with --control VALUE (control= in Python)."
        )
    others = sorted({v for v in pd.unique(col[~is_ctrl])}, key=lambda v: str(plain(v)))
    if not others:
        raise TreatmentValueError(
            f"The treatment column {name!r} has no treated rows: every row holds the control "
            f"value {plain(ctrl)!r}. An experiment needs at least one treated arm."
        )
    arms = [ctrl, *others]
    codes = np.zeros(len(values), dtype=np.int64)
    rest = ~is_ctrl
    lookup = {v: k for k, v in enumerate(others, start=1)}
    codes[rest] = [lookup[v] for v in values[rest]]
    counts = np.bincount(codes, minlength=len(arms))
    small = [k for k in range(len(arms)) if counts[k] < min_rows]
    if small:
        listed = ", ".join(f"{plain(arms[k])!r} has {counts[k]} row{'s' if counts[k] != 1 else ''}"
                           for k in small)
        raise TreatmentValueError(
            f"Every arm of {where} needs at least {min_rows} rows; in the treatment column "
            f"{name!r}, {listed}. Drop or merge {'that arm' if len(small) == 1 else 'those arms'}."
        )
    return codes, [plain(a) if not isinstance(a, bool | np.bool_) else bool(a) for a in arms]


def _drop_constant(x, encoder: CovariateEncoder, frame):
    """Leave out numeric covariates that do not vary (a one-level text column has no dummy)."""
    numeric = [c for c in encoder.columns if c not in encoder.levels]
    const = [c for c in numeric if x[:, encoder.names.index(c)].min()
             == x[:, encoder.names.index(c)].max()]
    if not const:
        return x, encoder
    warnings.warn(f"Covariate column(s) {_show(const)} are constant in the data; they are left "
                  f"out.", DataWarning, stacklevel=4)
    keep = [j for j, n in enumerate(encoder.names) if n not in const]
    enc = CovariateEncoder(columns=tuple(c for c in encoder.columns if c not in const),
                           levels=encoder.levels, names=tuple(encoder.names[j] for j in keep))
    return x[:, keep], enc


def _propensity(col: pd.Series, name: str, positions, n_arms: int):
    if n_arms != 2:
        raise PropensityError(
            "A propensity column is supported for binary treatments only; with several arms "
            "leave it out (randomized=True / --randomized uses the arm shares)."
        )
    e = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~((e > 0) & (e < 1)))
    if bad.size:
        raise PropensityError(
            f"The propensity column {name!r} has {bad.size} value(s) outside (0, 1) "
            f"(rows {_show(positions[bad])}). Propensities must be strictly between 0 and 1."
        )
    return np.column_stack([1 - e, e])


def _balance(frame, encoder: CovariateEncoder, segment, codes, arms) -> pd.DataFrame:
    """Balance of every covariate (each level of a categorical one) and the segment column,
    each treated arm against the control."""
    values, owner = {}, {}
    cols = list(encoder.columns) + ([segment] if segment is not None and
                                    segment not in encoder.columns else [])
    for c in cols:
        col = frame[c]
        few = c == segment and col.nunique() <= 50  # a numeric segment code is a category
        if c in encoder.levels or few or not _is_numeric(col):
            text = col.astype(str).to_numpy()
            for lev in sorted(pd.unique(text)):
                key = f"{c}={lev}"
                values[key] = (text == lev).astype(float)
                owner[key] = c
        else:
            values[str(c)] = col.to_numpy(dtype=float)
            owner[str(c)] = c
    parts = []
    for k in range(1, len(arms)):
        rows = (codes == 0) | (codes == k)
        t = balance_table({name: v[rows] for name, v in values.items()}, codes[rows] == k,
                          threshold=SMD_THRESHOLD, alpha=BALANCE_ALPHA)
        t.insert(0, "arm", str(plain(arms[k])))
        t.insert(1, "column", t["covariate"].map(owner))
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def _refuse_imbalance(table: pd.DataFrame, allow, arms) -> None:
    allow = set(allow or ())
    bad = table[table["imbalanced"] & ~table["column"].isin(allow)
                & ~table["covariate"].isin(allow)]
    if bad.empty:
        return
    # one row per original column: its most imbalanced level / arm
    worst = (bad.assign(abs_smd=bad["smd"].abs()).sort_values("abs_smd", ascending=False)
             .drop_duplicates("column"))
    summary = worst.assign(covariate=worst["column"])
    where = {c: sorted(set(g["arm"])) for c, g in bad.groupby("column")}
    try:
        check_balance(summary, flag="--allow-imbalanced")
    except ImbalanceError as exc:
        cols = ", ".join(repr(c) for c in worst["column"])
        detail = "; ".join(
            f"{c!r}" + (f" (level {r.covariate.split('=', 1)[1]!r})" if r.covariate != c else "")
            + f" in arm(s) {', '.join(repr(a) for a in where[c])}"
            for c, r in zip(worst["column"], worst.itertuples()))
        raise ImbalanceError(
            f"Randomization balance check (each arm against the control {plain(arms[0])!r}; "
            f"|SMD| > {SMD_THRESHOLD} with p < {BALANCE_ALPHA} refused): {exc} (In Python: "
            f"allow_imbalanced=[{cols}].) Flagged: {detail}."
        ) from None
