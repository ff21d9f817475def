from pathlib import Path

import pandas as pd
import pytest

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hillstrom.csv.gz"


@pytest.fixture(scope="session")
def hillstrom_raw() -> pd.DataFrame:
    """The raw Hillstrom file from ../shared/data (the packaged copy when it is absent)."""
    if _SHARED.exists():
        return pd.read_csv(_SHARED)
    from manylift.data.datasets import load_hillstrom

    return load_hillstrom()
