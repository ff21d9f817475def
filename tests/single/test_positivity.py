import numpy as np
import pytest

from manylift._core.errors import DataError, PropensityError
from manylift.simulate.single import simulate_experiment
from manylift.single.positivity import (
    estimate_propensity,
    positivity_diagnostics,
    standardized_mean_differences,
)


def _xw(sim):
    return sim.frame[sim.covariates].to_numpy(), sim.frame["treatment"].to_numpy()


def test_randomized_auc_near_half_and_full_overlap():
    sim = simulate_experiment(3000, random_state=1)
    x, w = _xw(sim)
    r = positivity_diagnostics(x, w, sim.propensity[:, 1], model="logistic")
    assert abs(r.propensity_auc - 0.5) < 0.04
    assert r.known_propensity
    assert r.overlap_share["0.1-0.9"] == 1.0
    assert r.n_balanced >= 4  # randomization balances covariates


def test_confounded_shows_poor_overlap_and_weighting_restores_balance():
    sim = simulate_experiment(4000, kind="confounded", confounding=3.0, random_state=2)
    x, w = _xw(sim)
    r = positivity_diagnostics(x, w, model="logistic")
    assert r.propensity_auc > 0.85
    assert r.overlap_share["0.1-0.9"] < 0.6
    assert r.overlap_share["0.05-0.95"] >= r.overlap_share["0.1-0.9"]
    b = r.balance.set_index("covariate")
    assert abs(b.loc["x0", "smd_before"]) > 0.5
    assert abs(b.loc["x0", "smd_after"]) < abs(b.loc["x0", "smd_before"]) / 3
    # with the true propensity, weighting balances x0 (a consequence of E[W x / e] = E[x])
    smd_true = standardized_mean_differences(x, w, sim.propensity[:, 1], names=sim.covariates)
    assert abs(smd_true.set_index("covariate").loc["x0", "smd_after"]) < 0.15


def test_smd_closed_form():
    x = np.array([[1.0], [3.0], [0.0], [2.0]])
    w = np.array([1, 1, 0, 0])
    smd = standardized_mean_differences(x, w)["smd_before"].iloc[0]
    # means 2 and 1; variances 2 and 2 -> SMD = 1 / sqrt(2)
    assert smd == pytest.approx(1 / np.sqrt(2))


def test_estimate_propensity_multiarm_rows_sum_to_one():
    sim = simulate_experiment(900, n_arms=2, random_state=3)
    x, w = _xw(sim)
    e = estimate_propensity(x, w, model="logistic", n_folds=3)
    assert e.shape == (900, 3)
    np.testing.assert_allclose(e.sum(axis=1), 1.0)


def test_bad_inputs_name_the_problem():
    x = np.zeros((4, 1))
    with pytest.raises(DataError, match="0/1"):
        positivity_diagnostics(x, [0, 1, 2, 1])
    with pytest.raises(PropensityError, match="outside"):
        positivity_diagnostics(np.random.default_rng(0).normal(size=(40, 1)),
                               np.tile([0, 1], 20), np.full(40, 1.0), model="logistic",
                               n_folds=2)
    with pytest.raises(DataError, match="non-finite"):
        positivity_diagnostics(np.array([[np.nan]] * 4), [0, 1, 0, 1])


def test_single_data_controls_and_encoding():
    import pandas as pd

    from manylift._core.errors import MissingColumnError, TreatmentValueError
    from manylift.single import SingleData

    df = pd.DataFrame({"t": [True, False] * 5, "y": np.arange(10.0), "x": np.arange(10.0),
                       "city": ["a", "b"] * 5})
    d = SingleData.from_frame(df, "t", "y", ["x", "city"])
    assert d.arms == [False, True] and d.covariate_names == ["x", "city=b"]
    lab = df.assign(t=np.where(df["t"], "Mens E-Mail", "No E-Mail"))
    assert SingleData.from_frame(lab, "t", "y").arms[0] == "No E-Mail"
    with pytest.raises(TreatmentValueError, match="--control"):
        SingleData.from_frame(df.assign(t=np.where(df["t"], "A", "B")), "t", "y")
    with pytest.raises(MissingColumnError, match="'nope'"):
        SingleData.from_frame(df, "t", "y", ["nope"])
