"""window_time: tumbling and sliding windows aligned to the clock, per key, in processing or
event time, with allowed lateness.

Window ``k`` covers ``[offset + k * slide, offset + k * slide + span)`` (``slide == span``
when tumbling, and a tumbling window ends exactly where the next starts). Open windows live
in ``open[k][key]`` — one dict per window index, holding that window for every key in
creation order — and a heap of open ``k`` gives the firing order, so firing costs one heap
operation per window index, not per key. A window that fired stays in ``fired[k][key]``
while ``allowed_lateness`` lets late items re-fire it, then is purged. See `._windowing`
for time and watermarks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from typing import Any

from reactivex import Observable, abc

from .._clock import offset_seconds, positive_seconds, windows_per_item
from .._model import Envelope, Watermark, Window
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter
from ._transform import failure_reason
from ._windowing import (
    Duration,
    EventClock,
    EventTime,
    LateHandler,
    TimedWindows,
    check_common,
    hashable_key,
    pack_items,
    split,
    timed_operator,
    unpack_items,
)


def window_time(
    span: Duration,
    *,
    slide: Duration | None = None,
    key: Callable[[Any], Any] | None = None,
    offset: Duration = 0.0,
    scheduler: abc.SchedulerBase | None = None,
    timestamp: Callable[[Any], Any] | None = None,
    out_of_orderness: Duration = 0.0,
    allowed_lateness: Duration = 0.0,
    idle_timeout: Duration | None = None,
    on_late: LateHandler | None = None,
    watermark: str = "shared",
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_time",
) -> Callable[[Observable[Any]], Observable[Window]]:
    check_common(scheduler, on_drop, metrics, name, key=key, timestamp=timestamp)
    if not isinstance(watermark, str):
        raise TypeError(f'watermark must be "shared" or "per_key", not {watermark!r}')
    if watermark not in ("shared", "per_key"):
        raise ValueError(f'watermark must be "shared" or "per_key", not {watermark!r}')
    per_key = watermark == "per_key"
    if per_key and (key is None or timestamp is None):
        raise ValueError('watermark="per_key" needs key= and timestamp= (event time per key)')
    span_s = positive_seconds(span, "span")
    slide_s = span_s if slide is None else positive_seconds(slide, "slide")
    windows_per_item(span_s, slide_s)
    offset_s = offset_seconds(offset, slide_s)
    event = EventTime(timestamp, out_of_orderness, allowed_lateness, idle_timeout, on_late)

    def make_state(
        sched: abc.SchedulerBase, observer: abc.ObserverBase[Window], reporter: Reporter
    ) -> TimedWindows:
        cls = _PerKeyTimeWindows if per_key else _TimeWindows
        return cls(span_s, slide_s, offset_s, key, event, sched, observer, reporter)

    return timed_operator(name, scheduler, on_drop, metrics, make_state)


class _TimeWindows(TimedWindows):
    """The windows of one subscription. Every method runs under ``lock``.

    A window is a list of items (tumbling) or ``[items, firsts]`` (sliding: ``firsts[i]``
    says the window is the lowest one item ``i`` was put in, so that an item in several
    windows is reported lost at most once, and only if it was never emitted). A fired
    window kept for late firings is ``[items, firsts, revision]``.
    """

    def __init__(
        self,
        span: float,
        slide: float,
        offset: float,
        key_of: Callable[[Any], Any] | None,
        event: EventTime,
        scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[Window],
        reporter: Reporter,
    ) -> None:
        super().__init__(scheduler, observer, reporter)
        self.span = span
        self.slide = slide
        self.offset = offset
        self.sliding = slide != span
        self.key_of = key_of
        self.event = event
        self.lateness = event.lateness
        self.open: dict[int, dict[Any, Any]] = {}
        self.heap: list[int] = []  # open window indices
        self.fired: dict[int, dict[Any, list[Any]]] = {}
        self.purge_heap: list[int] = []  # fired window indices kept for late firings
        self.horizon = -math.inf  # processing time: the clock as far as windows have closed
        self.clock = EventClock(event)
        self.slots = 0
        self.peak = 0

    def settings(self) -> tuple[Any, ...]:
        event = self.event
        return (
            "window_time",
            self.span,
            self.slide,
            self.offset,
            self.key_of is not None,
            event.timestamp is not None,
            event.out_of_orderness,
            event.lateness,
        )

    # -- window arithmetic ---------------------------------------------------------------
    def _index(self, t: float) -> int:
        """The highest ``k`` whose window starts at or before ``t``.

        In floats the floor of the division can be off by more than one step (huge or
        negative times): corrected until ``start(k) <= t < start(k + 1)``, a few steps at
        most (past them, the times are too coarse for the slide to tell windows apart).
        """
        offset, slide = self.offset, self.slide
        k = int((t - offset) // slide)
        for _ in range(4):
            if offset + k * slide > t:
                k -= 1
            elif offset + (k + 1) * slide <= t:
                k += 1
            else:
                break
        return k

    def _end(self, k: int) -> float:
        if self.sliding:
            return self.offset + k * self.slide + self.span
        # Tumbling: the next window's start, to the bit, so that the windows tile the line
        # (``start + span`` may round to at or below an item that belongs to window k).
        return self.offset + (k + 1) * self.slide

    def _indices(self, t: float) -> list[int]:
        """Every window holding time ``t``, highest first (empty between sliding windows)."""
        k = self._index(t)
        ks = []
        while self._end(k) > t:
            ks.append(k)
            k -= 1
        return ks

    def _bounds(self, t: float) -> tuple[tuple[Any, Any], ...]:
        """``(start, end)`` of every window holding time ``t``, earliest first, as reported."""
        out, offset, slide = self.clock.out, self.offset, self.slide
        ks = self._indices(t) if self.sliding else [self._index(t)]
        return tuple((out(offset + k * slide), out(self._end(k))) for k in reversed(ks))

    def _count(self, added: int) -> None:
        self.slots += added
        if self.slots > self.peak:
            self.peak = self.slots

    # -- putting items in windows ----------------------------------------------------------
    def _add_open(self, k: int, key: Any, item: Any, first: bool) -> None:
        bucket = self.open.get(k)
        if bucket is None:
            bucket = self.open[k] = {}
            heapq.heappush(self.heap, k)
            if self.event.timestamp is None:
                self.timer.wake_at(self._end(k))
        window = bucket.get(key)
        if not self.sliding:
            if window is None:
                bucket[key] = [item]
            else:
                window.append(item)
        elif window is None:
            bucket[key] = [[item], [first]]
        else:
            window[0].append(item)
            window[1].append(first)

    def _add_fired(self, k: int, key: Any, item: Any, first: bool) -> None:
        """A late item within the allowed lateness: the window fires again, whole."""
        bucket = self.fired.get(k)
        if bucket is None:
            bucket = self.fired[k] = {}
            heapq.heappush(self.purge_heap, k)
        window = bucket.get(key)
        if window is None:
            window = bucket[key] = [[item], [first], 0]  # a window's first firing, though late
        else:
            window[0].append(item)
            if window[1] is not None:
                window[1].append(first)
            window[2] += 1
        self._emit(k, key, window[0], window[2])

    def _place(self, t: float, key: Any, item: Any) -> bool:
        """Put an on-time item in its windows; False when no window holds ``t``."""
        if not self.sliding:
            self._add_open(self._index(t), key, item, True)
            self._count(1)
            return True
        ks = self._indices(t)
        if not ks:
            return False
        lowest = ks[-1]
        for k in ks:
            self._add_open(k, key, item, k == lowest)
        self._count(len(ks))
        return True

    def _place_event(self, ts: float, key: Any, item: Any) -> str | None:
        """Put an event-time item in every window of it that is not purged; re-fire those
        that fired. The drop reason when no window takes it."""
        watermark = self.clock.value
        ks = self._indices(ts) if self.sliding else [self._index(ts)]
        if not ks:
            return "between_windows"
        lateness = self.lateness
        live = [k for k in ks if self._end(k) + lateness > watermark]
        if not live:
            return "late"
        lowest = live[-1]
        for k in reversed(live):  # lowest window first: the order they fire in
            if self._end(k) <= watermark:
                self._add_fired(k, key, item, k == lowest)
            else:
                self._add_open(k, key, item, k == lowest)
        self._count(len(live))
        return None

    # -- firing and purging ----------------------------------------------------------------
    def _emit(self, k: int, key: Any, items: list[Any], revision: int) -> None:
        start = self.offset + k * self.slide
        out = self.clock.out
        self.reporter.emitted()
        self.observer.on_next(Window(key, out(start), out(self._end(k)), items, revision))

    def _fire_until(self, watermark: float) -> None:
        heap, end = self.heap, self._end
        keep = self.lateness > 0 and self.event.timestamp is not None
        while heap and end(heap[0]) <= watermark:
            k = heapq.heappop(heap)
            bucket = self.open.pop(k)
            for key, window in bucket.items():
                items = window[0] if self.sliding else window
                self._emit(k, key, items, 0)
            if keep and end(k) + self.lateness > watermark:
                kept = self.fired.setdefault(k, {})
                if not kept:
                    heapq.heappush(self.purge_heap, k)
                for key, window in bucket.items():
                    kept[key] = [window[0], window[1], 0] if self.sliding else [window, None, 0]
            else:
                self._forget(bucket, 0 if self.sliding else None)
        self._purge_until(watermark)

    def _purge_until(self, watermark: float) -> None:
        heap, end, lateness = self.purge_heap, self._end, self.lateness
        while heap and end(heap[0]) + lateness <= watermark:
            self._forget(self.fired.pop(heapq.heappop(heap)), 0)

    def _forget(self, bucket: dict[Any, Any], column: int | None) -> None:
        if column is None:
            self.slots -= sum(len(items) for items in bucket.values())
        else:
            self.slots -= sum(len(window[column]) for window in bucket.values())

    def on_wake(self, at: float) -> None:
        if self.done:
            return
        if self.event.timestamp is None:
            if at > self.horizon:
                self.horizon = at
            self._fire_until(at)
            if self.heap:
                self.timer.wake_at(self._end(self.heap[0]))
        else:
            if self.clock.on_idle_wake(at):
                self._fire_until(self.clock.value)
            self._wake_for_idle()

    def _wake_for_idle(self) -> None:
        if self.event.idle_timeout is None:
            return
        due = [self._end(self.heap[0])] if self.heap else []
        if self.purge_heap:
            due.append(self._end(self.purge_heap[0]) + self.lateness)
        if due:
            self.timer.wake_at(self.clock.idle_wake(min(due)))

    # -- notifications -------------------------------------------------------------------
    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                self.refuse(item)
                return
            if type(item) is Watermark:
                self._on_watermark(item)
                return
            reporter = self.reporter
            if reporter.counters is not None:
                reporter.received()
            key = None
            key_of = self.key_of
            if key_of is not None:
                try:
                    key = key_of(item)
                except Exception as exc:
                    self._failed(item, exc)
                    return
                try:
                    hash(key)
                except Exception:
                    reporter.drop(item, "unhashable_key")
                    return
            timestamp = self.event.timestamp
            if timestamp is None:
                if self.ended:  # the key function just disposed us
                    self.refuse(item)
                    return
                self._next_processing(item, key)
                return
            clock = self.clock
            try:
                value = timestamp(item)
            except Exception as exc:
                self._failed(item, exc)
                return
            if self.ended:  # the key or timestamp function just disposed us
                self.refuse(item)
                return
            ts: float | None
            if type(value) is float and clock.datetimes is False and value - value == 0:
                ts = value  # the common case, checked inline
            else:
                ts = clock.convert(value)
                if ts is None:
                    reporter.drop(item, "invalid_timestamp")
                    return
            if ts >= clock.value and not self.sliding:
                # On time, tumbling: the common case, inline (see _add_open).
                offset, slide = self.offset, self.slide
                k = int((ts - offset) // slide)
                if not offset + k * slide <= ts < offset + (k + 1) * slide:
                    k = self._index(ts)  # the floor was off (floats)
                bucket = self.open.get(k)
                if bucket is None:
                    bucket = self.open[k] = {}
                    heapq.heappush(self.heap, k)
                window = bucket.get(key)
                if window is None:
                    bucket[key] = [item]
                else:
                    window.append(item)
                self.slots += 1
                if self.slots > self.peak:
                    self.peak = self.slots
            else:
                reason = self._place_event(ts, key, item)
                if reason is not None:
                    if reason != "late":
                        reporter.drop(item, reason)
                        return
                    reporter.drop_missed(item, reason, self._bounds(ts))
                    if self.event.on_late is not None:
                        self.event.on_late(item)
                    return
            if self.event.idle_timeout is None:
                if ts > clock.max_ts and clock.observe(ts, 0.0):
                    self._fire_until(clock.value)
            else:
                if clock.observe(ts, self.now()):
                    self._fire_until(clock.value)
                self._wake_for_idle()

    def _next_processing(self, item: Any, key: Any) -> None:
        t = self.now()
        if t < self.horizon:
            t = self.horizon  # a timer already declared this instant past
        if not self._place(t, key, item):
            self.reporter.drop(item, "between_windows")
        self.horizon = t
        self._fire_until(t)  # a timer running late must not hold a window open

    def _failed(self, item: Any, exc: Exception) -> None:
        """A key or timestamp function raised: the exception's text is the reason."""
        if not isinstance(item, Envelope):
            self.reporter.drop(item, "not_an_envelope")
            return
        self.reporter.error()
        self.reporter.drop(item, failure_reason(exc))

    def _on_watermark(self, mark: Watermark) -> None:
        """Consumed, never emitted: processing time ignores it."""
        if self.event.timestamp is None:
            return
        if self.clock.on_mark(mark, self.now()):
            self._fire_until(self.clock.value)
        self._wake_for_idle()

    def flush(self) -> None:
        self._fire_until(math.inf)

    def lose(self, reason: str) -> None:
        """Report every item never emitted, exactly once, then forget the windows."""
        open_, self.open = self.open, {}
        self.heap, self.fired, self.purge_heap = [], {}, []
        self.slots = 0
        for k in sorted(open_):
            for window in open_[k].values():
                if not self.sliding:
                    for item in window:
                        self.reporter.drop(item, reason)
                    continue
                # An item's lowest window fires first: if it is still open, the item has
                # never left; it is reported from there only.
                for item, first in zip(window[0], window[1], strict=True):
                    if first:
                        self.reporter.drop(item, reason)

    def gauge(self) -> BufferGauge:
        return BufferGauge(self.slots, 0, self.peak)

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        open_, fired = self.open, self.fired
        rows = [(k, key, -1, window) for k in sorted(open_) for key, window in open_[k].items()]
        rows += [(k, key, w[2], w) for k in sorted(fired) for key, w in fired[k].items()]
        return {
            "clock": self.clock.snapshot(),
            "horizon": self.horizon,
            **_window_columns(rows, self.sliding),
            "slots": self.slots,
            "peak": self.peak,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.clock.restore(state["clock"])
        self.horizon = state["horizon"]
        sliding = self.sliding
        opened: dict[int, dict[Any, Any]] = {}
        fired: dict[int, dict[Any, list[Any]]] = {}
        for k, key, revision, items, flags in _window_rows(state, sliding):
            if revision < 0:
                bucket = opened.get(k)
                if bucket is None:
                    bucket = opened[k] = {}
                bucket[key] = [items, flags] if sliding else items
            else:
                bucket = fired.get(k)
                if bucket is None:
                    bucket = fired[k] = {}
                bucket[key] = [items, flags, revision]
        self.open, self.fired = opened, fired
        self.heap = sorted(opened)
        self.purge_heap = sorted(fired)
        self.slots = state["slots"]
        self.peak = state["peak"]
        if self.event.timestamp is None:
            if self.heap:
                self.timer.wake_at(self._end(self.heap[0]))
        else:
            self._wake_for_idle()


class _KeyWindows:
    """One key's windows under per-key watermarks: open and fired windows by index (as in
    `_TimeWindows`), heaps of their indices, and the key's highest timestamp."""

    __slots__ = ("fired", "heap", "max_ts", "open", "purge")

    def __init__(self) -> None:
        self.open: dict[int, Any] = {}
        self.heap: list[int] = []
        self.fired: dict[int, list[Any]] = {}
        self.purge: list[int] = []
        self.max_ts = -math.inf


class _PerKeyTimeWindows(_TimeWindows):
    """Event-time windows where each key has its own watermark: the highest timestamp of
    that key minus ``out_of_orderness``, and at least the shared one (explicit watermarks,
    the idle clock). An item moves only its key's watermark; a shared move visits every key.
    Window arithmetic, emission and lateness are those of `_TimeWindows`.

    ``open_ends`` / ``fired_ends`` count, per window index, the keys with that window open
    (fired and kept), with lazy heaps of those indices: the next deadline for the idle clock
    without visiting every key.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.keys: dict[Any, _KeyWindows] = {}
        self.open_ends: dict[int, int] = {}
        self.open_heap: list[int] = []
        self.fired_ends: dict[int, int] = {}
        self.fired_heap: list[int] = []

    def settings(self) -> tuple[Any, ...]:
        return (*super().settings(), "per_key")

    def _watermark_of(self, windows: _KeyWindows) -> float:
        own = windows.max_ts - self.event.out_of_orderness
        shared = self.clock.value
        return own if own > shared else shared

    @staticmethod
    def _up(counts: dict[int, int], heap: list[int], k: int) -> None:
        n = counts.get(k, 0)
        counts[k] = n + 1
        if not n:
            heapq.heappush(heap, k)

    @staticmethod
    def _down(counts: dict[int, int], k: int) -> None:
        n = counts[k] - 1
        if n:
            counts[k] = n
        else:
            del counts[k]

    # -- items ---------------------------------------------------------------------------
    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                self.refuse(item)
                return
            if type(item) is Watermark:
                self._on_watermark(item)
                return
            reporter = self.reporter
            reporter.received()
            ok, key = hashable_key(reporter, self.key_of, item)  # type: ignore[arg-type]
            if not ok:
                return
            clock = self.clock
            ts, reason, failed = clock.read(item)
            if ts is None:
                if failed:
                    reporter.error()
                reporter.drop(item, reason or "invalid_timestamp")
                return
            if self.ended:  # the key or timestamp function just disposed us
                self.refuse(item)
                return
            windows = self.keys.get(key)
            if windows is None:
                windows = _KeyWindows()
            wm = self._watermark_of(windows)
            offset, slide = self.offset, self.slide
            k = int((ts - offset) // slide)
            if (
                not self.sliding
                and ts >= wm
                and offset + k * slide <= ts < offset + (k + 1) * slide
            ):
                # On time, tumbling: the common case, inline (see _put).
                window = windows.open.get(k)
                if window is None:
                    windows.open[k] = [item]
                    heapq.heappush(windows.heap, k)
                    self._up(self.open_ends, self.open_heap, k)
                else:
                    window.append(item)
                self.slots += 1
                if self.slots > self.peak:
                    self.peak = self.slots
            else:
                reason = self._put(windows, key, ts, item, wm)
                if reason is not None:
                    if reason == "late":
                        reporter.drop_missed(item, reason, self._bounds(ts))
                        if self.event.on_late is not None:
                            self.event.on_late(item)
                    else:
                        reporter.drop(item, reason)
                    return
            self.keys[key] = windows
            if ts > windows.max_ts:
                windows.max_ts = ts
                wm = self._watermark_of(windows)
                if (windows.heap and self._end(windows.heap[0]) <= wm) or (
                    windows.purge and self._end(windows.purge[0]) + self.lateness <= wm
                ):
                    emitted: list[tuple[int, int, Any, Any]] = []
                    self._due(key, windows, wm, 0, emitted)
                    self._emit_all(emitted)
            if self.event.idle_timeout is not None:
                # Items move only their key's watermark; the idle clock starts from the
                # highest any key reached.
                clock.arrive(ts, self.now())
                self._wake_for_idle()

    def _put(self, windows: _KeyWindows, key: Any, ts: float, item: Any, wm: float) -> str | None:
        """`_TimeWindows._place_event` against the key's own watermark."""
        ks = self._indices(ts) if self.sliding else [self._index(ts)]
        if not ks:
            return "between_windows"
        end, lateness = self._end, self.lateness
        live = [k for k in ks if end(k) + lateness > wm]
        if not live:
            return "late"
        lowest = live[-1]
        for k in reversed(live):
            first = k == lowest
            if end(k) <= wm:  # fired, kept for its lateness: it fires again, whole
                window = windows.fired.get(k)
                if window is None:
                    window = windows.fired[k] = [[item], [first], 0]
                    heapq.heappush(windows.purge, k)
                    self._up(self.fired_ends, self.fired_heap, k)
                else:
                    window[0].append(item)
                    if window[1] is not None:
                        window[1].append(first)
                    window[2] += 1
                self._emit(k, key, window[0], window[2])
                continue
            window = windows.open.get(k)
            if window is None:
                windows.open[k] = [[item], [first]] if self.sliding else [item]
                heapq.heappush(windows.heap, k)
                self._up(self.open_ends, self.open_heap, k)
            elif self.sliding:
                window[0].append(item)
                window[1].append(first)
            else:
                window.append(item)
        self._count(len(live))
        return None

    # -- firing --------------------------------------------------------------------------
    def _due(
        self,
        key: Any,
        windows: _KeyWindows,
        wm: float,
        order: int,
        out: list[tuple[int, int, Any, Any]],
    ) -> None:
        """Take the key's windows that fire at ``wm`` (into ``out``, to be emitted) and
        purge those past their lateness; forget the key once it holds nothing."""
        end, lateness, sliding = self._end, self.lateness, self.sliding
        heap = windows.heap
        while heap and end(heap[0]) <= wm:
            k = heapq.heappop(heap)
            window = windows.open.pop(k)
            self._down(self.open_ends, k)
            items = window[0] if sliding else window
            out.append((k, order, key, items))
            if lateness > 0 and end(k) + lateness > wm:
                windows.fired[k] = [window[0], window[1], 0] if sliding else [window, None, 0]
                heapq.heappush(windows.purge, k)
                self._up(self.fired_ends, self.fired_heap, k)
            else:
                self.slots -= len(items)
        purge = windows.purge
        while purge and end(purge[0]) + lateness <= wm:
            k = heapq.heappop(purge)
            self.slots -= len(windows.fired.pop(k)[0])
            self._down(self.fired_ends, k)
        if not windows.open and not windows.fired:
            # Safe to forget: its last window fired on the shared watermark, which then
            # stands above anything the key's own could say.
            self.keys.pop(key, None)

    def _emit_all(self, out: list[tuple[int, int, Any, Any]]) -> None:
        out.sort(key=lambda entry: (entry[0], entry[1]))  # by end, then key order
        for k, _, key, items in out:
            self._emit(k, key, items, 0)

    def _fire_shared(self) -> None:
        """The shared watermark moved: every key may fire."""
        out: list[tuple[int, int, Any, Any]] = []
        for order, (key, windows) in enumerate(list(self.keys.items())):
            self._due(key, windows, self._watermark_of(windows), order, out)
        self._emit_all(out)

    def _on_watermark(self, mark: Watermark) -> None:
        clock = self.clock
        moved = clock.on_mark(mark, self.now())
        clock.reanchor()
        if moved:
            self._fire_shared()
        self._wake_for_idle()

    def on_wake(self, at: float) -> None:
        if self.done:
            return
        if self.clock.on_idle_wake(at):
            self._fire_shared()
        self._wake_for_idle()

    def _wake_for_idle(self) -> None:
        if self.event.idle_timeout is None:
            return
        due = []
        for counts, heap, extra in (
            (self.open_ends, self.open_heap, 0.0),
            (self.fired_ends, self.fired_heap, self.lateness),
        ):
            while heap and heap[0] not in counts:
                heapq.heappop(heap)
            if heap:
                due.append(self._end(heap[0]) + extra)
        if due:
            self.timer.wake_at(self.clock.idle_wake(min(due)))

    def flush(self) -> None:
        out: list[tuple[int, int, Any, Any]] = []
        for order, (key, windows) in enumerate(self.keys.items()):
            for k, window in windows.open.items():
                out.append((k, order, key, window[0] if self.sliding else window))
        self.keys = {}
        self.open_ends, self.open_heap, self.fired_ends, self.fired_heap = {}, [], {}, []
        self.slots = 0
        self._emit_all(out)

    def lose(self, reason: str) -> None:
        keys, self.keys = self.keys, {}
        self.open_ends, self.open_heap, self.fired_ends, self.fired_heap = {}, [], {}, []
        self.slots = 0
        for windows in keys.values():
            for k in sorted(windows.open):
                window = windows.open[k]
                if not self.sliding:
                    for item in window:
                        self.reporter.drop(item, reason)
                    continue
                for item, first in zip(window[0], window[1], strict=True):
                    if first:
                        self.reporter.drop(item, reason)

    # -- checkpoints -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        rows = [
            (k, key, -1, windows.open[k])
            for key, windows in self.keys.items()
            for k in sorted(windows.open)
        ]
        rows += [
            (k, key, windows.fired[k][2], windows.fired[k])
            for key, windows in self.keys.items()
            for k in sorted(windows.fired)
        ]
        return {
            "clock": self.clock.snapshot(),
            "maxes": [(key, windows.max_ts) for key, windows in self.keys.items()],
            **_window_columns(rows, self.sliding),
            "slots": self.slots,
            "peak": self.peak,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.clock.restore(state["clock"])
        sliding = self.sliding
        keys: dict[Any, _KeyWindows] = {}
        for key, max_ts in state["maxes"]:
            windows = keys[key] = _KeyWindows()
            windows.max_ts = max_ts
        self.open_ends, self.open_heap, self.fired_ends, self.fired_heap = {}, [], {}, []
        for k, key, revision, items, flags in _window_rows(state, sliding):
            windows = keys[key]
            if revision < 0:
                windows.open[k] = [items, flags] if sliding else items
                windows.heap.append(k)
                self._up(self.open_ends, self.open_heap, k)
            else:
                windows.fired[k] = [items, flags, revision]
                windows.purge.append(k)
                self._up(self.fired_ends, self.fired_heap, k)
        for windows in keys.values():
            heapq.heapify(windows.heap)
            heapq.heapify(windows.purge)
        self.keys = keys
        self.slots = state["slots"]
        self.peak = state["peak"]
        self._wake_for_idle()


def _window_columns(rows: list[tuple[int, Any, int, Any]], sliding: bool) -> dict[str, Any]:
    """A checkpoint's windows as columns of plain data (fast to pickle): one row
    ``(k, key, revision or -1 while open)`` per window, its items flattened.

    ``rows`` holds ``(k, key, revision, window)``: an open window is its items (with their
    first-window flags when sliding, ``[items, flags]``), a fired one ``[items, flags, revision]``.
    """
    flat: list[Any] = []
    counts: list[int] = []
    firsts: list[bool] = []
    for _k, _key, revision, window in rows:
        opened = revision < 0
        items = window[0] if sliding or not opened else window
        counts.append(len(items))
        flat.extend(items)
        if sliding:
            firsts.extend(window[1])
    return {
        "rows": [(k, key, revision) for k, key, revision, _ in rows],
        "counts": counts,
        "items": pack_items(flat),
        "firsts": firsts,
    }


def _window_rows(
    state: dict[str, Any], sliding: bool
) -> Iterator[tuple[int, Any, int, list[Any], Any]]:
    """The windows `_window_columns` wrote: ``(k, key, revision, items, flags)`` each."""
    counts = state["counts"]
    item_lists = split(unpack_items(state["items"]), counts)
    flag_lists = split(state["firsts"], counts) if sliding else [None] * len(counts)
    for (k, key, revision), items, flags in zip(state["rows"], item_lists, flag_lists, strict=True):
        yield k, key, revision, items, flags
