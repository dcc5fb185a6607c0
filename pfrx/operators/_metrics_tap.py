"""metrics_tap: a pass-through that measures what flows and how long downstream takes."""

from __future__ import annotations

import threading
from typing import Any

from reactivex import Observable, abc

from .._clock import clock_of
from .._model import Watermark
from ..metrics import StreamMetrics
from ._checks import operator_name, optional_metrics, optional_scheduler
from ._shared import OnBatch, OnNext, Prepared, current_scope, fuse


class MetricsTap:
    """The operator [`pfrx.operators.metrics_tap`][] returns; ``.metrics`` is what it feeds.

    With ``metrics`` given, or outside any stream, it counts every item as received and
    emitted and times how long downstream takes with each item. Inside a [`pfrx.Stream`][]
    without ``metrics``, the stream counts totals and the tap adds its own counts and timing.
    A list of items handed on at once (a ``backpressure`` drain's turn, in a stream) is
    timed as one, each item counted with an equal share of that time.
    """

    def __init__(
        self,
        metrics: StreamMetrics | None,
        name: str | None,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        optional_metrics(metrics)
        optional_scheduler(scheduler)
        self._explicit = metrics
        self.name = "metrics_tap" if name is None else operator_name(name)
        self._own = metrics or StreamMetrics(scheduler, name=self.name)

    @property
    def metrics(self) -> StreamMetrics:
        return self._own

    def __call__(self, source: Observable[Any]) -> Observable[Any]:
        return fuse(self._link)(source)

    def _link(self, scheduler: abc.SchedulerBase | None) -> Prepared:
        scope = current_scope()
        if self._explicit is None and scope is not None and scope.metrics is not None:
            metrics, totals = scope.metrics, False
        else:
            metrics, totals = self._own, True
        counters = metrics.operator(self.name)
        now = clock_of(metrics.scheduler)
        width = metrics.rate_bucket
        lock = threading.Lock()
        # Counted here, per item, in plain closure variables; pushed into the metrics when a
        # rate bucket ends and whenever the metrics are read (register_source), so figures
        # stay exact while an item costs a handful of local updates.
        count = 0
        busy = 0.0
        slowest = 0.0
        flushed_count = 0
        flushed_busy = 0.0
        boundary = float("-inf")

        def flush() -> None:
            nonlocal flushed_count, flushed_busy
            with lock:
                pending = count - flushed_count
                if not pending:
                    return
                spent = busy
                # Every pending item lies in the bucket that ends at ``boundary``.
                metrics.record_batch(
                    pending, spent - flushed_busy, slowest, boundary - width / 2, totals=totals
                )
                counters.received += pending
                counters.emitted += pending
                flushed_count, flushed_busy = flushed_count + pending, spent

        def wire(forward: OnNext) -> OnNext:
            def on_next(value: Any) -> None:
                nonlocal count, busy, slowest, boundary
                if type(value) is Watermark:  # event-time progress: passed on, unmeasured
                    forward(value)
                    return
                started = now()
                if started >= boundary:
                    flush()
                    boundary = (started // width + 1) * width
                forward(value)
                elapsed = now() - started
                busy += elapsed
                if elapsed > slowest:
                    slowest = elapsed
                count += 1

            return on_next

        def pass_batch(forward: OnBatch) -> OnBatch:
            # A list (items only, see subscribe_with_batches) is timed as one: each of its
            # items is counted with an equal share of the time downstream took with it.
            def on_batch(values: list[Any]) -> None:
                nonlocal count, busy, slowest, boundary
                started = now()
                if started >= boundary:
                    flush()
                    boundary = (started // width + 1) * width
                forward(values)
                elapsed = now() - started
                busy += elapsed
                size = len(values)
                if elapsed > slowest * size:
                    slowest = elapsed / size
                count += size

            return on_batch

        def on_error(error: Exception) -> None:
            flush()
            counters.errors += 1
            metrics.record_error()

        source = metrics.register_source(flush)

        def dispose() -> None:
            flush()
            source.dispose()

        return Prepared(wire, on_error, flush, dispose, pass_batch=pass_batch)
