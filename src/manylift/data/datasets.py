"""Real data that ships with manylift, so examples and tests work offline.

Each built-in dataset declares what the single-experiment commands need to
know about it (:class:`DatasetInfo`): its pre-treatment columns (the default
covariates: a column measured after treatment must never be a covariate), its
treatment column and control value, whether it is a randomized experiment with
constant assignment shares, and whether identical rows are expected (distinct
customers with the same values).  The loaded frame carries this declaration in
``frame.attrs["manylift_dataset"]``, where
:meth:`manylift.single.SingleData.from_frame` reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources

import pandas as pd

__all__ = ["DATASETS", "DatasetInfo", "dataset_info", "load_dataset", "load_hillstrom"]

ATTRS_KEY = "manylift_dataset"


@dataclass(frozen=True)
class DatasetInfo:
    """What a built-in dataset declares about its columns.

    Attributes
    ----------
    name : str
    pre_treatment : tuple of str
        Columns measured before treatment: the default covariates.
    treatment : str
        The treatment column.
    control : object
        The control value of the treatment column.
    outcomes : tuple of str
        Columns measured after treatment (never covariates).
    randomized : bool
        Arms assigned at random with constant shares (so the arm shares are the
        known propensities, and covariates must be balanced between arms).
    rows_may_repeat : bool
        Distinct customers can share every value (identical rows are not an error).
    """

    name: str
    pre_treatment: tuple
    treatment: str
    control: object
    outcomes: tuple
    randomized: bool = True
    rows_may_repeat: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


HILLSTROM = DatasetInfo(
    name="hillstrom",
    pre_treatment=("recency", "history", "mens", "womens", "newbie", "zip_code", "channel"),
    treatment="segment",
    control="No E-Mail",
    outcomes=("visit", "conversion", "spend"),
    randomized=True,
    # 6,562 rows repeat another row exactly: customers with the same recency, history
    # (often a round dollar amount), flags, zip code, channel, arm and outcomes
    rows_may_repeat=True,
)


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

    The pre-treatment columns (the default covariates of the single-experiment
    commands) are recency, history, mens, womens, newbie, zip_code and channel
    (``history_segment`` is a binning of ``history``); visit, conversion and spend
    are outcomes.  The declaration travels in ``frame.attrs["manylift_dataset"]``.

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
    >>> df.attrs["manylift_dataset"]["pre_treatment"][:2]
    ('recency', 'history')
    """
    path = resources.files("manylift").joinpath("datasets_files/hillstrom.csv.gz")
    with resources.as_file(path) as p:
        frame = pd.read_csv(p)
    frame.attrs[ATTRS_KEY] = HILLSTROM.to_dict()
    return frame


DATASETS = {"hillstrom": load_hillstrom}
_INFO = {"hillstrom": HILLSTROM}


def _unknown(name):
    from manylift._core.errors import DataError

    return DataError(f"Unknown dataset {name!r}; built-in datasets are {sorted(DATASETS)}.")


def dataset_info(name: str) -> DatasetInfo:
    """The declaration of a built-in dataset (pre-treatment columns, design)."""
    try:
        return _INFO[name]
    except KeyError:
        raise _unknown(name) from None


def load_dataset(name: str) -> pd.DataFrame:
    """Load a built-in dataset by name (the CLI's ``--dataset NAME``)."""
    try:
        return DATASETS[name]()
    except KeyError:
        raise _unknown(name) from None
