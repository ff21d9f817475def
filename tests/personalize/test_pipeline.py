"""The whole analysis: simulated experiment (truth known), Hillstrom, the report page."""

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import ColumnError, DataError
from manylift.data.datasets import load_hillstrom
from manylift.personalize.analysis import personalize_frame, resolve_control
from manylift.report.personalize import personalize_page
from manylift.simulate.multiarm import simulate_multiarm

FAST = dict(n_bootstrap=30, n_sims=300, n_individuals=200, grid_size=3, n_estimators=50,
            forest_trees=40)
HILLSTROM_COVARIATES = ["recency", "history", "mens", "womens", "newbie", "zip_code", "channel"]


@pytest.fixture(scope="module")
def simulated():
    exp = simulate_multiarm(n=6000, n_arms=3, sigma=1.0, rho=0.2, s=0.3, sigma_eps=1.0, random_state=0)
    res = personalize_frame(exp.data, "arm", "outcome", methods=("ols", "t_learner"), truth=exp.truth,
                            covariates=[c for c in exp.data.columns if c.startswith("x")], **FAST)
    return exp, res


def test_results_json_has_the_design_keys(simulated):
    exp, res = simulated
    out = res.to_results()
    assert out["schema_version"] == 1
    for k in ("sigma", "rho", "s", "sigma_eps"):
        assert set(out["parameters"][k]) >= {"estimate", "lo", "hi"}
    assert set(out["arm_means"]) == {"control", "arm_1", "arm_2"}
    assert out["best_uniform_arm"] == exp.truth["best_arm"] == "arm_2"
    assert set(out["predicted_gain"]) >= {"estimate", "lo", "hi"}
    for m in ("ols", "t_learner"):
        assert set(out["methods"][m]) == {"value", "se", "gain", "gain_se"}
    assert out["truth"]["sigma"] == 1.0
    pg = res.predicted_gain
    assert pg.lo <= pg.estimate <= pg.hi
    # Algorithm 2 can only lose to the oracle; the oracle matches the simulator's in-sample truth
    assert res.predicted.gain < res.predicted.oracle_gain
    assert res.predicted.oracle_gain == pytest.approx(exp.truth["oracle_gain"], rel=0.25)
    table = res.to_frame()
    assert table["method"].iloc[-1] == "model_prediction"


def test_report_page_renders_and_escapes(simulated):
    _, res = simulated
    html = personalize_page(res, title="Gain <script>x</script>").render()
    assert "<script>x" not in html and "&lt;script&gt;" in html
    assert html.count("<svg") >= 5
    assert "Simulated data: the true parameters" in html


def test_control_resolution_follows_the_design():
    assert resolve_control(["No E-Mail", "Mens E-Mail", "Womens E-Mail"]) == "No E-Mail"
    assert resolve_control([1, 0, 2]) == 0
    assert resolve_control(["a", "control", "b"]) == "control"
    with pytest.raises(DataError, match="Cannot tell which treatment value is the control"):
        resolve_control(["a", "b", "c"])
    with pytest.raises(DataError, match="several look like a control"):
        resolve_control(["no mail", "control"])
    assert resolve_control(["a", "b"], control="b") == "b"


def test_frame_errors_name_the_column():
    d = simulate_multiarm(n=500, random_state=0).data
    with pytest.raises(ColumnError, match="treatment column 'segment' is not in the data"):
        personalize_frame(d, "segment", "outcome")
    with pytest.raises(ColumnError, match="covariate column.*'age'"):
        personalize_frame(d, "arm", "outcome", covariates=["x1", "age"])


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["visit", "spend"])
def test_hillstrom_full_pipeline(outcome):
    df = load_hillstrom()
    res = personalize_frame(df, "segment", outcome, covariates=HILLSTROM_COVARIATES, **FAST)
    means = df.groupby("segment")[outcome].mean()
    control_mean = means["No E-Mail"]
    best_difference = (means - control_mean).idxmax()  # the arm with the best difference in means
    assert res.best_uniform_arm == best_difference == "Mens E-Mail"
    assert res.control == "No E-Mail"
    out = res.to_results()
    assert set(out["methods"]) == {"ols", "s_learner", "t_learner", "causal_forest", "policy_tree"}
    for r in out["methods"].values():
        assert np.isfinite(r["gain"]) and r["gain_se"] > 0 and r["se"] > 0
    for k in ("sigma", "rho", "s", "sigma_eps"):
        p = out["parameters"][k]
        assert p["lo"] <= p["estimate"] <= p["hi"]
    assert out["arm_means"]["Mens E-Mail"] == pytest.approx(means["Mens E-Mail"])
    assert isinstance(res.comparison.assignment_shares, pd.DataFrame)


def test_covariate_profile_heatmap_names_the_covariates_and_shows_its_colour_bar(simulated):
    from manylift.report.personalize import plot_covariate_profiles

    exp, res = simulated
    fig = plot_covariate_profiles(res, "ols")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    heat, cbar = fig.axes[0], fig.axes[1]
    names = [c for c in exp.data.columns if c.startswith("x")]
    assert [t.get_text() for t in heat.get_xticklabels()] == names
    # the colour bar's label lies inside the figure, and the bar below the covariate names
    label = cbar.xaxis.label.get_window_extent(renderer)
    box = fig.bbox
    assert cbar.xaxis.label.get_text().startswith("group mean of the covariate")
    assert box.x0 <= label.x0 and label.x1 <= box.x1 and box.y0 <= label.y0 and label.y1 <= box.y1
    lowest_name = min(t.get_window_extent(renderer).y0 for t in heat.get_xticklabels())
    assert cbar.get_window_extent(renderer).y1 < lowest_name


def test_assignments_are_the_policies_the_holdout_evaluated(simulated):
    exp, res = simulated
    a = res.assignments
    assert len(a) == len(exp.data) and list(a["row_id"]) == list(range(len(exp.data)))
    np.testing.assert_array_equal(a["arm"], exp.data["arm"])
    hold = a[a["split"] == "holdout"]
    labels = np.asarray(res.comparison.arms, dtype=object)
    for name in ("ols", "t_learner"):
        np.testing.assert_array_equal(hold[f"recommended_{name}"],
                                      labels[res.comparison.assignments[name]])
