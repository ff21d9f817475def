"""The one exception tree of manylift.

Every error a user can cause derives from :class:`ManyliftError`, so a caller
can catch all of them at once.  Messages follow one pattern: the problem, the
offending value(s) or ids with counts, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ManyliftError",
    "DataError",
    "ColumnError",
    "ValidationError",
    "ModelError",
    "SamplerError",
    "ConvergenceWarning",
    "DataWarning",
    "EmptyDataError",
    "MissingColumnError",
    "ColumnTypeError",
    "TreatmentValueError",
    "NonFiniteError",
    "PropensityError",
    "DuplicateRowError",
    "OverlapError",
    "InterventionArmError",
    "UnknownCampaignError",
    "TooFewUnitsError",
    "ImbalanceError",
    "ExtremeValueError",
    "ReadError",
    "InterruptedAfterSampling",
]


class ManyliftError(Exception):
    """Base class of every error manylift raises on purpose."""


class DataError(ManyliftError, ValueError):
    """The data violates the data contract (docs/data.md)."""


class ColumnError(DataError, KeyError):
    """A required column is missing or has the wrong type."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


class ValidationError(DataError):
    """Several contract violations found at once; ``problems`` lists them all."""

    def __init__(self, problems: list[DataError]):
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) found in the data:"]
        lines += [f"  {k + 1}. {p}" for k, p in enumerate(self.problems)]
        super().__init__("\n".join(lines))


class ModelError(ManyliftError, ValueError):
    """A model cannot be fitted as asked (bad option, unidentifiable design)."""


class SamplerError(ManyliftError, RuntimeError):
    """The sampler stopped: non-finite values, a bad checkpoint, a bad state."""


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics (R-hat, ESS, divergences) failed their thresholds."""


class DataWarning(UserWarning):
    """Something in the data was fixed or dropped on purpose; the message says what."""


# -- specific data-contract violations (each its own class, so callers and
#    tests can tell them apart; all are DataError) ---------------------------
class EmptyDataError(DataError):
    """The data has no rows."""


class MissingColumnError(ColumnError):
    """A required column is absent."""


class ColumnTypeError(ColumnError):
    """A column has the wrong type (e.g. text where numbers are needed)."""


class TreatmentValueError(DataError):
    """The treatment column holds values other than 0/1."""


class NonFiniteError(DataError):
    """NaN or infinite values in the outcome, covariates or propensity."""


class PropensityError(DataError):
    """Propensities outside (0, 1)."""


class DuplicateRowError(DataError):
    """The same (customer, campaign, week) appears more than once."""


class OverlapError(DataError):
    """A customer is in two interventions in the same week."""


class InterventionArmError(DataError):
    """An intervention has no treated or no control row."""


class UnknownCampaignError(DataError):
    """Campaign ids in the exposures that the campaign table does not list."""


class TooFewUnitsError(DataError):
    """Too few customers, campaigns or weeks for the model asked for."""


class ImbalanceError(DataError):
    """A covariate differs between the arms more than randomization allows (measured after
    treatment?)."""


class ExtremeValueError(DataError):
    """A value so extreme (its square overflows, or 1e6 robust sds out) it must be an error."""


class InterruptedAfterSampling(KeyboardInterrupt):
    """Ctrl-C after the sampler finished: the draws are in the checkpoint (the message says
    where and how to finish); the command line exits with status 130."""


class ReadError(DataError):
    """An input file that cannot be read at all (missing, a folder, not CSV/Parquet content);
    ``manylift validate`` exits with status 2 on it, 1 on problems with readable data."""
