"""``manylift bayes``: Bayesian campaign decisioning per segment (NumPyro NUTS)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from manylift._core.atomic import write_json
from manylift._core.errors import ConvergenceWarning, DataError
from manylift.cli._common import csv_list, read_data_or_dataset

_EPILOG = """\
examples:
  manylift bayes --dataset hillstrom --treatment segment --outcome conversion \\
      --segment history_segment --covariates recency,history,mens,womens,newbie --out bayes/
  manylift bayes test.csv --treatment arm --control holdout --outcome converted \\
      --segment tier --cost 0.05 --margin 40 --out run/

DATA has one row per customer. Every --treatment value other than the control counts as
treated (two e-mail versions become "any e-mail"); the control is 0, or the only label
reading like a control ("No E-Mail", "control"), or --control. Covariates default to every
other numeric column: name them with --covariates when the file also holds post-treatment
columns (Hillstrom's visit and spend are outcomes, not controls). With --cost and --margin,
the tiers use P(uplift > cost/margin) instead of P(uplift > 0).
Writes DIR/results.json and DIR/report.html; see docs/bayes.md for every key.
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
    p.add_argument("data", metavar="DATA", nargs="?", default=None,
                   help="CSV (optionally gzipped) or Parquet, one row per customer")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="use a built-in dataset instead of DATA (hillstrom)")
    p.add_argument("--treatment", required=True, metavar="COL",
                   help="treatment column (0/1 or arm labels)")
    p.add_argument("--outcome", required=True, metavar="COL",
                   help="outcome column (0/1 for --family bernoulli)")
    p.add_argument("--segment", required=True, metavar="COL",
                   help="segment column (effects vary by segment with partial pooling)")
    p.add_argument("--control", default=None, metavar="VALUE",
                   help="control value of the treatment column (default: 0 or the label "
                        "reading like a control)")
    p.add_argument("--covariates", default=None, metavar="A,B,C",
                   help="pre-treatment controls; text columns are one-hot encoded "
                        "(default: every other numeric column); pass 'none' for no controls")
    p.add_argument("--family", choices=["auto", "bernoulli", "gaussian"], default="auto",
                   help="outcome model (default: bernoulli for a 0/1 outcome, else gaussian)")
    p.add_argument("--cost", type=float, default=None, help="cost per treated customer")
    p.add_argument("--margin", type=float, default=None,
                   help="value of one unit of outcome (e.g. of one conversion)")
    p.add_argument("--target-threshold", type=float, default=0.9,
                   help="decision probability to target a segment (default 0.9)")
    p.add_argument("--test-threshold", type=float, default=0.7,
                   help="decision probability to test a segment more (default 0.7)")
    p.add_argument("--chains", type=int, default=4, help="MCMC chains (default 4)")
    p.add_argument("--warmup", type=int, default=1000, help="warm-up draws per chain (default 1000)")
    p.add_argument("--draws", type=int, default=1000, help="kept draws per chain (default 1000)")
    p.add_argument("--target-accept", type=float, default=0.95,
                   help="NUTS target acceptance; raise it (0.99) if there are divergences")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="fit on a random subsample of N rows (seeded) to save time")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run)


def _default_covariates(frame: pd.DataFrame, used: set) -> list[str]:
    return [c for c in frame.columns if c not in used
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def run(args) -> int:
    from manylift.policy.tiers import TierThresholds, bayes_decisioning
    from manylift.report.bayes import bayes_report

    frame = read_data_or_dataset(args.data, args.dataset)
    for col in (args.treatment, args.outcome, args.segment):
        if col not in frame.columns:
            raise DataError(f"Column {col!r} is not in the data; columns: {list(frame.columns)}.")
    rows_in = len(frame)
    if args.sample is not None:
        if args.sample < 2:
            raise DataError(f"--sample must be at least 2 rows; got {args.sample}.")
        if args.sample < len(frame):
            frame = frame.sample(args.sample, random_state=args.seed).reset_index(drop=True)
    if args.covariates is not None and args.covariates.strip().lower() == "none":
        covariates = []
    elif args.covariates is not None:
        covariates = csv_list(args.covariates)
    else:
        covariates = _default_covariates(frame, {args.treatment, args.outcome, args.segment})
        print(f"covariates (default: every other numeric column; make sure they are "
              f"pre-treatment): {', '.join(covariates) or 'none'}", file=sys.stderr)
    family = args.family
    if family == "auto":
        y = pd.to_numeric(frame[args.outcome], errors="coerce")
        family = "bernoulli" if y.dropna().isin([0, 1]).all() and y.notna().all() else "gaussian"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        decision = bayes_decisioning(
            frame, treatment=args.treatment, outcome=args.outcome, segment=args.segment,
            covariates=covariates, control=args.control, family=family, cost=args.cost,
            margin=args.margin,
            thresholds=TierThresholds(target=args.target_threshold, test_more=args.test_threshold),
            num_chains=args.chains, num_warmup=args.warmup, num_samples=args.draws,
            target_accept=args.target_accept, random_state=args.seed,
        )
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out = Path(args.out)
    results = decision.to_results()
    results["data"]["source"] = args.dataset or str(args.data)
    results["data"]["rows_in_file"] = rows_in
    results["data"]["sample"] = args.sample
    write_json(out / "results.json", results)
    bayes_report(decision, out / "report.html", title=args.title)
    print(repr(decision))
    print(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    return 0
