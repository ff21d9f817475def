"""The data contract: every validation rule, with the error class and the message.

Each test feeds one bad frame and asserts the exact error class and the key
part of its message (the column or ids, the counts, and the fix).
"""

import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import (
    ColumnError,
    ColumnTypeError,
    DataError,
    DataWarning,
    DuplicateRowError,
    EmptyDataError,
    ImbalanceError,
    InterventionArmError,
    ManyliftError,
    MissingColumnError,
    NonFiniteError,
    OverlapError,
    PropensityError,
    TreatmentValueError,
    UnknownCampaignError,
    ValidationError,
)
from manylift.data.experiment import ExperimentData, validate_frame


def good_frame() -> pd.DataFrame:
    """Four customers, two campaigns, two weeks; every intervention has both arms."""
    return pd.DataFrame({
        "customer_id": [1, 2, 3, 4, 1, 3, 2, 4],
        "campaign_id": ["A", "A", "B", "B", "A", "A", "B", "B"],
        "week": [1, 1, 1, 1, 2, 2, 2, 2],
        "treated": [1, 0, 1, 0, 0, 1, 1, 0],
        "outcome": [3.0, 1.0, 2.0, 0.5, 1.5, 4.0, 2.5, 0.0],
        "usage_7d": [1.0, 2.0, 0.0, 5.0, 1.5, 0.5, 2.5, 4.0],
        "usage_30d": [4.0, 8.0, 1.0, 20.0, 5.0, 2.0, 9.0, 15.0],
    })


def campaign_table() -> pd.DataFrame:
    return pd.DataFrame({"campaign_id": ["A", "B"], "goal": ["wakeup", "retention"],
                         "cost": [0.1, 0.2]})


def raises(exc, frame, match, **kw):
    with pytest.raises(exc, match=match) as info:
        ExperimentData.from_frame(frame, **kw)
    assert type(info.value) is exc, f"expected exactly {exc.__name__}, got {type(info.value)}"
    return info.value


# -- the happy path -------------------------------------------------------
def test_good_frame_builds_canonical_sorted_data():
    data = ExperimentData.from_frame(good_frame(), campaign_table())
    f = data.frame
    assert (data.n_rows, data.n_customers, data.n_campaigns, data.n_weeks,
            data.n_interventions) == (8, 4, 2, 2, 4)
    assert list(f["customer_id"]) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert list(f["week"]) == [1, 2, 1, 2, 1, 2, 1, 2]
    assert f["treated"].dtype == np.int8
    # defaults: activity column usage_30d, no covariates unless named ("auto" opts in)
    assert data.activity_col == "usage_30d"
    assert data.covariates == ()
    assert ExperimentData.from_frame(good_frame(), covariates="auto").covariates == ("usage_7d",)
    # default propensity: the share treated in the intervention (all 1/2 here)
    np.testing.assert_allclose(f["propensity"], 0.5)
    assert not data.propensity_given
    assert data.campaign_attributes == ["goal"]
    assert "8 rows" in repr(data) and "4 customers" in repr(data)
    s = data.summary()
    assert s.loc["rows", "value"] == 8 and s.loc["share treated (overall)", "value"] == 0.5


def test_custom_column_names_and_propensity():
    df = good_frame().rename(columns={"customer_id": "msisdn", "campaign_id": "camp",
                                      "week": "period", "treated": "w", "outcome": "spend"})
    df["p"] = 0.6
    camp = campaign_table().rename(columns={"campaign_id": "camp", "cost": "price"})
    data = ExperimentData.from_frame(
        df, camp, customer_col="msisdn", campaign_col="camp", week_col="period",
        treatment_col="w", outcome_col="spend", propensity_col="p", cost_col="price",
        covariates=["usage_7d"])
    assert {"customer_id", "campaign_id", "week", "treated", "outcome",
            "propensity"} <= set(data.frame.columns)
    np.testing.assert_allclose(data.frame["propensity"], 0.6)
    assert data.propensity_given
    assert list(data.campaigns.columns) == ["campaign_id", "goal", "cost"]
    assert data.columns.customer == "msisdn"


def test_uneven_share_treated_is_the_default_propensity():
    df = pd.DataFrame({"customer_id": [1, 2, 3, 4], "campaign_id": "A", "week": 1,
                       "treated": [1, 1, 1, 0], "outcome": [1.0, 2, 3, 4]})
    data = ExperimentData.from_frame(df)
    np.testing.assert_allclose(data.frame["propensity"], 0.75)


