"""`manylift bayes` end to end on a Hillstrom subsample written to a CSV file."""

import json

import numpy as np
import pandas as pd
import pytest

from manylift.cli.main import main
from manylift.data.datasets import load_hillstrom


@pytest.fixture(scope="module")
def hillstrom_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bayes")
    df = load_hillstrom().sample(8000, random_state=7).reset_index(drop=True)
    # a segment label with HTML in it: the report must escape it
    df["history_segment"] = df["history_segment"].replace("7) $1,000 +", "7) <b>$1,000 +</b>")
    path = tmp / "hillstrom_sub.csv"
    df.to_csv(path, index=False)
    out = tmp / "run"
    rc = main(["bayes", str(path), "--treatment", "segment", "--outcome", "conversion",
               "--segment", "history_segment", "--covariates", "recency,history,mens,womens,newbie",
               "--warmup", "400", "--draws", "400", "--cost", "0.1", "--margin", "40",
               "--seed", "3", "--allow-duplicates", "--out", str(out)])
    return rc, path, out


@pytest.mark.slow
def test_bayes_cli_results_follow_design_and_raw_file(hillstrom_run):
    rc, path, out = hillstrom_run
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == 1
    for k in ("uplift_mean", "uplift_lo", "uplift_hi", "p_positive"):
        assert isinstance(res["pooled"][k], float)
    for k in ("rhat_max", "ess_bulk_min", "divergences"):
        assert k in res["diagnostics"]
    # the raw file, read back: difference in means (any e-mail minus none) and its 95% CI
    raw = pd.read_csv(path)
    w = raw["segment"] != "No E-Mail"
    y1, y0 = raw.loc[w, "conversion"], raw.loc[~w, "conversion"]
    est = y1.mean() - y0.mean()
    se = np.sqrt(y1.var() / len(y1) + y0.var() / len(y0))
    assert est - 1.96 * se <= res["pooled"]["uplift_mean"] <= est + 1.96 * se
    assert res["diagnostics"]["rhat_max"] < 1.01
    # segments: counts and raw lift from the raw file; actions follow the thresholds
    segs = res["segments"]
    assert set(segs) == set(raw["history_segment"])
    th = res["decision"]
    assert th["basis"] == "p_breakeven" and th["breakeven"] == pytest.approx(0.1 / 40)
    for name, g in raw.groupby("history_segment"):
        s = segs[name]
        gw = g["segment"] != "No E-Mail"
        assert s["n"] == len(g)
        assert s["raw_lift"] == pytest.approx(g.loc[gw, "conversion"].mean()
                                              - g.loc[~gw, "conversion"].mean())
        for k in ("uplift_mean", "uplift_lo", "uplift_hi", "p_positive", "action"):
            assert k in s
        p = s["p_breakeven"]
        expected = ("target" if p >= th["target_threshold"]
                    else "test_more" if p >= th["test_more_threshold"] else "deprioritize")
        assert s["action"] == expected
        assert s["uplift_lo"] <= s["uplift_mean"] <= s["uplift_hi"]


@pytest.mark.slow
def test_bayes_cli_report_is_escaped_and_complete(hillstrom_run):
    _, _, out = hillstrom_run
    html = (out / "report.html").read_text()
    assert "<b>$1,000" not in html
    assert "&lt;b&gt;$1,000" in html
    for heading in ("Decision table", "Model checks", "Sampler diagnostics"):
        assert heading in html
    assert html.count("<svg") >= 5


def test_bayes_cli_input_errors(tmp_path, capsys):
    df = pd.DataFrame({"arm": ["a", "b", "c", "a"], "y": [0, 1, 0, 1], "seg": list("xxyy")})
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    base = ["bayes", "--treatment", "arm", "--outcome", "y", "--segment", "seg",
            "--out", str(tmp_path / "o")]
    assert main(base + [str(path), "--dataset", "hillstrom"]) == 2
    assert "either DATA" in capsys.readouterr().err
    assert main(base + [str(path)]) == 2
    assert "Name it with --control VALUE" in capsys.readouterr().err
    assert main(["bayes", str(path), "--treatment", "arm", "--outcome", "nope", "--segment",
                 "seg", "--out", str(tmp_path / "o")]) == 2
    assert "'nope' is not in the data" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_bayes_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bayes", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--treatment", "--outcome", "--segment", "--control", "--covariates", "--cost",
                "--margin", "--seed", "--out", "--target-threshold"):
        assert opt in text
