"""``ExperimentData``: a validated log of repeated randomized experiments.

One row per customer per intervention (docs/data.md).  An
*intervention* is one execution of a *campaign* in one *week*; within it,
eligible customers were randomized to treated or control.  Everything the
contract requires is checked before any model work starts, and every problem
found is reported at once, each with the offending ids, counts and the fix.
"""

from __future__ import annotations

import os
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
    ExtremeValueError,
    InterventionArmError,
    MissingColumnError,
    NonFiniteError,
    OverlapError,
    PropensityError,
    TreatmentValueError,
    UnknownCampaignError,
    ValidationError,
)
from manylift.data.balance import balance_table
from manylift.data.balance import check_balance as check_balance_table
from manylift.data.io import read_table

__all__ = ["ExperimentData", "ColumnSpec", "validate_frame", "week_origin", "weeks_as_periods"]


@dataclass(frozen=True)
class ColumnSpec:
    """The user's column names for each role (defaults of docs/data.md)."""

    customer: str = "customer_id"
    campaign: str = "campaign_id"
    week: str = "week"
    treatment: str = "treated"
    outcome: str = "outcome"
    propensity: str | None = None
    cost: str = "cost"

    def roles(self) -> dict[str, str]:
        out = {
            "customer": self.customer,
            "campaign": self.campaign,
            "week": self.week,
            "treatment": self.treatment,
            "outcome": self.outcome,
        }
        if self.propensity:
            out["propensity"] = self.propensity
        return out


