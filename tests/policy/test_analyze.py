import json

import numpy as np
import pytest

from manylift._core.atomic import to_jsonable
from manylift._core.errors import ModelError, TreatmentValueError
from manylift.policy import POLICY_RULES, analyze_experiment
from manylift.simulate.single import simulate_experiment

SMALL = dict(learners=("t", "linear_dml", "causal_forest"), n_estimators=50, n_bootstrap=30,
             n_folds=3, random_state=0)


@pytest.fixture(scope="module")
def binary_run():
    sim = simulate_experiment(2000, ate=0.5, random_state=30)
    return sim, analyze_experiment(sim.frame, "treatment", "outcome", sim.covariates,
                                   randomized=True, cost=0.5, margin=1.0, **SMALL)


def test_results_have_the_required_keys(binary_run):
    sim, r = binary_run
    d = json.loads(json.dumps(to_jsonable(r.to_dict()), allow_nan=False))
    assert d["schema_version"] == 1
    arm = d["data"]["arms"][1]
    for est in ("difference_in_means", "ipw", "aipw", "ols", "dml", "overlap"):
        assert set(d["ate"][arm][est]) == {"estimate", "se", "lo", "hi"}
    assert set(d["positivity"]) >= {"propensity_auc", "overlap_share"}
    for learner in ("t", "linear_dml", "causal_forest"):
        for metric in ("autoc", "qini", "blp_slope"):
            assert set(d["cate"][learner][metric]) == {"estimate", "se"}
    for rule in ("treat_all", "positive_effect", "breakeven", "top_k", "conservative",
                 "risk_adjusted", "policy_tree"):
        assert {"profit", "roi", "share_targeted"} <= set(d["policies"][rule])
    assert set(POLICY_RULES) == set(d["policies"])


def test_analysis_numbers_are_sane(binary_run):
    sim, r = binary_run
    a = r.ate["1"]["aipw"]
    assert a["lo"] < sim.ate[0] < a["hi"]
    assert abs(r.positivity["1"].propensity_auc - 0.5) < 0.06
    assert r.best_learner in ("t", "linear_dml", "causal_forest")
    assert r.policies["top_k"].share_targeted == pytest.approx(0.2, abs=0.001)
    assert r.policies["treat_all"].share_targeted == 1.0
    assert r.refutation["placebo"].passed
    # the breakeven rule's true profit on the evaluation rows is covered
    assert r.n_evaluation == 1000


def test_multiarm_labels_and_errors():
    sim = simulate_experiment(2400, n_arms=2, ate=[0.5, 0.8], random_state=31)
    frame = sim.frame.assign(arm=np.array(["holdout", "email A", "email B"])[sim.frame["treatment"]])
    frame = frame.drop(columns="treatment")
    r = analyze_experiment(frame, "arm", "outcome", sim.covariates, randomized=True, cost=0.5,
                           margin=1.0, segment="x3", **SMALL)
    assert r.arms == ["holdout", "email A", "email B"]
    assert set(r.ate) == {"email A", "email B"}
    assert r.main_arm == "email B"
    d = r.to_dict()
    assert set(d["cate"]["causal_forest"]["arms"]) == {"email A", "email B"}
    assert set(np.unique(r.segments.to_frame()["arm"])) == {"email A", "email B"}
    with pytest.raises(ModelError, match="cost and margin"):
        analyze_experiment(frame, "arm", "outcome", sim.covariates, cost=1.0, **SMALL)
    with pytest.raises(TreatmentValueError, match="--control"):
        analyze_experiment(frame.assign(arm=frame["arm"].replace("holdout", "base")),
                           "arm", "outcome", sim.covariates, **SMALL)


def test_effect_of_new_rows_follows_the_truth_and_the_fitted_encoding():
    # fit on one sample, score fresh customers from the same process (truth known)
    sim = simulate_experiment(3000, ate=0.5, heterogeneity=1.0, random_state=32)
    region = np.array(["north", "south", "east"])[np.arange(3000) % 3]
    frame = sim.frame.assign(region=region)
    r = analyze_experiment(frame, "treatment", "outcome", [*sim.covariates, "region"],
                           randomized=True, **SMALL)
    new = simulate_experiment(1000, ate=0.5, heterogeneity=1.0, random_state=33)
    rows = new.frame[sim.covariates].assign(region=np.array(["east", "north", "south"])[
        np.arange(1000) % 3])
    tau = r.effect(rows)
    assert tau.shape == (1000,)
    assert np.corrcoef(tau, new.tau[:, 0])[0, 1] > 0.8  # EconML's effect(X), on new rows
    # the same as the fitted learner on the rows encoded as the analysis encoded its data
    encoded = np.column_stack([rows[sim.covariates].to_numpy(),
                               (rows["region"] == "north").to_numpy(float),
                               (rows["region"] == "south").to_numpy(float)])
    assert r.data.covariate_names[-2:] == ["region=north", "region=south"]
    np.testing.assert_allclose(tau, r.learners[r.best_learner].effect(encoded))
    np.testing.assert_allclose(r.effect(encoded, learner="t"), r.learners["t"].effect(encoded))
    lo, hi = r.effect_interval(rows, learner="causal_forest")
    cf = r.effect(rows, learner="causal_forest")
    assert np.all(lo <= cf) and np.all(cf <= hi)
    with pytest.raises(ModelError, match="without intervals"):
        r.effect_interval(rows, learner="t")
    with pytest.raises(Exception, match="'region' has level"):
        r.effect(rows.assign(region="west"))
    with pytest.raises(ModelError, match="encoded columns"):
        r.effect(encoded[:, :3])
