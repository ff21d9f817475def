"""``manylift score``: the arguments of scoring new rows with a fitted run (whom to target
next week); the work is :func:`manylift.workflows.score.run_score`."""

from __future__ import annotations

import argparse

_EPILOG = """\
examples:
  manylift score run/ next_week.parquet --out scored/
  manylift score run/ next_week.csv --cost 0.4 --margin 1.0 --out scored/
  manylift score run/ next_week.parquet --cost unit_cost --draws 200 --out scored/

NEW_ROWS follow the data contract of the fit (customer, campaign, week, the covariates and
the activity column; no outcome; treated and propensity optional). Recency and treatment
stock come from each customer's history stored with the run plus their earlier new rows.
Campaigns and weeks the fit never saw get their posterior-predictive effect; customers it
never saw get uI = 0 with the population variance. See docs/pooled.md ("Scoring new rows").

writes, in DIR:
  scores.parquet  one row per input row: the key columns, row, tau_mean, tau_sd, tau_lo,
                  tau_hi (effect, outcome units, treated minus control, 95% interval),
                  p_positive, p_above_cost, decision (target / do not target)
  scores.json     rows, targeted, share_targeted, the targeted set's expected incremental
                  value with its 95% interval, the rule
"""


def register(sub) -> None:
    p = sub.add_parser(
        "score", help="score new rows with a fitted run: effect, interval, decision",
        description="Score new rows (e.g. next week's campaign) with a run written by "
                    "`manylift fit` or `manylift demo`: the posterior of each row's effect and "
                    "whether to target it.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="the --out folder of `manylift fit`")
    p.add_argument("new_rows", metavar="NEW_ROWS", help="CSV (optionally gzipped) or Parquet")
    p.add_argument("--cost", default=None, metavar="COL|VALUE",
                   help="cost of treating a row in outcome units: a number, or a column of "
                        "NEW_ROWS (default 0)")
    p.add_argument("--margin", type=float, default=1.0,
                   help="value of one outcome unit; target when margin x effect exceeds the "
                        "cost in expectation (default 1)")
    p.add_argument("--draws", type=int, default=None,
                   help="posterior draws to use (default: all the run kept for scoring)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def _cost(text: str | None):
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def run(args) -> int:
    from manylift.workflows.score import run_score

    return run_score(args.run, args.new_rows, args.out, cost=_cost(args.cost),
                     margin=args.margin, n_draws=args.draws, seed=args.seed,
                     progress=not args.quiet)
