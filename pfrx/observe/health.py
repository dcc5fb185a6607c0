"""Health transitions of a stream, pushed when they happen.

``health_changes(stream)`` samples the stream's health on a scheduler's clock and emits
``HealthChange(old, new, snapshot)`` each time it differs from the previous sample, so a
subscriber is told about a stream turning ``degraded`` instead of polling for it. Under a
``TestScheduler`` the samples fall at exact virtual times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

import reactivex
from reactivex import Observable, abc
from reactivex.scheduler import TimeoutScheduler

from .._clock import positive_seconds
from ..metrics import Health, MetricsSnapshot, StreamMetrics

__all__ = ["HealthChange", "health_changes"]


class HealthChange(NamedTuple):
    """One transition: the health before, the health now, and the snapshot that shows it."""

    old: Health
    new: Health
    snapshot: MetricsSnapshot


def health_changes(
    stream_or_metrics: Any,
    *,
    interval: float | timedelta = 1.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[HealthChange]:
    """An observable of the health transitions of a stream (or of a ``StreamMetrics``).

    ```text
    samples:  H---H---D---D---U---H---    the health, one sample per interval
    result:   --------a-------b---c---    a=(H,D,snap) b=(D,U,snap) c=(U,H,snap)
    ```

    The first sample, taken at subscription, sets the starting health and is not emitted;
    every later sample (one per ``interval`` on ``scheduler``'s clock) whose health differs
    from the one before emits ``HealthChange(old, new, snapshot)``. The observable never
    completes by itself: dispose the subscription to stop sampling. A
    `pfrx.Stream`'s health is `pfrx.Stream.health` (``unhealthy`` once failed).

    Args:
        stream_or_metrics: a `pfrx.Stream` or a `pfrx.StreamMetrics`.
        interval: time between samples, seconds or a ``timedelta``.
        scheduler: whose clock samples (default: the stream's scheduler, else its metrics'
            scheduler, else a timer thread).

    Example:
        >>> from reactivex.testing import TestScheduler
        >>> import pfrx
        >>> from pfrx.observe import health_changes
        >>> clock = TestScheduler()
        >>> metrics = pfrx.StreamMetrics(clock)
        >>> seen = []
        >>> _ = health_changes(metrics, interval=1.0).subscribe(seen.append)
        >>> metrics.record_received(); metrics.record_drop("overflow")
        >>> clock.advance_to(1.0)
        >>> [(change.old.value, change.new.value) for change in seen]
        [('healthy', 'unhealthy')]
    """
    period = positive_seconds(interval, "interval")
    read = _reader(stream_or_metrics)
    sampler = scheduler or _scheduler_of(stream_or_metrics)

    def subscribe(
        observer: abc.ObserverBase[HealthChange], subscribe_scheduler: abc.SchedulerBase | None
    ) -> abc.DisposableBase:
        previous = [read()[0]]

        def sample(_: int) -> None:
            health, snapshot = read()
            old = previous[0]
            previous[0] = health
            if health != old:
                observer.on_next(HealthChange(old, health, snapshot))

        return reactivex.interval(period, scheduler=sampler).subscribe(
            sample, observer.on_error, scheduler=subscribe_scheduler
        )

    return Observable(subscribe)


def _reader(source: Any) -> Callable[[], tuple[Health, MetricsSnapshot]]:
    if isinstance(source, StreamMetrics):
        metrics = source

        def read_metrics() -> tuple[Health, MetricsSnapshot]:
            snapshot = metrics.snapshot()
            return metrics.thresholds.classify(snapshot), snapshot

        return read_metrics
    if callable(getattr(source, "health", None)) and callable(getattr(source, "metrics", None)):
        stream = source

        def read_stream() -> tuple[Health, MetricsSnapshot]:
            health = Health(stream.health())
            return health, stream.metrics()

        return read_stream
    raise TypeError(
        f"health_changes needs a pfrx.Stream or a pfrx.StreamMetrics, not {type(source).__name__}"
    )


def _scheduler_of(source: Any) -> abc.SchedulerBase:
    if isinstance(source, StreamMetrics):
        return source.scheduler
    own = getattr(source, "scheduler", None)
    if isinstance(own, abc.SchedulerBase):
        return own
    metrics = getattr(source, "stream_metrics", None)
    if isinstance(metrics, StreamMetrics):
        return metrics.scheduler
    return TimeoutScheduler.singleton()
