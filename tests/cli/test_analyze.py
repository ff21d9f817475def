import json
import re

import pandas as pd
import pytest

from manylift.cli.main import main
from manylift.data.datasets import load_hillstrom
from manylift.simulate.single import simulate_experiment

FAST = ["--learners", "t,causal_forest", "--n-estimators", "40", "--n-bootstrap", "20"]


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
    printed = capsys.readouterr()
    assert "wrote" in printed.out
    # progress: a stage line per stage on standard error, results on standard output
    for stage in ("positivity and ATE", "CATE learners", "refutation", "policies"):
        assert stage in printed.err
    assert "[analyze" not in printed.out
    # the policy trees print as indented rules, one condition per line
    rules = printed.out.split("policy_tree (depth 2):")[1].splitlines()
    assert rules[1].startswith("    if ") and rules[1].rstrip().endswith(":")
    assert any(re.match(r"^ {8,}-> ", line) for line in rules[:8])
    assert any(line.startswith("    else:  # ") for line in rules[:8])
    # ... and in the report, in a block that keeps the line breaks
    assert re.search(r'<pre class="rules">if [^<]*\n +-&gt; ', html)
    units = pd.read_parquet(out / "units.parquet")
    assert len(units) == 1500 and {"aipw", "cate", "decision_breakeven"} <= set(units.columns)


