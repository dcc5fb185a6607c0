"""The examples in pfrx's docstrings run, so they cannot rot."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
from pathlib import Path

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


# -- the docstrings' format: what mkdocstrings renders (the API reference) ------------------

SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj|ref):`")
RST_LITERAL = re.compile(r"(^|\S)::\s*$", re.M)  # "::" introducing an indented block


def docstrings(path: Path) -> list[tuple[int, str]]:
    """Every docstring in a source file: modules, classes, functions, attributes."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for statement in body:
            value = getattr(statement, "value", None)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((statement.lineno, value.value))
    return found


SOURCES = sorted(Path(pfrx.__file__).parent.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_docstrings_use_markdown_not_rest(path: Path) -> None:
    """Sphinx roles print raw in the API reference and a ``::`` block collapses into prose:
    cross-references are ``[`Name`][pfrx.Name]``, diagrams sit in ```` ```text ```` fences."""
    bad = [
        f"line {line}: {text.strip().splitlines()[0][:60]!r}"
        for line, text in docstrings(path)
        if SPHINX_ROLE.search(text) or RST_LITERAL.search(text)
    ]
    assert not bad, f"reStructuredText in docstrings of {path.name}: {bad}"
