"""mkdocs hook: the operator catalogue pages in the nav, in the order of the catalogue index.

``docs/operators`` links to the top-level ``operators/`` folder (single source: the docs
show the catalogue pages themselves, never copies). This hook lists every page of that
folder under "Operators" in the nav, in the order of the table in ``operators/README.md``
(pages missing from the table follow alphabetically), so a new operator page appears in the
docs without editing ``mkdocs.yml``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LINK = re.compile(r"^\|\s*\[[^\]]+\]\(([\w.-]+\.md)\)", re.M)


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