def test_boolean_treatment_accepted():
    df = good_frame().assign(treated=lambda d: d["treated"].astype(bool))
    data = ExperimentData.from_frame(df)
    assert data.frame["treated"].tolist().count(1) == 4


# -- dates as weeks ---------------------------------------------------------
def test_dates_become_whole_weeks_since_the_first_date():
    df = good_frame()
    df["week"] = pd.to_datetime(np.where(df["week"] == 1, "2024-03-04", "2024-03-18"))
    data = ExperimentData.from_frame(df)
    assert sorted(data.frame["week"].unique()) == [0, 2]
    # date strings work too
    df["week"] = np.where(good_frame()["week"] == 1, "2024-03-04", "2024-03-11")
    data = ExperimentData.from_frame(df)
    assert sorted(data.frame["week"].unique()) == [0, 1]
    assert data.frame["week"].dtype == np.int64


def test_days_within_seven_days_of_the_first_date_share_a_period():
    df = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "campaign_id": "A",
                       "week": ["2024-03-04", "2024-03-09", "2024-03-10", "2024-03-11",
                                "2024-03-12"],
                       "treated": [1, 0, 1, 0, 1], "outcome": [1.0, 2, 3, 4, 5]})
    assert ExperimentData.from_frame(df).frame["week"].tolist() == [0, 0, 0, 1, 1]


def test_integer_valued_float_weeks_accepted_fractional_rejected():
    df = good_frame().assign(week=lambda d: d["week"].astype(float))
    assert ExperimentData.from_frame(df).frame["week"].dtype == np.int64
    bad = good_frame().assign(week=lambda d: d["week"] + 0.5)
    raises(ColumnTypeError, bad, r"'week' \(week\) must hold integer periods or dates.*1\.5")


def test_unreadable_week_strings():
    bad = good_frame().assign(week="soon")
    raises(ColumnTypeError, bad, r"could not read values such as 'soon'.*Convert it")


def test_missing_week_values():
    df = good_frame().astype({"week": float})
    df.loc[0, "week"] = np.nan
    # a NaN in a float week column is a non-integer value: a type problem with the fix
    with pytest.raises(DataError, match="'week'"):
        ExperimentData.from_frame(df)


# -- one rule at a time ----------------------------------------------------
def test_empty_data():
    raises(EmptyDataError, good_frame().iloc[:0], "no rows")


def test_single_row():
    # one row is also an intervention without a control row: both are reported
    with pytest.raises(ValidationError) as info:
        ExperimentData.from_frame(good_frame().iloc[:1])
    assert [type(p) for p in info.value.problems] == [InterventionArmError, EmptyDataError]
    assert "single row" in str(info.value.problems[1])


def test_not_a_dataframe():
    with pytest.raises(DataError, match="needs a pandas DataFrame; got dict"):
        ExperimentData.from_frame({"a": [1]})
    with pytest.raises(DataError, match="campaigns must be a pandas DataFrame; got list"):
        ExperimentData.from_frame(good_frame(), campaigns=[1, 2])


def test_missing_columns_named_with_their_roles():
    err = raises(MissingColumnError, good_frame().drop(columns=["treated", "outcome"]),
                 r"2 required column\(s\) missing: 'treated' \(treatment\), 'outcome' \(outcome\)")
    assert "--customer-col" in str(err) and "usage_7d" in str(err)  # present columns listed
    assert isinstance(err, ColumnError) and isinstance(err, KeyError)
    assert not str(err).startswith("'")  # no KeyError quoting


def test_missing_named_covariate_and_activity_column():
    raises(MissingColumnError, good_frame(), r"'usage_90d'", covariates=["usage_90d"])
    raises(MissingColumnError, good_frame(), r"'tenure'", activity_col="tenure")


def test_mistyped_outcome():
    df = good_frame().astype({"outcome": object})
    df.loc[[1, 4], "outcome"] = "n/a"
    raises(ColumnTypeError, df,
           r"'outcome' \(outcome\) must be numeric.*2 non-numeric value\(s\) such as 'n/a'")


def test_mistyped_covariate_says_one_hot_encode():
    df = good_frame().assign(region=["N", "S"] * 4)
    raises(ColumnTypeError, df, r"'region' \(covariate\).*one-hot encode",
           covariates=["usage_7d", "region"])


def test_treatment_not_zero_one():
    df = good_frame()
    df.loc[[0, 5], "treated"] = 2
    raises(TreatmentValueError, df, r"'treated' \(treatment\) must be 0.*or 1.*2 row\(s\) hold "
                                    r"other values: 2\. Recode it to 0/1")


