import json

import pytest

from manylift.cli.main import main
from manylift.simulate.single import simulate_experiment


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    sim = simulate_experiment(1500, ate=0.5, random_state=40)
    frame = sim.frame.assign(group=sim.frame["treatment"].map({0: "control", 1: "<b>offer</b>"}),
                             region=["north", "south", "east"] * 500)
    path = tmp_path_factory.mktemp("data") / "exp.csv"
    frame.drop(columns="treatment").to_csv(path, index=False)
    return path


def test_analyze_writes_results_and_report(csv_path, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main([
        "analyze", str(csv_path), "--treatment", "group", "--outcome", "outcome",
        "--covariates", "x0,x1,x2,x3,x4,region", "--randomized", "--cost", "0.5",
        "--margin", "1", "--learners", "t,causal_forest", "--n-estimators", "40",
        "--n-bootstrap", "20", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == 1
    assert res["data"]["control"] == "control"
    arm = "<b>offer</b>"
    assert set(res["ate"][arm]) == {"difference_in_means", "ipw", "aipw", "ols", "dml", "overlap"}
    assert "region=south" in res["data"]["covariates"]
    assert res["policies"]["breakeven"]["share_targeted"] > 0
    assert res["design"]["sample_size_for_observed_effect"]["n_total"] > 0
    html = (out / "report.html").read_text()
    assert "&lt;b&gt;offer&lt;/b&gt;" in html and "<b>offer</b>" not in html
    for title in ("Positivity and balance", "Average treatment effect", "Cost-aware targeting",
                  "A/B test design", "Refutation"):
        assert title in html
    assert "wrote" in capsys.readouterr().out


def test_analyze_errors_are_clear(csv_path, tmp_path, capsys):
    rc = main(["analyze", str(csv_path), "--treatment", "nope", "--outcome", "outcome",
               "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "treatment column 'nope'" in capsys.readouterr().err
    rc = main(["analyze", "--treatment", "group", "--outcome", "outcome", "--out", str(tmp_path)])
    assert rc == 2


def test_help_mentions_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    for opt in ("--treatment", "--outcome", "--covariates", "--cost", "--margin", "--control"):
        assert opt in text
