"""metrics_tap: a pass-through that measures what flows and how long downstream takes."""

from __future__ import annotations

from typing import Any

from reactivex import Observable, abc

from .._clock import clock_of
from ..metrics import StreamMetrics
from ._shared import OnNext, Prepared, current_scope, fuse


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
        return fuse(self._stage)(source)

    def _stage(self, scheduler: abc.SchedulerBase | None) -> Prepared:
        scope = current_scope()
        if self._explicit is None and scope is not None and scope.metrics is not None:
            metrics, totals = scope.metrics, False
        else:
            metrics, totals = self._own, True
        stage = metrics.stage(self.name)
        now = clock_of(metrics.scheduler)

        def wire(forward: OnNext) -> OnNext:
            if totals:
                record_passed = metrics.record_passed

                def on_next(value: Any) -> None:
                    stage.received += 1
                    started = now()
                    forward(value)
                    record_passed(started, now())
                    stage.emitted += 1

                return on_next
            record_time = metrics.record_processing_time

            def on_next_in_stream(value: Any) -> None:
                stage.received += 1
                started = now()
                forward(value)
                record_time(now() - started)
                stage.emitted += 1

            return on_next_in_stream

        def on_error(error: Exception) -> None:
            stage.errors += 1
            metrics.record_error()

        return Prepared(wire, on_error)