def test_treatment_labels_rejected():
    df = good_frame().assign(treated=np.where(good_frame()["treated"] == 1, "mail", "none"))
    raises(TreatmentValueError, df, r"8 row\(s\) hold other values: 'mail', 'none'")


def test_treatment_missing_value():
    df = good_frame().astype({"treated": float})
    df.loc[2, "treated"] = np.nan
    raises(TreatmentValueError, df, r"1 row\(s\) hold other values: nan")


def test_nan_outcome():
    df = good_frame()
    df.loc[[2, 6], "outcome"] = np.nan
    raises(NonFiniteError, df, r"'outcome' \(outcome\) has 2 NaN or infinite value\(s\) of 8 "
                               r"\(first at row\(s\) 2, 6\)\. Drop or impute")


def test_inf_covariate():
    df = good_frame()
    df.loc[3, "usage_7d"] = np.inf
    raises(NonFiniteError, df, r"'usage_7d' \(covariate\) has 1 NaN or infinite value.*row\(s\) 3", covariates=["usage_7d"])


def test_nan_activity_column():
    df = good_frame()
    df.loc[0, "usage_30d"] = np.nan
    raises(NonFiniteError, df, r"'usage_30d' \(activity\) has 1 NaN")


def test_missing_ids():
    df = good_frame().astype({"customer_id": float})
    df.loc[0, "customer_id"] = np.nan
    raises(NonFiniteError, df, r"'customer_id' \(customer\) has 1 missing id")


def test_duplicate_rows():
    df = pd.concat([good_frame(), good_frame().iloc[[0]]], ignore_index=True)
    raises(DuplicateRowError, df,
           r"2 rows repeat a \(customer, campaign, week\).*'customer_id': 1, 'campaign_id': 'A', "
           r"'week': 1.*drop_duplicates")


def test_customer_in_two_interventions_in_one_week():
    # customer 1 is also a control in campaign B in week 1 (besides treated in A)
    extra = good_frame().iloc[[0]].assign(campaign_id="B", treated=0)
    df = pd.concat([good_frame(), extra], ignore_index=True)
    err = raises(OverlapError, df, r"1 customer\(s\) are in two or more interventions in the same "
                                   r"week \(2 rows;.*at most one intervention per period")
    assert "'campaign_id': 'B'" in str(err)


def test_intervention_without_treated_rows():
    df = good_frame()
    df.loc[[0], "treated"] = 0  # (A, 1) now all control
    raises(InterventionArmError, df,
           r"1 intervention\(s\) have no treated rows \(only control; e\.g\. campaign 'A' week 1\)"
           r".*drop_incomplete_interventions=True \(CLI: --drop-incomplete\)")


def test_intervention_without_control_rows():
    df = good_frame()
    df.loc[[3, 7], "treated"] = 1  # (B, 1) and (B, 2) now all treated
    raises(InterventionArmError, df, r"2 intervention\(s\) have no control rows \(only treated; "
                                     r"e\.g\. campaign 'B' week 1, campaign 'B' week 2\)")


def test_drop_incomplete_interventions_warns_and_drops():
    df = good_frame()
    df.loc[[3, 7], "treated"] = 1
    with pytest.warns(DataWarning, match=r"Dropped 2 intervention\(s\) \(4 rows\)"):
        data = ExperimentData.from_frame(df, drop_incomplete_interventions=True)
    assert data.n_rows == 4 and set(data.frame["campaign_id"]) == {"A"}
    assert data.n_interventions == 2


def test_drop_incomplete_leaving_nothing():
    df = good_frame().assign(treated=1)
    with pytest.warns(DataWarning), pytest.raises(EmptyDataError, match="No rows left"):
        ExperimentData.from_frame(df, drop_incomplete_interventions=True)


def test_drop_incomplete_does_not_hide_other_problems():
    df = good_frame()
    df.loc[[3, 7], "treated"] = 1
    df.loc[0, "outcome"] = np.nan
    with pytest.raises(NonFiniteError):
        ExperimentData.from_frame(df, drop_incomplete_interventions=True)


def test_campaign_ids_missing_from_campaign_table():
    raises(UnknownCampaignError, good_frame(),
           r"1 campaign id\(s\) in the exposures \(4 rows\) are missing from the campaign table: "
           r"'B'\. Add them", campaigns=campaign_table().iloc[[0]])


