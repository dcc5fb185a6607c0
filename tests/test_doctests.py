"""The examples in pfrx's docstrings run, so they cannot rot."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import pfrx

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(pfrx.__path__, prefix="pfrx.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
