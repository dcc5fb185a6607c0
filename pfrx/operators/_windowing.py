"""What the time-aware window operators share: timers, event time and the watermark.

Two notions of time:

- *Processing time* (no ``timestamp=``): an item's time is the scheduler clock when it
  arrives. A timer fires at each window's end (one scheduler timer per operator, always set
  for the earliest deadline), so a window closes on time even if no further item arrives.
- *Event time* (``timestamp=`` given): an item's time is ``timestamp(envelope)``, and
  `EventClock` keeps the watermark (Flink's terms: ``out_of_orderness`` delays the
  watermark, ``allowed_lateness`` keeps fired windows re-openable). A window ``[start, end)``
  fires once the watermark reaches ``end``; an item is late only when every window it
  belongs to is past ``end + allowed_lateness``. With ``idle_timeout``, an input that
  stays silent that long on the scheduler clock no longer holds the watermark back.

Every timed window state can be checkpointed: `timed_operator` registers it into the
active `pfrx.checkpoint` scope at subscribe time.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler, VirtualTimeScheduler

from .._clock import Clock, bound_seconds, clock_of, positive_seconds
from .._model import Envelope, Watermark, Window
from .._model.context import make_envelope
from ..checkpoint import CheckpointMismatch, current_scope
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter, subscribe_with_batches
from ._transform import failure_reason

LateHandler = Callable[[Any], None] | abc.ObserverBase[Any]
Duration = float | int | timedelta


def timer_scheduler(
    given: abc.SchedulerBase | None, subscribe: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The scheduler for timers: the argument, then the subscribe scheduler, else a timeout
    scheduler (as RxPY's ``buffer_with_time`` does)."""
    return given or subscribe or TimeoutScheduler.singleton()


class Timer:
    """One scheduler timer serving many deadlines: it is always set for the earliest.

    ``wake_at(t)`` asks for a call of ``on_wake(t)`` at time ``t`` on the scheduler clock; a
    pending wake-up that is already earlier (or equal) stands, a later one is replaced. The
    callback runs under ``lock`` and is responsible for asking for the next wake-up.
    """

    __slots__ = ("_absolute", "_handle", "_lock", "_now", "_on_wake", "_scheduler", "pending")

    def __init__(
        self,
        scheduler: abc.SchedulerBase,
        now: Clock,
        lock: threading.RLock,
        on_wake: Callable[[float], None],
    ) -> None:
        self._scheduler = scheduler
        self._absolute = isinstance(scheduler, VirtualTimeScheduler)
        self._now = now
        self._lock = lock
        self._on_wake = on_wake
        self._handle = SerialDisposable()
        self.pending: float | None = None

    def wake_at(self, due: float) -> None:
        if self.pending is not None and self.pending <= due:
            return
        self.pending = due

        def fire(_: abc.SchedulerBase, __: Any = None) -> None:
            with self._lock:
                if self.pending != due:
                    return  # replaced by an earlier wake-up, or disposed
                self.pending = None
                # A real timer runs late: close everything that is due by now in this one
                # wake-up, rather than one wake-up (and one timer thread) per deadline.
                self._on_wake(due if self._absolute else max(due, self._now()))

        if self._absolute:
            # Virtual time: exact, no float drift from "due - now".
            self._handle.disposable = self._scheduler.schedule_absolute(due, fire)
        else:
            self._handle.disposable = self._scheduler.schedule_relative(
                max(0.0, due - self._now()), fire
            )

    def dispose(self) -> None:
        self.pending = None
        self._handle.dispose()


def late_handler(on_late: LateHandler | None) -> Callable[[Any], None] | None:
    """``on_late`` as a plain callable: a function, or an observer's ``on_next``."""
    if on_late is None:
        return None
    on_next = getattr(on_late, "on_next", None)
    if callable(on_next):
        return on_next  # type: ignore[no-any-return]
    if callable(on_late):
        return on_late
    raise TypeError(f"on_late must be a callable or an observer, not {on_late!r}")


def check_common(scheduler: Any, on_drop: Any, metrics: Any, name: Any, **callables: Any) -> None:
    """The argument checks every timed window operator makes when it is built.

    Raises:
        TypeError: a scheduler that is not a scheduler, metrics that are not
            ``StreamMetrics``, a callback that is not callable, a name that is not a str.
    """
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise TypeError(f"scheduler must be a reactivex scheduler, not {scheduler!r}")
    if metrics is not None and not isinstance(metrics, StreamMetrics):
        raise TypeError(f"metrics must be a pfrx.StreamMetrics, not {metrics!r}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, not {name!r}")
    for label, value in (("on_drop", on_drop), *callables.items()):
        if value is not None and not callable(value):
            raise TypeError(f"{label} must be callable, not {value!r}")


