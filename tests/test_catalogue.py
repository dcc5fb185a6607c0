"""Every Python example in the operator catalogue (``operators/*.md``) runs here.

Fenced ```python blocks on one page run in order in one namespace, so a page can build on
its earlier examples. A block whose info string is ``python no-run`` is shown but not run
(for signatures only).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CATALOGUE = Path(__file__).resolve().parent.parent / "operators"
BLOCK = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```", re.S | re.M)

PAGES = sorted(p for p in CATALOGUE.glob("*.md") if p.name != "README.md")


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
        exec(compiled, namespace)
