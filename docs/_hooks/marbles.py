"""mkdocs hook: marble pictures drawn from the pages' own examples, at build time.

On every operator page (``operators/*.md``) and on the testing page, the fenced
```` ```python ```` examples run in order in one namespace, as ``tests/test_catalogue.py``
runs them (functions named ``test_*`` that a block defines are called, as pytest would,
with fresh ``marbles`` and ``test_scheduler`` fixtures when they ask for them).
Each ``MarbleKit.run`` they make is drawn with ``pfrx.testing``'s SVG renderer (the kit's
sources, an operator box, the result and the dropped lane, in the user's symbols) and the
pictures are inserted after the block that ran them; runs made by hypothesis examples are
not drawn. The pictures are the examples' actual
behaviour, so they cannot drift from the code; an example that fails is a warning, which
fails the strict build.

This hook must come before ``catalogue.py`` in ``mkdocs.yml``: it skips ``python no-run``
blocks, a flag the catalogue hook then removes.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import currently_in_test_context
from reactivex.testing import TestScheduler

from pfrx.testing import MarbleKit, Recording

log = logging.getLogger("mkdocs.hooks.marbles")

BLOCK = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.S | re.M)
PREFIXES = re.compile(r"\b(?:pf|ops|pfrx\.operators|reactivex\.operators)\.")
MOST_PER_BLOCK = 8


def pictured(path: str) -> bool:
    """Whether a page (its path under ``docs/``) gets pictures."""
    parts = Path(path).parts
    return path == "testing.md" or (
        len(parts) == 2 and parts[0] == "operators" and parts[1] != "README.md"
    )


class _Run:
    def __init__(self, kit: MarbleKit, recording: Recording, line: int, names: dict[str, Any]):
        self.kit, self.recording, self.line, self.names = kit, recording, line, names


@contextlib.contextmanager
def _recording_runs(filename: str, runs: list[_Run]) -> Iterator[None]:
    """Record each ``MarbleKit.run`` made from code compiled as ``filename``."""
    original = MarbleKit.run

    def run(self: MarbleKit, *args: Any, **kwargs: Any) -> Recording:
        recording = original(self, *args, **kwargs)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != filename:
            frame = frame.f_back  # type: ignore[assignment]
        if frame is not None and not currently_in_test_context():
            runs.append(_Run(self, recording, frame.f_lineno, dict(frame.f_locals)))
        return recording

    MarbleKit.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        MarbleKit.run = original  # type: ignore[method-assign]


def call_test(test: Any) -> None:
    """Call a test function as pytest would, with the pfrx plugin's fixtures it asks for."""
    kit = MarbleKit(scheduler=TestScheduler())
    fixtures = {"marbles": kit, "test_scheduler": kit.scheduler}
    test(**{name: fixtures[name] for name in inspect.signature(test).parameters})


def _called(call: ast.Call) -> str:
    """The name a call calls: ``run`` for ``m.run(...)``, ``draw`` for ``draw(...)``."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _piped(node: ast.expr) -> list[ast.expr]:
    """The operators of ``source.pipe(a).pipe(b, c)``: ``[a, b, c]``."""
    operators: list[ast.expr] = []
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "pipe"
    ):
        operators = list(node.args) + operators
        node = node.func.value
    return operators


class _Inline(ast.NodeTransformer):
    """Replace names bound to plain values (a loop's strategy, a size) by those values."""

    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.expr:
        value = self.names.get(node.id)
        if isinstance(value, str | int | float | bool) and not isinstance(value, type):
            return ast.copy_location(ast.Constant(value), node)
        return node


def label(tree: ast.Module, run: _Run, fallback: str) -> str:
    """The operator box's text: the operators the example piped into ``m.run``."""
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _called(node) in ("run", "draw")
        and node.args
        and node.lineno <= run.line <= (node.end_lineno or node.lineno)
    ]
    if not calls:
        return fallback
    call = calls[-1]
    if _called(call) == "draw":  # pfrx.testing.draw(source, *operators, label=...)
        given = [k.value for k in call.keywords if k.arg == "label"]
        if given and isinstance(given[0], ast.Constant) and isinstance(given[0].value, str):
            return given[0].value
        operators = list(call.args[1:])
    else:
        operators = _piped(call.args[0])
    if not operators:
        return fallback
    inline = _Inline(run.names)
    texts = []
    for op in operators:
        op = _assigned(tree, op, call.lineno)
        expression = ast.parse(ast.unparse(op), mode="eval")
        texts.append(ast.unparse(_Shorten().visit(inline.visit(expression)).body))
    return PREFIXES.sub("", " → ".join(texts))


def _assigned(tree: ast.Module, op: ast.expr, before: int) -> ast.expr:
    """For ``op`` a name (``m.run(source.pipe(op))``), the expression last assigned to it
    above the call in the same block: ``op = pf.window_time(10, ...)``."""
    if not isinstance(op, ast.Name):
        return op
    found = op
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and node.lineno < before
            and any(isinstance(t, ast.Name) and t.id == op.id for t in node.targets)
            and (found is op or node.lineno > found.lineno)
        ):
            found = node.value
    return found


class _Shorten(ast.NodeTransformer):
    """A lambda is drawn as ``…``: the box names the operator and its settings."""

    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        return ast.copy_location(ast.Name("…"), node)


def figure(svg: str, caption: str) -> str:
    """An HTML block Markdown passes through: no blank line inside."""
    body = "\n".join(line for line in svg.splitlines() if line.strip())
    labelled = f'<svg role="img" aria-label="marble picture: {_attr(caption)}" '
    body = re.sub(r"^<svg ", labelled, body)
    return f'<figure class="pfrx-marble">\n{body}\n</figure>'


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def with_pictures(markdown: str, path: str) -> str:
    """``markdown`` with a picture of each marble run after the block that made it."""
    stem = Path(path).stem
    filename = f"<docs/{path}>"
    namespace: dict[str, Any] = {"__name__": f"docs_{stem.replace('-', '_')}"}
    inserts: list[tuple[int, str]] = []
    for match in BLOCK.finditer(markdown):
        if "no-run" in match.group("flags"):
            continue
        first = markdown.count("\n", 0, match.start()) + 2
        source = "\n" * (first - 1) + match.group("code")
        runs: list[_Run] = []
        try:
            tree = ast.parse(source, filename)
            before = set(namespace)
            with _recording_runs(filename, runs), contextlib.redirect_stdout(io.StringIO()):
                exec(compile(tree, filename, "exec"), namespace)
                for name in sorted(set(namespace) - before):
                    if name.startswith("test_") and callable(namespace[name]):
                        call_test(namespace[name])
        except Exception as error:  # an example that fails is a broken page
            log.warning("%s:%d: example failed, no picture: %r", path, first, error)
            return markdown
        pictures = []
        for run in runs[:MOST_PER_BLOCK]:
            text = label(tree, run, stem)
            pictures.append(figure(run.kit.diagram(run.recording, text).svg(), text))
        if pictures:
            inserts.append((match.end(), "\n\n" + "\n\n".join(pictures) + "\n"))
    for at, text in reversed(inserts):
        markdown = markdown[:at] + text + markdown[at:]
    return markdown


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    path = page.file.src_uri
    return with_pictures(markdown, path) if pictured(path) else markdown
