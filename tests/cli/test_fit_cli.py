"""`manylift fit` end to end on a small simulated program: covariates are never guessed,
post-treatment columns are refused, resume says what it does, Ctrl-C after sampling keeps the
draws."""

import json

import pytest

from manylift.cli.main import main
from manylift.data.io import write_csv, write_parquet
from manylift.simulate.program import ProgramSpec, simulate_program


def _write(d, n_customers, n_campaigns, n_weeks):
    data, truth = simulate_program(n_customers, n_campaigns, n_weeks,
                                   spec=ProgramSpec(post_treatment=True), random_state=2)
    frame = data.frame.drop(columns=["propensity"])
    frame["campaign_id"] = frame["campaign_id"].astype(str)
    write_parquet(d / "exposures.parquet", frame)
    write_csv(d / "campaigns.csv", data.campaigns.assign(
        campaign_id=data.campaigns["campaign_id"].astype(str)))
    return d


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("prog"), 400, 5, 14)


@pytest.fixture(scope="module")
def larger(tmp_path_factory):
    """Large enough (27,000 rows) that the balance check sees what spend_next_30d is."""
    return _write(tmp_path_factory.mktemp("larger"), 3000, 20, 30)


def _fit(program, out, *extra):
    return main(["fit", str(program / "exposures.parquet"), "--campaigns",
                 str(program / "campaigns.csv"), "--chains", "2", "--warmup", "30", "--draws",
                 "30", "--quiet", "--out", str(out), *extra])


def test_fit_uses_only_named_covariates_and_says_so(program, tmp_path, capsys):
    assert _fit(program, tmp_path / "run", "--covariates", "usage_7d,usage_8_14d") == 0
    out = capsys.readouterr().out
    assert "covariates: usage_7d, usage_8_14d (named)" in out
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert r["data"]["covariates"] == ["usage_7d", "usage_8_14d"]
    assert r["model"]["random_intercept"] is True
    assert r["model"]["random_coefficients"] == ["u0", "uI", "u[usage_7d]", "u[usage_8_14d]"]
    # 2 chains x 30 draws cannot reach ESS 400: the warning is there, with what to do
    assert any("effective sample size below 400" in w and "--draws" in w
               for w in r["sampler"]["warnings"])
    assert "warning: Bulk effective sample size below 400" in out
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_no_covariates_by_default_and_auto_refuses_the_post_treatment_column(program, larger,
                                                                              tmp_path, capsys):
    assert _fit(program, tmp_path / "a", "--no-random-intercept") == 0
    out = capsys.readouterr().out
    assert "covariates: none (none named" in out
    r = json.loads((tmp_path / "a" / "results.json").read_text())
    assert r["data"]["covariates"] == [] and r["model"]["random_coefficients"] == ["uI"]
    # --covariates auto picks up spend_next_30d, which the treatment moved: refused, named
    assert _fit(larger, tmp_path / "b", "--covariates", "auto") == 2
    err = capsys.readouterr().err
    assert "'spend_next_30d': SMD" in err and "biases every effect" in err
    assert "--allow-imbalanced" in err
    assert not (tmp_path / "b" / "results.json").exists()


def test_resume_without_a_checkpoint_starts_fresh_and_says_so(program, tmp_path, capsys):
    assert _fit(program, tmp_path / "run", "--resume") == 0
    assert "no checkpoint at" in capsys.readouterr().out


def test_ctrl_c_after_sampling_exits_130_and_resume_finishes_from_the_draws(
        program, tmp_path, capsys, monkeypatch):
    from manylift.pooled.fit import PooledFit

    original = PooledFit.save

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(PooledFit, "save", interrupted)
    out = tmp_path / "run"
    assert _fit(program, out) == 130
    err = capsys.readouterr().err
    assert "interrupted after sampling" in err and "checkpoint.npz" in err and "--resume" in err
    assert (out / "checkpoint.npz").exists() and not (out / "results.json").exists()
    monkeypatch.setattr(PooledFit, "save", original)
    assert _fit(program, out, "--resume") == 0
    assert "continuing from" in capsys.readouterr().out
    assert (out / "results.json").exists() and not (out / "checkpoint.npz").exists()
    # the resumed run reuses the draws: the same posterior as a fresh run with the same seed
    assert _fit(program, tmp_path / "fresh") == 0
    a = json.loads((out / "results.json").read_text())["effects"]["sigma_u"]
    b = json.loads((tmp_path / "fresh" / "results.json").read_text())["effects"]["sigma_u"]
    assert a == b


def test_score_writes_one_row_per_input_row_and_the_summary(program, tmp_path, capsys):
    """`manylift score RUN NEW_ROWS`: next week's rows (no outcome, no treatment) of the
    fitted program, scored from the run folder."""
    import pandas as pd

    assert _fit(program, tmp_path / "run", "--covariates", "usage_7d") == 0
    exp = pd.read_parquet(program / "exposures.parquet")
    last = exp[exp["week"] == exp["week"].max()]
    new = last.drop(columns=["outcome", "treated"]).assign(week=exp["week"].max() + 1)
    new.to_csv(tmp_path / "next.csv", index=False)
    capsys.readouterr()
    assert main(["score", str(tmp_path / "run"), str(tmp_path / "next.csv"), "--cost", "0.2",
                 "--quiet", "--out", str(tmp_path / "scored")]) == 0
    out = capsys.readouterr().out
    assert "Target" in out and "expected incremental value" in out
    s = pd.read_parquet(tmp_path / "scored" / "scores.parquet")
    assert len(s) == len(new)
    assert list(s.columns) == ["customer_id", "campaign_id", "week", "row", "tau_mean",
                               "tau_sd", "tau_lo", "tau_hi", "p_positive", "p_above_cost",
                               "decision"]
    assert ((s["tau_lo"] <= s["tau_mean"]) & (s["tau_mean"] <= s["tau_hi"])).all()
    r = json.loads((tmp_path / "scored" / "scores.json").read_text())
    assert r["rows"] == len(new) and r["targeted"] == int((s["decision"] == "target").sum())
    # a run folder without model.json: a clear error, exit 2
    (tmp_path / "run" / "model.json").unlink()
    assert main(["score", str(tmp_path / "run"), str(tmp_path / "next.csv"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "model.json' is missing" in capsys.readouterr().err


def test_a_program_without_customers_of_six_rows_fits_and_says_why_there_is_no_validation(
        tmp_path, capsys):
    """No customer has 6 rows, so nothing is held out: the fit, results and report are
    written, and the terminal says what validation needs (it used to crash in the report)."""
    data, _ = simulate_program(300, 5, 12, rows_per_customer=1.2, random_state=0)
    frame = data.frame.drop(columns=["propensity"])
    frame["campaign_id"] = frame["campaign_id"].astype(str)
    assert frame.groupby("customer_id").size().max() < 6
    write_parquet(tmp_path / "e.parquet", frame)
    assert main(["fit", str(tmp_path / "e.parquet"), "--chains", "2", "--warmup", "20",
                 "--draws", "20", "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "at least 6 rows" in out
    assert (tmp_path / "run" / "report.html").exists()
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert r["data"]["holdout_rows"] == 0
