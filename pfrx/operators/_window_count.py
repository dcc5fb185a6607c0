"""window_count: tumbling and sliding windows of a fixed number of items.

Plain lists and no per-item observable machinery: a tumbling window costs one list append
per item and one ``Window`` per ``size`` items.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from .._model import Watermark, Window
from ..checkpoint import CheckpointMismatch, current_scope
from ..metrics import BufferGauge, StreamMetrics
from ._checks import positive_int, reporting
from ._shared import DropHandler, OnBatch, OnNext, Prepared, Reporter, fuse


def window_count(
    size: int,
    *,
    slide: int | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_count",
) -> Callable[[Observable[Any]], Observable[Window]]:
    size = positive_int(size, "size")
    step = size if slide is None else positive_int(slide, "slide")
    reporting(on_drop, metrics, name)

    def link(scheduler: abc.SchedulerBase | None) -> Prepared:
        reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
        state: _Tumbling | _Sliding = (
            _Tumbling(size, reporter) if step == size else _Sliding(size, step, reporter)
        )
        scope = current_scope()  # checkpoints: see pfrx.checkpoint
        if scope is not None:
            scope.register(name, state)
        gauge = (
            reporter.metrics.register_buffer(name, state.gauge)
            if reporter.metrics is not None
            else None
        )

        def dispose() -> None:
            state.dispose()
            if gauge is not None:
                gauge.dispose()

        batch = state.wire_batch if isinstance(state, _Tumbling) else None
        return Prepared(state.wire, state.on_error, state.on_completed, dispose, batch)

    # A fused link: per item, one plain call from the link before (see _shared.fuse).
    return fuse(link)


def _unwired(_: Any) -> None:
    raise RuntimeError("window_count link used before it was wired")


class _CountWindows(ABC):
    """What both count-window states share: ending once, and reporting what they hold."""

    __slots__ = ("disposed", "done")
    reporter: Reporter

    def __init__(self) -> None:
        self.done = False
        self.disposed = False

    def on_error(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        self._lose("upstream_error")

    def dispose(self) -> None:
        self.disposed = True
        if not self.done:
            self.done = True
            self._lose("disposed")

    def refuse(self, item: Any) -> None:
        """An item come after the disposal (a stream failed while another link, or another
        thread, still handed it on): reported as dropped (``disposed``), like the items held
        then, never kept in a window nobody will emit."""
        self.reporter.drop(item, "disposed")

    @abstractmethod
    def _lose(self, reason: str) -> None:
        """Report every held item once as dropped with ``reason``."""


class _Tumbling(_CountWindows):
    __slots__ = ("buffer", "forward", "peak", "reporter", "size", "start")

    def __init__(self, size: int, reporter: Reporter) -> None:
        self.size = size
        self.forward: OnNext = _unwired
        self.reporter = reporter
        self.buffer: list[Any] = []
        self.start = 0
        super().__init__()
        self.peak = 0

    def wire(self, forward: OnNext) -> OnNext:
        self.forward = forward
        return self._counting if self.reporter.counters is not None else self._fast

    def wire_batch(self, forward: OnBatch) -> OnBatch:
        """From a batched source: one call per batch, the windows it completes as one list."""
        self.forward = lambda window: forward([window])  # the flush on completion
        reporter, size = self.reporter, self.size
        counting = reporter.counters is not None

        def on_batch(items: list[Any]) -> None:
            if Watermark in map(type, items):  # consumed: event-time progress, not an item
                items = [item for item in items if type(item) is not Watermark]
                if not items:
                    return
            if counting:
                reporter.received(len(items))
            buffer = self.buffer
            buffer.extend(items)
            if len(buffer) < size:
                if len(buffer) > self.peak:
                    self.peak = len(buffer)
                return
            self.peak = size
            windows = []
            at = 0
            while len(buffer) - at >= size:
                start = self.start
                self.start = start + size
                windows.append(Window(None, start, start + size, buffer[at : at + size]))
                at += size
            self.buffer = buffer[at:]
            if counting:
                reporter.emitted(len(windows))
            forward(windows)

        return on_batch

    def _fast(self, item: Any) -> None:
        if type(item) is Watermark:  # consumed: event-time progress, not an item
            return
        if self.disposed:
            self.refuse(item)
            return
        buffer = self.buffer
        buffer.append(item)
        if len(buffer) == self.size:
            self.buffer = []
            start = self.start
            self.start = start + self.size
            self.forward(Window(None, start, start + self.size, buffer))

    def _counting(self, item: Any) -> None:
        if type(item) is Watermark:  # consumed: event-time progress, not an item
            return
        if self.disposed:
            self.refuse(item)
            return
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
            self.forward(Window(None, start, start + self.size, buffer))

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        buffer, self.buffer = self.buffer, []
        if buffer:
            self.reporter.emitted()
            self.forward(Window(None, self.start, self.start + len(buffer), buffer))

    def _lose(self, reason: str) -> None:
        buffer, self.buffer = self.buffer, []
        for item in buffer:
            self.reporter.drop(item, reason)

    def gauge(self) -> BufferGauge:
        return BufferGauge(len(self.buffer), 0, self.peak)

    def snapshot(self) -> dict[str, Any]:
        """The checkpoint member protocol (pfrx.checkpoint): plain data."""
        return {
            "size": self.size,
            "done": self.done,
            "start": self.start,
            "buffer": list(self.buffer),
            "peak": self.peak,
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("size") != self.size or "buffer" not in state:
            raise CheckpointMismatch(f"window_count({self.size}) cannot restore {state!r:.80}")
        self.done, self.start, self.peak = state["done"], state["start"], state["peak"]
        self.buffer = list(state["buffer"])


class _Sliding(_CountWindows):
    """Windows start at item indices ``0, slide, 2*slide, ...`` and hold ``size`` items.

    With ``slide > size`` the items between two windows belong to none: each is dropped
    with reason ``between_windows``.
    """

    __slots__ = ("emitted_end", "forward", "index", "open", "peak", "reporter", "size", "slide")

    def __init__(self, size: int, slide: int, reporter: Reporter) -> None:
        self.size = size
        self.slide = slide
        self.forward: OnNext = _unwired
        self.reporter = reporter
        self.open: deque[tuple[int, list[Any]]] = deque()
        self.index = 0
        # One past the index of the last item of the last emitted window: the items before it
        # have left in a window (or were dropped between windows), so they are never lost.
        self.emitted_end = 0
        super().__init__()
        self.peak = 0

    def wire(self, forward: OnNext) -> OnNext:
        self.forward = forward
        return self.on_next

    def on_next(self, item: Any) -> None:
        if type(item) is Watermark:  # consumed: event-time progress, not an item
            return
        if self.disposed:
            self.refuse(item)
            return
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
            self.emitted_end = start + self.size
            reporter.emitted()
            self.forward(Window(None, start, start + self.size, items))

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        # Every open window holds at least the item that opened it.
        while self.open:
            start, items = self.open.popleft()
            self.reporter.emitted()
            self.forward(Window(None, start, start + len(items), items))

    def _lose(self, reason: str) -> None:
        # The oldest open window holds every item still held (the others are its suffixes);
        # those it shares with an emitted window have left already, so they are not lost.
        if not self.open:
            return
        start, items = self.open[0]
        self.open.clear()
        for item in items[max(0, self.emitted_end - start) :]:
            self.reporter.drop(item, reason)

    def gauge(self) -> BufferGauge:
        held = self.index - self.open[0][0] if self.open else 0
        return BufferGauge(held, 0, self.peak)

    def snapshot(self) -> dict[str, Any]:
        """The checkpoint member protocol (pfrx.checkpoint): plain data."""
        return {
            "size": self.size,
            "slide": self.slide,
            "done": self.done,
            "index": self.index,
            "open": [(start, list(items)) for start, items in self.open],
            "emitted_end": self.emitted_end,
            "peak": self.peak,
        }

    def restore(self, state: dict[str, Any]) -> None:
        if (state.get("size"), state.get("slide")) != (self.size, self.slide):
            raise CheckpointMismatch(
                f"window_count({self.size}, slide={self.slide}) cannot restore {state!r:.80}"
            )
        self.done, self.index, self.peak = state["done"], state["index"], state["peak"]
        self.open = deque((start, list(items)) for start, items in state["open"])
        # Windows leave in order: the last one emitted started one slide before the oldest
        # open one (a checkpoint that predates the field is read that way).
        first = self.open[0][0] if self.open else self.index
        derived = first - self.slide + self.size if first >= self.slide else 0
        self.emitted_end = state.get("emitted_end", max(0, derived))
