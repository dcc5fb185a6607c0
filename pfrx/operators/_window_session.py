"""window_session: one session window per key, closed by a gap of silence or a maximum length.

Processing time keeps at most one open session per key (items arrive in time order), in a
dict that forgets a session when it closes. Deadlines live in one heap served by one
scheduler timer; a deadline is checked lazily when it comes due (the session may have been
extended since), so an item costs no timer operation.

Event time keeps, per key, the pending items sorted by timestamp; sessions are cut from that
order (a new session where two neighbours are ``gap`` or more apart, or ``max_duration``
after the session's first item), so out-of-order items merge two bursts into one session when
they fill the gap. A key's first session is emitted once the watermark reaches its end.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from .._clock import positive_seconds
from .._model import Envelope, Window
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter
from ._transform import failure_reason
from ._windowing import (
    Duration,
    EventTime,
    LateHandler,
    TimedWindows,
    Watermark,
    read_timestamp,
    timed_operator,
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
    timestamp: Callable[[Any], float] | None = None,
    allowed_lateness: Duration = 0.0,
    idle_timeout: Duration | None = None,
    on_late: LateHandler | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_session",
) -> Callable[[Observable[Any]], Observable[Window]]:
    gap_s = positive_seconds(gap, "gap")
    max_s = positive_seconds(max_duration, "max_duration") if max_duration is not None else math.inf
    if key is not None and not callable(key):
        raise TypeError(f"key must be a callable envelope -> key, not {key!r}")
    key_of = key or session_of
    event = EventTime(timestamp, allowed_lateness, idle_timeout, on_late)

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
        try:
            return True, self.key_of(item)
        except Exception as exc:
            if not isinstance(item, Envelope):
                self.reporter.drop(item, "not_an_envelope")
            else:
                self.reporter.error()
                self.reporter.drop(item, failure_reason(exc))
            return False, None

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

    def emit(self, key: Any, start: float, end: float, items: list[Any]) -> None:
        self.held -= len(items)
        self.reporter.emitted()
        self.observer.on_next(Window(key, start, end, items))

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
        self.emit(key, session.start, self._end(session), session.items)

    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
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
        for key, session in sorted(sessions.items(), key=lambda kv: self._end(kv[1])):
            self.emit(key, session.start, self._end(session), session.items)

    def lose(self, reason: str) -> None:
        sessions, self.sessions = self.sessions, {}
        self.heap = []
        self.held = 0
        for session in sessions.values():
            for item in session.items:
                self.reporter.drop(item, reason)


class _Pending:
    """A key's items not yet in an emitted session, sorted by (timestamp, arrival)."""

    __slots__ = ("due", "entries")

    def __init__(self) -> None:
        self.entries: list[tuple[float, int, Any]] = []
        self.due = math.inf  # a lower bound of the first session's end


class _EventSessions(_Sessions):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.keys: dict[Any, _Pending] = {}
        self.watermark = Watermark(self.event.lateness, self.event.idle_timeout)

    def _first_session(self, entries: list[tuple[float, int, Any]]) -> tuple[int, float, float]:
        """``(count, start, end)`` of the first session in ``entries``."""
        start = last = entries[0][0]
        limit = start + self.max_duration
        count = 1
        for ts, _, _ in itertools.islice(entries, 1, None):
            if ts - last >= self.gap or ts >= limit:
                break
            last = ts
            count += 1
        return count, start, min(last + self.gap, limit)

    def _schedule(self, key: Any, pending: _Pending, due: float) -> None:
        if due < pending.due:
            pending.due = due
            heapq.heappush(self.heap, (due, next(self.counter), key))

    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                return
            reporter = self.reporter
            reporter.received()
            event = self.event
            ts, reason, failed = read_timestamp(event.timestamp, item)  # type: ignore[arg-type]
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
            ok, key = self.read_key(item)
            if not ok:
                return
            pending = self.keys.get(key)
            if pending is None:
                pending = self.keys[key] = _Pending()
                if len(self.keys) > self.table_peak:
                    self.table_peak = len(self.keys)
            entries = pending.entries
            entry = (ts, next(self.counter), item)
            if not entries or entries[-1][0] <= ts:
                entries.append(entry)
            else:
                bisect.insort(entries, entry, key=lambda e: (e[0], e[1]))
            self.hold()
            if entries[0] is entry:
                self._schedule(key, pending, ts + min(self.gap, self.max_duration))
            if watermark.observe(ts, self.now()):
                self._close_until(watermark.value)
            self._wake_for_idle()

    def _wake_for_idle(self) -> None:
        if self.event.idle_timeout is not None and self.heap:
            self.timer.wake_at(self.watermark.idle_wake(self.heap[0][0]))

    def _close_until(self, watermark: float) -> None:
        closed: list[tuple[float, int, Any, float, list[Any]]] = []
        heap, keys = self.heap, self.keys
        while heap and heap[0][0] <= watermark:
            due, _, key = heapq.heappop(heap)
            pending = keys.get(key)
            if pending is None or pending.due != due:
                continue  # a stale deadline
            entries = pending.entries
            while entries:
                count, start, end = self._first_session(entries)
                if end > watermark:
                    pending.due = end
                    heapq.heappush(heap, (end, next(self.counter), key))
                    break
                session = entries[:count]
                del entries[:count]
                session.sort(key=lambda e: e[1])  # arrival order
                closed.append((end, session[0][1], key, start, [e[2] for e in session]))
            if not entries:
                del keys[key]
        self.keys = self.compact(keys)
        closed.sort(key=lambda c: (c[0], c[1]))
        for end, _, key, start, items in closed:
            self.emit(key, start, end, items)

    def on_wake(self, at: float) -> None:
        if self.done:
            return
        if self.watermark.on_idle_wake(at):
            self._close_until(self.watermark.value)
        self._wake_for_idle()

    def flush(self) -> None:
        self._close_until(math.inf)

    def lose(self, reason: str) -> None:
        keys, self.keys = self.keys, {}
        self.heap = []
        self.held = 0
        for pending in keys.values():
            for _, _, item in sorted(pending.entries, key=lambda e: e[1]):
                self.reporter.drop(item, reason)
