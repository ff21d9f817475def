"""Uplift / Qini curves, AUUC, uplift at k: agreement with scikit-uplift, known truth."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import auc as trapezoid_area
from sklift import metrics as sk

from manylift._core.errors import DataError, ModelError
from manylift.evaluation import auuc, rank_metric, uplift_at_k, uplift_curve


@pytest.fixture(scope="module")
def hillstrom():
    """Women's e-mail vs no e-mail on the real Hillstrom data (binary visit outcome)."""
    from manylift.data.datasets import load_hillstrom

    df = load_hillstrom()
    df = df[df["segment"] != "Mens E-Mail"].reset_index(drop=True)
    treatment = (df["segment"] == "Womens E-Mail").to_numpy().astype(int)
    outcome = df["visit"].to_numpy()
    # Two priorities: one with heavy ties (integers), one nearly continuous.
    tied = (10 * df["womens"] - df["recency"]).to_numpy()
    continuous = df["history"].to_numpy() * (1 + df["womens"].to_numpy())
    return outcome, treatment, tied, continuous


@pytest.mark.parametrize("which", ["tied", "continuous"])
def test_curves_equal_scikit_uplift(hillstrom, which):
    y, w, tied, continuous = hillstrom
    priority = tied if which == "tied" else continuous
    x, g = uplift_curve(y, w, priority, kind="uplift")
    sx, sg = sk.uplift_curve(y, priority, w)
    np.testing.assert_array_equal(x, sx)
    np.testing.assert_allclose(g, sg, rtol=1e-10, atol=1e-9)
    x, g = uplift_curve(y, w, priority, kind="qini")
    sx, sg = sk.qini_curve(y, priority, w)
    np.testing.assert_array_equal(x, sx)
    np.testing.assert_allclose(g, sg, rtol=1e-10, atol=1e-9)


def test_auuc_is_scikit_uplift_area_in_outcome_units(hillstrom):
    y, w, _, priority = hillstrom
    n = y.size
    for kind, curve, perfect, score in (
        ("uplift", sk.uplift_curve, sk.perfect_uplift_curve, sk.uplift_auc_score),
        ("qini", sk.qini_curve, sk.perfect_qini_curve, sk.qini_auc_score),
    ):
        r = auuc(y, w, priority, kind=kind, n_bootstrap=0)
        x, g = curve(y, priority, w)
        baseline = trapezoid_area([0, x[-1]], [0, g[-1]])
        assert r.estimate * n**2 == pytest.approx(trapezoid_area(x, g) - baseline, rel=1e-9)
        # scikit-uplift's score is the same area over its perfect curve's area.
        px, pg = perfect(y, w)
        normaliser = trapezoid_area(px, pg) - baseline
        assert r.estimate * n**2 / normaliser == pytest.approx(score(y, priority, w), rel=1e-9)


@pytest.mark.parametrize("strategy", ["overall", "by_group"])
@pytest.mark.parametrize("k", [0.1, 0.3, 5000])
def test_uplift_at_k_equals_scikit_uplift(hillstrom, strategy, k):
    y, w, tied, continuous = hillstrom
    for priority in (tied, continuous):
        r = uplift_at_k(y, w, priority, k=k, strategy=strategy)
        assert r.estimate == pytest.approx(
            sk.uplift_at_k(y, priority, w, strategy=strategy, k=k), rel=1e-12
        )


def test_uplift_at_k_standard_error_is_welchs(hillstrom):
    y, w, _, priority = hillstrom
    r = uplift_at_k(y, w, priority, k=0.2)
    top = np.argsort(priority, kind="mergesort")[::-1][: int(0.2 * y.size)]
    t = stats.ttest_ind(y[top][w[top] == 1], y[top][w[top] == 0], equal_var=False)
    assert r.std_err == pytest.approx(r.estimate / t.statistic, rel=1e-10)
    assert r.n_treated + r.n_control == r.n_targeted == int(0.2 * y.size)


