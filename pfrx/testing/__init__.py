"""Test helpers for pfrx pipelines: marble strings on a ``TestScheduler``, and more.

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
