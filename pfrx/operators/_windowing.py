"""What the time-aware window operators share: timers, event time and the watermark.

Two notions of time:

- *Processing time* (no ``timestamp=``): an item's time is the scheduler clock when it
  arrives. A timer fires at each window's end (one scheduler timer per operator, always set
  for the earliest deadline), so a window closes on time even if no further item arrives.
- *Event time* (``timestamp=`` given): an item's time is ``timestamp(envelope)``. The
  watermark is the highest timestamp seen minus ``allowed_lateness`` (the bounded
  out-of-orderness). A window closes once the watermark reaches its end. An item whose
  timestamp is behind the watermark is *late*: it is reported to ``on_drop`` as
  ``Dropped(reason="late")`` and passed to ``on_late``. With ``idle_timeout``, a source that
  stays silent that long on the scheduler clock no longer holds the watermark back: from
  then on event time is taken to advance with the scheduler clock, so open windows close.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler, VirtualTimeScheduler

from .._clock import Clock, clock_of, positive_seconds, to_seconds
from .._model import Envelope, Window
from ..metrics import BufferGauge, StreamMetrics
from ._shared import DropHandler, Reporter
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


class EventTime:
    """The validated event-time settings of one operator (``None`` timestamp: processing)."""

    __slots__ = ("idle_timeout", "lateness", "on_late", "timestamp")

    def __init__(
        self,
        timestamp: Callable[[Any], float] | None,
        allowed_lateness: Duration,
        idle_timeout: Duration | None,
        on_late: LateHandler | None,
    ) -> None:
        if timestamp is not None and not callable(timestamp):
            raise TypeError(f"timestamp must be a callable envelope -> seconds, not {timestamp!r}")
        lateness = to_seconds(allowed_lateness)
        if not lateness >= 0 or math.isinf(lateness):
            raise ValueError(f"allowed_lateness must be >= 0 and finite, not {allowed_lateness!r}")
        if timestamp is None and (lateness or idle_timeout is not None or on_late is not None):
            raise ValueError(
                "allowed_lateness, idle_timeout and on_late apply to event time only: "
                "give timestamp= too"
            )
        self.timestamp = timestamp
        self.lateness = lateness
        self.idle_timeout = (
            positive_seconds(idle_timeout, "idle_timeout") if idle_timeout is not None else None
        )
        self.on_late = late_handler(on_late)


def read_timestamp(
    timestamp: Callable[[Any], float], item: Any
) -> tuple[float | None, str | None, bool]:
    """``(seconds, None, False)``, or ``(None, drop reason, is_error)`` when it cannot be read."""
    try:
        value = timestamp(item)
    except Exception as exc:
        if not isinstance(item, Envelope):
            return None, "not_an_envelope", False
        return None, failure_reason(exc), True
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, "invalid_timestamp", False
    return float(value), None, False


class Watermark:
    """Event-time progress: ``value`` never decreases.

    ``observe(ts, now)`` records an on-time item. While the source is idle (no item for
    ``idle_timeout`` on the scheduler clock) the watermark at scheduler time ``x`` is
    ``max_ts - lateness + (x - last_arrival)``.
    """

    __slots__ = ("idle_timeout", "last_arrival", "lateness", "max_ts", "value")

    def __init__(self, lateness: float, idle_timeout: float | None) -> None:
        self.value = -math.inf
        self.max_ts = -math.inf
        self.last_arrival = -math.inf
        self.lateness = lateness
        self.idle_timeout = idle_timeout

    def observe(self, ts: float, now: float) -> bool:
        """Record an item; True when the watermark moved."""
        self.last_arrival = now
        if ts > self.max_ts:
            self.max_ts = ts
            candidate = ts - self.lateness
            if candidate > self.value:
                self.value = candidate
                return True
        return False

    def idle_wake(self, target: float) -> float:
        """The scheduler time at which an idle source's watermark reaches ``target``."""
        assert self.idle_timeout is not None
        reach = self.last_arrival + (target - (self.max_ts - self.lateness))
        return max(reach, self.last_arrival + self.idle_timeout)

    def on_idle_wake(self, at: float) -> bool:
        """Advance for a wake-up at scheduler time ``at``; True when the watermark moved."""
        assert self.idle_timeout is not None
        if at - self.last_arrival < self.idle_timeout:
            return False
        candidate = self.max_ts - self.lateness + (at - self.last_arrival)
        if candidate > self.value:
            self.value = candidate
            return True
        return False


class TimedWindows(ABC):
    """What every timer-driven window state shares: its lock, its one timer, and how it ends.

    Completion flushes the open windows, then completes; an upstream error reports every held
    item once as dropped (``upstream_error``), then passes the error on; disposal cancels the
    timer and reports what was held (``disposed``). Subclasses say how to flush, how to lose
    what they hold, and what a timer wake-up closes. Every method runs under ``lock``.
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
        self.done = False

    @abstractmethod
    def on_wake(self, at: float) -> None:
        """Close what is due at scheduler time ``at``."""

    @abstractmethod
    def flush(self) -> None:
        """Emit every open window, in close order."""

    @abstractmethod
    def lose(self, reason: str) -> None:
        """Report every held item once as dropped with ``reason`` and forget the windows."""

    @abstractmethod
    def on_next(self, item: Any) -> None:
        """Take one item."""

    @abstractmethod
    def gauge(self) -> BufferGauge:
        """What the open windows hold, for the metrics."""

    def on_completed(self) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            self.timer.dispose()
            self.flush()
            self.observer.on_completed()

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            self.timer.dispose()
            self.lose("upstream_error")
            self.observer.on_error(error)

    def dispose(self) -> None:
        with self.lock:
            self.timer.dispose()
            if not self.done:
                self.done = True
                self.lose("disposed")


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
            gauge = (
                reporter.metrics.register_buffer(name, state.gauge)
                if reporter.metrics is not None
                else Disposable()
            )
            upstream = source.subscribe(
                state.on_next, state.on_error, state.on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(upstream, Disposable(state.dispose), gauge)

        return Observable(subscribe)

    return operator
