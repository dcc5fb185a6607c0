"""metrics_tap: a pass-through that measures what flows and how long downstream takes."""

from __future__ import annotations

from typing import Any

from reactivex import Observable, abc

from .._clock import clock_of
from ..metrics import StreamMetrics
from ._shared import current_scope


class MetricsTap:
    """The operator :func:`pfrx.operators.metrics_tap` returns; ``.metrics`` is what it feeds.

    With ``metrics`` given, or outside any stream, it counts every item as received and
    emitted and times how long downstream takes with each item. Inside a :class:`pfrx.Stream`
    without ``metrics``, the stream counts totals and the tap adds its own stage and timing.
    """

    def __init__(
        self,
        metrics: StreamMetrics | None,
        name: str | None,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._explicit = metrics
        self.name = name or "metrics_tap"
        self._own = metrics or StreamMetrics(scheduler, name=self.name)

    @property
    def metrics(self) -> StreamMetrics:
        return self._own

    def __call__(self, source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            scope = current_scope()
            if self._explicit is None and scope is not None and scope.metrics is not None:
                metrics, totals = scope.metrics, False
            else:
                metrics, totals = self._own, True
            stage = metrics.stage(self.name)
            now = clock_of(metrics.scheduler)
            forward = observer.on_next
            record_time = metrics.record_processing_time

            if totals:
                record_in, record_out = metrics.record_received, metrics.record_emitted

                def on_next(value: Any) -> None:
                    stage.received += 1
                    record_in()
                    started = now()
                    forward(value)
                    record_time(now() - started)
                    stage.emitted += 1
                    record_out()
            else:

                def on_next(value: Any) -> None:
                    stage.received += 1
                    started = now()
                    forward(value)
                    record_time(now() - started)
                    stage.emitted += 1

            def on_error(error: Exception) -> None:
                stage.errors += 1
                metrics.record_error()
                observer.on_error(error)

            return source.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)
