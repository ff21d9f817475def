"""Real data that ships with manylift, so examples and tests work offline."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_hillstrom", "DATASETS", "load_dataset"]


def load_hillstrom() -> pd.DataFrame:
    """The Hillstrom (MineThatData) e-mail campaign experiment.

    64,000 customers who purchased within the last twelve months were
    randomized in equal thirds to a men's merchandise e-mail, a women's
    merchandise e-mail, or no e-mail, in March 2008.  Outcomes were tracked for
    the two weeks after the e-mail.

    Columns: ``recency`` (months since last purchase), ``history_segment``,
    ``history`` (dollars spent in the past year), ``mens``, ``womens`` (bought
    men's / women's merchandise), ``zip_code`` (Urban / Suburban / Rural),
    ``newbie`` (new customer in the past twelve months), ``channel`` (Phone /
    Web / Multichannel), ``segment`` (the treatment: ``"Mens E-Mail"``,
    ``"Womens E-Mail"``, ``"No E-Mail"``), ``visit``, ``conversion`` (0/1) and
    ``spend`` (dollars) in the following two weeks.

    Returns
    -------
    pandas.DataFrame
        64,000 rows, 12 columns, as distributed for the challenge.

    References
    ----------
    Hillstrom, K. (2008). The MineThatData E-Mail Analytics and Data Mining
    Challenge. MineThatData blog. Public data, also redistributed inside several
    open-source uplift packages.

    Examples
    --------
    >>> df = load_hillstrom()
    >>> df.shape
    (64000, 12)
    """
    path = resources.files("manylift").joinpath("datasets_files/hillstrom.csv.gz")
    with resources.as_file(path) as p:
        return pd.read_csv(p)


DATASETS = {"hillstrom": load_hillstrom}


def load_dataset(name: str) -> pd.DataFrame:
    """Load a built-in dataset by name (the CLI's ``--dataset NAME``)."""
    from manylift._core.errors import DataError

    try:
        return DATASETS[name]()
    except KeyError:
        raise DataError(
            f"Unknown dataset {name!r}; built-in datasets are {sorted(DATASETS)}."
        ) from None
