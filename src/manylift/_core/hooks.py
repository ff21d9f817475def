"""A tiny registry through which lower layers are offered to higher ones.

Imports go one way (the layer order in pyproject.toml): the pooled model may not import the
report or decomposition layers.  Yet ``PooledFit.report(path)`` is the natural
call for a user.  The root package registers, by dotted name, the functions
that implement such calls (``manylift/__init__.py``); a layer looks them up here
and imports nothing below itself.
"""

from __future__ import annotations

import importlib

from manylift._core.errors import ManyliftError

__all__ = ["register_hook", "get_hook", "has_hook"]

_HOOKS: dict[str, str] = {}


def register_hook(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:function"``) under ``name``."""
    _HOOKS[name] = target


def has_hook(name: str) -> bool:
    return name in _HOOKS


def get_hook(name: str):
    """The registered function (imported on first use)."""
    try:
        module, _, attr = _HOOKS[name].partition(":")
    except KeyError:
        raise ManyliftError(
            f"No implementation registered for {name!r}; import manylift (the root package) "
            f"before calling it."
        ) from None
    return getattr(importlib.import_module(module), attr)
