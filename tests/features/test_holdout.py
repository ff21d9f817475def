"""The calibration / holdout split: one random row per customer with >= 6 rows."""

import numpy as np
import pytest
from scipy import stats

from manylift.features.holdout import holdout_split


def _codes():
    # customers with 1, 5, 6, 7 and 12 rows, interleaved (order must not matter)
    sizes = {"a": 1, "b": 5, "c": 6, "d": 7, "e": 12}
    ids = np.concatenate([[k] * v for k, v in sizes.items()])
    return np.random.default_rng(3).permutation(ids), sizes


def test_one_row_per_customer_with_at_least_six_rows_none_otherwise():
    ids, sizes = _codes()
    out = holdout_split(ids, random_state=0)
    assert out.dtype == bool and out.shape == ids.shape
    per_customer = {k: int(out[ids == k].sum()) for k in sizes}
    assert per_customer == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 1}


def test_min_rows_option():
    ids, _ = _codes()
    out = holdout_split(ids, min_rows=1, random_state=0)
    assert out.sum() == 5
    assert holdout_split(ids, min_rows=13, random_state=0).sum() == 0


def test_reproducible_and_seed_dependent():
    ids = np.repeat(np.arange(300), 8)
    a = holdout_split(ids, random_state=42)
    b = holdout_split(ids, random_state=42)
    np.testing.assert_array_equal(a, b)
    c = holdout_split(ids, random_state=43)
    assert not np.array_equal(a, c)
    assert a.sum() == c.sum() == 300


def test_generator_accepted():
    ids = np.repeat(np.arange(10), 6)
    out = holdout_split(ids, random_state=np.random.default_rng(0))
    assert out.sum() == 10


def test_held_out_position_is_uniform():
    # 6,000 customers with 6 rows each: the held-out position should be uniform on 0..5
    n, k = 6000, 6
    ids = np.repeat(np.arange(n), k)
    out = holdout_split(ids, random_state=7)
    pos = np.flatnonzero(out) % k
    counts = np.bincount(pos, minlength=k)
    assert stats.chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize("ids", [np.array([], dtype=np.int64)])
def test_empty(ids):
    assert holdout_split(ids).shape == (0,)