# Canonical internal names.
CUSTOMER, CAMPAIGN, WEEK, TREATED, OUTCOME, PROPENSITY = (
    "customer_id",
    "campaign_id",
    "week",
    "treated",
    "outcome",
    "propensity",
)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _plain(value):
    """A numpy scalar as the Python value (so messages read ``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def week_origin(s: pd.Series) -> str | None:
    """The first date of a date-valued week column (ISO text), None for integer periods."""
    if pd.api.types.is_integer_dtype(s) or pd.api.types.is_float_dtype(s):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(s).min().isoformat()


def _week_to_int(s: pd.Series, name: str, origin: str | None = None) -> pd.Series:
    """Integer periods: ints stay; dates become whole weeks since the first date (or since
    ``origin``, the first date of the data a fit used, when scoring new rows)."""
    if pd.api.types.is_integer_dtype(s):
        return s.astype(np.int64)
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy()
        if np.all(np.isfinite(v)) and np.all(v == np.round(v)):
            return s.astype(np.int64)
        raise ColumnTypeError(
            f"Column {name!r} (week) must hold integer periods or dates; found non-integer "
            f"values such as {example_ids(s[np.round(v) != v].unique()[:5])}. Round them to "
            f"whole periods or pass dates."
        )
    if pd.api.types.is_datetime64_any_dtype(s):
        d = s
    else:
        try:
            with warnings.catch_warnings():  # pandas' "could not infer format" is noise here
                warnings.simplefilter("ignore", UserWarning)
                d = pd.to_datetime(s)
        except (ValueError, TypeError):
            raise ColumnTypeError(
                f"Column {name!r} (week) must hold integer periods or dates; could not read "
                f"values such as {example_ids(pd.Series(s.unique()[:5]))} as either. Convert it "
                f"to integers (e.g. ISO week numbers) or dates."
            ) from None
    start = d.min() if origin is None else pd.Timestamp(origin)
    days = (d - start).dt.days.to_numpy()
    return pd.Series(days // 7, index=s.index, dtype=np.int64)


EXTREME_ROBUST_SDS = 1e6


def extreme_rows(v: np.ndarray) -> np.ndarray:
    """Rows whose value is absurd: its square overflows float64 (|x| > 1e150), or it lies
    more than 1e6 robust sds (1.4826 MAD; the mean absolute deviation from the median when
    more than half the values are equal, as in zero-inflated spend) from the median."""
    v = np.asarray(v, float)
    with np.errstate(over="ignore", invalid="ignore"):
        huge = np.abs(v) > 1e150
        ok = v[~huge]
        if ok.size == 0:
            return np.flatnonzero(huge)
        med = float(np.median(ok))
        dev = np.abs(v - med)
        scale = 1.4826 * float(np.median(np.abs(ok - med)))
        if scale == 0:
            scale = 1.2533 * float(np.mean(np.abs(ok - med)))
        far = dev > EXTREME_ROBUST_SDS * scale if scale > 0 else np.zeros(v.size, bool)
    return np.flatnonzero(huge | far)


def validate_frame(
    frame: pd.DataFrame,
    columns: ColumnSpec,
    covariates: list[str],
    activity_col: str | None,
    campaigns: pd.DataFrame | None = None,
) -> list[DataError]:
    """Every contract violation of ``frame`` (user column names), as a list of errors.

    Checks run in order; checks that need a well-formed column are skipped when
    that column is itself broken, so each problem is reported once.
    """
    problems: list[DataError] = []
    if len(frame) == 0:
        return [EmptyDataError("The exposure data has no rows. Pass a non-empty table.")]

    roles = columns.roles()
    needed = list(roles.values()) + list(covariates) + ([activity_col] if activity_col else [])
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        role_of = {v: k for k, v in roles.items()}
        desc = ", ".join(
            f"{c!r}" + (f" ({role_of[c]})" if c in role_of else "") for c in missing
        )
        problems.append(
            MissingColumnError(
                f"{len(missing)} required column(s) missing: {desc}. Present columns: "
                f"{list(frame.columns)[:20]}. Rename them or pass the column options "
                f"(e.g. customer_col=..., or --customer-col on the command line)."
            )
        )
    ok = set(frame.columns)
    n = len(frame)

    def numeric_check(col: str, role: str) -> bool:
        if col not in ok:
            return False
        s = frame[col]
        if not _is_numeric(s):
            bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()]
            problems.append(
                ColumnTypeError(
                    f"Column {col!r} ({role}) must be numeric; it has type {s.dtype} with "
                    f"{len(bad)} non-numeric value(s) such as {example_ids(bad.unique()[:5])}. "
                    f"Convert it to numbers (categorical covariates: one-hot encode them)."
                )
            )
            return False
        v = s.to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(
                NonFiniteError(
                    f"Column {col!r} ({role}) has {rows.size} NaN or infinite value(s) of {n} "
                    f"(first at row(s) {example_ids(rows)}). Drop or impute those rows before "
                    f"fitting."
                )
            )
            return False
        extreme = extreme_rows(v)
        if extreme.size:
            problems.append(
                ExtremeValueError(
                    f"Column {col!r} ({role}) has {extreme.size} extreme value(s) (e.g. "
                    f"{example_ids(np.unique(v[extreme])[:3])} at row(s) "
                    f"{example_ids(extreme)}): their square overflows or they lie more than "
                    f"{EXTREME_ROBUST_SDS:.0e} robust standard deviations from the median. "
                    f"They are almost surely errors (a sentinel value, a unit mix-up); fix or "
                    f"drop those rows."
                )
            )
            return False
        return True

    outcome_ok = numeric_check(columns.outcome, "outcome")
    for c in covariates:
        numeric_check(c, "covariate")
    if activity_col and activity_col not in covariates:
        numeric_check(activity_col, "activity")

    treat_ok = False
    if columns.treatment in ok:
        s = frame[columns.treatment]
        if pd.api.types.is_bool_dtype(s):
            treat_ok = True
        else:
            vals = pd.Series(s.unique())
            good = vals.isin([0, 1]) & vals.notna()
            if not _is_numeric(s) or not good.all():
                bad = vals[~good]
                nbad = int((~s.isin([0, 1]) | s.isna()).sum())
                problems.append(
                    TreatmentValueError(
                        f"Column {columns.treatment!r} (treatment) must be 0 (control) or 1 "
                        f"(treated); {nbad} row(s) hold other values: {example_ids(bad)}. Recode "
                        f"it to 0/1."
                    )
                )
            else:
                treat_ok = True

    if columns.propensity and columns.propensity in ok:
        if numeric_check(columns.propensity, "propensity"):
            p = frame[columns.propensity].to_numpy(dtype=float)
            bad = (p <= 0) | (p >= 1)
            if bad.any():
                problems.append(
                    PropensityError(
                        f"Column {columns.propensity!r} (propensity) must be strictly between 0 "
                        f"and 1; {int(bad.sum())} row(s) are not (e.g. {example_ids(np.unique(p[bad]))})."
                        f" Fix the values or omit the column to use the share treated per "
                        f"intervention."
                    )
                )

    week_ok = False
    if columns.week in ok:
        try:
            _week_to_int(frame[columns.week], columns.week)
            week_ok = not frame[columns.week].isna().any()
            if not week_ok:
                problems.append(
                    NonFiniteError(
                        f"Column {columns.week!r} (week) has {int(frame[columns.week].isna().sum())}"
                        f" missing value(s). Every row needs its period."
                    )
                )
        except ColumnTypeError as exc:
            problems.append(exc)
    for role in ("customer", "campaign"):
        col = roles[role]
        if col in ok and frame[col].isna().any():
            problems.append(
                NonFiniteError(
                    f"Column {col!r} ({role}) has {int(frame[col].isna().sum())} missing id(s). "
                    f"Every row needs a {role} id."
                )
            )
            ok.discard(col)

    keys_ok = week_ok and columns.customer in ok and columns.campaign in ok
    if keys_ok:
        cust = pd.factorize(frame[columns.customer])[0].astype(np.int64)
        camp_codes, camp_uniques = pd.factorize(frame[columns.campaign])
        camp = camp_codes.astype(np.int64)
        week = _week_to_int(frame[columns.week], columns.week).to_numpy()
        wcode, _ = pd.factorize(week)
        nw, nc = int(wcode.max()) + 1, int(camp.max()) + 1
        # duplicates of (customer, campaign, week)
        key3 = (cust * nw + wcode) * nc + camp
        dup3 = pd.Series(key3).duplicated(keep=False).to_numpy()
        if dup3.any():
            rows = np.flatnonzero(dup3)
            ex = frame.iloc[rows[:3]][[columns.customer, columns.campaign, columns.week]]
            problems.append(
                DuplicateRowError(
                    f"{rows.size} rows repeat a (customer, campaign, week) that appears more than "
                    f"once (e.g. {ex.to_dict('records')}). Keep one row per customer per "
                    f"intervention (deduplicate, e.g. df.drop_duplicates([...]))."
                )
            )
        # a customer in two different interventions in one week
        key2 = cust * nw + wcode
        first3 = ~pd.Series(key3).duplicated().to_numpy()
        dup2 = pd.Series(key2[first3]).duplicated(keep=False).to_numpy()
        if dup2.any():
            rows = np.flatnonzero(first3)[dup2]
            ncust = len(np.unique(cust[rows]))
            ex = frame.iloc[rows[:4]][[columns.customer, columns.campaign, columns.week]]
            problems.append(
                OverlapError(
                    f"{ncust} customer(s) are in two or more interventions in the same week "
                    f"({rows.size} rows; e.g. {ex.to_dict('records')}). A customer may be in at "
                    f"most one intervention per period: keep one of them or split the period."
                )
            )
        if treat_ok:
            t = frame[columns.treatment].to_numpy().astype(np.int8)
            inter = camp * nw + wcode
            codes, uniq = pd.factorize(inter)
            n_t = np.bincount(codes, weights=t)
            n_all = np.bincount(codes)
            no_t = np.flatnonzero(n_t == 0)
            no_c = np.flatnonzero(n_t == n_all)
            for idx, arm, other in ((no_t, "treated", "control"), (no_c, "control", "treated")):
                if idx.size:
                    ex_rows = [int(np.flatnonzero(codes == k)[0]) for k in idx[:3]]
                    ex = ", ".join(
                        f"campaign {_plain(frame[columns.campaign].iloc[r])!r} week "
                        f"{_plain(frame[columns.week].iloc[r])!r}"
                        for r in ex_rows
                    )
                    problems.append(
                        InterventionArmError(
                            f"{idx.size} intervention(s) have no {arm} rows (only {other}; e.g. "
                            f"{ex}); their effect cannot be estimated. Drop them or pass "
                            f"drop_incomplete_interventions=True (CLI: --drop-incomplete) to leave "
                            f"them out of the fit."
                        )
                    )
        if campaigns is not None:
            if columns.campaign not in campaigns.columns:
                problems.append(
                    MissingColumnError(
                        f"The campaign table has no {columns.campaign!r} column (campaign id); "
                        f"its columns are {list(campaigns.columns)}. Rename its id column."
                    )
                )
            else:
                known = set(campaigns[columns.campaign].tolist())
                unknown = [c for c in camp_uniques.tolist() if c not in known]
                if unknown:
                    nrows = int(frame[columns.campaign].isin(unknown).sum())
                    problems.append(
                        UnknownCampaignError(
                            f"{len(unknown)} campaign id(s) in the exposures ({nrows} rows) are "
                            f"missing from the campaign table: {example_ids(unknown)}. Add them "
                            f"to the campaign table or drop those rows."
                        )
                    )
                dup = campaigns[columns.campaign].duplicated()
                if dup.any():
                    problems.append(
                        DuplicateRowError(
                            f"The campaign table lists {int(dup.sum())} campaign id(s) more than "
                            f"once: {example_ids(campaigns[columns.campaign][dup].unique())}. Keep "
                            f"one row per campaign."
                        )
                    )
    if outcome_ok and len(frame) < 2:
        problems.append(EmptyDataError("The data has a single row; nothing can be estimated."))
    return problems


@dataclass(frozen=True, repr=False)
class ExperimentData:
    """A validated log of repeated randomized experiments.

    Build it with :meth:`from_frame` or :meth:`from_files`; the constructor
    itself expects already-canonical data.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per (customer, intervention), sorted by customer then week, with
        canonical columns ``customer_id, campaign_id, week, treated, outcome,
        propensity`` plus the covariates and the activity column under their
        own names.  ``week`` is an integer period.
    campaigns : pandas.DataFrame or None
        The campaign table (``campaign_id`` plus attributes, optional ``cost``).
    covariates : tuple of str
        Pre-treatment numeric columns with customer-specific slopes.
    activity_col : str or None
        The column used for activity-level bins.
    columns : ColumnSpec
        The user's original column names.
    propensity_given : bool
        Whether ``propensity`` came from the user (else: share treated per intervention).
    balance : pandas.DataFrame or None
        The randomization balance table of the covariates and the activity column
        (:func:`manylift.data.balance.balance_table`), None without covariates.
    covariates_auto : bool
        Whether the covariates were chosen by ``covariates="auto"``.
    week_origin : str or None
        The first date when the week column held dates (periods count whole weeks from
        it; scoring new rows uses the same origin), None for integer periods.
    """

    frame: pd.DataFrame
    campaigns: pd.DataFrame | None
    covariates: tuple[str, ...]
    activity_col: str | None
    columns: ColumnSpec = field(default_factory=ColumnSpec)
    propensity_given: bool = False
    balance: pd.DataFrame | None = None
    covariates_auto: bool = False
    week_origin: str | None = None

    # -- construction ------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        campaigns: pd.DataFrame | None = None,
        *,
        customer_col: str = "customer_id",
        campaign_col: str = "campaign_id",
        week_col: str = "week",
        treatment_col: str = "treated",
        outcome_col: str = "outcome",
        propensity_col: str | None = None,
        covariates: list[str] | str | None = None,
        activity_col: str | None = None,
        cost_col: str = "cost",
        drop_incomplete_interventions: bool = False,
        allow_imbalanced=(),
        check_balance: bool = True,
    ) -> ExperimentData:
        """Validate ``frame`` (never modified) and build the data object.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per customer per intervention.
        campaigns : pandas.DataFrame, default=None
            Campaign table keyed by ``campaign_col``: categorical attributes
            (e.g. ``goal``, ``action``, ``reward``) and optional ``cost_col``.
        customer_col, campaign_col, week_col, treatment_col, outcome_col : str
            Column names of the roles (defaults of docs/data.md).
        propensity_col : str, default=None
            Known assignment probabilities; default: the share treated in the
            intervention.
        covariates : list of str, "auto" or None, default=None
            Pre-treatment numeric columns with customer-specific slopes.  None: no
            covariates (a column is never used unless named: one measured after treatment
            would absorb the effect).  ``"auto"`` (opt-in): every other numeric column (not
            the roles, not ``activity_col``).  Every covariate and the activity column must
            pass the randomization balance check (:mod:`manylift.data.balance`).
        activity_col : str, default=None
            Column for activity-level bins; default ``"usage_30d"`` if present.
        cost_col : str, default="cost"
            Cost column of the campaign table (used when present).
        drop_incomplete_interventions : bool, default=False
            Drop interventions with no treated or no control row (with a
            warning) instead of raising.
        allow_imbalanced : iterable of str, default=()
            Covariates kept even if the balance check flags them (CLI:
            ``--allow-imbalanced``).
        check_balance : bool, default=True
            Refuse imbalanced covariates (:class:`ImbalanceError`); False only computes the
            table (``manylift validate`` prints it).

        Raises
        ------
        ValidationError, or the single specific DataError when only one problem
        is found.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"customer_id": [1, 2, 1, 2], "campaign_id": ["A"] * 4,
        ...                    "week": [1, 1, 2, 2], "treated": [1, 0, 0, 1],
        ...                    "outcome": [3.0, 1.0, 2.0, 4.0]})
        >>> ExperimentData.from_frame(df).n_interventions
        2
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"ExperimentData.from_frame needs a pandas DataFrame; got {type(frame).__name__}."
            )
        spec = ColumnSpec(customer_col, campaign_col, week_col, treatment_col, outcome_col,
                          propensity_col, cost_col)
        roles = set(spec.roles().values())
        if activity_col is None and "usage_30d" in frame.columns and "usage_30d" not in roles:
            activity_col = "usage_30d"
        covariates_auto = isinstance(covariates, str) and covariates == "auto"
        if covariates_auto:
            covariates = [
                c for c in frame.columns
                if c not in roles and c != activity_col and _is_numeric(frame[c])
            ]
        elif isinstance(covariates, str):
            raise DataError(
                f"The 'covariates' parameter of ExperimentData.from_frame must be a list of "
                f"column names, 'auto' or None; got the string {covariates!r} instead. Pass "
                f"[{covariates!r}] for one column."
            )
        covariates = list(covariates or [])
        if campaigns is not None and not isinstance(campaigns, pd.DataFrame):
            raise DataError(
                f"campaigns must be a pandas DataFrame; got {type(campaigns).__name__}."
            )

        problems = validate_frame(frame, spec, covariates, activity_col, campaigns)
        if drop_incomplete_interventions:
            arm_problems = [p for p in problems if isinstance(p, InterventionArmError)]
            problems = [p for p in problems if not isinstance(p, InterventionArmError)]
        else:
            arm_problems = []
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ValidationError(problems)

        keep = [*spec.roles().values(), *covariates]
        if activity_col and activity_col not in keep:
            keep.append(activity_col)
        df = frame.loc[:, list(dict.fromkeys(keep))].copy()
        df = df.rename(
            columns={
                customer_col: CUSTOMER, campaign_col: CAMPAIGN, week_col: WEEK,
                treatment_col: TREATED, outcome_col: OUTCOME,
                **({propensity_col: PROPENSITY} if propensity_col else {}),
            }
        )
        origin = week_origin(df[WEEK])
        df[WEEK] = _week_to_int(df[WEEK], week_col)
        df[TREATED] = df[TREATED].astype(np.int8)
        df[OUTCOME] = df[OUTCOME].astype(float)

        if arm_problems:
            g = df.groupby([CAMPAIGN, WEEK], sort=False)[TREATED]
            share = g.transform("mean")
            bad = (share == 0) | (share == 1)
            n_int = df.loc[bad, [CAMPAIGN, WEEK]].drop_duplicates().shape[0]
            warnings.warn(
                f"Dropped {n_int} intervention(s) ({int(bad.sum())} rows) with no treated or no "
                f"control rows (drop_incomplete_interventions=True).",
                DataWarning,
                stacklevel=2,
            )
            df = df.loc[~bad.to_numpy()]
            if len(df) == 0:
                raise EmptyDataError("No rows left after dropping incomplete interventions.")

        if not propensity_col:
            df[PROPENSITY] = df.groupby([CAMPAIGN, WEEK], sort=False)[TREATED].transform("mean")
        df = df.sort_values([CUSTOMER, WEEK], kind="stable").reset_index(drop=True)

        bal = None
        balance_cols = list(dict.fromkeys([*covariates, *([activity_col] if activity_col else [])]))
        if balance_cols:
            bal = balance_table({c: df[c].to_numpy(float) for c in balance_cols},
                                df[TREATED].to_numpy(), [df[CAMPAIGN].to_numpy(),
                                                         df[WEEK].to_numpy()])
            if check_balance:
                check_balance_table(bal, allow_imbalanced, "ExperimentData",
                                    "allow_imbalanced=[...] (CLI: --allow-imbalanced)")

        camp_table = None
        if campaigns is not None:
            camp_table = campaigns.rename(columns={campaign_col: CAMPAIGN}).copy()
            if cost_col in camp_table.columns and cost_col != "cost":
                camp_table = camp_table.rename(columns={cost_col: "cost"})
            used = set(df[CAMPAIGN].unique().tolist())
            camp_table = camp_table[camp_table[CAMPAIGN].isin(used)].reset_index(drop=True)
        return cls(df, camp_table, tuple(covariates), activity_col, spec, bool(propensity_col),
                   bal, covariates_auto, origin)

    @classmethod
    def from_files(
        cls,
        exposures: str | os.PathLike,
        campaigns: str | os.PathLike | None = None,
        **kwargs,
    ) -> ExperimentData:
        """Read CSV / Parquet files (never modified) and validate them.

        Keyword arguments are those of :meth:`from_frame`.
        """
        frame = read_table(exposures)
        camp = read_table(campaigns) if campaigns is not None else None
        return cls.from_frame(frame, camp, **kwargs)

    # -- views ------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def n_customers(self) -> int:
        return int(self.frame[CUSTOMER].nunique())

    @property
    def n_campaigns(self) -> int:
        return int(self.frame[CAMPAIGN].nunique())

    @property
    def n_weeks(self) -> int:
        return int(self.frame[WEEK].nunique())

    @property
    def n_interventions(self) -> int:
        return int(self.frame[[CAMPAIGN, WEEK]].drop_duplicates().shape[0])

    @property
    def campaign_attributes(self) -> list[str]:
        """Categorical attribute columns of the campaign table (not id, not cost)."""
        if self.campaigns is None:
            return []
        return [c for c in self.campaigns.columns if c not in (CAMPAIGN, "cost")]

    def summary(self) -> pd.DataFrame:
        """Counts and shares that describe the program, as a one-column table."""
        f = self.frame
        per_customer = f.groupby(CUSTOMER, sort=False).size()
        share = f.groupby(CAMPAIGN, sort=False)[TREATED].mean()
        rows = {
            "rows": self.n_rows,
            "customers": self.n_customers,
            "campaigns": self.n_campaigns,
            "weeks": self.n_weeks,
            "interventions": self.n_interventions,
            "interventions per customer (mean)": float(per_customer.mean()),
            "interventions per customer (max)": int(per_customer.max()),
            "share treated (overall)": float(f[TREATED].mean()),
            "share treated per campaign (min)": float(share.min()),
            "share treated per campaign (max)": float(share.max()),
            "outcome mean": float(f[OUTCOME].mean()),
            "outcome sd": float(f[OUTCOME].std()),
            "covariates": ", ".join(self.covariates) or "(none)",
            "activity column": self.activity_col or "(none)",
        }
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})

    def __repr__(self) -> str:
        return (
            f"ExperimentData({self.n_rows:,} rows, {self.n_customers:,} customers, "
            f"{self.n_campaigns} campaigns, {self.n_weeks} weeks, covariates="
            f"{list(self.covariates)}, activity_col={self.activity_col!r})"
        )


def weeks_as_periods(s: pd.Series, name: str, origin: str | None) -> pd.Series:
    """Week values of new rows as the integer periods of a fit (dates counted from the fit's
    ``origin``; integers as they are)."""
    return _week_to_int(s, name, origin)
