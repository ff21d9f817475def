"""Workflows layer of manylift: one module per command, running the library calls in order.

``fit`` and ``demo`` run a pooled fit and :func:`manylift.workflows.pooled.analyse`
(holdout -> policies -> decomposition -> overlap -> save -> report), timing each
stage and assembling ``results.json`` in one place; ``report`` renders a saved
run. :mod:`manylift.workflows.api` gives ``PooledModel`` / ``PooledFit`` with the
whole analysis as methods (``fit.decompose()``, ``fit.report(path)``), which is
what ``manylift.PooledModel`` is. This layer sits between ``report`` and ``cli``:
it imports the layers it calls directly, never through a registry of names.
"""

from manylift.workflows.api import PooledFit, PooledModel
from manylift.workflows.pooled import Stages, analyse, print_results, print_summary

__all__ = ["PooledFit", "PooledModel", "Stages", "analyse", "print_results", "print_summary"]
