"""Reading a scheduler's clock as float seconds, cheaply.

Operators never read the wall clock themselves: they ask the scheduler they run on. The
standard real-time schedulers report the system UTC clock through ``scheduler.now``; building
a ``datetime`` per item only to turn it back into seconds is the slowest way to read the
same value, so for schedulers that keep RxPY's default ``now`` we read that clock directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from time import time as _system_utc_seconds

from reactivex import abc
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.scheduler import Scheduler

Clock = Callable[[], float]


def clock_of(scheduler: abc.SchedulerBase) -> Clock:
    """A zero-argument function giving ``scheduler``'s current time in seconds."""
    if isinstance(scheduler, VirtualTimeScheduler):
        if isinstance(scheduler.clock, (int, float)):

            def virtual() -> float:
                return float(scheduler.clock)

            return virtual
        return lambda: scheduler.to_seconds(scheduler.now)
    if type(scheduler).now is Scheduler.now:
        # RxPY's default ``now`` is ``datetime.now(timezone.utc)``: the same clock.
        return _system_utc_seconds
    return lambda: scheduler.to_seconds(scheduler.now)


def to_seconds(duration: float | int | timedelta) -> float:
    """A duration given as seconds or a ``timedelta``, in seconds (as RxPY accepts them).

    Raises:
        TypeError: ``duration`` is neither a number nor a ``timedelta``.
    """
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise TypeError(f"a duration must be seconds or a timedelta, not {duration!r}")
    return float(duration)


def positive_seconds(duration: float | int | timedelta, name: str) -> float:
    """`to_seconds`, requiring a strictly positive, finite result.

    Raises:
        TypeError: not a duration.
        ValueError: zero, negative or not finite.
    """
    seconds = to_seconds(duration)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{name} must be a positive duration, not {duration!r}")
    return seconds
