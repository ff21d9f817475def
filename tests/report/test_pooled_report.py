"""The pooled report: escaping, determinism, and a real headless browser."""

import json
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from manylift.data.experiment import ExperimentData
from manylift.pooled.model import PooledModel
from manylift.report.pooled import SECTION_TITLES, pooled_report, targeting_advice
from manylift.simulate.program import simulate_program
from manylift.workflows import PooledModel as RichModel
from manylift.workflows import analyse, print_results

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    data, _ = simulate_program(300, 5, 12, random_state=0)
    frame = data.frame.drop(columns=["propensity"]).copy()
    frame["campaign_id"] = frame["campaign_id"].astype(str).replace("K001", EVIL)
    camps = data.campaigns.copy()
    camps["campaign_id"] = camps["campaign_id"].replace("K001", EVIL)
    camps["goal"] = camps["goal"].replace("wakeup", "<b>wake</b>")
    data = ExperimentData.from_frame(frame, camps, covariates=list(data.covariates),
                                     activity_col=data.activity_col)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = PooledModel(n_chains=2, n_warmup=20, n_draws=20, backend="numpy",
                          progress=False).fit(data)
    out = tmp_path_factory.mktemp("run")
    analyse(fit, out, progress=False, log=lambda *_: None)
    return out


def test_user_strings_are_escaped(run_dir):
    html = (run_dir / "report.html").read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>wake</b>" not in html
    assert "<script" not in html.lower()


def test_rendering_twice_gives_identical_bytes(run_dir, tmp_path):
    again = pooled_report(run_dir, tmp_path / "again.html")
    assert (run_dir / "report.html").read_bytes() == open(again, "rb").read()


