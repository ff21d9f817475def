"""`manylift personalize` end to end."""

import json

import pytest

from manylift.cli.main import main
from manylift.simulate.multiarm import simulate_multiarm

FAST = ["--bootstrap", "20", "--sims", "200", "--trees", "30", "--forest-trees", "20"]


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["personalize", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--treatment", "--outcome", "--control", "--covariates", "--simulate", "--sigma",
                 "--rho", "--arms", "--out"):
        assert flag in text


def test_simulate_writes_results_and_report(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = main(["personalize", "--simulate", "--sigma", "1", "--rho", "0.3", "--s", "0.2", "--arms", "3",
               "--n", "3000", "--methods", "ols,t_learner", *FAST, "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == 1 and res["source"] == "simulated"
    assert set(res["parameters"]["rho"]) >= {"estimate", "lo", "hi"}
    assert res["truth"]["rho"] == 0.3
    assert set(res["methods"]["ols"]) == {"value", "se", "gain", "gain_se"}
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    printed = capsys.readouterr()
    # the gain says what it is in: units, per customer, against what
    gain_line = next(line for line in printed.out.splitlines()
                     if line.startswith("predicted gain from personalization:"))
    assert f"{res['predicted_gain']['estimate']:.4g}" in gain_line
    assert "in outcome units (outcome) per customer, relative to the best uniform arm" in gain_line
    assert "largest lever: a 1%" in printed.out
    # progress: stage lines on standard error
    assert "[personalize" in printed.err and "estimating sigma, rho" in printed.err
    # one recommended arm per method for every row
    import pandas as pd

    units = pd.read_parquet(out / "assignments.parquet")
    assert len(units) == 3000 and list(units["row_id"]) == list(range(3000))
    assert {"split", "arm", "recommended_ols", "recommended_t_learner"} <= set(units.columns)
    assert set(units["recommended_ols"]) <= set(res["data"]["arms"])
    assert (units["split"] == "holdout").sum() == res["data"]["holdout_rows"]


def test_csv_input_with_control_and_covariates(tmp_path):
    d = simulate_multiarm(n=2000, n_arms=3, random_state=1).data
    d["arm"] = d["arm"].map({"control": "holdout", "arm_1": "A", "arm_2": "B"})
    path = tmp_path / "ab.csv"
    d.to_csv(path, index=False)
    rc = main(["personalize", str(path), "--treatment", "arm", "--outcome", "outcome", "--control",
               "holdout", "--covariates", "x1,x2,x3,x4", "--methods", "ols", *FAST,
               "--out", str(tmp_path / "run")])
    assert rc == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["data"]["control"] == "holdout"
    assert res["data"]["covariates"] == ["x1", "x2", "x3", "x4"]
    assert res["best_uniform_arm"] == "B"


def test_errors_exit_2_with_the_fix(tmp_path, capsys):
    d = simulate_multiarm(n=300, random_state=1).data
    path = tmp_path / "ab.csv"
    d.to_csv(path, index=False)
    assert main(["personalize", str(path), "--treatment", "arm", "--out", str(tmp_path / "o")]) == 2
    assert "--outcome COL" in capsys.readouterr().err
    assert main(["personalize", str(path), "--treatment", "nope", "--outcome", "outcome",
                 "--out", str(tmp_path / "o")]) == 2
    assert "treatment column 'nope'" in capsys.readouterr().err