def test_constant_propensity_weights_change_nothing(simulate):
    sim = simulate(2000, seed=1, propensity="half")
    x, g = uplift_curve(sim.y, sim.w, sim.tau)
    xw, gw = uplift_curve(sim.y, sim.w, sim.tau, propensity=0.3)
    np.testing.assert_array_equal(x, xw)
    np.testing.assert_allclose(g, gw, rtol=1e-12, atol=1e-12)
    assert uplift_at_k(sim.y, sim.w, sim.tau, propensity=0.3).estimate == pytest.approx(
        uplift_at_k(sim.y, sim.w, sim.tau).estimate, rel=1e-12
    )


def test_propensity_weighting_removes_confounding(simulate):
    """With a propensity that depends on a prognostic covariate, only the weighted
    top-k effect recovers the truth."""
    sim = simulate(40_000, seed=2, effect="constant")
    priority = sim.x[:, 1]  # drives both the propensity and the baseline outcome
    weighted = uplift_at_k(sim.y, sim.w, priority, propensity=sim.e, k=0.3)
    plain = uplift_at_k(sim.y, sim.w, priority, k=0.3)
    assert abs(weighted.estimate - 1.0) < 3 * weighted.std_err
    assert abs(plain.estimate - 1.0) > 5 * plain.std_err


def test_auuc_null_and_real_effect(simulate):
    sim = simulate(4000, seed=3)
    real = auuc(sim.y, sim.w, sim.tau, propensity=sim.e, random_state=0)
    assert real.z > 2.5
    null = simulate(4000, seed=4, effect="null")
    random_priority = np.random.default_rng(5).normal(size=4000)
    r = auuc(null.y, null.w, random_priority, propensity=null.e, random_state=0)
    assert abs(r.estimate) < 3 * r.std_err
    # The uplift-curve AUUC is close to the Qini RATE on IPW scores (same idea, Hajek
    # versus Horvitz-Thompson means).
    const = simulate(20_000, seed=6, propensity="half")
    scores = np.where(const.w == 1, 2 * const.y, -2 * const.y)
    a = auuc(const.y, const.w, const.tau, n_bootstrap=0).estimate
    b = rank_metric(scores, const.tau, kind="qini", n_bootstrap=0).estimate
    assert a == pytest.approx(b, rel=0.15)


def test_result_objects(simulate):
    sim = simulate(500, seed=7)
    r = auuc(sim.y, sim.w, sim.tau, n_bootstrap=20)
    assert repr(r).startswith("AUUCResult(kind='uplift'")
    share, per_unit = r.curve
    assert share[0] == 0 and share[-1] == 1 and per_unit[0] == 0
    assert list(r.curve_frame().columns) == ["n_targeted", "share", "gain", "gain_per_unit"]
    assert r.to_frame().loc[0, "estimate"] == r.estimate
    k = uplift_at_k(sim.y, sim.w, sim.tau)
    assert repr(k).startswith("UpliftAtKResult(k=0.3")
    assert k.to_frame().loc[0, "n_targeted"] == k.n_targeted


def test_bad_inputs_have_clear_messages():
    y, w = np.array([1.0, 0.0, 1.0, 0.0]), np.array([1, 0, 0, 1])
    with pytest.raises(DataError, match=r"hold 1 treated and 0 control"):
        uplift_at_k(y, w, [4, 3, 2, 1], k=1)
    with pytest.raises(ModelError, match="'k' parameter of uplift_at_k must be a share"):
        uplift_at_k(y, w, [4, 3, 2, 1], k=1.5)
    with pytest.raises(ModelError, match="'kind' parameter of auuc"):
        auuc(y, w, [4, 3, 2, 1], kind="autoc")
    with pytest.raises(ModelError, match="'strategy' parameter of uplift_at_k"):
        uplift_at_k(y, w, [4, 3, 2, 1], strategy="top")
