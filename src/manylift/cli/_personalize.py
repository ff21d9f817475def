"""``manylift personalize``: will personalization beat the best uniform arm?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manylift._core.errors import DataError
from manylift.cli._common import (
    add_single_data_options,
    covariates_arg,
    csv_list,
    read_data_or_dataset,
)

_EPILOG = """\
examples:
  manylift personalize ab_test.csv --treatment arm --outcome revenue --covariates age,tenure,region --out run/
  manylift personalize --dataset hillstrom --treatment segment --outcome visit --out hill/
  manylift personalize --simulate --sigma 1 --rho 0.3 --s 0.2 --arms 4 --out sim/

The experiment must be randomized with two or more arms. The command estimates
the parameters of the gain model of Shchetkina and Berman (within-arm
heterogeneity sigma, cross-arm correlation rho, spread of arm means s,
prediction error sigma_eps), predicts the gain of personalization over the
best uniform arm, and checks it against five personalization methods (OLS,
S- and T-learner boosting, a multi-arm causal forest, a depth-2 policy tree)
trained on 70% of the rows and evaluated by IPW on the other 30%. Gains are in
outcome units per customer, relative to giving everyone the best uniform arm.
Covariates are the named ones (with --dataset: its declared pre-treatment
columns); every covariate must pass the randomization balance check.
It writes DIR/results.json, DIR/report.html and DIR/assignments.parquet (the
arm each method recommends for every row). See docs/personalize.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "personalize",
        help="will personalization beat the best uniform arm? (gain model + 5 methods)",
        description=(
            "Estimate sigma, rho, s and sigma_eps from a randomized multi-arm experiment, "
            "predict the gain from personalization over the best uniform arm (Monte Carlo of "
            "Algorithm 2 with bootstrap intervals), compare with the IPW gain of five "
            "personalization methods on a holdout, and show how the gain responds to each "
            "parameter."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_single_data_options(p)
    p.add_argument("--treatment", default=None, metavar="COL",
                   help="column of arm labels (0/1 or names; two or more arms)")
    p.add_argument("--outcome", default=None, metavar="COL", help="numeric outcome column")
    p.add_argument("--methods", default="ols,s_learner,t_learner,causal_forest,policy_tree",
                   metavar="M,N", help="personalization methods to evaluate (default: all five)")
    p.add_argument("--test-size", type=float, default=0.3,
                   help="holdout share within each arm (default: 0.3)")
    p.add_argument("--n-bootstrap", "--bootstrap", dest="n_bootstrap", type=int, default=200,
                   help="bootstrap replicates for intervals and SEs (default: 200)")
    p.add_argument("--n-sims", "--sims", dest="n_sims", type=int, default=2000,
                   help="Monte Carlo replicates of the predicted gain (default: 2000)")
    p.add_argument("--n-estimators", "--trees", dest="n_estimators", type=int, default=200,
                   help="boosting rounds of the LightGBM outcome models (default: 200)")
    p.add_argument("--forest-trees", type=int, default=200,
                   help="trees of the causal forest (default: 200)")
    p.add_argument("--unit", default="", help="unit of the outcome for the report (e.g. '$')")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sim = p.add_argument_group("simulation (--simulate: analyse a simulated experiment with known truth)")
    sim.add_argument("--simulate", action="store_true",
                     help="simulate a multi-arm experiment instead of reading DATA")
    sim.add_argument("--sigma", type=float, default=1.0, help="within-arm heterogeneity (default: 1)")
    sim.add_argument("--rho", type=float, default=0.5, help="cross-arm correlation (default: 0.5)")
    sim.add_argument("--s", type=float, default=0.3, help="sd of the arm means (default: 0.3)")
    sim.add_argument("--sigma-eps", type=float, default=1.0,
                     help="sd of the outcome noise no covariate explains (default: 1)")
    sim.add_argument("--arms", type=int, default=3, help="number of arms (default: 3)")
    sim.add_argument("--n", type=int, default=10_000, help="units (default: 10000)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for results.json, report.html and assignments.parquet")
    p.set_defaults(func=run)


def _load(args):
    """(frame, treatment, outcome, covariates, truth) from the arguments."""
    if args.simulate:
        from manylift.simulate.multiarm import simulate_multiarm

        if args.data or args.dataset:
            raise DataError("--simulate makes its own data; drop DATA / --dataset.")
        exp = simulate_multiarm(n=args.n, n_arms=args.arms, sigma=args.sigma, rho=args.rho, s=args.s,
                                sigma_eps=args.sigma_eps, random_state=args.seed)
        cov = [c for c in exp.data.columns if c.startswith("x")]
        return exp.data, "arm", "outcome", cov, "control", exp.truth
    frame = read_data_or_dataset(
        args.data, args.dataset,
        "Give exactly one of DATA (a CSV or Parquet file), --dataset NAME or --simulate.")
    if args.treatment is None or args.outcome is None:
        raise DataError("--treatment COL and --outcome COL are required with DATA or --dataset.")
    return (frame, args.treatment, args.outcome, covariates_arg(args.covariates), args.control,
            None)


def run(args) -> int:
    from manylift.data.io import write_json, write_parquet
    from manylift.personalize.analysis import personalize_frame
    from manylift.report.personalize import write_personalize_report

    frame, treatment, outcome, covariates, control, truth = _load(args)
    result = personalize_frame(
        frame, treatment, outcome, control=control, covariates=covariates,
        allow_imbalanced=csv_list(args.allow_imbalanced) or (),
        allow_duplicates=args.allow_duplicates, id=args.id,
        methods=tuple(csv_list(args.methods) or ()), test_size=args.test_size,
        n_bootstrap=args.n_bootstrap, n_sims=args.n_sims, n_estimators=args.n_estimators,
        forest_trees=args.forest_trees, random_state=args.seed, truth=truth,
        progress=not args.quiet,
    )
    out = Path(args.out)
    results = result.to_results()
    results["source"] = ("simulated" if args.simulate else
                         f"dataset:{args.dataset}" if args.dataset else str(args.data))
    written = [out / "results.json", out / "report.html"]
    write_json(written[0], results)
    write_personalize_report(result, written[1], unit=args.unit)
    if result.assignments is not None:
        written.append(out / "assignments.parquet")
        write_parquet(written[-1], result.assignments)
    print(f"covariates: {', '.join(result.covariate_names)}", file=sys.stderr)
    print("\n".join(result.summary_lines()))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
