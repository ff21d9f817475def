"""Smoke tests of `manylift simulate` and `manylift validate` at tiny sizes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylift.cli.main import main
from manylift.data.experiment import ExperimentData
from manylift.simulate.program import simulate_program

SIZE = ["--customers", "300", "--campaigns", "5", "--weeks", "12"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", *SIZE, "--seed", "3", "--out", str(out)]) == 0
    return out


def test_simulate_writes_the_three_files_and_results(simulated):
    names = sorted(p.name for p in simulated.iterdir())
    assert names == ["campaigns.csv", "exposures.parquet", "results.json", "truth.json"]
    exp = pd.read_parquet(simulated / "exposures.parquet")
    assert list(exp.columns) == ["customer_id", "campaign_id", "week", "treated", "outcome",
                                 "usage_7d", "usage_8_14d", "usage_15_30d", "usage_30d"]
    camp = pd.read_csv(simulated / "campaigns.csv")
    assert list(camp.columns) == ["campaign_id", "goal", "action", "reward", "cost"]
    res = json.loads((simulated / "results.json").read_text())
    assert res["schema_version"] == 1 and res["command"] == "simulate"
    assert res["data"]["rows"] == len(exp) and res["data"]["campaigns"] == 5
    assert res["files"] == {"exposures": "exposures.parquet", "campaigns": "campaigns.csv",
                            "truth": "truth.json"}


@pytest.mark.filterwarnings("ignore::manylift._core.errors.DataWarning")
def test_simulate_files_equal_the_library_call(simulated):
    data, truth = simulate_program(300, 5, 12, random_state=3)
    exp = pd.read_parquet(simulated / "exposures.parquet")
    np.testing.assert_allclose(exp["outcome"], data.frame["outcome"])
    np.testing.assert_array_equal(exp["treated"], data.frame["treated"])
    saved = json.loads((simulated / "truth.json").read_text())
    expected = json.loads(json.dumps(truth.to_dict()))
    assert saved.pop("schema_version") == 1
    assert saved.keys() == expected.keys()
    assert saved["campaigns"].keys() == expected["campaigns"].keys()
    for k, v in expected["campaigns"].items():
        assert saved["campaigns"][k]["average_effect"] == pytest.approx(v["average_effect"])
    assert saved["params"]["average_effect"] == pytest.approx(truth.params["average_effect"])


def test_simulated_files_pass_validation(simulated, capsys):
    rc = main(["validate", str(simulated / "exposures.parquet"),
               "--campaigns", str(simulated / "campaigns.csv")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "valid." in out and "campaign attributes goal, action, reward" in out
    data = ExperimentData.from_files(simulated / "exposures.parquet",
                                     simulated / "campaigns.csv")
    assert data.n_campaigns == 5


def test_simulate_prints_the_summary(tmp_path, capsys):
    assert main(["simulate", *SIZE, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "share treated per campaign (min)" in out and "True average effect" in out
    assert str(tmp_path / "truth.json") in out


def _bad_files(tmp_path, simulated):
    exp = pd.read_parquet(simulated / "exposures.parquet")
    exp.loc[0, "treated"] = 2
    exp.loc[1, "outcome"] = np.nan
    exp = pd.concat([exp, exp.iloc[[5]]], ignore_index=True)
    bad = tmp_path / "bad.csv"
    exp.to_csv(bad, index=False)
    camp = pd.read_csv(simulated / "campaigns.csv").iloc[1:]
    camp_path = tmp_path / "campaigns.csv"
    camp.to_csv(camp_path, index=False)
    return bad, camp_path


def test_validate_prints_every_problem_and_exits_1(tmp_path, simulated, capsys):
    bad, camp = _bad_files(tmp_path, simulated)
    stamp = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (bad, camp)}
    rc = main(["validate", str(bad), "--campaigns", str(camp), "--out", str(tmp_path / "v")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "4 problem(s) found" in out
    for name in ("NonFiniteError", "TreatmentValueError", "DuplicateRowError",
                 "UnknownCampaignError"):
        assert f"[{name}]" in out
    assert "missing from the campaign table: 'K001'" in out
    res = json.loads((tmp_path / "v" / "results.json").read_text())
    assert res["schema_version"] == 1 and res["valid"] is False
    assert [p["type"] for p in res["problems"]] == [
        "NonFiniteError", "TreatmentValueError", "DuplicateRowError", "UnknownCampaignError"]
    for p, (content, mtime) in stamp.items():  # inputs untouched
        assert p.read_bytes() == content and p.stat().st_mtime_ns == mtime


def test_validate_single_problem_exits_1(tmp_path, capsys):
    df = pd.DataFrame({"customer_id": [1, 2, 3], "campaign_id": "A", "week": 1,
                       "treated": [1, 1, 1], "outcome": [1.0, 2.0, 3.0]})
    path = tmp_path / "x.csv"
    df.to_csv(path, index=False)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 problem(s) found" in out and "[InterventionArmError]" in out
    assert "--drop-incomplete" in out


def test_validate_drop_incomplete_and_column_options(tmp_path, capsys):
    df = pd.DataFrame({"msisdn": [1, 2, 3, 4, 5], "camp": ["A", "A", "B", "B", "C"],
                       "period": [1, 1, 1, 1, 2], "w": [1, 0, 1, 0, 1],
                       "spend": [1.0, 2.0, 3.0, 4.0, 5.0]})
    path = tmp_path / "log.parquet"
    df.to_parquet(path, index=False)
    opts = ["--customer-col", "msisdn", "--campaign-col", "camp", "--week-col", "period",
            "--treatment-col", "w", "--outcome-col", "spend"]
    assert main(["validate", str(path), *opts]) == 1
    capsys.readouterr()
    assert main(["validate", str(path), *opts, "--drop-incomplete",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "note: Dropped 1 intervention(s) (1 rows)" in out and "valid." in out
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["valid"] is True and res["data"]["rows"] == 4 and res["notes"]


def test_validate_missing_column_names_the_option(tmp_path, capsys):
    df = pd.DataFrame({"customer": [1, 2], "campaign_id": "A", "week": 1,
                       "treated": [1, 0], "outcome": [1.0, 2.0]})
    path = tmp_path / "x.csv"
    df.to_csv(path, index=False)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "[MissingColumnError]" in out and "'customer_id' (customer)" in out
    assert "--customer-col" in out
    assert main(["validate", str(path), "--customer-col", "customer"]) == 0


def test_validate_unreadable_file_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # unreadable content (random bytes) is "could not be read" too: status 2, as documented
    for name in ("junk.csv.gz", "junk.parquet"):
        path = tmp_path / name
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        assert main(["validate", str(path)]) == 2
        assert "Could not read" in capsys.readouterr().err


def test_validate_flags_an_extreme_outcome_with_its_row(tmp_path, simulated, capsys):
    exp = pd.read_parquet(simulated / "exposures.parquet")
    exp.loc[7, "outcome"] = 1e308
    path = tmp_path / "extreme.parquet"
    exp.to_parquet(path)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "[ExtremeValueError]" in out and "'outcome'" in out and "row(s) 7" in out


def test_validate_prints_the_balance_table_and_flags_a_post_treatment_column(tmp_path, capsys):
    assert main(["simulate", "--customers", "3000", "--campaigns", "20", "--weeks", "30",
                 "--post-treatment", "--out", str(tmp_path / "sim")]) == 0
    capsys.readouterr()
    exp = str(tmp_path / "sim" / "exposures.parquet")
    assert main(["validate", exp, "--covariates", "auto", "--out", str(tmp_path / "v")]) == 1
    out = capsys.readouterr().out
    assert "Randomization balance" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  usage_")
             or ln.startswith("  spend_")}
    assert "IMBALANCED" in lines["spend_next_30d"] and "balanced" in lines["usage_7d"]
    assert "[ImbalanceError]" in out and "'spend_next_30d'" in out
    res = json.loads((tmp_path / "v" / "results.json").read_text())
    assert res["balance"]["spend_next_30d"]["imbalanced"] is True
    assert res["balance"]["usage_7d"]["imbalanced"] is False
    # named pre-treatment covariates only: valid
    assert main(["validate", exp, "--covariates", "usage_7d,usage_8_14d"]) == 0


@pytest.mark.parametrize("command", ["simulate", "validate"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"manylift {command}" in out


def test_simulate_requires_out_and_customers(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--customers", "10"])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_simulate_bad_size_is_a_clear_error(tmp_path, capsys):
    assert main(["simulate", "--customers", "1", "--out", str(tmp_path)]) == 2
    assert "'n_customers'" in capsys.readouterr().err


def _entry_point():
    script = Path(sys.executable).with_name("manylift")
    return str(script) if script.exists() else shutil.which("manylift")


@pytest.mark.skipif(_entry_point() is None, reason="the manylift script is not installed")
def test_entry_point_in_a_subprocess(tmp_path):
    exe = _entry_point()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([exe, "simulate", *SIZE, "--out", str(tmp_path)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([exe, "validate", str(tmp_path / "exposures.parquet"), "--campaigns",
                        str(tmp_path / "campaigns.csv")], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "valid." in r.stdout
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("manylift ")
