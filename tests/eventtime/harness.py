"""A small driver for event-time window operators, in the manner of Flink's test harness:
push elements and watermarks one by one, read what came out since the last look."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from reactivex import abc
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx

CTX = pfrx.Context("harness", "s1")

Factory = Callable[[Callable[[pfrx.Dropped], None], Callable[[Any], None]], Any]


def event_key(env: pfrx.Envelope) -> Any:
    return env.event[0]


def event_ts(env: pfrx.Envelope) -> Any:
    return env.event[1]


class Harness:
    """One subscription of ``factory(on_drop, on_late)`` fed through a subject."""

    def __init__(
        self,
        factory: Factory,
        *,
        scheduler: TestScheduler | None = None,
        restore: Any = None,
    ) -> None:
        from pfrx import checkpoint  # imported here so that tests fail one by one without it

        self.scheduler = scheduler or TestScheduler()
        self.subject: Subject[Any] = Subject()
        self.windows: list[pfrx.Window] = []
        self.dropped: list[pfrx.Dropped] = []
        self.late: list[Any] = []
        self.completed = False
        self.error: Exception | None = None
        op = factory(self.dropped.append, self.late.append)
        with checkpoint.checkpointing(restore) as self.scope:
            self.subscription: abc.DisposableBase = self.subject.pipe(op).subscribe(
                self.windows.append,
                self._on_error,
                self._on_completed,
                scheduler=self.scheduler,
            )

    def _on_error(self, error: Exception) -> None:
        self.error = error

    def _on_completed(self) -> None:
        self.completed = True

    def element(self, key: Any, ts: Any, tag: Any = None) -> None:
        self.subject.on_next(pfrx.Envelope((key, ts, tag), CTX, 0.0))

    def watermark(self, t: Any, **kwargs: Any) -> None:
        self.subject.on_next(pfrx.Watermark(t, **kwargs))

    def complete(self) -> None:
        self.subject.on_completed()

    def snapshot(self) -> Any:
        return self.scope.snapshot()

    def take(self) -> list[tuple[Any, int, Any, Any]]:
        """``(key, count, start, end)`` of the windows emitted since the last take."""
        out = [(w.key, len(w), w.start, w.end) for w in self.windows]
        self.windows.clear()
        return out

    def take_full(self) -> list[pfrx.Window]:
        out = list(self.windows)
        self.windows.clear()
        return out

    def take_late(self) -> list[Any]:
        out = [env.event[1] for env in self.late]
        self.late.clear()
        return out


@contextmanager
def harness(factory: Factory, **kwargs: Any) -> Iterator[Harness]:
    h = Harness(factory, **kwargs)
    try:
        yield h
    finally:
        h.subscription.dispose()