def test_every_section_is_present(run_dir):
    html = (run_dir / "report.html").read_text()
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in html


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def test_report_opens_in_a_headless_browser(run_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (CI installs Debian's chromium)")
    url = (run_dir / "report.html").resolve().as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for title in SECTION_TITLES:
        assert title in dom.stdout
    assert "<script" not in dom.stdout.lower()  # the evil campaign name did not become a script
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console
    shot = tmp_path / "shot.png"
    res = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,2400",
                          f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] > 100 and img[..., :3].std() > 0.05  # not a blank page
    assert np.mean(img[..., :3] < 0.5) > 0.005  # some dark text and lines were drawn


def test_pooledfit_report_saves_and_renders(tmp_path):
    data, _ = simulate_program(200, 4, 10, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = RichModel(n_chains=1, n_warmup=10, n_draws=10, backend="numpy",
                        progress=False).fit(data)
        path = fit.report(tmp_path / "r.html")
    html = open(path).read()
    assert (tmp_path / "results.json").exists() and (tmp_path / "posterior.nc").exists()
    assert "Campaign effects" in html and "Where heterogeneity comes from" in html


def test_no_raw_arrays_in_tables_or_the_summary(run_dir, capsys):
    html = (run_dir / "report.html").read_text()
    r = json.loads((run_dir / "results.json").read_text())
    toc = r["validation"]["toc_curve"]["mean"]
    assert len(toc) > 10  # the curve is saved for the figure ...
    array = re.compile(r"(-?\d+(\.\d+)?(e-?\d+)?, ){4,}")  # five numbers in a row
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert cells and not [c for c in cells if array.search(c)]  # ... and never printed
    assert array.search(", ".join(map(str, toc[:6])))  # (the pattern finds a raw array)
    print_results(run_dir)
    out = capsys.readouterr().out
    assert "AUTOC" in out and "[" in out
    assert not array.search(out)


def test_customer_figure_is_a_readable_sample(run_dir):
    html = (run_dir / "report.html").read_text()
    assert "100 random customers" in html and "interval exclude 0" not in html
    assert re.search(r"\d+ of 100 intervals exclude 0", html)


def _no_holdout_run(tmp_path, warnings_list=None):
    # rows_per_customer=1.2: no customer reaches 6 rows, so nothing is held out
    data, _ = simulate_program(300, 5, 12, rows_per_customer=1.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = PooledModel(n_chains=1, n_warmup=20, n_draws=20, backend="numpy",
                          progress=False).fit(data)
    assert not fit.inputs.holdout.any()
    analyse(fit, tmp_path, report=None, progress=False, log=lambda *_: None)
    if warnings_list is not None:  # the sampler's convergence warnings (written by the fit)
        r = json.loads((tmp_path / "results.json").read_text())
        r["sampler"]["warnings"] = warnings_list
        (tmp_path / "results.json").write_text(json.dumps(r))
    return fit


def test_a_run_without_holdout_renders_and_says_what_validation_needs(tmp_path, capsys):
    _no_holdout_run(tmp_path, [])  # (a one-chain fit writes warnings; here: none)
    html = open(pooled_report(tmp_path, tmp_path / "report.html")).read()
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in html
    assert html.count("at least 6 rows") >= 3  # validation, targeting, decomposition
    assert "No targeting advice" in html
    assert 'class="warnings"' not in html  # no sampler warnings: no box
    print_results(tmp_path)
    assert "at least 6 rows" in capsys.readouterr().out


def test_sampler_warnings_are_a_visible_box_at_the_top(tmp_path, capsys):
    _no_holdout_run(tmp_path, ["R-hat of sigma_u is 1.21 (> 1.01): run longer chains.",
                               "<b>escaped</b>"])
    html = open(pooled_report(tmp_path, tmp_path / "report.html")).read()
    box = html.index('class="warnings"')
    assert box < html.index('class="summary"')  # above everything else
    assert "R-hat of sigma_u is 1.21" in html[box:html.index("</div>", box)]
    assert "<b>escaped</b>" not in html and "&lt;b&gt;escaped&lt;/b&gt;" in html
    print_results(tmp_path)
    assert "R-hat of sigma_u is 1.21" in capsys.readouterr().out


def _results(autoc_lo, p_beats, rows_per_customer=28, treated=0.5):
    return {
        "validation": {"autoc": {"mean": autoc_lo + 1, "sd": 0.5, "lo": autoc_lo,
                                 "hi": autoc_lo + 2}, "holdout_rows": 5000},
        "policy": {"cost_aware": False, "rows": 5000,
                   "model": {"p_beats_company": p_beats,
                             "share_targeted": {"mean": 0.5, "sd": 0, "lo": 0.5, "hi": 0.5},
                             "gain_over_company": {"mean": 1.0, "sd": 0.5, "lo": 0.1, "hi": 2.0}},
                   "company": {}},
        "data": {"interventions_per_customer": {str(rows_per_customer): 100},
                 "campaigns_table": {"K1": {"rows": 100, "treated_share": treated}}},
    }


def test_advice_targets_only_when_the_ranking_is_validated_and_beats_the_company():
    yes = targeting_advice(_results(autoc_lo=0.2, p_beats=0.95))
    assert yes.target and yes.headline.startswith("Target") and not yes.missing
    # AUTOC's interval includes 0: no, whatever P(beats) says; say what is missing
    no = targeting_advice(_results(autoc_lo=-0.1, p_beats=0.99, rows_per_customer=4,
                                   treated=0.82))
    assert not no.target and "Do not target" in no.headline
    missing = " ".join(no.missing)
    assert "more rows per customer" in missing and "4.0 interventions" in missing
    assert "more balanced assignment" in missing and "82.0%" in missing
    assert "more data" in missing and "5,000 rows" in missing
    # validated ranking but P(beats company) below 0.9: no, and it says why
    close = targeting_advice(_results(autoc_lo=0.3, p_beats=0.85))
    assert not close.target and "85.0%" in close.headline
    assert "more rows per customer" not in " ".join(close.missing)  # 28 rows: enough
    assert "more balanced" not in " ".join(close.missing)  # treated share 1/2: balanced
    # no holdout: no advice, and what validation needs
    none = targeting_advice({"data": {}})
    assert not none.target and "6 rows" in " ".join(none.evidence)
