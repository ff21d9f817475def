"""``manylift bayes``: Bayesian campaign decisioning per segment (NumPyro NUTS)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from manylift._core.errors import ConvergenceWarning
from manylift.cli._common import (
    add_single_data_options,
    covariates_arg,
    csv_list,
    read_data_or_dataset,
)

_EPILOG = """\
examples:
  manylift bayes --dataset hillstrom --treatment segment --outcome conversion \\
      --segment history_segment --covariates recency,history,mens,womens,newbie \\
      --cost 0.1 --margin 40 --out bayes/
  manylift bayes test.csv --treatment arm --control holdout --outcome converted \\
      --segment tier --covariates age_band,plan --cost 0.05 --margin 40 --out run/

DATA has one row per customer. Every --treatment value other than the control counts as
treated (two e-mail versions become "any e-mail"); the control is 0, or the only label
reading like a control ("No E-Mail", "control"), or --control. Covariates are only the
columns named with --covariates (with --dataset, the dataset's declared pre-treatment
columns; 'auto' opts in to every other numeric column; 'none' for no controls); each must
pass the randomization balance check, so an outcome of the same campaign (Hillstrom's
visit) is refused as a covariate. With categorical or 0/1 covariates the model runs on
counts of identical rows (exact, seconds). With --cost and --margin, the tiers use
P(uplift > cost/margin) instead of P(uplift > 0).
Writes DIR/results.json, DIR/report.html and DIR/segments.csv; see docs/bayes.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bayes",
        help="one experiment by segment: Bayesian uplift, P(effect > 0), target/test/deprioritize",
        description=(
            "Fit a pooled and a hierarchical Bayesian model of the treatment effect (logistic "
            "for a 0/1 outcome, Gaussian otherwise) with NumPyro NUTS, check them (prior and "
            "posterior predictive checks, R-hat, ESS, divergences) and decide per segment: "
            "target confidently, promising (test more), or deprioritize."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_single_data_options(p)
    p.add_argument("--treatment", required=True, metavar="COL",
                   help="treatment column (0/1 or arm labels)")
    p.add_argument("--outcome", required=True, metavar="COL",
                   help="outcome column (0/1 for --family bernoulli)")
    p.add_argument("--segment", required=True, metavar="COL",
                   help="segment column (effects vary by segment with partial pooling)")
    p.add_argument("--family", choices=["auto", "bernoulli", "gaussian"], default="auto",
                   help="outcome model (default: bernoulli for a 0/1 outcome, else gaussian)")
    p.add_argument("--cost", type=float, default=None, help="cost per treated customer")
    p.add_argument("--margin", type=float, default=None,
                   help="value of one unit of outcome (e.g. of one conversion)")
    p.add_argument("--target-threshold", type=float, default=0.9,
                   help="decision probability to target a segment (default 0.9)")
    p.add_argument("--test-threshold", type=float, default=0.7,
                   help="decision probability to test a segment more (default 0.7)")
    p.add_argument("--chains", dest="n_chains", type=int, default=4,
                   help="MCMC chains, n_chains (default 4)")
    p.add_argument("--warmup", dest="n_warmup", type=int, default=None,
                   help="warm-up iterations per chain, n_warmup (default: 1000 when the rows "
                        "collapse to at most 5000 cells, else 400)")
    p.add_argument("--draws", dest="n_draws", type=int, default=None,
                   help="kept draws per chain, n_draws (default: 1000 when the rows collapse "
                        "to at most 5000 cells, else 500)")
    p.add_argument("--target-accept", type=float, default=0.95,
                   help="NUTS target acceptance (default 0.95); raise it to 0.99 if there are divergences")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="fit on a random subsample of N rows (seeded) to save time")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from manylift.cli._common import describe_covariates
    from manylift.data.io import write_csv, write_json
    from manylift.policy.tiers import TierThresholds, bayes_decisioning
    from manylift.report.bayes import bayes_report
    from manylift.single.data import SingleData

    frame = read_data_or_dataset(args.data, args.dataset)
    data = SingleData.from_frame(
        frame, args.treatment, args.outcome, covariates_arg(args.covariates),
        control=args.control, segment=args.segment, family=args.family, randomized=True,
        allow_imbalanced=csv_list(args.allow_imbalanced) or (),
        allow_duplicates=args.allow_duplicates, sample=args.sample, random_state=args.seed,
        where="bayes")
    print(describe_covariates(data), file=sys.stderr)
    with warnings.catch_warnings():
        # the sampler's warnings are printed once below, from decision.warnings
        warnings.simplefilter("ignore", ConvergenceWarning)
        decision = bayes_decisioning(
            data, cost=args.cost, margin=args.margin,
            thresholds=TierThresholds(target=args.target_threshold,
                                      test_more=args.test_threshold),
            n_chains=args.n_chains, n_warmup=args.n_warmup, n_draws=args.n_draws,
            target_accept=args.target_accept, sample=args.sample, random_state=args.seed,
            progress=not args.quiet,
        )
    for message in decision.warnings:
        print(f"warning: {message}", file=sys.stderr)
    out = Path(args.out)
    results = decision.to_results()
    results["data"]["source"] = args.dataset or str(args.data)
    written = [out / "results.json", out / "report.html", out / "segments.csv"]
    write_json(written[0], results)
    bayes_report(decision, written[1], title=args.title)
    write_csv(written[2], decision.segments_frame())
    print("\n".join(decision.summary_lines()))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
