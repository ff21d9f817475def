"""Validated experiment data, input/output and built-in datasets."""

from manylift.data.datasets import load_dataset, load_hillstrom
from manylift.data.experiment import ColumnSpec, ExperimentData, validate_frame
from manylift.data.io import read_table, write_csv, write_parquet

__all__ = [
    "ColumnSpec",
    "ExperimentData",
    "load_dataset",
    "load_hillstrom",
    "read_table",
    "validate_frame",
    "write_csv",
    "write_parquet",
]
