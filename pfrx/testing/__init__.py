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
from ._slow import slow_consumer

__all__ = [
    "CREATED",
    "DEFAULT_CONTEXT",
    "DISPOSED",
    "SUBSCRIBED",
    "MarbleKit",
    "MarbleMismatch",
    "MarbleSyntaxError",
    "Note",
    "Recording",
    "default_project",
    "marbles",
    "parse",
    "render",
    "slow_consumer",
]
