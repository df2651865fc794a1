"""The examples in the docstrings of ibtheory.testing and the sample estimators run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["ibtheory.testing", "ibtheory.testing.tags", "ibtheory.testing.laws", "ibtheory.testing.strategies",
           "ibtheory.testing.checks", "ibtheory.testing.suite", "ibtheory.testing.adapters",
           "ibtheory.testing.benchmark_laws", "ibtheory.testing.benchmark",
           "ibtheory.estimators.ksg", "ibtheory.estimators.plugin"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
