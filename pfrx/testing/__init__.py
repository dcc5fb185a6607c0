"""Test helpers for pfrx pipelines: marble strings on a ``TestScheduler``, and more.

- [`marbles`][pfrx.testing.marbles] and [`MarbleKit`][pfrx.testing.MarbleKit]: marble sources,
  runs in virtual time, [`expect`][pfrx.testing.MarbleKit.expect] (a failure raises
  [`MarbleMismatch`][pfrx.testing.MarbleMismatch] with aligned diagrams);
- [`draw`][pfrx.testing.draw] and [`Diagram`][pfrx.testing.Diagram]: marble pictures, ASCII
  or SVG, in the test's own symbols;
- [`slow_consumer`][pfrx.testing.slow_consumer]: a consumer that takes time per item;
- `pfrx.testing.plugin`: the pytest plugin installed with pfrx (fixtures ``test_scheduler``
  and ``marbles``);
- `pfrx.testing.strategies`: hypothesis strategies (paths, capabilities, contexts,
  envelopes, marble timelines); imported on its own, as it needs ``hypothesis``.

Nothing in the library imports this package; it may import everything.
"""

from ._kit import (
    CREATED,
    DEFAULT_CONTEXT,
    DISPOSED,
    SUBSCRIBED,
    MarbleKit,
    MarbleMismatch,
    Recording,
    marbles,
)
from ._marbles import MarbleSyntaxError, Note, default_project, parse, render
from ._render import (
    Diagram,
    Lane,
    Mark,
    align,
    default_key,
    diagram,
    draw,
    dropped_lane,
    notes_lane,
)
from ._slow import slow_consumer

__all__ = [
    "CREATED",
    "DEFAULT_CONTEXT",
    "DISPOSED",
    "Diagram",
    "Lane",
    "Mark",
    "SUBSCRIBED",
    "align",
    "default_key",
    "diagram",
    "draw",
    "dropped_lane",
    "MarbleKit",
    "MarbleMismatch",
    "MarbleSyntaxError",
    "Note",
    "Recording",
    "default_project",
    "marbles",
    "notes_lane",
    "parse",
    "render",
    "slow_consumer",
]
