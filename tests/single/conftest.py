from importlib import resources

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def hillstrom_raw() -> pd.DataFrame:
    """The raw Hillstrom file as distributed (read with pandas alone: no manylift code and no
    dataset declaration in ``attrs``)."""
    path = resources.files("manylift").joinpath("datasets_files/hillstrom.csv.gz")
    with resources.as_file(path) as p:
        return pd.read_csv(p)