def test_campaign_table_without_id_column():
    raises(MissingColumnError, good_frame(), r"campaign table has no 'campaign_id' column",
           campaigns=campaign_table().rename(columns={"campaign_id": "id"}))


def test_campaign_table_with_repeated_ids():
    camp = pd.concat([campaign_table(), campaign_table().iloc[[1]]])
    raises(DuplicateRowError, good_frame(), r"lists 1 campaign id\(s\) more than once: 'B'",
           campaigns=camp)


def test_campaign_table_rows_not_used_are_dropped():
    camp = pd.concat([campaign_table(), pd.DataFrame({"campaign_id": ["Z"], "goal": ["x"],
                                                      "cost": [1.0]})])
    data = ExperimentData.from_frame(good_frame(), camp)
    assert data.campaigns["campaign_id"].tolist() == ["A", "B"]


@pytest.mark.parametrize("value", [0.0, 1.0, -0.2, 1.5])
def test_propensity_outside_open_unit_interval(value):
    df = good_frame().assign(p=0.5)
    df.loc[[1, 2], "p"] = value
    raises(PropensityError, df, rf"'p' \(propensity\) must be strictly between 0 and 1; 2 "
                                rf"row\(s\) are not \(e\.g\. {value}\)", propensity_col="p")


def test_propensity_nan():
    df = good_frame().assign(p=0.5)
    df.loc[1, "p"] = np.nan
    raises(NonFiniteError, df, r"'p' \(propensity\) has 1 NaN", propensity_col="p")


def test_several_problems_at_once_are_all_listed():
    df = good_frame()
    df.loc[0, "outcome"] = np.nan
    df.loc[1, "treated"] = 5
    df = pd.concat([df, df.iloc[[7]]], ignore_index=True)
    with pytest.raises(ValidationError) as info:
        ExperimentData.from_frame(df, campaigns=campaign_table().iloc[[0]])
    kinds = [type(p) for p in info.value.problems]
    # a duplicated row is reported once (as a duplicate, not also as an overlap)
    assert kinds == [NonFiniteError, TreatmentValueError, DuplicateRowError,
                     UnknownCampaignError]
    msg = str(info.value)
    assert msg.startswith(f"{len(kinds)} problem(s) found in the data:")
    assert "  1. " in msg and f"  {len(kinds)}. " in msg
    assert isinstance(info.value, DataError) and isinstance(info.value, ManyliftError)


def test_validate_frame_returns_the_list_without_raising():
    from manylift.data.experiment import ColumnSpec

    df = good_frame()
    assert validate_frame(df, ColumnSpec(), ["usage_7d"], "usage_30d") == []
    df.loc[0, "outcome"] = np.inf
    df.loc[1, "treated"] = -1
    found = validate_frame(df, ColumnSpec(), ["usage_7d"], "usage_30d")
    assert [type(p) for p in found] == [NonFiniteError, TreatmentValueError]


def test_errors_are_value_errors_for_generic_callers():
    with pytest.raises(ValueError):
        ExperimentData.from_frame(good_frame().iloc[:0])


# -- inputs are never modified --------------------------------------------
def test_frame_not_modified():
    df = good_frame()
    df["week"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(df["week"] * 7, unit="D")
    df = df.rename(columns={"treated": "w"})
    camp = campaign_table().rename(columns={"cost": "price"})
    before, camp_before = df.copy(deep=True), camp.copy(deep=True)
    ExperimentData.from_frame(df, camp, treatment_col="w", cost_col="price")
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(camp, camp_before)


def test_frame_not_modified_when_validation_fails_or_drops():
    df = good_frame()
    df.loc[[3, 7], "treated"] = 1
    before = df.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ExperimentData.from_frame(df, drop_incomplete_interventions=True)
    pd.testing.assert_frame_equal(df, before)
    df.loc[0, "outcome"] = np.nan
    before = df.copy(deep=True)
    with pytest.raises(DataError):
        ExperimentData.from_frame(df)
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "csv.gz"])
def test_from_files_reads_without_touching_the_files(tmp_path, fmt):
    exp = tmp_path / f"exposures.{fmt}"
    camp = tmp_path / "campaigns.csv"
    if fmt == "parquet":
        good_frame().to_parquet(exp, index=False)
    else:
        good_frame().to_csv(exp, index=False)
    campaign_table().to_csv(camp, index=False)
    old = time.time() - 3600
    for p in (exp, camp):
        os.utime(p, (old, old))
    stamp = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (exp, camp)}
    listing = sorted(tmp_path.iterdir())

    data = ExperimentData.from_files(exp, camp)
    assert data.n_rows == 8 and data.campaign_attributes == ["goal"]
    for p, (content, mtime) in stamp.items():
        assert p.read_bytes() == content and p.stat().st_mtime_ns == mtime
    assert sorted(tmp_path.iterdir()) == listing  # no stray files next to the inputs


