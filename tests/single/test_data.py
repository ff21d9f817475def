"""SingleData, the one table preparer of analyze, bayes and personalize: covariates only when
named (or declared by a built-in dataset), the randomization balance check, duplicate rows,
messages with plain values, the encoder for new rows."""

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import (
    ColumnTypeError,
    DataError,
    DuplicateRowError,
    ImbalanceError,
    TreatmentValueError,
)
from manylift.data.datasets import dataset_info, load_hillstrom
from manylift.single import SingleData

HILLSTROM_PRE = ["recency", "history", "mens", "womens", "newbie", "zip_code", "channel"]


@pytest.fixture(scope="module")
def hillstrom():
    return load_hillstrom()


def test_hillstrom_visit_is_refused_as_a_covariate_of_conversion(hillstrom):
    # the e-mail raised visits (an outcome of the same campaign): the balance check names it
    with pytest.raises(ImbalanceError, match="'visit'") as exc:
        SingleData.from_frame(hillstrom, "segment", "conversion",
                              ["recency", "history", "visit"], segment="history_segment")
    msg = str(exc.value)
    assert "--allow-imbalanced visit" in msg and "'recency'" not in msg.split("Flagged")[1]
    # kept knowingly with allow_imbalanced; the pre-treatment columns pass
    d = SingleData.from_frame(hillstrom, "segment", "conversion", ["recency", "visit"],
                              allow_imbalanced=["visit"])
    assert d.covariate_names == ["recency", "visit"]
    # the SMD it reports is the one computed from the raw rows, men's e-mail vs none
    v1 = hillstrom.loc[hillstrom["segment"] == "Mens E-Mail", "visit"]
    v0 = hillstrom.loc[hillstrom["segment"] == "No E-Mail", "visit"]
    smd = (v1.mean() - v0.mean()) / np.sqrt((v1.var() + v0.var()) / 2)
    row = d.balance.set_index(["arm", "column"]).loc[("Mens E-Mail", "visit")]
    assert row["smd"] == pytest.approx(smd, rel=1e-3) and smd > 0.1
    flagged = d.balance[d.balance["imbalanced"]]
    assert set(flagged["column"]) == {"visit"}
    assert set(flagged["arm"]) == {"Mens E-Mail", "Womens E-Mail"}


def test_covariates_only_when_named_or_declared_by_the_dataset(hillstrom):
    info = dataset_info("hillstrom")
    assert list(info.pre_treatment) == HILLSTROM_PRE
    d = SingleData.from_frame(hillstrom, "segment", "conversion")
    assert d.covariates_source == "dataset" and d.covariate_columns == HILLSTROM_PRE
    assert "visit" not in d.covariate_columns and "spend" not in d.covariate_columns
    assert d.randomized and d.arms[0] == "No E-Mail" and d.family == "bernoulli"
    # the same rows from a plain file carry no declaration: no covariates unless named
    plain = pd.DataFrame(hillstrom.to_dict("list"))
    d = SingleData.from_frame(plain, "segment", "conversion", allow_duplicates=True)
    assert d.covariates_source == "none" and d.covariates.shape == (64000, 0)
    # auto opts in to every other numeric column, and the balance check still guards it
    with pytest.raises(ImbalanceError, match="'visit'"):
        SingleData.from_frame(hillstrom, "segment", "conversion", "auto")
    with pytest.raises(DataError, match="needs covariates.*--covariates a,b,c"):
        SingleData.from_frame(plain.head(500), "segment", "conversion", require_covariates=True,
                              allow_duplicates=True, where="analyze")


def test_categorical_imbalance_names_the_column_and_checks_each_arm():
    rng = np.random.default_rng(3)
    n = 6000
    arm = rng.choice(["control", "A", "B"], n)
    # a post-treatment channel: arm B moves customers to "web" (arm A does not)
    p_web = np.where(arm == "B", 0.55, 0.35)
    channel = np.where(rng.random(n) < p_web, "web", np.where(rng.random(n) < 0.5, "shop", "phone"))
    df = pd.DataFrame({"arm": arm, "y": rng.normal(size=n), "age": rng.normal(40, 10, n),
                       "channel": channel})
    with pytest.raises(ImbalanceError) as exc:
        SingleData.from_frame(df, "arm", "y", ["age", "channel"], randomized=True)
    msg = str(exc.value)
    assert "'channel'" in msg and "'age'" not in msg
    assert "level 'web'" in msg and "arm(s) 'B'" in msg and "'A'" not in msg.split("Flagged")[1]
    assert "--allow-imbalanced channel" in msg
    # observational data (not randomized): the table is computed but nothing is refused
    d = SingleData.from_frame(df, "arm", "y", ["age", "channel"])
    assert not d.randomized and d.balance["imbalanced"].any()
    assert d.covariate_names == ["age", "channel=shop", "channel=web"]


def test_duplicate_rows_are_refused_with_count_and_rows():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"w": rng.integers(0, 2, 945), "y": rng.normal(size=945),
                       "x": rng.normal(size=945)})
    dup = pd.concat([df, df.iloc[[17]]], ignore_index=True)  # n = 946 with one repeated row
    with pytest.raises(DuplicateRowError, match=r"1 row\(s\) repeat .*row 945 repeats row 17"):
        SingleData.from_frame(dup, "w", "y", ["x"])
    assert SingleData.from_frame(dup, "w", "y", ["x"], allow_duplicates=True).n == 946
    assert SingleData.from_frame(df, "w", "y", ["x"]).n == 945


def test_messages_quote_plain_and_bad_values():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"w": rng.integers(0, 2, 50), "y": rng.normal(size=50),
                       "x": rng.normal(size=50)})
    two = df.copy()
    two.loc[5, "w"] = 2
    with pytest.raises(TreatmentValueError) as exc:
        SingleData.from_frame(two, "w", "y", ["x"])
    assert "2 has 1 row" in str(exc.value) and "np." not in str(exc.value)
    # no control rows, in words
    with pytest.raises(TreatmentValueError, match="has no control rows: no row holds the control "
                                                  "value 0"):
        SingleData.from_frame(df.assign(w=1), "w", "y", ["x"])
    # the bad outcome values are quoted, not the good ones
    bad = df.assign(y=df["y"].astype(object))
    bad.loc[7, "y"] = "abc"
    with pytest.raises(ColumnTypeError) as exc:
        SingleData.from_frame(bad, "w", "y", ["x"])
    assert "'abc' in row(s) 7" in str(exc.value)
    assert repr(float(df.loc[0, "y"])) not in str(exc.value)


def test_encoder_encodes_new_rows_like_the_data_and_names_unseen_levels():
    df = pd.DataFrame({"w": [0, 1] * 6, "y": np.arange(12.0), "age": np.arange(12.0) * 3,
                       "city": ["a", "b", "c"] * 4})
    d = SingleData.from_frame(df, "w", "y", ["age", "city"])
    new = pd.DataFrame({"city": ["c", "a"], "age": [5.0, 7.0]})
    np.testing.assert_array_equal(d.transform(new), [[5.0, 0, 1], [7.0, 0, 0]])
    with pytest.raises(DataError, match="'city' has level\\(s\\) 'z' not seen"):
        d.transform(new.assign(city=["z", "a"]))


def test_subsample_keeps_row_ids_of_the_input(hillstrom):
    d = SingleData.from_frame(hillstrom, "segment", "spend", sample=1000, random_state=4)
    assert d.n == 1000 and d.rows_in == 64000 and d.family == "gaussian"
    np.testing.assert_array_equal(d.outcome, hillstrom["spend"].to_numpy()[d.row_ids])
