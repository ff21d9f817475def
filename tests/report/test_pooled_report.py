"""The pooled report: escaping, determinism, and a real headless browser."""

import shutil
import subprocess
import warnings

import numpy as np
import pytest

from manylift.data.experiment import ExperimentData
from manylift.design.pooled_extras import pooled_extra_results
from manylift.pooled.model import PooledModel
from manylift.report.pooled import SECTION_TITLES, pooled_report
from manylift.simulate.program import simulate_program

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
    fit.save(out, extra=pooled_extra_results(fit))
    pooled_report(out, out / "report.html")
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
    res = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,2400",
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
        fit = PooledModel(n_chains=1, n_warmup=10, n_draws=10, backend="numpy",
                          progress=False).fit(data)
        path = fit.report(tmp_path / "r.html")
    html = open(path).read()
    assert (tmp_path / "results.json").exists() and (tmp_path / "posterior.nc").exists()
    assert "Campaign effects" in html and "Where heterogeneity comes from" in html
