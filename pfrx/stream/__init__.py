"""The stream runtime: an input you send into, the operators applied, results out.

`Stream` is the Python counterpart of the guide's ``PacketFlow.Stream.start_link`` and
``send_event``: a hot pipeline, subscribed once when the stream is made, that any thread (or
an asyncio task, through `Stream.asend`) can send events into. `registry` finds
streams by name; `stage` and `connect` compose operator sequences and streams.

How operators report: the stream subscribes its pipeline inside
`pfrx.operators.reporting_into`, so every operator built without ``metrics=`` or
``on_drop=`` counts itself into the stream's one `StreamMetrics` and reports
each lost item into the stream's one drop ledger (`Stream.dropped`). The stream itself
counts the totals: one ``received`` per accepted send, one ``emitted`` per result.

One concern a module: ``_input`` (the serialized entry), ``_stream`` (lifecycle, send results,
ledger), ``_boundary`` (watching the pipeline between operators), ``_publish`` (results and
drops fan-out), ``registry``, ``compose`` (``stage``, ``connect``), ``errors``.
"""

from __future__ import annotations

from ..operators import Operator
from ._stream import DEFAULT_QUEUE_SIZE, Stream
from .compose import connect, stage
from .errors import CLOSED, FAILED, FULL, INVALID_CONTEXT, TIMEOUT, StageError
from .registry import DuplicateStreamName, StreamRegistry, registry

__all__ = [
    "CLOSED",
    "DEFAULT_QUEUE_SIZE",
    "FAILED",
    "FULL",
    "INVALID_CONTEXT",
    "TIMEOUT",
    "DuplicateStreamName",
    "Operator",
    "StageError",
    "Stream",
    "StreamRegistry",
    "connect",
    "registry",
    "stage",
]
