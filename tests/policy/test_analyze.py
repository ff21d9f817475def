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
