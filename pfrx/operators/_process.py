"""process: stateful processing, the guide's stream processor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from loguru import logger
from reactivex import Observable, abc

from .._clock import clock_of, positive_seconds
from .._model import Context, Envelope, Err, Ok, Watermark
from .._model.context import make_envelope
from ..checkpoint import current_scope
from ..metrics import StreamMetrics
from ._checks import accepts, optional_scheduler, reporting
from ._shared import DropHandler, OnNext, Prepared, Reporter, fuse, pick_scheduler
from ._transform import failure_reason


class Processor(Protocol):
    """What [`pfrx.operators.process`][] drives (the guide's ``defstream``)."""

    def initial_state(self) -> Any: ...

    def process_event(self, event: Any, context: Context, state: Any) -> Ok[Any] | Err[Any]: ...


def process(
    processor: Processor,
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    processing_timeout: float | timedelta | None = None,
    scheduler: abc.SchedulerBase | None = None,
    name: str = "process",
) -> Callable[[Observable[Envelope]], Observable[Any]]:
    for method in ("initial_state", "process_event"):
        if not callable(getattr(processor, method, None)):
            raise TypeError(f"processor must have a callable {method}(); {processor!r} has not")
    accepts(processor.initial_state, 0, "process calls processor.initial_state()")
    accepts(
        processor.process_event, 3, "process calls processor.process_event(event, context, state)"
    )
    reporting(on_drop, metrics, name)
    optional_scheduler(scheduler)
    timeout = (
        positive_seconds(processing_timeout, "processing_timeout")
        if processing_timeout is not None
        else None
    )

    def link(subscribe_scheduler: abc.SchedulerBase | None) -> Prepared:
        sched = scheduler or subscribe_scheduler
        reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=sched)
        return Prepared(lambda forward: _wire(forward, reporter, sched))

    def _wire(forward: OnNext, reporter: Reporter, sched: abc.SchedulerBase | None) -> OnNext:
        state = processor.initial_state()  # one state per subscription

        def take(saved: Any) -> None:
            nonlocal state
            state = saved

        scope = current_scope()  # checkpoints: the processor's state as it stands
        if scope is not None:
            scope.register(name, _ProcessorState(lambda: state, take))
        drop = reporter.drop
        step = processor.process_event
        metrics_ = reporter.metrics
        timed = timeout is not None or metrics_ is not None
        clock_source = pick_scheduler(sched, metrics_.scheduler if metrics_ else None)
        now = clock_of(clock_source) if timed else None
        # When the metrics keep the same clock, the reading that ends the timing also places
        # it in the metrics' window (no second reading).
        shared_clock = metrics_ is not None and clock_source is metrics_.scheduler

        def finish_timing(started: float, envelope: Envelope) -> None:
            finished = now()  # type: ignore[misc]
            elapsed = finished - started
            slow = timeout is not None and elapsed > timeout
            reporter.processing_time(elapsed, slow=slow, at=finished if shared_clock else None)
            if slow:
                logger.warning(
                    "{}: event of user {} took {:.6f}s (timeout {}s)",
                    name,
                    envelope.context.user_id,
                    elapsed,
                    timeout,
                )

        def on_next(envelope: Any) -> None:
            nonlocal state
            reporter.received()
            started = now() if now is not None else 0.0
            try:
                outcome = step(envelope.event, envelope.context, state)
            except Exception as exc:
                if type(envelope) is Watermark:  # event-time progress: passed on, uncounted
                    reporter.received(-1)  # the count taken on entry, given back
                    forward(envelope)
                    return
                if timed:
                    finish_timing(started, envelope)
                if not isinstance(envelope, Envelope):
                    drop(envelope, "not_an_envelope")
                    return
                reporter.error()
                drop(envelope, failure_reason(exc))  # the old state stays
                return
            if timed:
                finish_timing(started, envelope)
            kind: type = type(outcome)
            if isinstance(outcome, Ok) and kind is Ok:
                state = outcome.state
                effects = outcome.effects
                if effects:
                    reporter.emitted(len(effects))
                    context, timestamp = envelope.context, envelope.timestamp
                    for effect in effects:
                        # An effect that is an envelope keeps only its event: a processor
                        # cannot re-address its output to another context (a forged one).
                        if isinstance(effect, Envelope):
                            effect = effect.event
                        forward(make_envelope(effect, context, timestamp))
            elif isinstance(outcome, Err) and kind is Err:
                state = outcome.state
                reporter.error()
                drop(envelope, outcome.reason)
            else:
                reporter.error()
                drop(envelope, f"processor returned {kind.__name__}, not Ok or Err")

        return on_next

    return fuse(link)


class _ProcessorState:
    """The checkpoint member of one ``process`` subscription (see pfrx.checkpoint): the
    processor's state itself (it should be plain, picklable data to be saved)."""

    __slots__ = ("_get", "_set")

    def __init__(self, get: Callable[[], Any], set_: Callable[[Any], None]) -> None:
        self._get = get
        self._set = set_

    def snapshot(self) -> dict[str, Any]:
        return {"state": self._get()}

    def restore(self, saved: dict[str, Any]) -> None:
        self._set(saved["state"])
