"""Reading a scheduler's clock as float seconds, cheaply.

Operators never read the wall clock themselves: they ask the scheduler they run on. The
standard real-time schedulers report the system UTC clock through ``scheduler.now``; building
a ``datetime`` per item only to turn it back into seconds is the slowest way to read the
same value, so for schedulers that keep RxPY's default ``now`` we read that clock directly.
"""

from __future__ import annotations

import math
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


MAX_SECONDS = float(2**31)
"""The longest duration an operator accepts: timers beyond it overflow the schedulers."""

MAX_WINDOWS_PER_ITEM = 10_000
"""The most sliding windows one item may open (``span / slide``)."""


def _bounded(duration: float | int | timedelta, name: str, *, zero: bool) -> float:
    seconds = to_seconds(duration)
    low_ok = seconds >= 0 if zero else seconds > 0
    if not low_ok or not math.isfinite(seconds) or seconds > MAX_SECONDS:
        kind = "a finite duration >= 0" if zero else "a finite positive duration"
        raise ValueError(f"{name} must be {kind} of at most 2**31 s, not {duration!r}")
    return seconds


def positive_seconds(duration: float | int | timedelta, name: str) -> float:
    """`to_seconds`, requiring a result that is finite, positive and at most 2**31 s.

    Raises:
        TypeError: not a duration.
        ValueError: zero, negative, not finite, or longer than 2**31 seconds.
    """
    return _bounded(duration, name, zero=False)


def bound_seconds(duration: float | int | timedelta, name: str) -> float:
    """`positive_seconds` for bounds that may be 0 (lateness, out-of-orderness).

    Raises:
        TypeError: not a duration.
        ValueError: negative, not finite, or longer than 2**31 seconds.
    """
    return _bounded(duration, name, zero=True)


def windows_per_item(span: float, slide: float) -> int:
    """How many sliding windows of ``span`` every ``slide`` one item may fall in.

    Raises:
        ValueError: more than `MAX_WINDOWS_PER_ITEM` (``span / slide`` too large).
    """
    count = math.ceil(span / slide)
    if count > MAX_WINDOWS_PER_ITEM:
        raise ValueError(
            f"span / slide = {span / slide:g}: an item would open {count} windows, "
            f"more than {MAX_WINDOWS_PER_ITEM}"
        )
    return max(count, 1)


def offset_seconds(offset: float | int | timedelta, slide: float) -> float:
    """A window alignment offset in seconds, ``|offset| < slide``.

    Raises:
        TypeError: not a duration.
        ValueError: not finite, or not smaller than ``slide`` in absolute value.
    """
    seconds = to_seconds(offset)
    if not math.isfinite(seconds) or not abs(seconds) < slide:
        raise ValueError(f"offset must satisfy |offset| < slide ({slide:g} s), not {offset!r}")
    return seconds
