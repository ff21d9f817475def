"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse


def csv_list(text: str | None) -> list[str] | None:
    """Parse ``a,b,c`` into a list (``None`` stays ``None``)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def add_pooled_column_options(p: argparse.ArgumentParser) -> None:
    """The column options of the pooled commands (docs/results.md)."""
    g = p.add_argument_group("columns")
    g.add_argument("--customer-col", default="customer_id", help="customer id column (default: customer_id)")
    g.add_argument("--campaign-col", default="campaign_id", help="campaign id column (default: campaign_id)")
    g.add_argument("--week-col", default="week", help="period column (default: week)")
    g.add_argument("--treatment-col", default="treated", help="0/1 treatment column (default: treated)")
    g.add_argument("--outcome-col", default="outcome", help="outcome column (default: outcome)")
    g.add_argument("--propensity-col", default=None,
                   help="known assignment probability column (default: share treated in the intervention)")
    g.add_argument("--covariates", default=None,
                   help="comma-separated pre-treatment covariate columns (default: none; "
                        "'auto': every other numeric column, opt-in). Each must pass the "
                        "randomization balance check")
    g.add_argument("--allow-imbalanced", default=None, metavar="COL[,COL]",
                   help="keep these covariates even if the balance check flags them (only "
                        "for columns truly measured before treatment)")
    g.add_argument("--activity-col", default=None,
                   help="activity column for activity-level bins (default: usage_30d if "
                        "present)")


def read_data_or_dataset(data: str | None, dataset: str | None,
                         message: str = "Give either DATA (a CSV or Parquet file) or --dataset "
                                        "NAME, not both."):
    """The input frame of the single-experiment commands: a file or a built-in dataset."""
    from manylift._core.errors import DataError
    from manylift.data.datasets import load_dataset
    from manylift.data.io import read_table

    if (data is None) == (dataset is None):
        raise DataError(message)
    return load_dataset(dataset) if dataset is not None else read_table(data)


# -- the single-experiment commands (analyze, bayes, personalize) -------------------------
def covariates_arg(text: str | None):
    """``--covariates``: ``None`` (the dataset's declared pre-treatment columns, else none),
    ``"auto"``, ``"none"`` or a list of columns."""
    if text is None:
        return None
    if text.strip().lower() in ("auto", "none"):
        return text.strip().lower()
    return csv_list(text)


def add_single_data_options(p: argparse.ArgumentParser) -> None:
    """The data options shared by analyze, bayes and personalize (``SingleData.from_frame``)."""
    p.add_argument("data", metavar="DATA", nargs="?", default=None,
                   help="CSV (optionally gzipped) or Parquet, one row per customer")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="use a built-in dataset instead of DATA (hillstrom)")
    p.add_argument("--control", default=None, metavar="VALUE",
                   help="control value of the treatment column (default: 0, or the only label "
                        "reading like a control: 'control', 'no', 'none', 'holdout')")
    p.add_argument("--covariates", default=None, metavar="A,B,C",
                   help="pre-treatment columns; text columns are one-hot encoded. Default: none "
                        "(for --dataset, its declared pre-treatment columns); 'auto': every "
                        "other numeric column (opt-in); 'none': no covariates")
    p.add_argument("--allow-imbalanced", default=None, metavar="A,B",
                   help="keep these covariates although the randomization balance check flags "
                        "them (|SMD| > 0.1 with p < 0.001 between an arm and the control)")
    p.add_argument("--allow-duplicates", action="store_true", default=None,
                   help="keep rows that repeat another row exactly (distinct customers with "
                        "identical values); refused by default")
    p.add_argument("--id", default=None, metavar="COL",
                   help="column identifying rows in the per-unit export (default: row number)")
    p.add_argument("--quiet", action="store_true",
                   help="no stage lines or progress bars on standard error")


def describe_covariates(data) -> str:
    """One line saying which covariates a SingleData uses and why."""
    why = {"named": "named", "auto": "auto: every other numeric column, balance-checked",
           "dataset": f"the pre-treatment columns dataset {data.dataset} declares",
           "none": "none named"}[data.covariates_source]
    cols = ", ".join(data.covariate_columns) or "none"
    return f"covariates ({why}): {cols}"


# -- the pooled commands (fit, validate, demo, score) -------------------------------------
def pooled_covariates(text: str | None):
    """``--covariates`` for ExperimentData: None (none named or ``none``), ``"auto"``, or a
    list of names."""
    value = covariates_arg(text)
    return None if value == "none" else value


def pooled_data_kwargs(args) -> dict:
    """The ExperimentData.from_files keyword arguments of the pooled column options."""
    return dict(customer_col=args.customer_col, campaign_col=args.campaign_col,
                week_col=args.week_col, treatment_col=args.treatment_col,
                outcome_col=args.outcome_col, propensity_col=args.propensity_col,
                covariates=pooled_covariates(args.covariates), activity_col=args.activity_col,
                allow_imbalanced=csv_list(args.allow_imbalanced) or ())


def describe_pooled_covariates(data) -> str:
    """One line saying which covariates a pooled command (ExperimentData) uses and why."""
    covs = ", ".join(data.covariates) or "none"
    how = ("--covariates auto: every other numeric column, balance-checked" if
           data.covariates_auto else "named" if data.covariates else
           "none named; pass --covariates a,b,c or --covariates auto")
    act = data.activity_col or "none"
    return f"covariates: {covs} ({how}); activity column: {act}"
