"""``manylift analyze``: the single-experiment analysis (positivity, ATE, CATE, policies, design)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from manylift.cli._common import (
    add_single_data_options,
    covariates_arg,
    csv_list,
    describe_covariates,
    read_data_or_dataset,
)

_EPILOG = """\
examples:
  manylift analyze --dataset hillstrom --treatment segment --outcome spend \\
      --cost 0.1 --margin 0.3 --out hillstrom/
  manylift analyze campaign.csv --treatment targeted --outcome spend \\
      --covariates age,tenure,region --randomized --cost 12.73 --margin 0.3 --out run/

DATA has one row per customer. --treatment holds 0/1 or arm labels; the control is
0, or the only label reading like a control ("No E-Mail", "control"), or --control.
Covariates are only the columns named with --covariates (with --dataset, the
dataset's declared pre-treatment columns; 'auto' opts in to every other numeric
column). In a randomized experiment (--randomized, or a dataset that declares it)
every covariate must pass the randomization balance check: a column the treatment
moved (measured after it) is refused with its name; --allow-imbalanced COL keeps it.
Rows repeating another row exactly are refused (--allow-duplicates keeps them).
Writes DIR/results.json, DIR/report.html and DIR/units.parquet (per row: effects of
every learner, intervals, AIPW scores, the decision of every rule). See docs/single.md.
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
    add_single_data_options(p)
    p.add_argument("--treatment", required=True, metavar="COL", help="treatment column (0/1 or labels)")
    p.add_argument("--outcome", required=True, metavar="COL", help="numeric outcome column")
    p.add_argument("--propensity-col", default=None, metavar="COL",
                   help="column with the known P(treated) (binary treatment)")
    p.add_argument("--randomized", action="store_true", default=None,
                   help="randomized experiment: use the arm shares as known propensities and "
                        "require balanced covariates (default for a dataset that declares it)")
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
    p.add_argument("--tree-depth", type=int, default=2,
                   help="depth of the policy trees (default 2)")
    p.add_argument("--n-estimators", type=int, default=200, help="trees per model (default 200)")
    p.add_argument("--n-bootstrap", type=int, default=200, help="bootstrap replicates (default 200)")
    p.add_argument("--power", type=float, default=0.8, help="power of the A/B design (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run)


def _design(analysis, power: float) -> dict:
    """A confirmation test sized for the observed effect and this experiment's MDE.

    (Here rather than in the library: the design layer sits above policy, so
    ``analyze_experiment`` may not call it.)
    """
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
    from manylift.data.io import write_json, write_parquet
    from manylift.policy.analyze import analyze_experiment
    from manylift.report.single import analyze_report

    frame = read_data_or_dataset(args.data, args.dataset)
    out = Path(args.out)
    analysis = analyze_experiment(
        frame, args.treatment, args.outcome, covariates_arg(args.covariates),
        control=args.control, propensity=args.propensity_col, randomized=args.randomized,
        cost=args.cost, margin=args.margin, segment=args.segment,
        learners=csv_list(args.learners), policy_learner=args.policy_learner, top_k=args.top_k,
        risk_aversion=args.risk_aversion, tree_depth=args.tree_depth,
        n_estimators=args.n_estimators, n_bootstrap=args.n_bootstrap,
        allow_imbalanced=csv_list(args.allow_imbalanced) or (),
        allow_duplicates=args.allow_duplicates, id=args.id, random_state=args.seed,
        progress=not args.quiet,
    )
    design = _design(analysis, args.power)
    results = analysis.to_dict()
    results["design"] = {k: v.to_dict() for k, v in design.items()}
    results["data"]["source"] = args.dataset or str(args.data)
    results["data"]["treatment"] = args.treatment
    results["data"]["outcome"] = args.outcome
    written = [out / "results.json", out / "report.html", out / "units.parquet"]
    write_json(written[0], results)
    analyze_report(analysis, design, title=args.title, outcome_name=args.outcome).save(written[1])
    write_parquet(written[2], analysis.units)
    print(describe_covariates(analysis.data), file=sys.stderr)
    print("\n".join(analysis.summary_lines()))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
