"""mkdocs hook: the operator catalogue pages in the nav, in the order of the catalogue index,
and their ``python no-run`` fences shown as Python.

``docs/operators`` links to the top-level ``operators/`` folder (single source: the docs
show the catalogue pages themselves, never copies). This hook lists every page of that
folder under "Operators" in the nav, in the order of the table in ``operators/README.md``
(pages missing from the table follow alphabetically), so a new operator page appears in the
docs without editing ``mkdocs.yml``.

The catalogue marks blocks that ``tests/test_catalogue.py`` must not run (signatures) with
the info string ``python no-run``. GitHub reads the first word as the language and ignores
the rest, but pymdownx.superfences refuses a fence whose extra words are not ``key=value``
options: the block would not be a fence at all, and everything down to the next fence
would land in one code block. The hook drops the flag before Markdown sees the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LINK = re.compile(r"^\|\s*\[[^\]]+\]\(([\w.-]+\.md)\)", re.M)
NO_RUN = re.compile(r"^(?P<fence>[ \t]*(?:`{3,}|~{3,})[ \t]*python)[ \t]+no-run[ \t]*$", re.M)


def catalogue_pages(folder: Path) -> list[str]:
    """Operator page file names in catalogue order."""
    listed = LINK.findall((folder / "README.md").read_text(encoding="utf-8"))
    present = sorted(p.name for p in folder.glob("*.md") if p.name != "README.md")
    ordered = [name for name in listed if name in present]
    return ordered + [name for name in present if name not in ordered]


def on_config(config: Any, **_: Any) -> Any:
    folder = Path(config["docs_dir"]) / "operators"
    for entry in config["nav"]:
        if isinstance(entry, dict) and "Operators" in entry:
            section = [page for page in entry["Operators"] if page == "operators/README.md"]
            section += [{Path(name).stem: f"operators/{name}"} for name in catalogue_pages(folder)]
            entry["Operators"] = section
    return config


def shown_as_python(markdown: str) -> str:
    """``markdown`` with each ```` ```python no-run ```` fence opened as ```` ```python ````."""
    return NO_RUN.sub(r"\g<fence>", markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return shown_as_python(markdown)
