"""Stage lines and progress bars of the long single-experiment commands.

The library functions take ``progress=False`` (quiet by default, as a library
should be); the command line passes ``progress=True``.  Stage lines and tqdm
bars go to standard error, so standard output keeps the results.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "as_progress"]


class Progress:
    """Print what a command is doing, and wrap long loops in tqdm bars.

    Parameters
    ----------
    enabled : bool, default=False
    command : str, default="manylift"
        Prefix of the stage lines (``"analyze"``).

    Examples
    --------
    >>> p = Progress(enabled=False)
    >>> p.stage("cross-fitting")
    >>> list(p.bar(range(3), desc="bootstrap"))
    [0, 1, 2]
    """

    def __init__(self, enabled: bool = False, command: str = "manylift"):
        self.enabled = bool(enabled)
        self.command = command
        self._t0 = time.perf_counter()

    def stage(self, text: str) -> None:
        """One line: ``[analyze 12 s] text``."""
        if self.enabled:
            sec = time.perf_counter() - self._t0
            print(f"[{self.command} {sec:4.0f} s] {text}", file=sys.stderr, flush=True)

    def bar(self, iterable=None, total: int | None = None, desc: str = "", unit: str = "it"):
        """``iterable`` wrapped in a tqdm bar on standard error (a plain iterable when off)."""
        if not self.enabled:
            return iterable if iterable is not None else range(total or 0)
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=f"{self.command}: {desc}", unit=unit,
                    file=sys.stderr, leave=False, dynamic_ncols=True, mininterval=0.5)


def as_progress(progress, command: str) -> Progress:
    """A :class:`Progress` from ``True``/``False`` or an existing one."""
    if isinstance(progress, Progress):
        return progress
    return Progress(bool(progress), command)
