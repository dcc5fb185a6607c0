"""What the file system did: the events the ``FileStream`` emits and the window summaries."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "FileActivitySummary",
    "FileDeleteEvent",
    "FileReadEvent",
    "FileWriteEvent",
    "ProcessingStats",
    "SessionSummary",
]


@attrs.frozen(slots=True)
class FileReadEvent:
    """A file was read: ``content`` as bytes; ``duration`` of the I/O in seconds."""

    path: str
    content: bytes
    user_id: str
    timestamp: float
    duration: float = 0.0
    operation = "read"


@attrs.frozen(slots=True)
class FileWriteEvent:
    """A file was written with ``size`` bytes (``content``, kept for event sourcing)."""

    path: str
    size: int
    user_id: str
    timestamp: float
    duration: float = 0.0
    content: bytes = attrs.field(default=b"", repr=False)
    operation = "write"


@attrs.frozen(slots=True)
class FileDeleteEvent:
    """A file was deleted."""

    path: str
    user_id: str
    timestamp: float
    duration: float = 0.0
    operation = "delete"


@attrs.frozen(slots=True)
class FileActivitySummary:
    """What happened to one path in one time window."""

    path: str
    read_count: int
    write_count: int
    delete_count: int
    timestamp: float


@attrs.frozen(slots=True)
class ProcessingStats:
    """One count window: how many events and their average I/O time."""

    total_events: int
    avg_processing_time: float
    timestamp: float


@attrs.frozen(slots=True)
class SessionSummary:
    """One user session: its key, bounds and counts by operation."""

    key: Any
    start: float
    end: float
    events: int
    reads: int
    writes: int
    deletes: int
