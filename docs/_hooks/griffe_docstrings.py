"""Griffe extension for the API reference: docstrings written for ``help()`` and doctest
read well in mkdocs too.

``Example:`` (singular, as RxPY writes it) is read as an *Examples* section, so doctest
lines render as Python sessions instead of Markdown (where ``['a']`` would be a link).

The rest is the docstrings' own format (checked by ``tests/test_doctests.py``): marble
diagrams in ```` ```text ```` fences, cross-references as ``[`Name`][pfrx.Name]``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)


class DocstringsForMkdocs(griffe.Extension):
    """Rewrites docstrings as described in the module docstring."""

    def on_instance(self, *, obj: griffe.Object, **_: Any) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        docstring.value = EXAMPLE.sub(r"\1Examples:", docstring.value)