def test_tree_depth_option_sets_the_depth_of_the_rules(csv_path, tmp_path, capsys):
    out = tmp_path / "d1"
    rc = main(["analyze", str(csv_path), "--treatment", "group", "--outcome", "outcome",
               "--covariates", "x0,x1,x2,x3,x4", "--randomized", "--cost", "0.5", "--margin", "1",
               "--tree-depth", "1", *FAST, "--quiet", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "[analyze" not in printed.err and "CATE learners" not in printed.err  # --quiet
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["tree_depth"] == 1
    for text in res["policy"]["tree_rules"].values():
        lines = text.splitlines()
        # one split: "if", a leaf, "else", a leaf, and nothing deeper
        assert len(lines) == 4 and lines[0].startswith("if ") and lines[2].startswith("else:")
        assert all(not line.startswith("        ") for line in lines)


def test_analyze_errors_are_clear(csv_path, tmp_path, capsys):
    rc = main(["analyze", str(csv_path), "--treatment", "nope", "--outcome", "outcome",
               "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "treatment column 'nope'" in capsys.readouterr().err
    rc = main(["analyze", "--treatment", "group", "--outcome", "outcome", "--out", str(tmp_path)])
    assert rc == 2
    # no covariates named: the fix, not a guess (post-treatment columns must never slip in)
    rc = main(["analyze", str(csv_path), "--treatment", "group", "--outcome", "outcome",
               "--out", str(tmp_path / "y")])
    assert rc == 2
    assert "needs covariates" in capsys.readouterr().err


def test_duplicate_rows_are_refused_unless_allowed(tmp_path, capsys):
    sim = simulate_experiment(945, ate=0.5, random_state=41)
    frame = pd.concat([sim.frame, sim.frame.iloc[[17]]], ignore_index=True)  # n = 946
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False)
    args = ["analyze", str(path), "--treatment", "treatment", "--outcome", "outcome",
            "--covariates", "x0,x1,x2,x3,x4", "--randomized", *FAST, "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "1 row(s) repeat an earlier row exactly" in err and "row 945 repeats row 17" in err
    assert "--allow-duplicates" in err
    assert not (tmp_path / "a" / "results.json").exists()
    assert main(args + ["--allow-duplicates", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["data"]["rows"] == 946


def test_messages_give_plain_values(tmp_path, capsys):
    sim = simulate_experiment(200, random_state=42)
    base = ["--treatment", "treatment", "--outcome", "outcome", "--covariates", "x0,x1",
            "--out", str(tmp_path / "o")]
    two = sim.frame.copy()
    two.loc[5, "treatment"] = 2
    two.to_csv(tmp_path / "two.csv", index=False)
    assert main(["analyze", str(tmp_path / "two.csv"), *base]) == 2
    err = capsys.readouterr().err
    assert "2 has 1 row" in err and "np.int64" not in err
    abc = sim.frame.astype({"outcome": object})
    abc.loc[7, "outcome"] = "abc"
    abc.to_csv(tmp_path / "abc.csv", index=False)
    assert main(["analyze", str(tmp_path / "abc.csv"), *base]) == 2
    assert "'abc' in row(s) 7" in capsys.readouterr().err


def test_a_validation_step_that_cannot_be_computed_is_skipped_not_fatal(tmp_path, capsys):
    # 360 Hillstrom customers, conversion (about 1%): some learners find no heterogeneity at all,
    # a constant estimate, for which the BLP slope is not identified
    sub = load_hillstrom().sample(360, random_state=1).reset_index(drop=True)
    path = tmp_path / "small.csv"
    sub.to_csv(path, index=False)
    out = tmp_path / "run"
    rc = main(["analyze", str(path), "--treatment", "segment", "--outcome", "conversion",
               "--covariates", "recency,history,mens,womens,newbie", "--randomized",
               "--n-estimators", "50", "--n-bootstrap", "20", "--quiet", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    skipped = res["validation"]["skipped"]
    assert skipped and all(s["step"].startswith("blp of") for s in skipped)
    assert "not identified" in skipped[0]["reason"] and "Pass a priority" not in skipped[0]["reason"]
    learner = skipped[0]["step"].split()[2]
    arm = res["cate"][learner]["arm"]
    entry = res["cate"][learner]["arms"][arm] if "arms" in res["cate"][learner] else \
        res["cate"][learner]
    assert any(v["blp_slope"].get("skipped") for v in
               (res["cate"][learner].get("arms") or {arm: entry}).values())
    assert "Skipped steps" in (out / "report.html").read_text()
    assert "skipped: blp of" in capsys.readouterr().out


@pytest.mark.slow
def test_units_parquet_of_hillstrom_has_one_row_per_input_row_and_its_aipw_averages_to_the_ate(
        tmp_path):
    out = tmp_path / "hill"
    rc = main(["analyze", "--dataset", "hillstrom", "--treatment", "segment", "--outcome", "spend",
               "--learners", "t,linear_dml", "--policy-learner", "linear_dml",
               "--n-estimators", "30", "--n-bootstrap", "20", "--cost", "0.1", "--margin", "0.3",
               "--quiet", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    units = pd.read_parquet(out / "units.parquet")
    raw = load_hillstrom()
    assert len(units) == len(raw) == 64000
    assert list(units["row_id"]) == list(range(64000))
    assert (units["arm"].to_numpy() == raw["segment"].to_numpy()).all()
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        col = units[f"aipw_{arm}"]
        # defined on the rows of this arm and the control (the pair the ATE compares)
        in_pair = raw["segment"].isin([arm, "No E-Mail"]).to_numpy()
        assert col.notna().to_numpy().tolist() == in_pair.tolist()
        assert col.mean() == pytest.approx(res["ate"][arm]["aipw"]["estimate"], rel=1e-9)
        # the learners' effects and the selected one's interval are there for every row
        assert units[f"cate_{arm}"].notna().all()
        lo, hi = units[f"cate_lo_{arm}"], units[f"cate_hi_{arm}"]
        assert (lo <= units[f"cate_{arm}"]).all() and (units[f"cate_{arm}"] <= hi).all()
    for rule in res["policies"]:
        assert set(units[f"decision_{rule}"]) <= set(res["data"]["arms"])
    # the breakeven decision on the evaluation rows is the one the report's profit is about
    ev = units[units["split"] == "evaluation"]
    share = (ev["decision_breakeven"] != "No E-Mail").mean()
    assert share == pytest.approx(res["policies"]["breakeven"]["share_targeted"], abs=1e-12)



def test_help_mentions_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    for opt in ("--treatment", "--outcome", "--covariates", "--cost", "--margin", "--control"):
        assert opt in text
