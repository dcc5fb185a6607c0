"""Checks over the built docs site (``site/``): what a reader sees in the browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import ROOT

OPERATORS = sorted(p.stem for p in (ROOT / "operators").glob("*.md") if p.name != "README.md")
SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj|ref):`")
AUTOREF = re.compile(r"\[`?[\w.]+`?\]\[[\w.]*\]")  # a cross-reference left unresolved


class _Page(HTMLParser):
    """The visible text of a page, the text of its ``<p>`` and ``<pre>`` blocks, its tables."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.paragraphs: list[str] = []
        self.pre: list[str] = []
        self.tables: list[tuple[str, list[str]]] = []  # (section title, the rows' texts)
        self._title: list[str] | None = None
        self._last_title = ""
        self._stack: list[str] = []
        self._p: list[str] | None = None
        self._pre: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "svg"):
            self._skip += 1
        elif tag == "p":
            self._p = []
        elif tag == "pre":
            self._pre = []
        elif tag == "table":
            self.tables.append((self._last_title, []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append("")
        elif tag == "span" and "doc-section-title" in (dict(attrs).get("class") or ""):
            self._title = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "svg"):
            self._skip -= 1
        elif tag == "p" and self._p is not None:
            self.paragraphs.append("".join(self._p))
            self._p = None
        elif tag == "pre" and self._pre is not None:
            self.pre.append("".join(self._pre))
            self._pre = None
        elif tag == "span" and self._title is not None:
            self._last_title = "".join(self._title).strip()
            self._title = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        for sink in (self._p, self._pre, self._title):
            if sink is not None:
                sink.append(data)
        if self.tables and self.tables[-1][1]:
            self.tables[-1][1][-1] += data


def read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html")


def test_no_page_shows_a_raw_fence_or_role(site: Path) -> None:
    """A fence Markdown did not recognise prints its backticks; a Sphinx role prints raw."""
    bad = []
    for path in pages(site):
        text = "".join(read(path).text)
        for pattern, what in ((re.compile("```"), "fence"), (SPHINX_ROLE, "Sphinx role")):
            for match in pattern.finditer(text):
                around = text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " ")
                bad.append(f"{path.relative_to(site)}: raw {what}: ...{around}...")
        bad += [f"{path.relative_to(site)}: unresolved {m}" for m in AUTOREF.findall(text)]
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize("name", OPERATORS)
def test_operator_page_opens_with_its_signature_and_lists_its_diagrams(
    site: Path, name: str
) -> None:
    html = (site / "operators" / name / "index.html").read_text(encoding="utf-8")
    page = read(site / "operators" / name / "index.html")
    assert page.pre, f"{name}: no code block"
    assert page.pre[0].lstrip().startswith(f"pf.{name}("), f"{name}: first block {page.pre[0]!r}"
    assert not any("Marble diagram" in block for block in page.pre), "heading inside code"
    toc = html[html.index('aria-label="Table of contents"') :]
    assert re.search(r'href="#marble-diagrams?"', toc), f"{name}: no Marble diagram in the TOC"


@pytest.mark.parametrize("name", [*OPERATORS, "testing"])
def test_page_has_marble_pictures_drawn_from_its_examples(site: Path, name: str) -> None:
    path = site / ("testing" if name == "testing" else f"operators/{name}") / "index.html"
    html = path.read_text(encoding="utf-8")
    pictures = re.findall(r'<figure class="pfrx-marble">\s*<svg .*?</svg>', html, re.S)
    assert pictures, f"{name}: no marble picture"
    for svg in pictures:
        assert "<circle" in svg or "<rect" in svg, "a picture with no item drawn"


def test_api_reference_keeps_diagrams_and_one_row_returns(site: Path) -> None:
    page = read(site / "api" / "index.html")
    for name in OPERATORS:
        diagrams = [b for b in page.pre if "source:" in b and f"{name}(" in b]
        assert diagrams, f"the marble diagram of {name} is not a code block"
    prose = [p for p in page.paragraphs if re.search(r"source:\s+-", p)]
    assert not prose, f"marble diagrams collapsed into prose: {prose[:2]}"
    returns = [rows for title, rows in page.tables if title == "Returns:"]
    assert returns, "no Returns section found"
    for rows in returns:
        assert len(rows) == 2, f"a Returns table split into rows: {[r.split() for r in rows]}"
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'href="#pfrx.Dropped"' in html, "cross-references are not links"


def test_a_docs_warning_fails_the_build(tmp_path: Path) -> None:
    """``make docs`` runs this recipe: a broken link (a warning) must fail it, and a clean
    project must build without printing anything."""
    from .conftest import build_docs

    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ndocs_dir: docs\n", encoding="utf-8")
    index = tmp_path / "docs" / "index.md"

    index.write_text("# t\n\nSee [the other page](other.md).\n", encoding="utf-8")
    broken = build_docs(tmp_path / "mkdocs.yml", tmp_path / "site", timeout=120)
    assert broken.returncode != 0, broken.stdout + broken.stderr
    assert "other.md" in broken.stdout + broken.stderr

    index.write_text("# t\n\nNo links.\n", encoding="utf-8")
    clean = build_docs(tmp_path / "mkdocs.yml", tmp_path / "site", timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert (clean.stdout + clean.stderr).strip() == "", "a clean docs build prints nothing"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_backpressure_figure_is_readable_at_the_text_width(site: Path) -> None:
    """Six panels in a wide 2x3 strip shrink to illegible type in a ~700 px text column: the
    figure is drawn three rows of two, at least as wide as the column (scaled down, never up)."""
    import base64

    html = (site / "notebooks" / "03-backpressure" / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', html)
    assert images, "notebook 03 shows no figure"
    width, height = _png_size(base64.b64decode(images[-1]))
    assert width >= 700, (width, height)
    assert height >= width, f"{width}x{height}: a strip, not three rows of two"


def test_executing_a_notebook_in_the_docs_build_prints_nothing(tmp_path: Path) -> None:
    """mkdocs-jupyter runs each notebook in a kernel; over plain TCP every kernel warned
    "Kernel is running over TCP without encryption" into the build's output. With the docs'
    kernels hook the kernels use CurveZMQ keys, and a clean build prints nothing."""
    import json

    from .conftest import build_docs

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# t\n", encoding="utf-8")
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c0",
                "metadata": {},
                "outputs": [],
                "source": ["print(6 * 7)"],
            },
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (docs / "n.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\ndocs_dir: docs\n"
        f"hooks:\n  - {ROOT / 'docs' / '_hooks' / 'kernels.py'}\n"
        "plugins:\n  - mkdocs-jupyter:\n      execute: true\n      cache: false\n",
        encoding="utf-8",
    )
    built = build_docs(tmp_path / "mkdocs.yml", tmp_path / "site", timeout=300)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "42" in (tmp_path / "site" / "n" / "index.html").read_text(encoding="utf-8")
    assert output.strip() == "", output
