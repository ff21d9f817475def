"""The Examples in the evaluation docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["scores", "rank", "blp", "policy_values", "uplift", "bayesian_bootstrap"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"manylift.evaluation.{name}")
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
