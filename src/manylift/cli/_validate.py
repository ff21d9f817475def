"""``manylift validate``: check exposure data against the data contract."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from manylift._core.atomic import write_json
from manylift._core.errors import (
    DataError,
    DataWarning,
    ImbalanceError,
    ReadError,
    ValidationError,
)
from manylift.cli._common import add_pooled_column_options, csv_list, pooled_covariates
from manylift.data.experiment import ExperimentData

SCHEMA_VERSION = 1

_EPILOG = """\
examples:
  manylift validate exposures.parquet
  manylift validate exposures.csv.gz --campaigns campaigns.csv
  manylift validate log.csv --customer-col msisdn --week-col date --outcome-col spend_30d
  manylift validate exposures.parquet --drop-incomplete --out checked/

Every problem found is printed (missing or mistyped columns, treatment not 0/1,
NaN or infinite values, duplicate rows, a customer in two interventions in one
week, interventions without a treated or a control row, campaign ids missing
from the campaign table, propensities outside (0, 1), empty data), each with
the offending ids, the counts and the fix; values so extreme they must be errors
(their square overflows, or they lie more than 1e6 robust sds from the median);
and, for the covariates and the activity column, the randomization balance table
(standardized mean difference between arms within interventions): a column the
treatment moved (measured after it) is a problem. The files are only read.

exit status: 0 if the data is valid, 1 if any problem was found, 2 if the
files could not be read.  See docs/data.md for every rule.
"""


def balance_text(table) -> str:
    """The randomization balance table as text (one line per covariate)."""
    lines = ["Randomization balance (treated minus control, within interventions; flagged when "
             "|SMD| > 0.1 with p < 0.001, or p < 1e-6):",
             f"  {'column':24s} {'SMD':>8s} {'difference':>12s} {'z':>8s}  verdict"]
    for r in table.itertuples():
        verdict = "IMBALANCED (measured after treatment?)" if r.imbalanced else "balanced"
        lines.append(f"  {str(r.covariate):24s} {r.smd:+8.3f} {r.difference:+12.4g} "
                     f"{r.z:+8.1f}  {verdict}")
    return "\n".join(lines)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate",
        help="check exposure data against the data contract; exit 1 on any problem",
        description=(
            "Read EXPOSURES (one row per customer per intervention) and optionally the "
            "campaign table, check them against the data contract and print every problem "
            "found, or a short summary if there is none."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("exposures", metavar="EXPOSURES",
                   help="exposure rows: CSV (optionally gzipped) or Parquet")
    p.add_argument("--campaigns", default=None, metavar="FILE",
                   help="campaign table (CSV or Parquet): the campaign column plus attributes "
                        "and optional cost")
    add_pooled_column_options(p)
    p.add_argument("--cost-col", default="cost",
                   help="cost column of the campaign table (default: cost)")
    p.add_argument("--drop-incomplete", action="store_true",
                   help="leave out interventions without a treated or a control row (with a "
                        "note) instead of reporting them as problems")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write DIR/results.json (valid, problems, sizes)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    notes: list[str] = []
    problems: list[DataError] = []
    data = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            data = ExperimentData.from_files(
                args.exposures, args.campaigns,
                customer_col=args.customer_col, campaign_col=args.campaign_col,
                week_col=args.week_col, treatment_col=args.treatment_col,
                outcome_col=args.outcome_col, propensity_col=args.propensity_col,
                covariates=pooled_covariates(args.covariates), activity_col=args.activity_col,
                cost_col=args.cost_col, drop_incomplete_interventions=args.drop_incomplete,
                check_balance=False,
            )
        except ValidationError as exc:
            problems = list(exc.problems)
        except ReadError:
            raise  # an unreadable input is not a data problem: exit status 2
        except DataError as exc:
            problems = [exc]
    notes = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]

    if data is not None and data.balance is not None:
        # the balance table: a covariate the treatment moved is a problem of the data as a
        # model input (fit refuses it), reported here with the whole table
        allow = set(csv_list(args.allow_imbalanced) or ())
        print(balance_text(data.balance))
        for r in data.balance.itertuples():
            if r.imbalanced and r.covariate not in allow:
                problems.append(ImbalanceError(
                    f"Covariate {r.covariate!r} differs between the arms more than "
                    f"randomization allows (SMD {r.smd:+.3f}, z = {r.z:+.1f}): if it was "
                    f"measured after treatment it absorbs part of the effect and biases every "
                    f"effect estimate; leave it out (fit refuses it unless --allow-imbalanced "
                    f"{r.covariate})."))
    for note in notes:
        print(f"note: {note}")
    if problems:
        print(f"{args.exposures}: {len(problems)} problem(s) found:")
        for k, p in enumerate(problems, 1):
            print(f"  {k}. [{type(p).__name__}] {p}")
    else:
        print(f"{args.exposures}: valid. {data!r}")
        print(f"  {data.n_interventions} interventions; share treated "
              f"{data.frame['treated'].mean():.3f}; covariates "
              f"{', '.join(data.covariates) or '(none)'}; activity column "
              f"{data.activity_col or '(none)'}"
              + (f"; campaign attributes {', '.join(data.campaign_attributes) or '(none)'}"
                 if data.campaigns is not None else ""))

    if args.out:
        results = {
            "schema_version": SCHEMA_VERSION,
            "command": "validate",
            "exposures": str(args.exposures),
            "campaigns": str(args.campaigns) if args.campaigns else None,
            "valid": not problems,
            "problems": [{"type": type(p).__name__, "message": str(p)} for p in problems],
            "notes": notes,
        }
        if data is not None:
            results["data"] = {"rows": data.n_rows, "customers": data.n_customers,
                               "campaigns": data.n_campaigns, "weeks": data.n_weeks,
                               "interventions": data.n_interventions}
            if data.balance is not None:
                results["balance"] = {r.covariate: {"smd": r.smd, "difference": r.difference,
                                                    "z": r.z, "p_value": r.p_value,
                                                    "imbalanced": bool(r.imbalanced)}
                                      for r in data.balance.itertuples()}
        write_json(Path(args.out) / "results.json", results)
    return 1 if problems else 0
