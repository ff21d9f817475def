"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse


def csv_list(text: str | None) -> list[str] | None:
    """Parse ``a,b,c`` into a list (``None`` stays ``None``)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def add_pooled_column_options(p: argparse.ArgumentParser) -> None:
    """The column options of the pooled commands (DESIGN.md section 5b)."""
    g = p.add_argument_group("columns")
    g.add_argument("--customer-col", default="customer_id", help="customer id column (default: customer_id)")
    g.add_argument("--campaign-col", default="campaign_id", help="campaign id column (default: campaign_id)")
    g.add_argument("--week-col", default="week", help="period column (default: week)")
    g.add_argument("--treatment-col", default="treated", help="0/1 treatment column (default: treated)")
    g.add_argument("--outcome-col", default="outcome", help="outcome column (default: outcome)")
    g.add_argument("--propensity-col", default=None,
                   help="known assignment probability column (default: share treated in the intervention)")
    g.add_argument("--covariates", default=None,
                   help="comma-separated covariate columns (default: every other numeric column)")
    g.add_argument("--activity-col", default=None, help="activity column for activity-level bins")


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
