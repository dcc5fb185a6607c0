"""A slow consumer: downstream that takes a fixed time per item, in virtual or real time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler import VirtualTimeScheduler

from .._clock import to_seconds

T = TypeVar("T")


def slow_consumer(
    per_item: float | timedelta,
    scheduler: abc.SchedulerBase | None = None,
    *,
    tick: float = 1.0,
) -> Callable[[Observable[T]], Observable[T]]:
    """A pass-through whose consumer works ``per_item`` ticks on each item.

    Each item is forwarded first, then the consumer "works": on a virtual-time scheduler
    (a ``TestScheduler``, a [`MarbleKit`][pfrx.testing.MarbleKit]'s ``m.scheduler``) the clock
    advances by ``per_item * tick`` seconds while nothing else runs, so whatever the
    producer scheduled in the meantime runs late, exactly as it would queue up behind a busy
    single-threaded consumer. Without a virtual-time scheduler the consumer really sleeps
    ``per_item * tick`` seconds (use it on another thread than the producer's).

    Put it after the operator under test: the marble recording then shows each item at the
    instant the consumer starts on it.

    Args:
        per_item: ticks (or a ``timedelta``) of work per item; zero means no work.
        scheduler: the virtual-time scheduler whose clock advances; ``None`` for real time.
        tick: seconds per tick (a ``MarbleKit``'s ``m.tick``).

    Example:
        >>> from pfrx.testing import marbles, slow_consumer
        >>> with marbles() as m:
        ...     result = m.run(m.cold("-a-b|").pipe(slow_consumer(3, m.scheduler)))
        ...     m.expect(result, "-a--b--|")
    """
    seconds = to_seconds(per_item) * tick
    if seconds < 0:
        raise ValueError(f"per_item must not be negative, not {per_item!r}")
    virtual = scheduler if isinstance(scheduler, VirtualTimeScheduler) else None
    if scheduler is not None and virtual is None:
        raise TypeError(
            "slow_consumer advances a virtual-time scheduler's clock; pass None for real time,"
            f" not {type(scheduler).__name__}"
        )

    def work() -> None:
        if seconds == 0:
            return
        if virtual is not None:
            virtual.sleep(seconds)
        else:
            time.sleep(seconds)

    def operator(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(value: Any) -> None:
                observer.on_next(value)
                work()

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=subscribe_scheduler
            )

        return Observable(subscribe)

    return operator
