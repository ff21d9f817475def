"""manylift: learn who responds to marketing, and why, from many randomized A/B tests.

The public names are imported lazily, so ``import manylift`` and the command
line start fast and do not load JAX until a model needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # name: module
    "ManyliftError": "manylift._core.errors",
    "DataError": "manylift._core.errors",
    "ModelError": "manylift._core.errors",
    "SamplerError": "manylift._core.errors",
    "ExperimentData": "manylift.data.experiment",
    "read_table": "manylift.data.io",
    "load_hillstrom": "manylift.data.datasets",
    "simulate_program": "manylift.simulate.program",
    "ExposureFeatures": "manylift.features.exposure",
    "holdout_split": "manylift.features.holdout",
    # the rich fit (decompose(), report(path)) of the workflows layer
    "PooledModel": "manylift.workflows.api",
    "PooledFit": "manylift.workflows.api",
    "load_run": "manylift.pooled.scoring",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "datasets":
        return importlib.import_module("manylift.data.datasets")
    raise AttributeError(f"module 'manylift' has no attribute {name!r}")


def __dir__():
    return __all__
