"""`manylift demo` (the README's first command) end to end on a small program: it
writes what it says, with the default sampler moves, and recovers the simulated truth."""

import json

import pytest

from manylift.cli.main import main


@pytest.mark.slow
def test_demo_writes_its_outputs_and_recovers_the_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--customers", "800", "--campaigns", "8", "--weeks", "16",
               "--chains", "2", "--warmup", "150", "--draws", "150", "--quiet",
               "--out", str(out)])
    assert rc == 0
    for name in ("exposures.parquet", "campaigns.csv", "truth.json", "results.json",
                 "customers.parquet", "posterior.nc", "report.html"):
        assert (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    truth = json.loads((out / "truth.json").read_text())["params"]
    assert res["sampler"]["expansion"] and res["sampler"]["interweave"]
    for key in ("sigma_u", "sigma"):  # within 4 posterior sds of the simulated value
        est = res["effects"][key]
        assert abs(est["mean"] - truth[key]) < 4 * est["sd"], (key, est, truth[key])
    assert "Recovered vs truth" in capsys.readouterr().out
