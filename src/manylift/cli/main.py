"""The ``manylift`` command line: one subcommand per library call.

Each subcommand lives in its own module ``manylift.cli._<name>`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from manylift import __version__
from manylift._core.errors import ManyliftError

# Order is the order of `manylift --help`.
_COMMANDS = [
    "demo",
    "simulate",
    "validate",
    "fit",
    "score",
    "report",
    "overlap",
    "analyze",
    "bayes",
    "personalize",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="manylift",
        description=(
            "Learn who responds to marketing, and why, from randomized A/B tests. "
            "Run `manylift demo --out demo/` for a first look."
        ),
    )
    parser.add_argument("--version", action="version", version=f"manylift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"manylift.cli._{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"manylift.cli._{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ManyliftError as exc:
        print(f"manylift {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"manylift {args.command}: {str(exc) or 'interrupted.'}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
