"""Exposure-history features on hand-built histories, checked value by value.

Every expected number below is worked out by hand from the definitions of
docs/pooled.md (decay 0.75, recency bins (0,2], (2,4], (4,6], (6,8], >8).
"""

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import DataError, ModelError
from manylift.features.exposure import ExposureFeatures, exposure_history

D = 0.75
INF = np.inf


def _hand_frame():
    """Four customers, sorted by customer then week.

    A: never treated (three control rows).
    B: treated in consecutive weeks 1, 2, 3, then a control row in week 4.
    C: treated week 1, control ("held out") week 2, treated week 5, control week 12.
    E: treated week 1, control week 10 (recency 9: the open last bin).
    """
    rows = [
        # customer, week, treated
        ("A", 1, 0), ("A", 2, 0), ("A", 3, 0),
        ("B", 1, 1), ("B", 2, 1), ("B", 3, 1), ("B", 4, 0),
        ("C", 1, 1), ("C", 2, 0), ("C", 5, 1), ("C", 12, 0),
        ("E", 1, 1), ("E", 10, 0),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "week", "treated"])
    df["campaign_id"] = "K1"
    df["treated"] = df["treated"].astype(np.int8)
    return df


# recency and stock per row of _hand_frame, by hand
EXP_RECENCY = [INF, INF, INF,
               INF, 1, 1, 1,
               INF, 1, 4, 7,
               INF, 9]
EXP_STOCK = [0, 0, 0,
             0, D, D + D**2, D + D**2 + D**3,
             0, D, D**4, D**7 + D**11,
             0, D**9]


def test_exposure_history_by_hand():
    df = _hand_frame()
    rec, stock = exposure_history(df["customer_id"].to_numpy(), df["week"].to_numpy(),
                                  df["treated"].to_numpy(), decay=D)
    np.testing.assert_array_equal(rec, EXP_RECENCY)
    np.testing.assert_allclose(stock, EXP_STOCK, rtol=0, atol=1e-12)


def test_only_earlier_treatments_count_not_the_current_one():
    # a single treated row has no history of its own; a control row never adds stock
    rec, stock = exposure_history(np.array([7, 7, 7]), np.array([3, 4, 6]),
                                  np.array([1, 0, 0]), decay=0.5)
    np.testing.assert_array_equal(rec, [INF, 1, 3])
    np.testing.assert_allclose(stock, [0, 0.5, 0.125])


def test_other_decay():
    rec, stock = exposure_history(np.array([1, 1, 1]), np.array([0, 2, 3]),
                                  np.array([1, 1, 0]), decay=0.5)
    np.testing.assert_allclose(stock, [0, 0.25, 0.125 + 0.5])


def test_unsorted_rows_rejected():
    with pytest.raises(DataError, match="sorted by customer then week"):
        exposure_history(np.array([1, 1]), np.array([3, 2]), np.array([1, 0]))
    with pytest.raises(DataError, match="one row per customer per week"):
        exposure_history(np.array([1, 1]), np.array([2, 2]), np.array([1, 0]))


def test_bins_and_cells_by_hand():
    df = _hand_frame()
    fe = ExposureFeatures().fit(df)
    # previously treated rows' stocks, sorted: D^9, D^7+D^11, D^4, D, D, D+D^2, D+D^2+D^3
    prev = np.sort([D, D + D**2, D + D**2 + D**3, D, D**4, D**7 + D**11, D**9])
    np.testing.assert_allclose(fe.stock_edges_, np.quantile(prev, [0.2, 0.4, 0.6, 0.8]))
    # linear interpolation by hand: positions 1.2, 2.4, 3.6, 4.8 of the 7 sorted values
    by_hand = [prev[1] + 0.2 * (prev[2] - prev[1]), prev[2] + 0.4 * (prev[3] - prev[2]),
               prev[3] + 0.6 * (prev[4] - prev[3]), prev[4] + 0.8 * (prev[5] - prev[4])]
    np.testing.assert_allclose(fe.stock_edges_, by_hand)

    f = fe.transform(df)
    # recency bins: 1 -> (0,2] = 0; 4 -> (2,4] = 1; 7 -> (6,8] = 3; 9 -> >8 = 4
    np.testing.assert_array_equal(
        f.recency_bin, [-1, -1, -1, -1, 0, 0, 0, -1, 0, 1, 3, -1, 4])
    # edges by hand: 0.17572 + 0.2 * 0.14069, 0.4898, 0.75 (two tied values), 0.75 + 0.8 * 0.5625 = 1.2.
    # A stock equal to an edge goes to the bin above it (bins are [e_k-1, e_k)).
    np.testing.assert_allclose(fe.stock_edges_, [0.20385647, 0.48984375, 0.75, 1.2], rtol=1e-7)
    exp_sbin = [-1, -1, -1,
                -1, 3, 4, 4,        # 0.75 -> 3, 1.3125 -> 4, 1.734 -> 4
                -1, 3, 1, 0,        # 0.75 -> 3, 0.316 -> 1, 0.176 -> 0
                -1, 0]              # 0.075 -> 0
    np.testing.assert_array_equal(f.stock_bin, exp_sbin)
    exp_cell = [25 if r < 0 else r * 5 + s for r, s in zip(f.recency_bin, exp_sbin)]
    np.testing.assert_array_equal(f.cell, exp_cell)
    assert fe.n_cells == 26 and f.cell.max() <= 25
    # the never-treated cell is the last one
    assert set(f.cell[np.isinf(f.recency)]) == {25}


