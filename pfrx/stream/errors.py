"""What the runtime says when something goes wrong: the error of a named stage, and reasons.

A *stage* is a named operator sequence made by `pfrx.stage` (the guide's
``defcompose`` steps); it is the only meaning of the word in `pfrx.stream`.
"""

from __future__ import annotations

#: Reasons `pfrx.Stream.send` gives when it refuses an event, and that the stream gives
#: a ``Dropped`` record (operator `STREAM`) of an accepted item it could not hand over.
CLOSED = "closed"
FAILED = "failed"
TIMEOUT = "timeout"
#: A re-entrant send (from inside the stream) found the input queue full: it cannot wait.
FULL = "full"
#: ``send_envelope`` got an envelope whose context is not a `pfrx.Context`.
INVALID_CONTEXT = "invalid_context"

#: The ``operator`` of the ``Dropped`` records the stream itself makes.
STREAM = "stream"


class StageError(Exception):
    """An error raised or signalled inside a named stage, carrying the stage's name.

    Attributes:
        stage: the name given to `pfrx.stage` (or the name of the upstream stream,
            for `pfrx.connect`; or of the stream itself, for an operator that raised).
        error: the original exception (also the ``__cause__``).
    """

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"stage {stage!r} failed: {type(error).__name__}: {_text(error)}")
        self.stage = stage
        self.error = error
        self.__cause__ = error


def _text(error: BaseException) -> str:
    # An exception whose str() raises must not take the error path down with it.
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} with an unprintable message>"
