"""window_session: one session window per key, closed by a gap of silence or a maximum length.

Processing time keeps at most one open session per key (items arrive in time order), in a
dict that forgets a session when it closes. Deadlines live in one heap served by one
scheduler timer; a deadline is checked lazily when it comes due (the session may have been
extended since), so an item costs no timer operation.

Event time merges windows as Flink's session windows do: an item at ``ts`` makes the window
``[ts, ts + gap)``, merged with every window of its key it overlaps (strictly: windows that
only touch stay apart, so an item exactly ``gap`` after the previous one starts a new
session). A window fires once the watermark reaches its end; a fired window stays (and
re-fires when a late item joins it) until the watermark passes its end plus
``allowed_lateness``. Deadlines sit in heaps checked lazily, as in processing time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from .._clock import positive_seconds
from .._model import Envelope, Watermark, Window
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter
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


def session_of(envelope: Envelope) -> Any:
    """The default session key: the envelope's ``context.session_id``."""
    return envelope.context.session_id


def window_session(
    gap: Duration,
    *,
    key: Callable[[Any], Any] | None = None,
    max_duration: Duration | None = None,
    scheduler: abc.SchedulerBase | None = None,
    timestamp: Callable[[Any], Any] | None = None,
    out_of_orderness: Duration = 0.0,
    allowed_lateness: Duration = 0.0,
    idle_timeout: Duration | None = None,
    on_late: LateHandler | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_session",
) -> Callable[[Observable[Any]], Observable[Window]]:
    check_common(scheduler, on_drop, metrics, name, key=key, timestamp=timestamp)
    gap_s = positive_seconds(gap, "gap")
    max_s = positive_seconds(max_duration, "max_duration") if max_duration is not None else math.inf
    key_of = key or session_of
    event = EventTime(timestamp, out_of_orderness, allowed_lateness, idle_timeout, on_late)

    def make_state(
        sched: abc.SchedulerBase, observer: abc.ObserverBase[Window], reporter: Reporter
    ) -> TimedWindows:
        cls = _ProcessingSessions if event.timestamp is None else _EventSessions
        return cls(gap_s, max_s, key_of, event, sched, observer, reporter)

    return timed_operator(name, scheduler, on_drop, metrics, make_state)


class _Session:
    __slots__ = ("items", "last", "start")

    def __init__(self, start: float, item: Any) -> None:
        self.start = start
        self.last = start
        self.items = [item]


class _Sessions(TimedWindows):
    """What both kinds of session state share: key reading, emission, gauge."""

    def __init__(
        self,
        gap: float,
        max_duration: float,
        key_of: Callable[[Any], Any],
        event: EventTime,
        scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[Window],
        reporter: Reporter,
    ) -> None:
        super().__init__(scheduler, observer, reporter)
        self.gap = gap
        self.max_duration = max_duration
        self.key_of = key_of
        self.event = event
        self.heap: list[tuple[float, int, Any]] = []
        self.counter = itertools.count()
        self.held = 0
        self.peak = 0
        self.table_peak = 0

    def read_key(self, item: Any) -> tuple[bool, Any]:
        ok, key = hashable_key(self.reporter, self.key_of, item)
        if ok and self.ended:  # the key (or timestamp) function just disposed us
            self.refuse(item)
            return False, None
        return ok, key

    def settings(self) -> tuple[Any, ...]:
        event = self.event
        return (
            "window_session",
            self.gap,
            self.max_duration,
            event.timestamp is not None,
            event.out_of_orderness,
            event.lateness,
        )

    def compact(self, table: dict[Any, Any]) -> dict[Any, Any]:
        """``table``, copied when it has shrunk to a quarter of its largest size: a dict
        never gives back the memory of deleted entries, a copy does."""
        size = len(table)
        if size < self.table_peak // 4:
            self.table_peak = size
            return dict(table)
        return table

    def hold(self) -> None:
        self.held += 1
        if self.held > self.peak:
            self.peak = self.held

    def emit(self, key: Any, start: Any, end: Any, items: list[Any], revision: int = 0) -> None:
        self.reporter.emitted()
        self.observer.on_next(Window(key, start, end, items, revision))

    @abstractmethod
    def on_next(self, item: Any) -> None:
        """Take one item (under the lock)."""

    def gauge(self) -> BufferGauge:
        return BufferGauge(self.held, 0, self.peak)