def test_recency_bin_edges_are_right_closed():
    # one customer treated in week 0, then rows at recency 2, 4, 6, 8 (bin edges) and 9
    weeks = np.array([0, 2, 4, 6, 8, 9])
    df = pd.DataFrame({"customer_id": 1, "campaign_id": "K", "week": weeks,
                       "treated": np.array([1, 0, 0, 0, 0, 0], np.int8)})
    # each row its own intervention with a treated share of its own
    df["campaign_id"] = [f"K{i}" for i in range(len(df))]
    f = ExposureFeatures().fit(df).transform(df)
    np.testing.assert_array_equal(f.recency, [INF, 2, 4, 6, 8, 9])
    np.testing.assert_array_equal(f.recency_bin, [-1, 0, 1, 2, 3, 4])


def test_transform_applies_stored_edges_to_new_data():
    calib = _hand_frame()
    fe = ExposureFeatures().fit(calib)
    edges = fe.stock_edges_.copy()
    # new data: customer Z treated in week 1, then rows at weeks 2 and 3
    new = pd.DataFrame({"customer_id": ["Z"] * 3, "campaign_id": ["K9"] * 3, "week": [1, 2, 3],
                        "treated": np.array([1, 1, 0], np.int8)})
    f = fe.transform(new)
    np.testing.assert_array_equal(fe.stock_edges_, edges)  # transform never refits
    # stocks 0.75 and 0.75 + 0.5625 = 1.3125 binned with the *calibration* edges: 3 and 4
    np.testing.assert_allclose(f.stock, [0, D, D + D**2])
    np.testing.assert_array_equal(f.stock_bin, [-1, 3, 4])
    # a fit on the new data alone would have binned them differently
    own = ExposureFeatures().fit(new).transform(new)
    assert not np.array_equal(own.stock_bin, f.stock_bin)


def test_fit_rows_mask_limits_the_edges_but_not_the_history():
    df = _hand_frame()
    mask = np.ones(len(df), bool)
    mask[10] = False  # C's week-12 row is held out
    fe = ExposureFeatures().fit(df, rows=mask)
    prev = np.sort([D, D + D**2, D + D**2 + D**3, D, D**4, D**9])  # without D^7 + D^11
    np.testing.assert_allclose(fe.stock_edges_, np.quantile(prev, [0.2, 0.4, 0.6, 0.8]))
    # history still uses every row: the held-out row keeps its recency and stock
    f = fe.transform(df)
    assert f.recency[10] == 7 and f.stock[10] == pytest.approx(D**7 + D**11)


