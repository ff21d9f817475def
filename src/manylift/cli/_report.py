"""``manylift report``: render the HTML report of a saved run folder."""

from __future__ import annotations

from pathlib import Path


def _run(args) -> int:
    from manylift.report.pooled import pooled_report

    out = args.out or str(Path(args.run_dir) / "report.html")
    path = pooled_report(args.run_dir, out)
    print(f"Report written to {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="render the HTML report of a fitted run",
        description="Render one self-contained HTML file from the results.json, "
                    "customers.parquet and posterior.nc of a `manylift fit` or `manylift demo` "
                    "folder. Nothing is recomputed: rendering twice gives the same bytes.",
    )
    p.add_argument("run_dir", help="the --out folder of manylift fit / demo")
    p.add_argument("--out", default=None, help="output HTML file (default RUN_DIR/report.html)")
    p.set_defaults(func=_run)
