"""``manylift report``: render the HTML report of a saved run folder."""

from __future__ import annotations


def _run(args) -> int:
    from manylift.workflows.report import run_report

    return run_report(args.run_dir, args.out)


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
