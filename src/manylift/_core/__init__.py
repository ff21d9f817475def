"""Errors, validation helpers and random-state handling shared by every layer."""

from manylift._core.errors import (
    ColumnError,
    ConvergenceWarning,
    DataError,
    DataWarning,
    ManyliftError,
    ModelError,
    SamplerError,
    ValidationError,
)

__all__ = [
    "ColumnError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "ManyliftError",
    "ModelError",
    "SamplerError",
    "ValidationError",
]