class EventTime:
    """The validated event-time settings of one operator (``None`` timestamp: processing)."""

    __slots__ = ("idle_timeout", "lateness", "on_late", "out_of_orderness", "timestamp")

    def __init__(
        self,
        timestamp: Callable[[Any], Any] | None,
        out_of_orderness: Duration,
        allowed_lateness: Duration,
        idle_timeout: Duration | None,
        on_late: LateHandler | None,
    ) -> None:
        if timestamp is not None and not callable(timestamp):
            raise TypeError(f"timestamp must be a callable envelope -> time, not {timestamp!r}")
        self.out_of_orderness = bound_seconds(out_of_orderness, "out_of_orderness")
        self.lateness = bound_seconds(allowed_lateness, "allowed_lateness")
        self.idle_timeout = (
            positive_seconds(idle_timeout, "idle_timeout") if idle_timeout is not None else None
        )
        self.on_late = late_handler(on_late)
        if timestamp is None and (
            self.out_of_orderness or self.lateness or idle_timeout is not None or on_late
        ):
            raise ValueError(
                "out_of_orderness, allowed_lateness, idle_timeout and on_late apply to event "
                "time only: give timestamp= too"
            )
        self.timestamp = timestamp


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mark_seconds(mark: Watermark) -> float:
    """A watermark's time in seconds (an aware datetime: seconds since the epoch)."""
    value = mark.time
    if isinstance(value, datetime):
        return (value - _EPOCH) / timedelta(seconds=1)
    return float(value)


