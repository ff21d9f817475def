"""Figures and HTML reports: they render results and never recompute them."""

from manylift.report.html import Page, esc, figure_to_svg, fmt_interval, fmt_num

__all__ = ["Page", "esc", "fmt_interval", "fmt_num", "figure_to_svg"]
