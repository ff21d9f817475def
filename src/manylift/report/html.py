"""A small, dependency-free builder of self-contained HTML reports.

Every report of manylift (pooled, single-experiment, Bayesian, personalization)
is built with :class:`Page`, so they share one look.  Figures are embedded as
inline SVG (no network needed to open the file); every user string goes
through :func:`html.escape`; rendering is deterministic (same input -> same
bytes), so a saved run renders byte-identically twice.
"""

from __future__ import annotations

import html
import io
import os
from dataclasses import dataclass, field

import pandas as pd

from manylift._core.atomic import write_text

__all__ = ["Page", "esc", "fmt_num", "fmt_interval", "figure_to_svg"]


def esc(text) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape(str(text), quote=True)


def fmt_num(x, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits (NaN/None as an en dash)."""
    if x is None:
        return "–"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if xf != xf:
        return "–"
    if xf == 0:
        return "0"
    # counts and large values in full with thousands separators (119,345 rows, not
    # 1.19e+05); scientific only for the very large and the very small
    if abs(xf) >= 1e12 or abs(xf) < 10 ** (-digits - 1):
        return f"{xf:.{digits - 1}e}"
    return f"{xf:.{digits}g}" if abs(xf) < 10**digits else f"{xf:,.0f}"


def fmt_interval(mean, lo, hi, unit: str = "", digits: int = 3) -> str:
    """``"1.23 (95% CI 0.5 to 2.1) units"``."""
    u = f" {unit}" if unit else ""
    return f"{fmt_num(mean, digits)}{u} (95% interval {fmt_num(lo, digits)} to {fmt_num(hi, digits)})"


def figure_to_svg(fig) -> str:
    """Render a matplotlib figure to an inline SVG string, deterministically."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "manylift", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    svg = buf.getvalue()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
 padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.8em;margin-bottom:.2em} h2{border-bottom:2px solid #e5e5e5;padding-bottom:.2em;margin-top:2em}
.summary{background:#f4f7fb;border-left:4px solid #2f6db5;padding:.8em 1.2em;margin:1em 0}
.summary li{margin:.3em 0} table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right} th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left} figure{margin:1em 0} figcaption{color:#555;font-size:.9em}
.caption{color:#555;font-size:.9em} .note{color:#666;font-size:.85em} nav a{margin-right:.8em}
svg{max-width:100%;height:auto}
pre.rules{background:#f7f7f7;border:1px solid #e5e5e5;padding:.6em 1em;font-size:.9em;overflow-x:auto}
.scroll{max-width:100%;overflow-x:auto}
.warnings{background:#fff4e5;border:1px solid #d9822b;border-left:6px solid #d9822b;padding:.6em 1.2em;
 margin:1em 0} .warnings h2{border:none;margin:.2em 0;color:#8a4b00;font-size:1.2em}
.advice{background:#eef7ee;border-left:4px solid #3a8a3a;padding:.6em 1.2em;margin:1em 0}
.advice.hold{background:#fbf3e6;border-left-color:#d9822b}
"""


@dataclass
class _Section:
    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)


class Page:
    """An HTML report under construction.

    Examples
    --------
    >>> p = Page("Demo <report>")
    >>> s = p.section("Data")
    >>> p.paragraph("Campaign <b>K1</b>")
    >>> "&lt;b&gt;K1&lt;/b&gt;" in p.render()
    True
    """

    def __init__(self, title: str, subtitle: str | None = None):
        self.title = title
        self.subtitle = subtitle
        self._summary: list[str] = []
        self._warnings: list[str] = []
        self._warnings_title = "Warnings"
        self._advice: tuple[str, list[str], bool] | None = None
        self._sections: list[_Section] = []
        self._footer: list[str] = []

    # -- content ---------------------------------------------------------
    def summary(self, bullets: list[str]) -> None:
        """The one-screen plain-words summary that opens the report."""
        self._summary.extend(bullets)

    def warnings(self, items: list[str], title: str = "Warnings") -> None:
        """A visible box at the top of the page, one line per item (nothing when empty)."""
        self._warnings.extend(str(x) for x in items)
        self._warnings_title = title

    def advice(self, headline: str, details: list[str], positive: bool) -> None:
        """A highlighted recommendation under the summary (green when ``positive``)."""
        self._advice = (headline, list(details), bool(positive))

    def section(self, title: str, intro: str | None = None) -> _Section:
        anchor = f"s{len(self._sections) + 1}"
        sec = _Section(title, anchor)
        self._sections.append(sec)
        if intro:
            sec.parts.append(f"<p>{esc(intro)}</p>")
        return sec

    def _current(self) -> _Section:
        if not self._sections:
            self.section("Overview")
        return self._sections[-1]

    def paragraph(self, text: str) -> None:
        self._current().parts.append(f"<p>{esc(text)}</p>")

    def note(self, text: str) -> None:
        self._current().parts.append(f'<p class="note">{esc(text)}</p>')

    def preformatted(self, text: str, caption: str | None = None) -> None:
        """Text whose line breaks and indentation matter (rules, code), in a ``<pre>`` block."""
        cap = f'<p class="caption">{esc(caption)}</p>' if caption else ""
        self._current().parts.append(f'<pre class="rules">{esc(text)}</pre>{cap}')

    def figure(self, fig, caption: str) -> None:
        """Embed a matplotlib figure (its title should state the finding)."""
        svg = figure_to_svg(fig)
        self._current().parts.append(
            f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"
        )

    def table(self, frame: pd.DataFrame, caption: str | None = None, digits: int = 3,
              index: bool = False, max_rows: int = 60, scroll: bool = False) -> None:
        """Add a table; numbers formatted to ``digits`` significant digits, text escaped.

        ``scroll=True`` puts it in a box that scrolls sideways when it is wider than the
        page, instead of running past the page's right edge.
        """
        df = frame.reset_index() if index else frame
        shown = df.head(max_rows)
        head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
        rows = []
        for rec in shown.itertuples(index=False):
            cells = []
            for v in rec:
                is_num = isinstance(v, int | float) and not isinstance(v, bool)
                cells.append(f"<td>{esc(fmt_num(v, digits) if is_num else v)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        more = (f'<p class="note">Showing {max_rows} of {len(df)} rows.</p>'
                if len(df) > max_rows else "")
        cap = f'<p class="caption">{esc(caption)}</p>' if caption else ""
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if scroll:
            table = f'<div class="scroll">{table}</div>'
        self._current().parts.append(f"{table}{cap}{more}")

    def footer(self, text: str) -> None:
        self._footer.append(text)

    # -- output ----------------------------------------------------------
    def render(self) -> str:
        nav = " ".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in self._sections)
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        if self.subtitle:
            out.append(f'<p class="note">{esc(self.subtitle)}</p>')
        if self._warnings:
            items = "".join(f"<li>{esc(w)}</li>" for w in self._warnings)
            out.append(f'<div class="warnings" role="alert"><h2>{esc(self._warnings_title)}'
                       f"</h2><ul>{items}</ul></div>")
        if self._summary:
            items = "".join(f"<li>{esc(b)}</li>" for b in self._summary)
            out.append(f'<div class="summary"><h2 style="border:none;margin-top:0">Summary</h2><ul>{items}</ul></div>')
        if self._advice is not None:
            head, details, positive = self._advice
            items = "".join(f"<li>{esc(d)}</li>" for d in details)
            cls = "advice" if positive else "advice hold"
            out.append(f'<div class="{cls}"><p><strong>{esc(head)}</strong></p>'
                       f"{'<ul>' + items + '</ul>' if items else ''}</div>")
        if nav:
            out.append(f"<nav>{nav}</nav>")
        for s in self._sections:
            out.append(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>')
            out.extend(s.parts)
            out.append("</section>")
        for f in self._footer:
            out.append(f'<p class="note">{esc(f)}</p>')
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def save(self, path: str | os.PathLike) -> str:
        """Write the page atomically; returns the path."""
        write_text(path, self.render())
        return str(path)
