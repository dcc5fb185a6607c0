"""window_count: tumbling and sliding windows of a fixed number of items.

Plain lists and no per-item observable machinery: a tumbling window costs one list append
per item and one ``Window`` per ``size`` items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from .._model import Window
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value!r}")
    return value


def window_count(
    size: int,
    *,
    slide: int | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_count",
) -> Callable[[Observable[Any]], Observable[Window]]:
    size = _count(size, "size")
    step = size if slide is None else _count(slide, "slide")

    def operator(source: Observable[Any]) -> Observable[Window]:
        def subscribe(
            observer: abc.ObserverBase[Window], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
            if step == size:
                state: _Tumbling | _Sliding = _Tumbling(size, observer, reporter)
            else:
                state = _Sliding(size, step, observer, reporter)
            gauge = (
                reporter.metrics.register_buffer(name, state.gauge)
                if reporter.metrics is not None
                else Disposable()
            )
            upstream = source.subscribe(
                state.on_next, state.on_error, state.on_completed, scheduler=scheduler
            )
            return CompositeDisposable(upstream, Disposable(state.dispose), gauge)

        return Observable(subscribe)

    return operator


class _Tumbling:
    __slots__ = ("buffer", "done", "observer", "on_next", "peak", "reporter", "size", "start")

    def __init__(self, size: int, observer: abc.ObserverBase[Window], reporter: Reporter) -> None:
        self.size = size
        self.observer = observer
        self.reporter = reporter
        self.buffer: list[Any] = []
        self.start = 0
        self.done = False
        self.peak = 0
        self.on_next = self._counting if reporter.stage is not None else self._fast

    def _fast(self, item: Any) -> None:
        buffer = self.buffer
        buffer.append(item)
        if len(buffer) == self.size:
            self.buffer = []
            start = self.start
            self.start = start + self.size
            self.observer.on_next(Window(None, start, start + self.size, buffer))

    def _counting(self, item: Any) -> None:
        self.reporter.received()
        buffer = self.buffer
        buffer.append(item)
        if len(buffer) > self.peak:
            self.peak = len(buffer)
        if len(buffer) == self.size:
            self.buffer = []
            start = self.start
            self.start = start + self.size
            self.reporter.emitted()
            self.observer.on_next(Window(None, start, start + self.size, buffer))

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        buffer, self.buffer = self.buffer, []
        if buffer:
            self.reporter.emitted()
            self.observer.on_next(Window(None, self.start, self.start + len(buffer), buffer))
        self.observer.on_completed()

    def on_error(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        self._lose("upstream_error")
        self.observer.on_error(error)

    def dispose(self) -> None:
        if not self.done:
            self.done = True
            self._lose("disposed")

    def _lose(self, reason: str) -> None:
        buffer, self.buffer = self.buffer, []
        for item in buffer:
            self.reporter.drop(item, reason)

    def gauge(self) -> BufferGauge:
        return BufferGauge(len(self.buffer), 0, self.peak)


class _Sliding:
    """Windows start at item indices ``0, slide, 2*slide, ...`` and hold ``size`` items.

    With ``slide > size`` the items between two windows belong to none: each is dropped
    with reason ``between_windows``.
    """

    __slots__ = ("done", "index", "observer", "open", "peak", "reporter", "size", "slide")

    def __init__(
        self, size: int, slide: int, observer: abc.ObserverBase[Window], reporter: Reporter
    ) -> None:
        self.size = size
        self.slide = slide
        self.observer = observer
        self.reporter = reporter
        self.open: deque[tuple[int, list[Any]]] = deque()
        self.index = 0
        self.done = False
        self.peak = 0

    def on_next(self, item: Any) -> None:
        reporter = self.reporter
        reporter.received()
        index = self.index
        self.index = index + 1
        open_ = self.open
        if index % self.slide == 0:
            open_.append((index, []))
        elif not open_:
            reporter.drop(item, "between_windows")
            return
        for _, items in open_:
            items.append(item)
        held = index + 1 - open_[0][0]
        if held > self.peak:
            self.peak = held
        start, items = open_[0]
        if len(items) == self.size:
            open_.popleft()
            reporter.emitted()
            self.observer.on_next(Window(None, start, start + self.size, items))

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        # Every open window holds at least the item that opened it.
        while self.open:
            start, items = self.open.popleft()
            self.reporter.emitted()
            self.observer.on_next(Window(None, start, start + len(items), items))
        self.observer.on_completed()

    def on_error(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        self._lose("upstream_error")
        self.observer.on_error(error)

    def dispose(self) -> None:
        if not self.done:
            self.done = True
            self._lose("disposed")

    def _lose(self, reason: str) -> None:
        # The oldest open window holds every item still held (the others are its suffixes).
        items = self.open[0][1] if self.open else []
        self.open.clear()
        for item in items:
            self.reporter.drop(item, reason)

    def gauge(self) -> BufferGauge:
        held = self.index - self.open[0][0] if self.open else 0
        return BufferGauge(held, 0, self.peak)
