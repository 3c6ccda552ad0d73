"""The examples in arith's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cnnkit.arith

MODULES = sorted(m.name for m in pkgutil.iter_modules(cnnkit.arith.__path__, "cnnkit.arith."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_function_has_a_docstring_naming_its_formula_or_source():
    for name in cnnkit.arith.__all__:
        value = getattr(cnnkit.arith, name)
        if callable(value) and not isinstance(value, type):
            assert value.__doc__ and len(value.__doc__.strip()) > 20, name