def test_activity_bins_seven_quantiles():
    n = 14
    df = pd.DataFrame({"customer_id": np.arange(n), "campaign_id": "K", "week": 1,
                       "treated": np.array([0, 1] * 7, np.int8),
                       "usage_30d": np.arange(n, dtype=float)[::-1]})
    fe = ExposureFeatures().fit(df, activity_col="usage_30d")
    np.testing.assert_allclose(fe.activity_edges_, 13 * np.arange(1, 7) / 7)
    f = fe.transform(df)
    # values 13..0: two values per bin, 0,1 -> 0 ... 12,13 -> 6
    np.testing.assert_array_equal(f.activity, np.arange(n)[::-1] // 2)
    # new data beyond the calibration range falls in the end bins
    new = df.iloc[:2].assign(usage_30d=[-5.0, 100.0])
    np.testing.assert_array_equal(fe.transform(new).activity, [0, 6])


def test_covariates_log1p_and_centred_with_calibration_means():
    df = pd.DataFrame({"customer_id": [1, 2, 3], "campaign_id": "K", "week": 1,
                       "treated": np.array([1, 0, 1], np.int8),
                       "usage_7d": [0.0, np.e - 1, np.e**2 - 1]})
    fe = ExposureFeatures().fit(df, covariates=["usage_7d"])
    np.testing.assert_allclose(fe.covariate_means_, [1.0])
    np.testing.assert_allclose(fe.transform(df).X[:, 0], [-1, 0, 1], atol=1e-12)
    new = df.assign(usage_7d=[np.e**3 - 1] * 3)
    np.testing.assert_allclose(fe.transform(new).X[:, 0], [2, 2, 2], atol=1e-12)
    raw = ExposureFeatures(log_covariates=False).fit(df, covariates=["usage_7d"])
    np.testing.assert_allclose(raw.transform(df).X[:, 0],
                               df["usage_7d"] - df["usage_7d"].mean())


def test_negative_covariate_with_log_is_an_error():
    df = pd.DataFrame({"customer_id": [1, 2], "campaign_id": "K", "week": 1,
                       "treated": np.array([1, 0], np.int8), "balance": [-1.0, 2.0]})
    with pytest.raises(DataError, match=r"\['balance'\].*log_covariates=False"):
        ExposureFeatures().fit(df, covariates=["balance"])


def test_proportion_treated_centred_at_calibration_mean():
    # intervention (K1, 1): 1 of 4 treated; (K2, 1): 3 of 4 treated -> row mean 0.5
    df = pd.DataFrame({"customer_id": np.arange(8), "campaign_id": ["K1"] * 4 + ["K2"] * 4,
                       "week": 1, "treated": np.array([1, 0, 0, 0, 1, 1, 1, 0], np.int8)})
    fe = ExposureFeatures().fit(df)
    assert fe.prop_mean_ == pytest.approx(0.5)
    np.testing.assert_allclose(fe.transform(df).prop_treated, [-0.25] * 4 + [0.25] * 4)


def test_transform_before_fit_and_bad_decay():
    with pytest.raises(ModelError, match="not fitted"):
        ExposureFeatures().transform(_hand_frame())
    with pytest.raises(ModelError, match="'decay'"):
        ExposureFeatures(decay=1.5).fit(_hand_frame())


def test_to_dict_round_trips_the_fitted_edges():
    fe = ExposureFeatures().fit(_hand_frame())
    d = fe.to_dict()
    assert d["stock_edges"] == pytest.approx(list(fe.stock_edges_))
    assert d["recency_edges"] == [2.0, 4.0, 6.0, 8.0] and d["decay"] == D
    assert "ExposureFeatures(decay=0.75" in repr(fe)


def test_features_of_later_weeks_from_the_stored_state_equal_those_from_the_full_history():
    """Scoring: featurize weeks T+1.. from each customer's state at the end of weeks <= T
    (history_state) and the new rows alone; recency, stock, cells and activity bins equal
    those computed from the full history."""
    from manylift.features.exposure import ExposureFeatures, exposure_history, history_state
    from manylift.simulate.program import simulate_program

    data, _ = simulate_program(1500, 6, 24, random_state=7)
    f = data.frame
    T = 18
    old, new = f[f["week"] <= T], f[f["week"] > T].reset_index(drop=True)
    fe = ExposureFeatures().fit(old, data.covariates, data.activity_col)
    full = fe.transform(f)
    later = (f["week"] > T).to_numpy()
    state = history_state(old["customer_id"].to_numpy(), old["week"].to_numpy(),
                          old["treated"].to_numpy(), fe.decay).set_index("customer_id")
    st = state.reindex(new["customer_id"])
    prior = (st["last_treated_week"].to_numpy(),
             st["stock"].fillna(0).to_numpy(), st["last_week"].fillna(-1).to_numpy())
    got = fe.transform(new, prior=prior, prop_treated=f["propensity"].to_numpy()[later])
    np.testing.assert_array_equal(got.recency, full.recency[later])
    np.testing.assert_allclose(got.stock, full.stock[later], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(got.cell, full.cell[later])
    np.testing.assert_array_equal(got.activity, full.activity[later])
    np.testing.assert_allclose(got.prop_treated, full.prop_treated[later])
    # without the state, the history of the new rows alone would be wrong
    rec_alone, _ = exposure_history(new["customer_id"].to_numpy(), new["week"].to_numpy(),
                                    new["treated"].to_numpy(), fe.decay)
    assert (rec_alone != full.recency[later]).any()
    # a new row in a week already fitted is refused
    bad = (st["last_treated_week"].to_numpy(), st["stock"].fillna(0).to_numpy(),
           st["last_week"].fillna(-1).to_numpy() + 100)
    import pytest

    from manylift._core.errors import DataError
    with pytest.raises(DataError, match="after the history"):
        fe.transform(new, prior=bad, prop_treated=f["propensity"].to_numpy()[later])
    # the transformer survives a round trip through its dictionary (model.json)
    fe2 = ExposureFeatures.from_dict(fe.to_dict())
    np.testing.assert_array_equal(fe2.transform(f).cell, full.cell)
    np.testing.assert_allclose(fe2.transform(f).X, full.X)
