"""Reading input tables and writing outputs atomically.

Inputs are only ever read; outputs go through :mod:`manylift._core.atomic`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from manylift._core.atomic import atomic_path, write_json, write_text
from manylift._core.errors import ReadError

__all__ = ["read_table", "write_parquet", "write_csv", "write_json", "write_text"]

_CSV = (".csv", ".csv.gz", ".txt", ".tsv", ".csv.bz2", ".csv.zip", ".csv.xz")
_PARQUET = (".parquet", ".pq", ".parq")


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.csv.gz`` (any compression pandas infers) or ``.parquet``.
    columns : list of str, default=None
        Read only these columns (Parquet reads only what it needs).
    """
    p = Path(path)
    if not p.exists():
        raise ReadError(f"Input file {str(p)!r} does not exist. Check the path.")
    if p.is_dir():
        raise ReadError(f"{str(p)!r} is a folder; pass a CSV or Parquet file.")
    name = p.name.lower()
    try:
        if name.endswith(_PARQUET):
            return pd.read_parquet(p, columns=columns)
        if name.endswith(_CSV):
            sep = "\t" if name.endswith(".tsv") else ","
            return pd.read_csv(p, usecols=columns, sep=sep)
    except (ValueError, OSError) as exc:
        raise ReadError(f"Could not read {str(p)!r} as a {'Parquet' if name.endswith(_PARQUET) else 'CSV'} "
                        f"file: {exc}. Check that it is one (not truncated, not another "
                        f"format).") from None
    raise ReadError(
        f"Cannot tell the format of {str(p)!r} from its name; use a .csv, .csv.gz or "
        f".parquet file."
    )


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write ``frame`` to Parquet atomically (no index)."""
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write ``frame`` to CSV atomically (no index)."""
    with atomic_path(path, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)
