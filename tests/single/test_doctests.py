"""The docstring examples of the single-experiment toolkit run (examples are tests)."""

import doctest
import importlib

import pytest

MODULES = [
    "manylift.single.data", "manylift.single.progress", "manylift.data.datasets",
    "manylift.personalize._bootstrap", "manylift.single.bayes.model", "manylift.policy.tiers",
    "manylift.single.positivity", "manylift.single.ate",
    "manylift.single.learners", "manylift.single.validation", "manylift.policy.rules",
    "manylift.policy.profit", "manylift.policy.tree", "manylift.design.power",
    "manylift.simulate.single",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
