"""Every Python example in the operator catalogue (``operators/*.md``) and on the docs' home and
testing pages (``docs/index.md``, ``docs/testing.md``) runs here.

Fenced ```python blocks on one page run in order in one namespace, so a page can build on
its earlier examples. A block whose info string is ``python no-run`` is shown but not run
(for signatures only). A ``test_*`` function a block defines is called, as pytest would,
with the pfrx plugin's fixtures (``marbles``, ``test_scheduler``) it asks for. The docs
build runs the same blocks to draw their marble pictures (``docs/_hooks/marbles.py``).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from reactivex.testing import TestScheduler

from pfrx.testing import MarbleKit

CATALOGUE = Path(__file__).resolve().parent.parent / "operators"
BLOCK = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```", re.S | re.M)

DOCS = CATALOGUE.parent / "docs"
PAGES = [
    *sorted(p for p in CATALOGUE.glob("*.md") if p.name != "README.md"),
    DOCS / "index.md",
    DOCS / "testing.md",
]


def blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        if "no-run" in match.group("flags"):
            continue
        line = text.count("\n", 0, match.start()) + 2
        found.append((line, match.group("code")))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_catalogue_page_examples_run(page: Path) -> None:
    examples = blocks(page)
    assert examples, f"{page.name} has no runnable python example"
    namespace: dict[str, object] = {"__name__": f"catalogue_{page.stem}"}
    for line, code in examples:
        compiled = compile("\n" * (line - 1) + code, str(page), "exec")
        before = set(namespace)
        exec(compiled, namespace)
        for name in sorted(set(namespace) - before):
            if name.startswith("test_") and callable(namespace[name]):
                call_test(namespace[name])


def call_test(test: Any) -> None:
    kit = MarbleKit(scheduler=TestScheduler())
    fixtures = {"marbles": kit, "test_scheduler": kit.scheduler}
    test(**{name: fixtures[name] for name in inspect.signature(test).parameters})
