import matplotlib.pyplot as plt
import pandas as pd

from manylift.report.html import Page, fmt_interval


def _page():
    p = Page("Report for <script>alert(1)</script>")
    p.summary(["Effect of campaign <b>X</b>"])
    p.section("Campaigns & weeks")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("<i>finding</i>")
    p.figure(fig, caption="caption <x>")
    p.table(pd.DataFrame({"campaign": ["<script>alert(2)</script>"], "effect": [1.23456]}))
    return p


def test_user_strings_are_escaped_everywhere():
    html = _page().render()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "1.23" in html and "<svg" in html


def test_rendering_is_deterministic():
    assert _page().render() == _page().render()


def test_fmt_interval():
    assert fmt_interval(1.0, 0.5, 2.0, "USD") == "1 USD (95% interval 0.5 to 2)"
