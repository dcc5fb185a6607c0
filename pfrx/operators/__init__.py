"""The pfrx operators: ``from pfrx import operators as pf``.

Each factory returns ``Callable[[Observable], Observable]`` for use in ``pipe()``. The
implementation of each lives in its own private module, imported when the factory is called.

Operators that can lose an item take ``on_drop=`` (a callable receiving :class:`pfrx.Dropped`)
and ``metrics=`` (a :class:`pfrx.StreamMetrics`). Without them, an operator reports into the
stream it runs in (see :func:`reporting_into`), else it logs drops at debug level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from reactivex import Observable, abc

from .._model import Capability, Context, Envelope
from ..metrics import StreamMetrics
from ._shared import DropHandler, ReportScope, current_scope, reporting_into

if TYPE_CHECKING:
    from ._metrics_tap import MetricsTap
    from ._process import Processor

__all__ = [
    "ReportScope",
    "capability_filter",
    "current_scope",
    "metrics_tap",
    "process",
    "reporting_into",
    "transform",
]

Operator = Callable[[Observable[Any]], Observable[Any]]


def capability_filter(
    required: Capability | Callable[[Any], Capability | Iterable[Capability]],
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "capability_filter",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    """Let an envelope pass only when its context holds every required capability.

    ::

        source:   -a-b-c-|        (b's context lacks file.read on its path)
        capability_filter(FileCap.read(path))
        result:   -a---c-|
        dropped:  ---b            reason "insufficient_capabilities"

    Args:
        required: one :class:`~pfrx.Capability`, or a callable ``event -> Capability |
            Iterable[Capability]`` computing the requirement per event (for example from the
            event's path). An empty iterable requires nothing. A callable that raises, or
            returns something that is not a capability, denies the event (fail closed).
        on_drop: receives a :class:`~pfrx.Dropped` for each denied envelope.
        metrics: counts received, emitted, dropped and errors.
        name: the operator name in drops, metrics and logs.

    Returns:
        An operator on observables of :class:`~pfrx.Envelope`. Each denial is also logged
        (loguru, ``WARNING``) with user, session, capability and resource, never the payload.
        An item that is not an envelope is dropped with reason ``not_an_envelope``.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> read = pfrx.Capability("file", "read", "/docs")
        >>> alice = pfrx.Context("alice", capabilities=[read])
        >>> bob = pfrx.Context("bob")
        >>> source = reactivex.of(pfrx.Envelope("a", alice, 0.0), pfrx.Envelope("b", bob, 0.0))
        >>> lost = []
        >>> out = source.pipe(pf.capability_filter(read, on_drop=lost.append))
        >>> [e.event for e in out.pipe(reactivex.operators.to_list()).run()]
        ['a']
        >>> lost[0].reason
        'insufficient_capabilities'
    """
    from ._capability_filter import capability_filter as build

    return build(required, on_drop=on_drop, metrics=metrics, name=name)


def transform(
    fn: Callable[[Any, Context], Any],
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "transform",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    """Map each event with ``fn(event, context)``; reject or fail one item without ending.

    ::

        source:   -a-b-c-|
        transform(fn)             fn(b) returns Reject("too_big"); fn(c) raises ValueError("bad")
        result:   -A-----|
        dropped:  ---b-c          reasons "too_big", "bad"

    Args:
        fn: returns the new event, or :class:`~pfrx.Reject` to drop the item with a reason.
            An exception drops the item with the exception's text as reason (its type's name
            when the text is empty) and counts as an error; the stream goes on.
        on_drop: receives a :class:`~pfrx.Dropped` for each rejected or failed item.
        metrics: counts received, emitted, dropped and errors.
        name: the operator name in drops and metrics.

    Returns:
        An operator emitting envelopes with the new event, the same context and timestamp.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> ctx = pfrx.Context("alice")
        >>> def shout(event, context):
        ...     return pfrx.Reject("empty") if not event else event.upper()
        >>> lost = []
        >>> source = pfrx.envelopes(["hi", "", "yo"], ctx)
        >>> out = source.pipe(pf.transform(shout, on_drop=lost.append))
        >>> [e.event for e in out.pipe(reactivex.operators.to_list()).run()]
        ['HI', 'YO']
        >>> [d.reason for d in lost]
        ['empty']
    """
    from ._transform import transform as build

    return build(fn, on_drop=on_drop, metrics=metrics, name=name)


def process(
    processor: Processor,
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    processing_timeout: float | timedelta | None = None,
    scheduler: abc.SchedulerBase | None = None,
    name: str = "process",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    """Run a stateful processor: ``process_event(event, context, state) -> Ok | Err``.

    ::

        source:   -a-b-c-|
        process(counter)          Ok(state+1, effects=(n,)) for a and c; Err("odd", s) for b
        result:   -1---3-|
        dropped:  ---b            reason "odd"

    State starts at ``processor.initial_state()`` for each subscription. ``Ok(state,
    effects)`` makes ``state`` the new state and emits each effect downstream as an envelope
    with the event's context and timestamp (an effect that already is an envelope is emitted
    as it is). ``Err(reason, state)`` keeps its state and drops the item with ``reason``. An
    exception drops the item with the exception's text and keeps the old state. An ``Ok``
    without effects absorbs the item: that is not a drop.

    Args:
        processor: an object with ``initial_state()`` and ``process_event(...)``.
        on_drop: receives a :class:`~pfrx.Dropped` for each ``Err`` or failure.
        metrics: counts, errors and processing time per event.
        processing_timeout: events that take longer (on the scheduler's clock) are counted
            in ``slow_events`` and logged; the stream is not interrupted.
        scheduler: whose clock times events (default: the subscribe scheduler).
        name: the operator name in drops and metrics.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> class Counter:
        ...     def initial_state(self):
        ...         return 0
        ...     def process_event(self, event, context, state):
        ...         return pfrx.Ok(state + 1, effects=[(event, state + 1)])
        >>> out = pfrx.envelopes("ab", pfrx.Context("alice")).pipe(pf.process(Counter()))
        >>> [e.event for e in out.pipe(reactivex.operators.to_list()).run()]
        [('a', 1), ('b', 2)]
    """
    from ._process import process as build

    return build(
        processor,
        on_drop=on_drop,
        metrics=metrics,
        processing_timeout=processing_timeout,
        scheduler=scheduler,
        name=name,
    )


def metrics_tap(
    metrics: StreamMetrics | None = None,
    *,
    name: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> MetricsTap:
    """Pass every item through unchanged, recording rate and downstream processing time.

    ::

        source:   -a-b-c-|
        metrics_tap(m)
        result:   -a-b-c-|        m.snapshot(): received 3, emitted 3, processing_rate ...

    Args:
        metrics: where to record. Without it, inside a :class:`pfrx.Stream` the tap records
            into the stream's metrics (stage and timing only: the stream counts totals);
            elsewhere it makes its own :class:`~pfrx.StreamMetrics`, available as ``.metrics``
            on the returned operator.
        name: the stage name in the metrics.
        scheduler: the clock for the metrics the tap makes itself.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> tap = pf.metrics_tap()
        >>> reactivex.of(1, 2, 3).pipe(tap).run()
        3
        >>> tap.metrics.snapshot().emitted
        3
    """
    from ._metrics_tap import MetricsTap

    return MetricsTap(metrics, name, scheduler)


# -- backpressure (issue 4) ------------------------------------------------------------------

# -- windows (issue 5) -----------------------------------------------------------------------