class EventClock:
    """The event time of one subscription: how items' times are read and the watermark.

    ``value`` (the watermark) never decreases. From items it is the highest timestamp seen
    minus ``out_of_orderness``; an explicit [`Watermark`][pfrx.Watermark] lifts it to at least its
    time. Once a watermark names its ``source``, the sources' watermarks are the clock: the
    watermark is then the minimum over the sources not marked idle, and items no longer move
    it. While the input is idle (no item for ``idle_timeout`` on the scheduler clock) the
    watermark at scheduler time ``x`` is ``max_ts - out_of_orderness + (x - last_arrival)``.

    Times are floats, or aware datetimes: the first valid timestamp decides, and an item of
    the other kind (or a naive datetime) is an ``invalid_timestamp``. Windows report their
    bounds back in that kind (`out`).
    """

    __slots__ = (
        "anchor",
        "datetimes",
        "idle_timeout",
        "last_arrival",
        "max_ts",
        "ooo",
        "sources",
        "timestamp",
        "value",
    )

    def __init__(self, event: EventTime) -> None:
        self.timestamp = event.timestamp
        self.value = -math.inf
        self.anchor = -math.inf  # the watermark when the input was last active
        self.max_ts = -math.inf
        self.last_arrival = -math.inf
        self.ooo = event.out_of_orderness
        self.idle_timeout = event.idle_timeout
        self.sources: dict[Hashable, list[Any]] | None = None  # name -> [time, idle]
        self.datetimes: bool | None = None

    # -- reading times ----------------------------------------------------------------
    def read(self, item: Any) -> tuple[float | None, str | None, bool]:
        """``(seconds, None, False)``, or ``(None, drop reason, is_error)``."""
        try:
            value = self.timestamp(item)  # type: ignore[misc]
        except Exception as exc:
            if not isinstance(item, Envelope):
                return None, "not_an_envelope", False
            return None, failure_reason(exc), True
        ts = self.convert(value)
        if ts is None:
            return None, "invalid_timestamp", False
        return ts, None, False

    def convert(self, value: Any) -> float | None:
        """A timestamp's value in seconds; None when invalid: not a number nor an aware
        datetime, not finite, naive, or not of the kind the first valid one had."""
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None or self.datetimes is False:
                return None
            self.datetimes = True
            return (value - _EPOCH) / timedelta(seconds=1)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if self.datetimes or not math.isfinite(value):
            return None
        self.datetimes = False
        return float(value)

    def out(self, seconds: float) -> Any:
        """A window bound as the operator reports it: seconds, or an aware UTC datetime."""
        if self.datetimes:
            return _EPOCH + timedelta(seconds=seconds)
        return seconds

    # -- the watermark ----------------------------------------------------------------
    def observe(self, ts: float, now: float) -> bool:
        """Record an accepted item's time; True when the watermark moved."""
        self.last_arrival = now
        moved = False
        if ts > self.max_ts:
            self.max_ts = ts
            if self.sources is None:
                candidate = ts - self.ooo
                if candidate > self.value:
                    self.value = candidate
                    moved = True
        self.anchor = self.value
        return moved

    def arrive(self, ts: float, now: float) -> None:
        """Record an accepted item without moving the watermark (per-key watermarks: items
        move only their key's own)."""
        self.last_arrival = now
        if ts > self.max_ts:
            self.max_ts = ts
        self.reanchor()

    def reanchor(self) -> None:
        """Per-key watermarks: an idle input's watermark follows the clock from the highest
        any key has reached (``max_ts - out_of_orderness``), or from this one if higher."""
        reached = self.max_ts - self.ooo
        self.anchor = reached if reached > self.value else self.value

    def on_mark(self, mark: Watermark, now: float) -> bool:
        """Take an explicit watermark; True when the watermark moved."""
        self.last_arrival = now
        moved = self._on_mark(mark)
        self.anchor = self.value
        return moved

    def _on_mark(self, mark: Watermark) -> bool:
        at = mark_seconds(mark)
        if mark.source is None and not mark.idle:
            candidate = at
        else:
            sources = self.sources
            if sources is None:
                sources = self.sources = {}
            entry = sources.get(mark.source)
            if entry is None:
                sources[mark.source] = [at, mark.idle]
            else:
                entry[0] = max(entry[0], at)
                entry[1] = mark.idle
            active = [time for time, idle in sources.values() if not idle]
            if not active:
                return False  # every source idle: nobody says how far event time went
            candidate = min(active)
        if candidate > self.value:
            self.value = candidate
            return True
        return False

    def idle_wake(self, target: float) -> float:
        """The scheduler time at which an idle input's watermark reaches ``target``."""
        assert self.idle_timeout is not None
        reach = self.last_arrival + (target - self.anchor)
        return max(reach, self.last_arrival + self.idle_timeout)

    def on_idle_wake(self, at: float) -> bool:
        """Advance for a wake-up at scheduler time ``at``; True when the watermark moved."""
        assert self.idle_timeout is not None
        if at - self.last_arrival < self.idle_timeout:
            return False
        candidate = self.anchor + (at - self.last_arrival)
        if candidate > self.value:
            self.value = candidate
            return True
        return False

    # -- checkpoints -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        sources = None
        if self.sources is not None:
            sources = [(name, time, idle) for name, (time, idle) in self.sources.items()]
        return {
            "value": self.value,
            "anchor": self.anchor,
            "max_ts": self.max_ts,
            "last_arrival": self.last_arrival,
            "sources": sources,
            "datetimes": self.datetimes,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.value = state["value"]
        self.anchor = state["anchor"]
        self.max_ts = state["max_ts"]
        self.last_arrival = state["last_arrival"]
        sources = state["sources"]
        self.sources = None if sources is None else {n: [t, i] for n, t, i in sources}
        self.datetimes = state["datetimes"]


def pack_items(items: list[Any]) -> tuple[list[Any], list[Any], list[Any], list[int]]:
    """Items flattened for a checkpoint: envelopes as three columns (events, contexts,
    timestamps: plain data that pickles fast), anything else as itself in the events
    column, its position listed last."""
    if all(type(item) is Envelope for item in items):
        return (
            [item.event for item in items],
            [item.context for item in items],
            [item.timestamp for item in items],
            [],
        )
    events: list[Any] = []
    contexts: list[Any] = []
    stamps: list[Any] = []
    raw: list[int] = []
    for item in items:
        if type(item) is Envelope:
            events.append(item.event)
            contexts.append(item.context)
            stamps.append(item.timestamp)
        else:
            raw.append(len(events))
            events.append(item)
            contexts.append(None)
            stamps.append(None)
    return events, contexts, stamps, raw


def unpack_items(packed: tuple[list[Any], list[Any], list[Any], list[int]]) -> list[Any]:
    """The items `pack_items` flattened."""
    events, contexts, stamps, raw = packed
    if not raw:
        return list(map(make_envelope, events, contexts, stamps))
    items = [make_envelope(e, c, t) for e, c, t in zip(events, contexts, stamps, strict=True)]
    for position in raw:
        items[position] = events[position]
    return items


def split(flat: list[Any], counts: list[int]) -> list[list[Any]]:
    """``flat`` cut into consecutive lists of ``counts`` items."""
    out = []
    at = 0
    for count in counts:
        out.append(flat[at : at + count])
        at += count
    return out


class TimedWindows(ABC):
    """What every timer-driven window state shares: its lock, its one timer, and how it ends.

    Completion flushes the open windows, then completes; an upstream error reports every held
    item not yet emitted once as dropped (``upstream_error``), then passes the error on;
    disposal cancels the timer and reports what was held (``disposed``). Subclasses say how
    to flush, how to lose what they hold, what a timer wake-up closes, and how their state
    is checkpointed. Every method runs under ``lock``.
    """

    def __init__(
        self,
        scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[Window],
        reporter: Reporter,
    ) -> None:
        self.observer = observer
        self.reporter = reporter
        self.now = clock_of(scheduler)
        self.lock = threading.RLock()
        self.timer = Timer(scheduler, self.now, self.lock, self.on_wake)
        self.done = False  # takes no more items (its input ended; or restored so)
        self.ended = False  # this subscription has passed on its end, or was disposed

    @abstractmethod
    def on_wake(self, at: float) -> None:
        """Close what is due at scheduler time ``at``."""

    @abstractmethod
    def flush(self) -> None:
        """Emit every open window, in close order."""

    @abstractmethod
    def lose(self, reason: str) -> None:
        """Report every held item not yet emitted once as dropped with ``reason``, and
        forget the windows."""

    @abstractmethod
    def on_next(self, item: Any) -> None:
        """Take one item."""

    @abstractmethod
    def gauge(self) -> BufferGauge:
        """What the open windows hold, for the metrics."""

    @abstractmethod
    def settings(self) -> tuple[Any, ...]:
        """What a checkpoint must agree on to be restored here (kind and parameters)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The windows as plain data (under the lock)."""

    @abstractmethod
    def load(self, state: dict[str, Any]) -> None:
        """Take over ``state`` and re-arm the timer (under the lock)."""

    def snapshot(self) -> dict[str, Any]:
        """The checkpoint member protocol: plain data, taken under the lock."""
        with self.lock:
            return {"settings": self.settings(), "done": self.done, "state": self.state()}

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            if tuple(state["settings"]) != self.settings():
                raise CheckpointMismatch(
                    f"{self.reporter.operator}: checkpoint taken with {state['settings']}, "
                    f"restored into {self.settings()}"
                )
            self.done = state["done"]
            if not self.done:
                self.load(state["state"])

    def refuse(self, item: Any) -> None:
        """An item come once this subscription takes no more (called under the lock): never
        kept in windows nobody will emit, but reported as dropped, ``disposed`` when it was
        disposed (perhaps by the key or timestamp function just called for ``item``: a
        stream failing from inside), ``completed`` when it was restored from a checkpoint
        taken after its input ended. A watermark is no item: forgotten."""
        if type(item) is not Watermark:
            self.reporter.drop(item, "disposed" if self.ended else "completed")

    def on_completed(self) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
            if not self.done:
                self.done = True
                self.timer.dispose()
                self.flush()
            # Restored from a checkpoint taken after its input ended, it holds nothing and
            # takes no item, but a new subscription's observer still gets its completion.
            self.observer.on_completed()

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
            if not self.done:
                self.done = True
                self.timer.dispose()
                self.lose("upstream_error")
            self.observer.on_error(error)

    def dispose(self) -> None:
        with self.lock:
            self.timer.dispose()
            self.ended = True
            if not self.done:
                self.done = True
                self.lose("disposed")


def hashable_key(reporter: Reporter, key_of: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    """``(True, key)``, or ``(False, None)`` once the item is reported as dropped: the key
    function raised (its text; ``not_an_envelope`` for a non-envelope) or gave an
    unhashable key (``unhashable_key``)."""
    try:
        key = key_of(item)
    except Exception as exc:
        if not isinstance(item, Envelope):
            reporter.drop(item, "not_an_envelope")
        else:
            reporter.error()
            reporter.drop(item, failure_reason(exc))
        return False, None
    try:
        hash(key)
    except Exception:
        reporter.drop(item, "unhashable_key")
        return False, None
    return True, key


StateFactory = Callable[[abc.SchedulerBase, abc.ObserverBase[Window], Reporter], TimedWindows]


def timed_operator(
    name: str,
    scheduler: abc.SchedulerBase | None,
    on_drop: DropHandler | None,
    metrics: StreamMetrics | None,
    make_state: StateFactory,
) -> Callable[[Observable[Any]], Observable[Window]]:
    """The operator around a timed window state: one state per subscription, its timers on
    ``scheduler`` (else the subscribe scheduler, else a timeout scheduler), its contents in
    the metrics as a buffer gauge, everything released on disposal."""

    def operator(source: Observable[Any]) -> Observable[Window]:
        def subscribe(
            observer: abc.ObserverBase[Window], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = timer_scheduler(scheduler, subscribe_scheduler)
            reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=sched)
            state = make_state(sched, observer, reporter)
            scope = current_scope()
            if scope is not None:
                scope.register(name, state)
            gauge = (
                reporter.metrics.register_buffer(name, state.gauge)
                if reporter.metrics is not None
                else Disposable()
            )
            # Its on_next called as it is, not behind a deaf observer: an item a thread still
            # hands on once the subscription is disposed reaches it (see TimedWindows.refuse).
            upstream = subscribe_with_batches(
                source, state.on_next, state.on_error, state.on_completed, subscribe_scheduler, None
            )
            return CompositeDisposable(upstream, Disposable(state.dispose), gauge)

        return Observable(subscribe)

    return operator
