"""``PooledModel`` and ``PooledFit`` with the whole analysis as methods (``manylift.PooledModel``).

The pooled layer's classes know the posterior; the decomposition and the
report live in layers below it. These subclasses, in the workflows layer, add
the methods that need them, so ``ml.PooledModel(...).fit(data)`` supports
``fit.decompose()`` and ``fit.report(path)`` with plain imports.
"""

from __future__ import annotations

import os
from pathlib import Path

from manylift.pooled.fit import PooledFit as _PooledFit
from manylift.pooled.model import PooledModel as _PooledModel

__all__ = ["PooledFit", "PooledModel"]


class PooledFit(_PooledFit):
    """A :class:`manylift.pooled.fit.PooledFit` with ``decompose()`` and ``report(path)``."""

    def decompose(self):
        """Shares, Shapley values and effect curves (a ``Decomposition``)."""
        from manylift.decomposition import decompose

        return decompose(self)

    def report(self, path: str | os.PathLike, directory: str | os.PathLike | None = None,
               progress: bool = False) -> str:
        """Analyse, save the run (to ``directory``, default the report's folder) and render
        its HTML report; returns the report's path. The run's seed seeds every stage."""
        from manylift.workflows.pooled import analyse

        path = Path(path)
        run_dir = Path(directory) if directory is not None else path.parent
        analyse(self, run_dir, report=os.path.relpath(path, run_dir), progress=progress,
                log=lambda *_: None)
        return str(path)


class PooledModel(_PooledModel):
    """:class:`manylift.pooled.model.PooledModel` whose fits are :class:`PooledFit`."""

    @property
    def fit_class(self):
        return PooledFit