class _ProcessingSessions(_Sessions):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sessions: dict[Any, _Session] = {}
        self.horizon = -math.inf

    def _end(self, session: _Session) -> float:
        return min(session.last + self.gap, session.start + self.max_duration)

    def _close(self, key: Any, session: _Session) -> None:
        del self.sessions[key]
        self.held -= len(session.items)
        self.emit(key, session.start, self._end(session), session.items)

    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                self.refuse(item)
                return
            if type(item) is Watermark:  # processing time: consumed, ignored
                return
            self.reporter.received()
            ok, key = self.read_key(item)
            if not ok:
                return
            t = self.now()
            if t < self.horizon:
                t = self.horizon
            session = self.sessions.get(key)
            if session is not None:
                if t < self._end(session):
                    session.last = t
                    session.items.append(item)
                    self.hold()
                    return
                self._close(key, session)  # its timer has not fired yet
            session = self.sessions[key] = _Session(t, item)
            if len(self.sessions) > self.table_peak:
                self.table_peak = len(self.sessions)
            self.hold()
            due = self._end(session)
            heapq.heappush(self.heap, (due, next(self.counter), key))
            self.timer.wake_at(due)

    def on_wake(self, at: float) -> None:
        if self.done:
            return
        if at > self.horizon:
            self.horizon = at
        heap, sessions = self.heap, self.sessions
        while heap and heap[0][0] <= at:
            _, _, key = heapq.heappop(heap)
            session = sessions.get(key)
            if session is None:
                continue  # closed by an item that came after its end
            end = self._end(session)
            if end <= at:
                self._close(key, session)
            else:  # extended since this deadline was set
                heapq.heappush(heap, (end, next(self.counter), key))
        if heap:
            self.timer.wake_at(heap[0][0])
        self.sessions = self.compact(sessions)

    def flush(self) -> None:
        sessions, self.sessions = self.sessions, {}
        self.heap = []
        self.held = 0
        for key, session in sorted(sessions.items(), key=lambda kv: self._end(kv[1])):
            self.emit(key, session.start, self._end(session), session.items)

    def lose(self, reason: str) -> None:
        sessions, self.sessions = self.sessions, {}
        self.heap = []
        self.held = 0
        for session in sessions.values():
            for item in session.items:
                self.reporter.drop(item, reason)

    def state(self) -> dict[str, Any]:
        sessions = self.sessions
        flat: list[Any] = []
        for session in sessions.values():
            flat.extend(session.items)
        return {
            "horizon": self.horizon,
            "keys": list(sessions),
            "starts": [s.start for s in sessions.values()],
            "lasts": [s.last for s in sessions.values()],
            "counts": [len(s.items) for s in sessions.values()],
            "items": pack_items(flat),
            # the deadlines as they stand (stale ones included): sessions closing at the
            # same instant close in the same order after a restore
            "heap": list(self.heap),
            "counter": next(self.counter),
            "held": self.held,
            "peak": self.peak,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.horizon = state["horizon"]
        self.held, self.peak = state["held"], state["peak"]
        sessions: dict[Any, _Session] = {}
        item_lists = split(unpack_items(state["items"]), state["counts"])
        for key, start, last, items in zip(
            state["keys"], state["starts"], state["lasts"], item_lists, strict=True
        ):
            session = sessions[key] = _Session(start, None)
            session.last, session.items = last, items
        self.sessions = sessions
        self.table_peak = len(sessions)
        self.heap = [tuple(entry) for entry in state["heap"]]
        heapq.heapify(self.heap)
        self.counter = itertools.count(state["counter"])
        if self.heap:
            self.timer.wake_at(self.heap[0][0])


class _SessionWindow:
    """One event-time session of a key.

    ``entries`` are ``[arrival, item, emitted]`` in arrival order; ``emitted`` marks items
    that left in a firing (they are not lost if the stream fails later). ``revision`` is
    that of the last firing (``-1``: never fired); ``fired`` says the window has fired in
    its current extent.
    """

    __slots__ = ("end", "entries", "fired", "first", "last", "order", "revision", "start")

    def __init__(self, first: float, last: float, end: float, entries: list[list[Any]]) -> None:
        self.first = first
        self.last = last
        self.start = first
        self.end = end
        self.entries = entries
        self.order = entries[0][0]
        self.revision = -1
        self.fired = False


class _EventSessions(_Sessions):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.keys: dict[Any, list[_SessionWindow]] = {}
        # (deadline, order, tiebreak, key, window), checked lazily when due
        self.purge_heap: list[tuple[float, int, int, Any, _SessionWindow]] = []
        self.fire_heap: list[tuple[float, int, int, Any, _SessionWindow]] = []
        self.clock = EventClock(self.event)

    def _end_of(self, first: float, last: float) -> float:
        return min(last + self.gap, first + self.max_duration)

    def _merge(self, key: Any, ts: float, entry: list[Any]) -> tuple[bool, _SessionWindow | None]:
        """Put the item in its key's windows, merging those it bridges.

        ``(False, None)``: the item is late, nothing changed. ``(True, window)``: the window
        must be (re)scheduled to fire; ``(True, None)``: its deadline stands.
        """
        windows = self.keys.get(key)
        end = self._end_of(ts, ts)
        touched: list[_SessionWindow] = []
        if windows:
            touched = [w for w in windows if w.start < end and ts < w.end]
            if touched and self.max_duration != math.inf:
                first = min(ts, *(w.first for w in touched))
                last = max(ts, *(w.last for w in touched))
                if last - first >= self.max_duration:
                    # Merging all would outgrow max_duration: join the session holding ts.
                    holding = [w for w in touched if w.start <= ts]
                    touched = holding[-1:]
        if not touched:
            if end + self.event.lateness <= self.clock.value:
                return False, None
            window = _SessionWindow(ts, ts, end, [entry])
            if windows is None:
                windows = self.keys[key] = []
                if len(self.keys) > self.table_peak:
                    self.table_peak = len(self.keys)
            windows.append(window)
            windows.sort(key=lambda w: w.start)
            return True, window
        if len(touched) == 1:
            window = touched[0]
            window.entries.append(entry)
            window.first = window.start = min(window.first, ts)
            window.last = max(window.last, ts)
        else:
            entries = sorted(
                itertools.chain.from_iterable(w.entries for w in touched), key=lambda e: e[0]
            )
            entries.append(entry)
            window = _SessionWindow(
                min(ts, *(w.first for w in touched)),
                max(ts, *(w.last for w in touched)),
                end,
                entries,
            )
            window.order = min(w.order for w in touched)
            fired = [w.revision for w in touched if w.revision >= 0]
            window.revision = max(fired) if fired else -1
            for w in touched:
                windows.remove(w)  # type: ignore[union-attr]
            windows.append(window)  # type: ignore[union-attr]
            windows.sort(key=lambda w: w.start)  # type: ignore[union-attr]
        new_end = self._end_of(window.first, window.last)
        due = window.fired or new_end != window.end or len(touched) > 1
        window.end = new_end
        window.fired = False  # new contents: it fires (again) when the watermark is at its end
        return True, (window if due else None)

    def _schedule(self, key: Any, window: _SessionWindow) -> None:
        if window.end <= self.clock.value:
            self._fire(key, window)
            # A merge cut by max_duration can end behind the watermark by more than the
            # allowed lateness: purge it now, not at the next watermark move.
            self._close_until(self.clock.value)
        else:
            heapq.heappush(
                self.fire_heap, (window.end, window.order, next(self.counter), key, window)
            )

    def _fire(self, key: Any, window: _SessionWindow) -> None:
        window.revision += 1
        window.fired = True
        entries = window.entries
        for entry in entries:
            entry[2] = True
        due = window.end + self.event.lateness
        heapq.heappush(self.purge_heap, (due, window.order, next(self.counter), key, window))
        out = self.clock.out
        self.emit(key, out(window.start), out(window.end), [e[1] for e in entries], window.revision)

    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                self.refuse(item)
                return
            if type(item) is Watermark:
                if self.clock.on_mark(item, self.now()):
                    self._close_until(self.clock.value)
                self._wake_for_idle()
                return
            reporter = self.reporter
            reporter.received()
            event = self.event
            clock = self.clock
            ts, reason, failed = clock.read(item)
            if ts is None:
                if failed:
                    reporter.error()
                reporter.drop(item, reason or "invalid_timestamp")
                return
            ok, key = self.read_key(item)
            if not ok:
                return
            accepted, window = self._merge(key, ts, [next(self.counter), item, False])
            if not accepted:
                out = clock.out
                reporter.drop_missed(item, "late", ((out(ts), out(self._end_of(ts, ts))),))
                if event.on_late is not None:
                    event.on_late(item)
                return
            self.hold()
            if window is not None:
                self._schedule(key, window)
            if clock.observe(ts, self.now()):
                self._close_until(clock.value)
            self._wake_for_idle()

    def _wake_for_idle(self) -> None:
        if self.event.idle_timeout is None:
            return
        due = [heap[0][0] for heap in (self.fire_heap, self.purge_heap) if heap]
        if due:
            self.timer.wake_at(self.clock.idle_wake(min(due)))

    def _live(self, key: Any, window: _SessionWindow) -> bool:
        windows = self.keys.get(key)
        return windows is not None and any(w is window for w in windows)

    def _close_until(self, watermark: float) -> None:
        heap = self.fire_heap
        while heap and heap[0][0] <= watermark:
            end, _, _, key, window = heapq.heappop(heap)
            if window.fired or window.end != end or not self._live(key, window):
                continue  # a stale deadline: merged, extended or fired since
            self._fire(key, window)
        heap = self.purge_heap
        lateness = self.event.lateness
        while heap and heap[0][0] <= watermark:
            due, _, _, key, window = heapq.heappop(heap)
            if window.end + lateness != due or not self._live(key, window):
                continue
            if not window.fired:
                continue  # extended since it fired: it has a new deadline
            windows = self.keys[key]
            windows.remove(window)
            self.held -= len(window.entries)
            if not windows:
                del self.keys[key]
        self.keys = self.compact(self.keys)

    def on_wake(self, at: float) -> None:
        if self.done:
            return
        if self.clock.on_idle_wake(at):
            self._close_until(self.clock.value)
        self._wake_for_idle()

    def flush(self) -> None:
        pending = [
            (w.end, w.order, 0, key, w)
            for key, windows in self.keys.items()
            for w in windows
            if not w.fired
        ]
        self.keys, self.fire_heap, self.purge_heap = {}, [], []
        self.held = 0
        for _, _, _, key, window in sorted(pending, key=lambda p: (p[0], p[1])):
            self._fire(key, window)
        self.purge_heap = []

    def lose(self, reason: str) -> None:
        keys, self.keys = self.keys, {}
        self.fire_heap, self.purge_heap = [], []
        self.held = 0
        for windows in keys.values():
            for window in windows:
                for _, item, emitted in window.entries:
                    if not emitted:
                        self.reporter.drop(item, reason)

    def state(self) -> dict[str, Any]:
        # Columns built by comprehensions: one pass per column is cheaper than appending to
        # several lists in one Python loop.
        keys = [key for key, mine in self.keys.items() for _ in mine]
        windows = [w for mine in self.keys.values() for w in mine]
        entries = [entry for w in windows for entry in w.entries]
        return {
            "clock": self.clock.snapshot(),
            "counter": next(self.counter),
            "keys": keys,
            "firsts": [w.first for w in windows],
            "lasts": [w.last for w in windows],
            "ends": [w.end for w in windows],
            "orders": [w.order for w in windows],
            "revisions": [w.revision for w in windows],
            "fired": [w.fired for w in windows],
            "counts": [len(w.entries) for w in windows],
            "seqs": [entry[0] for entry in entries],
            "emitted": [entry[2] for entry in entries],
            "items": pack_items([entry[1] for entry in entries]),
            "held": self.held,
            "peak": self.peak,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.clock.restore(state["clock"])
        self.counter = itertools.count(state["counter"])
        self.held, self.peak = state["held"], state["peak"]
        lateness = self.event.lateness
        entries = split(
            list(
                map(
                    list,
                    zip(state["seqs"], unpack_items(state["items"]), state["emitted"], strict=True),
                )
            ),
            state["counts"],
        )
        keys: dict[Any, list[_SessionWindow]] = {}
        fire: list[tuple[float, int, int, Any, _SessionWindow]] = []
        purge: list[tuple[float, int, int, Any, _SessionWindow]] = []
        tiebreak = itertools.count()
        for key, first, last, end, order, revision, fired, mine in zip(
            state["keys"],
            state["firsts"],
            state["lasts"],
            state["ends"],
            state["orders"],
            state["revisions"],
            state["fired"],
            entries,
            strict=True,
        ):
            window = _SessionWindow(first, last, end, mine)
            window.order, window.revision, window.fired = order, revision, fired
            windows = keys.get(key)
            if windows is None:
                keys[key] = [window]
            else:
                windows.append(window)
            if fired:
                purge.append((end + lateness, order, -next(tiebreak), key, window))
            else:
                fire.append((end, order, -next(tiebreak), key, window))
        self.keys = keys
        self.table_peak = len(keys)
        heapq.heapify(fire)
        heapq.heapify(purge)
        self.fire_heap, self.purge_heap = fire, purge
        self._wake_for_idle()
