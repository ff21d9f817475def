"""``manylift analyze``: the single-experiment analysis (positivity, ATE, CATE, policies, design)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from manylift._core.atomic import write_json
from manylift.cli._common import csv_list, read_data_or_dataset

_EPILOG = """\
examples:
  manylift analyze --dataset hillstrom --treatment segment --outcome spend \\
      --covariates recency,history,mens,womens,newbie,zip_code,channel --randomized \\
      --cost 0.1 --margin 0.3 --out hillstrom/
  manylift analyze campaign.csv --treatment targeted --outcome spend --cost 12.73 --margin 0.3 --out run/

DATA has one row per customer. --treatment holds 0/1 or arm labels; the control is
0, or the only label reading like a control ("No E-Mail", "control"), or --control.
Covariates default to every other numeric column: name them with --covariates when
the file also holds post-treatment columns. Writes DIR/results.json and
DIR/report.html. See docs/single.md for every key.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="one experiment: positivity, ATE, CATE learners, cost-aware policies, A/B design",
        description=(
            "Analyse one experiment (or observational targeting data): propensity model, "
            "overlap and balance; the ATE by difference in means, IPW, AIPW, OLS, DML and "
            "overlap weighting; CATE learners validated on a held-out split (BLP, AUTOC, Qini, "
            "refutation); with --cost and --margin, targeting rules evaluated out of sample by "
            "profit and ROI; and the size of a confirmation A/B test."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", metavar="DATA", nargs="?", default=None,
                   help="CSV (optionally gzipped) or Parquet, one row per customer")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="use a built-in dataset instead of DATA (hillstrom)")
    p.add_argument("--treatment", required=True, metavar="COL", help="treatment column (0/1 or labels)")
    p.add_argument("--outcome", required=True, metavar="COL", help="numeric outcome column")
    p.add_argument("--control", default=None, metavar="VALUE",
                   help="control value of the treatment column (default: 0 or the label reading "
                        "like a control)")
    p.add_argument("--covariates", default=None, metavar="A,B,C",
                   help="pre-treatment covariates; text columns are one-hot encoded "
                        "(default: every other numeric column)")
    p.add_argument("--propensity-col", default=None, metavar="COL",
                   help="column with the known P(treated) (binary treatment)")
    p.add_argument("--randomized", action="store_true",
                   help="randomized experiment: use the arm shares as known propensities")
    p.add_argument("--cost", type=float, default=None, help="cost per treated customer")
    p.add_argument("--margin", type=float, default=None,
                   help="profit per unit of outcome (e.g. 0.3 for a 30%% margin on spend)")
    p.add_argument("--segment", default=None, metavar="COL",
                   help="column to summarise effects by (default: quintiles of the estimated effect)")
    p.add_argument("--learners", default="s,t,x,dr,linear_dml,causal_forest", metavar="A,B",
                   help="CATE learners (s,t,x,dr,linear_dml,nonparam_dml,causal_forest)")
    p.add_argument("--policy-learner", default="causal_forest",
                   help="learner whose effects drive the policies (default: causal_forest)")
    p.add_argument("--top-k", type=float, default=0.2, help="budget share of the top-k rule (default 0.2)")
    p.add_argument("--risk-aversion", type=float, default=0.3,
                   help="lambda of the risk-adjusted rule (default 0.3)")
    p.add_argument("--n-estimators", type=int, default=200, help="trees per model (default 200)")
    p.add_argument("--n-bootstrap", type=int, default=200, help="bootstrap replicates (default 200)")
    p.add_argument("--power", type=float, default=0.8, help="power of the A/B design (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run)


def _design(analysis, power: float) -> dict:
    """A confirmation test sized for the observed effect and this experiment's MDE."""
    from manylift.design.power import mde_mean, sample_size_mean

    main = analysis.main_arm
    data = analysis.data
    j = analysis.arms.index(main) if main in analysis.arms else 1
    rows = (data.treatment == 0) | (data.treatment == j)
    y = data.outcome[rows]
    sd = float(np.std(y, ddof=1))
    out = {}
    if sd > 0:
        out["mde_at_this_size"] = mde_mean(int(rows.sum()), sd, power=power)
        effect = abs(analysis.ate[main]["aipw"]["estimate"])
        if effect > 0:
            out["sample_size_for_observed_effect"] = sample_size_mean(effect, sd, power=power)
        if analysis.cost is not None and analysis.cost > 0:
            out["sample_size_for_breakeven_effect"] = sample_size_mean(
                analysis.cost / analysis.margin, sd, power=power)
    return out


def run(args) -> int:
    from manylift.policy.analyze import analyze_experiment
    from manylift.report.single import analyze_report

    frame = read_data_or_dataset(args.data, args.dataset)
    out = Path(args.out)
    analysis = analyze_experiment(
        frame, args.treatment, args.outcome, csv_list(args.covariates), control=args.control,
        propensity=args.propensity_col, randomized=args.randomized, cost=args.cost,
        margin=args.margin, segment=args.segment, learners=csv_list(args.learners),
        policy_learner=args.policy_learner, top_k=args.top_k, risk_aversion=args.risk_aversion,
        n_estimators=args.n_estimators, n_bootstrap=args.n_bootstrap, random_state=args.seed,
    )
    design = _design(analysis, args.power)
    results = analysis.to_dict()
    results["design"] = {k: v.to_dict() for k, v in design.items()}
    results["data"]["source"] = args.dataset or str(args.data)
    results["data"]["treatment"] = args.treatment
    results["data"]["outcome"] = args.outcome
    write_json(out / "results.json", results)
    page = analyze_report(analysis, design, title=args.title, outcome_name=args.outcome)
    page.save(out / "report.html")
    print(repr(analysis))
    print(f"wrote {out / 'results.json'} and {out / 'report.html'}", file=sys.stdout)
    return 0
