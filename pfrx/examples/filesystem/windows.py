"""The guide's ``FileSystem.FileWindowing``: per-path, per-count and per-user summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from reactivex import Observable, abc
from reactivex import operators as ops

from ... import Envelope, Window
from ... import operators as pf
from .events import FileActivitySummary, ProcessingStats, SessionSummary

__all__ = ["CountWindow", "FileWindowing", "SessionWindow", "TimeWindow"]


def _operation(event: Any) -> str | None:
    operation = getattr(type(event), "operation", None)
    return operation if isinstance(operation, str) else None


class TimeWindow:
    """``FileWindowing.TimeWindow``: per-path activity in tumbling time windows.

    Used as an operator on envelopes of intents or ``File*Event`` records; emits one tuple of
    `FileActivitySummary` (sorted by path) per non-empty window.
    """

    window_type = "time"
    window_size = 60.0  # seconds: the guide's 60000 ms

    def __init__(
        self, span: float | timedelta | None = None, *, scheduler: abc.SchedulerBase | None = None
    ) -> None:
        self.span = span if span is not None else self.window_size
        self.scheduler = scheduler

    def process_window(
        self, events: Iterable[Any], timestamp: float = 0.0
    ) -> tuple[FileActivitySummary, ...]:
        counts: dict[str, list[int]] = {}
        for event in events:
            row = counts.setdefault(event.path, [0, 0, 0])
            operation = _operation(event)
            if operation == "read":
                row[0] += 1
            elif operation == "write":
                row[1] += 1
            elif operation == "delete":
                row[2] += 1
        return tuple(
            FileActivitySummary(path, r, w, d, timestamp)
            for path, (r, w, d) in sorted(counts.items())
        )

    def __call__(self, source: Observable[Envelope]) -> Observable[tuple[FileActivitySummary, ...]]:
        def summarize(window: Window) -> tuple[FileActivitySummary, ...]:
            return self.process_window(window.events, window.end)

        return source.pipe(
            pf.window_time(self.span, scheduler=self.scheduler),
            ops.map(summarize),
        )


class CountWindow:
    """``FileWindowing.CountWindow``: `ProcessingStats` every ``size`` events."""

    window_type = "count"
    window_size = 100

    def __init__(self, size: int | None = None) -> None:
        self.size = size if size is not None else self.window_size

    def process_window(self, events: Sequence[Any], timestamp: float = 0.0) -> ProcessingStats:
        durations = [d for d in (getattr(e, "duration", None) for e in events) if d is not None]
        average = sum(durations) / len(durations) if durations else 0.0
        return ProcessingStats(len(events), average, timestamp)

    def __call__(self, source: Observable[Envelope]) -> Observable[ProcessingStats]:
        def summarize(window: Window) -> ProcessingStats:
            stamp = window.items[-1].timestamp if window.items else 0.0
            return self.process_window(window.events, stamp)

        return source.pipe(
            pf.window_count(self.size),
            ops.map(summarize),
        )


class SessionWindow:
    """Session windows per user (the guide's ``@window_type :session``).

    A session closes after ``gap`` without an event of its user (or ``max_duration`` after
    its first); each emits a `SessionSummary`.
    """

    window_type = "session"
    window_size = 3600.0  # seconds: the guide's 3600000 ms

    def __init__(
        self,
        gap: float | timedelta | None = None,
        *,
        max_duration: float | timedelta | None = None,
        key: Callable[[Envelope], Any] | None = None,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.gap = gap if gap is not None else self.window_size
        self.max_duration = max_duration
        self.key = key or (lambda envelope: envelope.context.user_id)
        self.scheduler = scheduler

    def process_window(self, window: Window) -> SessionSummary:
        reads = writes = deletes = 0
        for event in window.events:
            operation = _operation(event)
            if operation == "read":
                reads += 1
            elif operation == "write":
                writes += 1
            elif operation == "delete":
                deletes += 1
        return SessionSummary(
            window.key, window.start, window.end, len(window), reads, writes, deletes
        )

    def __call__(self, source: Observable[Envelope]) -> Observable[SessionSummary]:
        return source.pipe(
            pf.window_session(
                self.gap,
                key=self.key,
                max_duration=self.max_duration,
                scheduler=self.scheduler,
            ),
            ops.map(self.process_window),
        )


class FileWindowing:
    """Namespace for the guide's ``FileSystem.FileWindowing``."""

    TimeWindow = TimeWindow
    CountWindow = CountWindow
    SessionWindow = SessionWindow
