"""``manylift overlap`` end to end, and the overlap report section it writes."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from manylift.cli.main import main
from manylift.design import OverlapResult, overlap_network
from manylift.report.html import Page
from manylift.report.overlap import (
    OverlapNetworkDisplay,
    add_overlap_section,
    clustering_verdict,
    overlap_report,
)

SCRIPT = "<script>alert(1)</script>"


def _planted_files(tmp_path, rng, n_customers=1500):
    """Two planted audiences (goal 'acquire' vs SCRIPT), 5% of customers cross over."""
    n_campaigns = 12
    names = [SCRIPT if c == 0 else f"K{c:02d}" for c in range(n_campaigns)]
    group = np.repeat([0, 1], n_campaigns // 2)
    rows = []
    for i in range(n_customers):
        g = rng.integers(0, 2)
        for c in rng.choice(np.flatnonzero(group == g), size=3, replace=False):
            rows.append((f"cust{i}", names[c], 1))
            rows.append((f"cust{i}", names[c], 2))  # a second week: counts once
        if rng.random() < 0.05:
            rows.append((f"cust{i}", names[int(rng.choice(np.flatnonzero(group != g)))], 3))
    exposures = pd.DataFrame(rows, columns=["customer_id", "campaign_id", "week"])
    campaigns = pd.DataFrame({
        "campaign_id": names,
        "goal": np.where(group == 0, "acquire", "$5 off & <b>more</b>"),
        "reward": rng.choice(["credit", "promo"], n_campaigns),
        "cost": np.linspace(0.1, 0.5, n_campaigns),
    })
    exp_path, camp_path = tmp_path / "exposures.csv.gz", tmp_path / "campaigns.csv"
    exposures.to_csv(exp_path, index=False)
    campaigns.to_csv(camp_path, index=False)
    return exposures, campaigns, exp_path, camp_path


def test_overlap_command_summary_results_and_report(tmp_path, rng, capsys):
    exposures, campaigns, exp_path, camp_path = _planted_files(tmp_path, rng)
    out = tmp_path / "run"
    rc = main(["overlap", str(exp_path), "--campaigns", str(camp_path), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Campaign overlap network" in text
    assert "campaigns: 12" in text and "customers: 1,500" in text
    assert "goal" in text and "louvain" in text and "walktrap" in text

    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1 and results["command"] == "overlap"
    assert results["data"] == {"rows": len(exposures), "customers": 1500, "campaigns": 12}
    assert set(results["modularity_by_attribute"]) == {"goal", "reward"}  # float cost skipped
    assert results["modularity_by_attribute"]["goal"] > 0.4  # the planted split
    for method in ("louvain", "label_propagation", "infomap", "walktrap"):
        assert results["communities"][method]["n_communities"] == 2
        assert results["agreement"][method]["goal"]["adjusted_rand"] == pytest.approx(1.0)

    html = (out / "report.html").read_text()
    assert "<h2>Overlap network</h2>" in html
    assert "<script>" not in html and "<b>more" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # campaign id in a table, escaped
    assert "&lt;b&gt;more&lt;/b&gt;" in html  # attribute value in the figure legend, escaped
    assert html.count("<svg") == 2


def test_report_renders_saved_results_identically(tmp_path, rng, capsys):
    _, _, exp_path, camp_path = _planted_files(tmp_path, rng, n_customers=400)
    out = tmp_path / "run"
    assert main(["overlap", str(exp_path), "--campaigns", str(camp_path), "--out", str(out),
                 "--seed", "3"]) == 0
    saved = OverlapResult.from_dict(json.loads((out / "results.json").read_text()))
    page = overlap_report(saved, subtitle=f"Exposures: {exp_path}", random_state=3)
    # Rendering from results.json gives the very bytes the command wrote: no recomputation.
    assert page.render() == (out / "report.html").read_text()
    assert page.render() == overlap_report(saved, subtitle=f"Exposures: {exp_path}",
                                           random_state=3).render()


def test_overlap_command_parquet_without_campaign_table(tmp_path, rng, capsys):
    exposures, _, _, _ = _planted_files(tmp_path, rng, n_customers=300)
    path = tmp_path / "exposures.parquet"
    exposures.rename(columns={"customer_id": "user", "campaign_id": "camp"}).to_parquet(path)
    rc = main(["overlap", str(path), "--customer-col", "user", "--campaign-col", "camp",
               "--methods", "louvain,walktrap"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "No campaign attributes given" in text
    assert "louvain" in text and "infomap" not in text


def test_overlap_command_errors_name_the_fix(tmp_path, rng, capsys):
    _, _, exp_path, camp_path = _planted_files(tmp_path, rng, n_customers=100)
    assert main(["overlap", str(exp_path), "--customer-col", "user"]) == 2
    err = capsys.readouterr().err
    assert "no column(s) ['user']" in err and "--customer-col" in err
    assert main(["overlap", str(exp_path), "--attributes", "goal"]) == 2
    assert "--campaigns FILE" in capsys.readouterr().err
    assert main(["overlap", str(exp_path), "--campaigns", str(camp_path),
                 "--attributes", "channel"]) == 2
    assert "['channel'] are not in the campaign table" in capsys.readouterr().err
    assert main(["overlap", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["overlap", "--help"])
    assert exc.value.code == 0
    assert "modularity" in capsys.readouterr().out


def test_overlap_section_and_display_escape_user_strings():
    customers = [1, 1, 2, 2, 3, 3, 4, 4]
    campaigns = ["$x$", SCRIPT, "$x$", "C", SCRIPT, "C", "D", "C"]
    table = pd.DataFrame({"campaign_id": ["$x$", SCRIPT, "C", "D"],
                          "goal": ["<i>a</i>", "$10 \\ off", "<i>a</i>", "b"]})
    r = overlap_network(customers, campaigns, table, random_state=0)
    d = OverlapNetworkDisplay.from_result(r, color_by="goal").plot()
    assert d.ax_.get_legend() is not None
    plt.close(d.figure_)
    page = add_overlap_section(Page("Overlap <test>"), r)
    html = page.render()
    assert "<i>a</i>" not in html and "&lt;i&gt;a&lt;/i&gt;" in html
    assert "<script>" not in html
    with pytest.raises(ValueError, match="color_by must be one of"):
        OverlapNetworkDisplay.from_result(r, color_by="nonexistent")


def test_clustering_verdict_thresholds():
    assert clustering_verdict(0.02) == "no"
    assert clustering_verdict(0.2) == "weak"
    assert clustering_verdict(0.45) == "clear"
    assert clustering_verdict(float("nan")) == "undefined"
