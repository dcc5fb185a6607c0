"""window_time: tumbling and sliding windows aligned to the clock, in processing or event time.

Window ``k`` covers ``[k * slide, k * slide + span)`` (``slide == span`` when tumbling), so
windows are aligned to multiples of ``slide`` whatever the subscription time. Windows are
created by their first item (an empty window is never emitted) and kept in a dict by ``k``;
a heap of open ``k`` gives the close order. See `._windowing` for time and watermarks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from .._clock import positive_seconds
from .._model import Window
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter
from ._windowing import (
    Duration,
    EventTime,
    LateHandler,
    TimedWindows,
    Watermark,
    read_timestamp,
    timed_operator,
)


def window_time(
    span: Duration,
    *,
    slide: Duration | None = None,
    scheduler: abc.SchedulerBase | None = None,
    timestamp: Callable[[Any], float] | None = None,
    allowed_lateness: Duration = 0.0,
    idle_timeout: Duration | None = None,
    on_late: LateHandler | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_time",
) -> Callable[[Observable[Any]], Observable[Window]]:
    span_s = positive_seconds(span, "span")
    slide_s = span_s if slide is None else positive_seconds(slide, "slide")
    event = EventTime(timestamp, allowed_lateness, idle_timeout, on_late)

    def make_state(
        sched: abc.SchedulerBase, observer: abc.ObserverBase[Window], reporter: Reporter
    ) -> TimedWindows:
        return _TimeWindows(span_s, slide_s, event, sched, observer, reporter)

    return timed_operator(name, scheduler, on_drop, metrics, make_state)


class _TimeWindows(TimedWindows):
    """The windows of one subscription. Every method runs under ``lock``."""

    def __init__(
        self,
        span: float,
        slide: float,
        event: EventTime,
        scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[Window],
        reporter: Reporter,
    ) -> None:
        super().__init__(scheduler, observer, reporter)
        self.span = span
        self.slide = slide
        self.sliding = slide != span
        self.event = event
        # k -> items (tumbling) or (items, "this is the item's first window" flags) (sliding)
        self.windows: dict[int, Any] = {}
        self.heap: list[int] = []
        self.horizon = -math.inf  # processing time: the clock as far as windows have closed
        self.watermark = Watermark(event.lateness, event.idle_timeout)
        self.slots = 0
        self.peak = 0

    # -- window arithmetic ---------------------------------------------------------------
    def _index(self, t: float, width: float) -> int:
        k = math.floor(t / width)
        if k * width > t:
            k -= 1
        elif (k + 1) * width <= t:
            k += 1
        return k

    def _end(self, k: int) -> float:
        return k * self.slide + self.span

    def _open(self, k: int) -> None:
        heapq.heappush(self.heap, k)
        if self.event.timestamp is None:
            self.timer.wake_at(self._end(k))

    def _assign(self, t: float, item: Any) -> bool:
        windows = self.windows
        if not self.sliding:
            k = self._index(t, self.span)
            items = windows.get(k)
            if items is None:
                items = windows[k] = []
                self._open(k)
            items.append(item)
            added = 1
        else:
            k = self._index(t, self.slide)
            ks = []
            while self._end(k) > t:
                ks.append(k)
                k -= 1
            if not ks:
                return False
            lowest = ks[-1]
            for k in ks:
                window: tuple[list[Any], list[bool]] | None = windows.get(k)
                if window is None:
                    window = windows[k] = ([], [])  # items, first-window flags
                    self._open(k)
                window[0].append(item)
                window[1].append(k == lowest)
            added = len(ks)
        self.slots += added
        if self.slots > self.peak:
            self.peak = self.slots
        return True

    # -- closing -------------------------------------------------------------------------
    def _close_until(self, watermark: float) -> None:
        heap = self.heap
        while heap and self._end(heap[0]) <= watermark:
            self._emit(heapq.heappop(heap))

    def _emit(self, k: int) -> None:
        window = self.windows.pop(k)
        items = window[0] if self.sliding else window
        self.slots -= len(items)
        start = k * self.slide
        self.reporter.emitted()
        self.observer.on_next(Window(None, start, start + self.span, items))

    def on_wake(self, at: float) -> None:
        if self.done:
            return
        if self.event.timestamp is None:
            if at > self.horizon:
                self.horizon = at
            self._close_until(at)
            if self.heap:
                self.timer.wake_at(self._end(self.heap[0]))
        else:
            if self.watermark.on_idle_wake(at):
                self._close_until(self.watermark.value)
            if self.heap:
                self.timer.wake_at(self.watermark.idle_wake(self._end(self.heap[0])))

    # -- notifications -------------------------------------------------------------------
    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                return
            reporter = self.reporter
            reporter.received()
            event = self.event
            if event.timestamp is None:
                t = self.now()
                if t < self.horizon:
                    t = self.horizon  # a timer already declared this instant past
                if not self._assign(t, item):
                    reporter.drop(item, "between_windows")
                self.horizon = t
                self._close_until(t)  # a timer running late must not hold a window open
                return
            ts, reason, failed = read_timestamp(event.timestamp, item)
            if ts is None:
                if failed:
                    reporter.error()
                reporter.drop(item, reason or "invalid_timestamp")
                return
            watermark = self.watermark
            if ts < watermark.value:
                reporter.drop(item, "late")
                if event.on_late is not None:
                    event.on_late(item)
                return
            moved = watermark.observe(ts, self.now())
            if not self._assign(ts, item):
                reporter.drop(item, "between_windows")
            if moved:
                self._close_until(watermark.value)
            if event.idle_timeout is not None and self.heap:
                self.timer.wake_at(watermark.idle_wake(self._end(self.heap[0])))

    def flush(self) -> None:
        self._close_until(math.inf)

    def lose(self, reason: str) -> None:
        """Report every item still held exactly once, then forget the windows."""
        ks = sorted(self.windows)
        windows, self.windows = self.windows, {}
        self.heap = []
        self.slots = 0
        for k in ks:
            if not self.sliding:
                for item in windows[k]:
                    self.reporter.drop(item, reason)
                continue
            # An item sits in consecutive windows; report it from the lowest one still open.
            items, firsts = windows[k]
            for item, first in zip(items, firsts, strict=True):
                if first or k == ks[0]:
                    self.reporter.drop(item, reason)

    def gauge(self) -> BufferGauge:
        return BufferGauge(self.slots, 0, self.peak)