def test_from_files_bad_file_is_left_alone(tmp_path):
    bad = good_frame()
    bad.loc[0, "treated"] = 3
    exp = tmp_path / "exposures.csv"
    bad.to_csv(exp, index=False)
    content, mtime = exp.read_bytes(), exp.stat().st_mtime_ns
    with pytest.raises(TreatmentValueError):
        ExperimentData.from_files(exp)
    assert exp.read_bytes() == content and exp.stat().st_mtime_ns == mtime


def test_from_files_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ExperimentData.from_files(tmp_path / "nope.csv")
    other = tmp_path / "exposures.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(DataError, match="Cannot tell the format"):
        ExperimentData.from_files(other)


# -- covariates are never guessed; the randomization balance check ----------------


def _program_with_post_treatment_column(n=3000, seed=0):
    """Interventions with 58-86% treated; ``spend_next_30d`` is moved by the treatment."""
    rng = np.random.default_rng(seed)
    cust = np.arange(n)
    week = rng.integers(1, 5, n)
    camp = rng.choice(["A", "B", "C"], n)
    share = {"A": 0.58, "B": 0.72, "C": 0.86}
    w = (rng.random(n) < np.vectorize(share.get)(camp)).astype(int)
    usage = rng.gamma(2.0, 10.0, n)
    y = 10 + 0.2 * usage + 1.0 * w + rng.normal(0, 3, n)
    return pd.DataFrame({"customer_id": cust, "campaign_id": camp, "week": week, "treated": w,
                         "outcome": y, "usage_7d": usage,
                         "spend_next_30d": y + rng.normal(0, 1, n)})


def test_unnamed_columns_are_not_covariates_and_auto_opts_in():
    df = _program_with_post_treatment_column()
    data = ExperimentData.from_frame(df)
    assert data.covariates == () and data.balance is None
    with pytest.raises(ImbalanceError) as info:
        ExperimentData.from_frame(df, covariates="auto")
    msg = str(info.value)
    # names the column (and only it), gives its SMD, says why, and how to override
    assert "'spend_next_30d': SMD +0." in msg and "biases every effect" in msg
    assert "usage_7d" not in msg
    assert "allow_imbalanced" in msg
    with pytest.raises(DataError, match="list of column names"):
        ExperimentData.from_frame(df, covariates="usage_7d")


def test_balance_table_flags_only_the_post_treatment_column_and_override_keeps_it():
    df = _program_with_post_treatment_column()
    data = ExperimentData.from_frame(df, covariates=["usage_7d", "spend_next_30d"],
                                     allow_imbalanced=["spend_next_30d"])
    t = data.balance.set_index("covariate")
    assert bool(t.loc["spend_next_30d", "imbalanced"]) and t.loc["spend_next_30d", "smd"] > 0.1
    assert not bool(t.loc["usage_7d", "imbalanced"]) and abs(t.loc["usage_7d", "smd"]) < 0.1
    assert data.covariates == ("usage_7d", "spend_next_30d")
    # check_balance=False computes the table without refusing (manylift validate)
    d2 = ExperimentData.from_frame(df, covariates=["spend_next_30d"], check_balance=False)
    assert bool(d2.balance["imbalanced"].iloc[0])


def test_balance_smd_is_within_interventions_not_pooled():
    """A pre-treatment covariate whose level differs between interventions that treat different
    shares is imbalanced when pooled naively but balanced within interventions: the check must
    not refuse it (closed-form case: within each intervention the arms are identical)."""
    from manylift.data.balance import balance_table

    x = np.array([0.0, 0.0, 1.0, 1.0] * 50 + [10.0] * 4 * 25 + [11.0] * 4 * 25)
    w = np.array([1, 0, 1, 0] * 50 + [1, 1, 1, 0] * 50)  # 50% vs 75% treated
    g = np.repeat([0, 1], 200)
    within = balance_table({"x": x}, w, g).iloc[0]
    naive = balance_table({"x": x}, w, None).iloc[0]
    # within each intervention treated and control means are equal: difference exactly 0
    assert abs(within["difference"]) < 1e-12 and not within["imbalanced"]
    assert naive["smd"] > 0.1 and naive["imbalanced"]
