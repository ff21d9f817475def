"""``manylift report``: render the HTML report of a saved run folder (nothing recomputed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_report"]


def run_report(run_dir, out=None, log=print) -> int:
    """Render ``run_dir``'s report to ``out`` (default ``run_dir/report.html``)."""
    from manylift.report.pooled import pooled_report

    path = pooled_report(run_dir, out or str(Path(run_dir) / "report.html"))
    log(f"Report written to {path}")
    return 0
