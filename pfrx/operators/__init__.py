"""The pfrx operators: ``from pfrx import operators as pf``.

Each factory returns ``Callable[[Observable], Observable]`` for use in ``pipe()``. The
implementation of each lives in its own private module, imported when the factory is called.

Operators that can lose an item take ``on_drop=`` (a callable receiving [`pfrx.Dropped`][])
and ``metrics=`` (a [`pfrx.StreamMetrics`][]). Without them, an operator reports into the
stream it runs in (see [`reporting_into`][pfrx.operators.reporting_into]), else it logs drops at
debug level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from reactivex import Observable, abc

from .._model import Capability, Context, Envelope, Window
from ..metrics import StreamMetrics
from ._backpressure_policy import AdaptivePolicy
from ._shared import DropHandler, Operator, ReportScope, current_scope, reporting_into

if TYPE_CHECKING:
    from ._metrics_tap import MetricsTap
    from ._process import Processor

__all__ = [
    "AdaptivePolicy",
    "Operator",
    "ReportScope",
    "backpressure",
    "capability_filter",
    "current_scope",
    "metrics_tap",
    "process",
    "reporting_into",
    "transform",
    "window_count",
    "window_session",
    "window_time",
]


def capability_filter(
    required: Capability | Callable[[Any], Capability | Iterable[Capability]],
    *,
    resource: Callable[[Any], str] | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "capability_filter",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    """Let an envelope pass only when its context holds every required capability.

    ```text
    source:   -a-b-c-|        (b's context lacks file.read on its path)
    capability_filter(FileCap.read)
    result:   -a---c-|
    dropped:  ---b            reason "insufficient_capabilities"
    ```

    Args:
        required: what an event needs, in one of four forms, fastest first:
            a family action (``FileCap.read``: the event is the resource, or ``resource=``
            says where it is); a callable ``event -> Capability | Iterable[Capability]``
            (for example ``lambda ev: FileCap.read(ev.path)``); or one fixed
            [`Capability`][pfrx.Capability]. Every capability named must be granted.
            **An empty iterable denies the event** (reason ``empty_requirement``): a
            requirement that names nothing is a bug, and a security check fails closed.
            A callable that raises, or returns something that is not capabilities, denies
            the event (reason ``insufficient_capabilities``) and counts an error. The
            requirement is computed exactly once per item.
        resource: with a family action, ``event -> str``: the resource to check.
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each denied envelope.
        metrics: counts received, emitted, dropped and errors.
        name: the operator name in drops, metrics and logs.

    Returns:
        An operator on observables of [`Envelope`][pfrx.Envelope]. Each denial is also logged
        (loguru, ``WARNING``) with user, session, capability and resource, never the payload.
        An item that is not an envelope is dropped with reason ``not_an_envelope``; an
        envelope whose context is not a [`Context`][pfrx.Context], with ``invalid_context``.

    Raises:
        TypeError: ``required`` or ``resource`` has the wrong type (``resource=`` needs a
            family action).

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> FileCap = pfrx.CapabilityFamily("file", actions=("read",))
        >>> alice = pfrx.Context("alice", capabilities=[FileCap.read("/docs")])
        >>> lost = []
        >>> source = pfrx.envelopes(["/docs/a", "/etc/passwd"], alice)
        >>> out = source.pipe(pf.capability_filter(FileCap.read, on_drop=lost.append))
        >>> [e.event for e in out.pipe(reactivex.operators.to_list()).run()]
        ['/docs/a']
        >>> lost[0].reason
        'insufficient_capabilities'
    """
    from ._capability_filter import capability_filter as build

    return build(required, resource=resource, on_drop=on_drop, metrics=metrics, name=name)


def transform(
    fn: Callable[[Any, Context], Any],
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "transform",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    """Map each event with ``fn(event, context)``; reject or fail one item without ending.

    ```text
    source:   -a-b-c-|
    transform(fn)             fn(b) returns Reject("too_big"); fn(c) raises ValueError("bad")
    result:   -A-----|
    dropped:  ---b-c          reasons "too_big", "bad"
    ```

    Args:
        fn: returns the new event, or [`Reject`][pfrx.Reject] to drop the item with a reason.
            An exception drops the item with the exception's text as reason (its type's name
            when the text is empty or cannot be read) and counts as an error; the stream goes
            on. A function Python can tell cannot take ``(event, context)`` (one argument, say)
            raises ``TypeError`` when the operator is built, as does any argument of the wrong
            type.
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each rejected or failed item.
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

    ```text
    source:   -a-b-c-|
    process(counter)          Ok(state+1, effects=(n,)) for a and c; Err("odd", s) for b
    result:   -1---3-|
    dropped:  ---b            reason "odd"
    ```

    State starts at ``processor.initial_state()`` for each subscription. ``Ok(state,
    effects)`` makes ``state`` the new state and emits each effect downstream as an envelope
    with the event's context and timestamp (an effect that already is an envelope is
    re-wrapped: its event, the input's context and timestamp). ``Err(reason, state)``
    keeps its state and drops the item with ``reason``. An exception drops the item with the
    exception's text and keeps the old state. An ``Ok`` without effects absorbs the item:
    that is not a drop.

    Args:
        processor: an object with ``initial_state()`` and ``process_event(...)``.
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each ``Err`` or failure.
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

    ```text
    source:   -a-b-c-|
    metrics_tap(m)
    result:   -a-b-c-|        m.snapshot(): received 3, emitted 3, processing_rate ...
    ```

    Args:
        metrics: where to record. Without it, inside a [`pfrx.Stream`][] the tap records
            into the stream's metrics (its own counts and timing only: the stream counts totals);
            elsewhere it makes its own [`StreamMetrics`][pfrx.StreamMetrics], available as
            ``.metrics`` on the returned operator.
        name: the operator's name in the metrics (`MetricsSnapshot.operators`).
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


def backpressure(
    strategy: str = "drop_oldest",
    *,
    buffer_size: int = 10_000,
    batch_size: int = 100,
    scheduler: abc.SchedulerBase | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    timeout: float | timedelta | None = None,
    adaptive: AdaptivePolicy | None = None,
    name: str = "backpressure",
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Put a bounded buffer between the producer and a drain that runs on a scheduler.

    ```text
    source:   -a-b-c-d-e-f-|          consumer takes 6 ticks per item,
    backpressure("drop_oldest",       buffer_size=2, batch_size=1
                 buffer_size=2)
    result:   -a-----c-----e-----f-----|
    dropped:  b, d                    reason "overflow"
    ```

    The drain delivers up to ``batch_size`` items per turn, in order, and schedules its next
    turn only while items remain (one scheduled action per wake-up, not per item). When an
    item finds the buffer full:

    - ``drop_oldest``: the oldest buffered item is evicted (reason ``overflow``);
    - ``drop_newest``: the incoming item is dropped (reason ``overflow``);
    - ``latest``: at most one item waits, the most recent; each overwritten item is dropped
      (reason ``overwritten``; ``buffer_size`` does not apply);
    - ``block``: lossless. A producer on another thread waits for room (at most ``timeout``,
      then [`pfrx.BackpressureTimeout`][] is raised from its ``on_next`` and the item is
      not accepted); a producer that cannot wait without deadlock (on a virtual-time,
      trampoline or immediate scheduler, or on the drain's own thread) delivers the oldest
      items inline instead;
    - ``error``: the item is dropped (reason ``overflow``), upstream is disposed, what is
      buffered is delivered, then [`pfrx.BackpressureOverflow`][] goes downstream;
    - ``adaptive``: drop-oldest bound plus a state machine
      ([`AdaptivePolicy`][pfrx.operators.AdaptivePolicy]) that sheds the oldest items (reason
      ``shed``) while a sustained backlog lasts, with hysteresis, and halves or doubles the batch
      size with processing time. Each switch is logged and published in the metrics' ``info``.

    Each item that finds the buffer full counts one backpressure event. Upstream completion
    or error reaches downstream after everything buffered. Disposal stops the drain and
    reports each item left with reason ``disposed``. Every argument is checked when the
    operator is built, whether or not it applies to the strategy: a wrong type raises
    ``TypeError``, a wrong value ``ValueError``.

    Args:
        strategy: one of ``drop_oldest``, ``drop_newest``, ``latest``, ``block``, ``error``,
            ``adaptive``; anything else raises ``ValueError``.
        buffer_size: how many items may wait (>= 1).
        batch_size: the most items delivered per drain turn (>= 1).
        scheduler: where the drain runs; default the subscribe scheduler, else a dedicated
            thread (also used instead of RxPY's ``NewThreadScheduler``, which would start a
            thread per turn).
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each lost item.
        metrics: counts, backpressure events, the buffer gauge (current and peak
            utilisation) and, in ``info``, drain batch sizes and the adaptive state.
        timeout: ``block`` only: the longest a producer waits, seconds or a ``timedelta``.
        adaptive: ``adaptive`` only: the policy (default
            [`AdaptivePolicy()`][pfrx.operators.AdaptivePolicy]).
        name: the operator name in drops, metrics and logs.

    Example:
        >>> import reactivex
        >>> from reactivex.testing import TestScheduler
        >>> from pfrx import operators as pf
        >>> scheduler, got, lost = TestScheduler(), [], []
        >>> buffered = reactivex.from_iterable(range(5)).pipe(
        ...     pf.backpressure("drop_oldest", buffer_size=2, scheduler=scheduler,
        ...                     on_drop=lost.append))
        >>> _ = buffered.subscribe(got.append)
        >>> got                       # nothing is drained until the scheduler runs
        []
        >>> _ = scheduler.start()
        >>> got, [(d.item, d.reason) for d in lost]
        ([3, 4], [(0, 'overflow'), (1, 'overflow'), (2, 'overflow')])
    """
    from ._backpressure import backpressure as build

    return build(
        strategy,
        buffer_size=buffer_size,
        batch_size=batch_size,
        scheduler=scheduler,
        on_drop=on_drop,
        metrics=metrics,
        timeout=timeout,
        adaptive=adaptive,
        name=name,
    )


# -- windows (issue 5) -----------------------------------------------------------------------
def window_count(
    size: int,
    *,
    slide: int | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_count",
) -> Callable[[Observable[Any]], Observable[Window]]:
    """Group items into windows of ``size`` items: tumbling, or sliding every ``slide`` items.

    ```text
    source:          -a-b-c-d-e-|
    window_count(2)
    result:          ---x---y---(z|)     x = (a, b), y = (c, d), z = (e,)

    source:          -a-b-c-d-|
    window_count(3, slide=1)
    result:          -----x-y-(zw|)      x = (a, b, c), y = (b, c, d), z = (c, d), w = (d,)
    ```

    Each emission is a [`Window`][pfrx.Window] with ``key=None``, ``items`` the items in
    arrival order, ``start`` the index of its first item and ``end`` one past the index of
    its last item (indices count items from 0 per subscription). Windows start at indices
    ``0, slide, 2*slide, ...``; each closes when it holds ``size`` items, so item ``i`` is
    in every window ``k >= 0`` with ``k*slide <= i < k*slide + size`` (``ceil(size/slide)``
    windows once past the first ``size`` items, when ``slide`` divides ``size``).

    On completion every open window that holds an item is emitted (a partial tumbling
    window; the trailing windows of a sliding one), oldest first; an empty window is never
    emitted. An upstream error passes through and each item held in an open window is
    dropped once with reason ``upstream_error``, unless it already left in an emitted
    window; disposal drops them with ``disposed``.
    With ``slide > size`` the items between two windows belong to none and are dropped with
    reason ``between_windows``.

    Args:
        size: items per window, at least 1.
        slide: items between the starts of two windows (``None``: ``size``, tumbling).
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each item lost (see above).
        metrics: counts received items and emitted windows; the items held in open windows
            are a buffer gauge (capacity 0: windows do not count towards buffer utilization).
        name: the operator name in drops and metrics.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> source = pfrx.envelopes(range(7), pfrx.Context("alice"))
        >>> windows = source.pipe(pf.window_count(3), reactivex.operators.to_list()).run()
        >>> [(w.start, w.end, w.events) for w in windows]
        [(0, 3, (0, 1, 2)), (3, 6, (3, 4, 5)), (6, 7, (6,))]
        >>> sliding = source.pipe(pf.window_count(3, slide=2), reactivex.operators.to_list())
        >>> [w.events for w in sliding.run()]
        [(0, 1, 2), (2, 3, 4), (4, 5, 6), (6,)]
    """
    from ._window_count import window_count as build

    return build(size, slide=slide, on_drop=on_drop, metrics=metrics, name=name)


def window_time(
    span: float | timedelta,
    *,
    slide: float | timedelta | None = None,
    key: Callable[[Any], Any] | None = None,
    offset: float | timedelta = 0.0,
    scheduler: abc.SchedulerBase | None = None,
    timestamp: Callable[[Any], Any] | None = None,
    out_of_orderness: float | timedelta = 0.0,
    allowed_lateness: float | timedelta = 0.0,
    idle_timeout: float | timedelta | None = None,
    on_late: Callable[[Any], None] | abc.ObserverBase[Any] | None = None,
    watermark: str = "shared",
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_time",
) -> Callable[[Observable[Any]], Observable[Window]]:
    """Group items into windows of ``span`` seconds aligned to the clock, per key if asked.

    ```text
    source:          -a-b---c-----d--|       (one character = 1 s, subscribed at 200)
    window_time(4)
    result:          ----x---y-------(z|)    x = (a, b) [200, 204), y = (c,) [204, 208)
                                             z = (d,) [212, 216), flushed on completion
    ```

    Window ``k`` covers ``[offset + k*slide, offset + k*slide + span)`` (``slide = span``
    when tumbling): windows are aligned on the clock, not to the first item, and ``start`` /
    ``end`` are those bounds (``end`` exclusive). An item is in every window that covers its
    time. A window is created by its first item, so an empty window is never emitted. With
    ``slide > span`` an item between windows is dropped with reason ``between_windows``.
    With ``key=``, each key has its own windows (``Window.key``); windows closing at the same
    time are emitted in the order they were opened.

    *Processing time* (default): an item's time is the scheduler clock when it arrives, and
    a timer closes each window at its end even if no further item arrives. *Event time*
    (``timestamp=``, returning seconds or an aware ``datetime``): the watermark is the
    highest timestamp seen minus ``out_of_orderness`` (or the time of a
    [`Watermark`][pfrx.Watermark] item); a window fires once the watermark reaches its end. An
    item is late only when every window it belongs to is past ``end + allowed_lateness``:
    it is dropped with reason ``late`` and passed to ``on_late``. An item whose window has
    fired but is within ``allowed_lateness`` fires it again at once, whole, with
    ``Window.revision`` one higher. ``idle_timeout`` lets the watermark follow the scheduler
    clock once no item has come for that long.

    Windows are emitted as they close, in order of their end. Completion emits every open
    window; an upstream error passes through and each held item never emitted is dropped
    once with reason ``upstream_error``; disposal cancels the timer and drops them with
    ``disposed``.

    Args:
        span: window length, seconds or a ``timedelta``.
        slide: time between window starts (``None``: ``span``, tumbling); at most 10,000
            windows per item (``span / slide``).
        key: ``envelope -> key``: windows per key. A failing key drops the item with the
            exception's text; an unhashable one with ``unhashable_key``.
        offset: window alignment, ``|offset| < slide`` (e.g. ``-3600`` with a ``span`` of a
            day for days starting at 23:00 UTC).
        scheduler: the clock and timers (default: the subscribe scheduler, else a
            ``TimeoutScheduler``).
        timestamp: ``envelope -> seconds | aware datetime``; switches to event time. A
            failing timestamp drops the item with the exception's text; a non-number, a
            NaN, a naive datetime, or a kind other than the first item's gives
            ``invalid_timestamp``. With datetimes, ``Window.start`` / ``end`` are UTC
            datetimes.
        out_of_orderness: event time: how far the watermark stays behind the highest
            timestamp seen (Flink's bounded out-of-orderness), seconds, may be 0.
        allowed_lateness: event time: how long after a window fired a late item may still
            update it (Flink's allowed lateness), seconds, may be 0. Before this release it
            meant the out-of-orderness: that is now ``out_of_orderness``.
        idle_timeout: event time only: scheduler time without items after which the
            watermark follows the scheduler clock.
        on_late: a callable or an observer receiving each late envelope (a side output).
            The windows it missed are in its ``Dropped.windows`` (on ``on_drop`` or a
            stream's ``dropped``): the ``(start, end)`` of each window holding its time.
        watermark: ``"shared"`` (default): one watermark for the operator, moved by every
            key's items. ``"per_key"`` (needs ``key=`` and ``timestamp=``): each key's
            windows fire on that key's own watermark (its highest timestamp minus
            ``out_of_orderness``), and lateness is judged against it; explicit
            [`Watermark`][pfrx.Watermark] items and the idle clock (``idle_timeout``, from
            the highest watermark any key reached) move every key.
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each item lost.
        metrics: counts received items and emitted windows; held item slots are a gauge.
        name: the operator name in drops and metrics.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> events = [(1.0, "a"), (4.0, "b"), (12.0, "c"), (25.0, "d")]
        >>> source = pfrx.envelopes(events, pfrx.Context("alice"))
        >>> op = pf.window_time(10, timestamp=lambda env: env.event[0])
        >>> windows = source.pipe(op, reactivex.operators.to_list()).run()
        >>> [(w.start, w.end, [name for _, name in w.events]) for w in windows]
        [(0.0, 10.0, ['a', 'b']), (10.0, 20.0, ['c']), (20.0, 30.0, ['d'])]
    """
    from ._window_time import window_time as build

    return build(
        span,
        slide=slide,
        key=key,
        offset=offset,
        scheduler=scheduler,
        timestamp=timestamp,
        out_of_orderness=out_of_orderness,
        allowed_lateness=allowed_lateness,
        idle_timeout=idle_timeout,
        on_late=on_late,
        watermark=watermark,
        on_drop=on_drop,
        metrics=metrics,
        name=name,
    )


def window_session(
    gap: float | timedelta,
    *,
    key: Callable[[Any], Any] | None = None,
    max_duration: float | timedelta | None = None,
    scheduler: abc.SchedulerBase | None = None,
    timestamp: Callable[[Any], Any] | None = None,
    out_of_orderness: float | timedelta = 0.0,
    allowed_lateness: float | timedelta = 0.0,
    idle_timeout: float | timedelta | None = None,
    on_late: Callable[[Any], None] | abc.ObserverBase[Any] | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "window_session",
) -> Callable[[Observable[Any]], Observable[Window]]:
    """One window per key per burst of activity: closed after ``gap`` without an item.

    ```text
    source:             -a-b------c-|        (one character = 1 s)
    window_session(3)
    result:             ------x-----(y|)     x = (a, b) closed 3 s after b; y = (c,)
    ```

    A session of a key (default: the envelope's ``context.session_id``) closes once ``gap``
    has passed without an item of that key, so an item exactly ``gap`` after the previous
    one starts a new session; with ``max_duration``, a timer cuts the session that long
    after its first item and the next item starts a new one. ``key`` is the session key,
    ``start`` the first item's time, ``end`` the last item's time plus ``gap``, or the cut
    time. Only open sessions are kept: a closed session is forgotten.

    *Processing time* (default): times are the scheduler clock at arrival; timers close
    sessions on time even if no further item arrives. *Event time* (``timestamp=``,
    seconds or an aware ``datetime``): sessions merge as Flink's do — an item that fills a
    gap merges two sessions into one; a session fires once the watermark (highest
    timestamp seen minus ``out_of_orderness``, or a [`Watermark`][pfrx.Watermark] item's time)
    reaches its end; an item whose session is past ``end + allowed_lateness`` is dropped
    with reason ``late`` and passed to ``on_late``; one joining a fired session within
    ``allowed_lateness`` fires it again, whole (``Window.revision`` one higher; a session
    merged from fired ones takes the highest of their revisions plus one).

    Sessions are emitted as they close (in order of their end when several close at once).
    Completion emits every open session; an upstream error passes through and each held
    item never emitted is dropped once with reason ``upstream_error``; disposal cancels the
    timers and drops them with ``disposed``. A ``key`` function that raises drops the item
    with the exception's text; an unhashable key with ``unhashable_key``.

    Args:
        gap: the silence that ends a session, seconds or a ``timedelta``.
        key: ``envelope -> key``; sessions are per key.
        max_duration: the longest a session may last from its first item.
        scheduler: the clock and timers (default: the subscribe scheduler, else a
            ``TimeoutScheduler``).
        timestamp: ``envelope -> seconds | aware datetime``; switches to event time.
        out_of_orderness: event time: how far the watermark stays behind the highest
            timestamp seen, seconds, may be 0.
        allowed_lateness: event time: how long after a session fired a late item may still
            update it, seconds, may be 0. Before this release it meant the
            out-of-orderness: that is now ``out_of_orderness``.
        idle_timeout: event time only: scheduler time without items after which the
            watermark follows the scheduler clock.
        on_late: a callable or an observer receiving each late envelope. Its ``Dropped``
            (``on_drop``) names the session it alone would have made, ``((t, t + gap),)``,
            in ``Dropped.windows``.
        on_drop: receives a [`Dropped`][pfrx.Dropped] for each item lost.
        metrics: counts received items and emitted sessions; held items are a gauge.
        name: the operator name in drops and metrics.

    Example:
        >>> import reactivex, pfrx
        >>> from pfrx import operators as pf
        >>> source = pfrx.envelopes([0.0, 2.0, 9.0, 20.0], pfrx.Context("alice", "s1"))
        >>> op = pf.window_session(5, timestamp=lambda env: env.event)
        >>> sessions = source.pipe(op, reactivex.operators.to_list()).run()
        >>> [(w.key, w.start, w.end, w.events) for w in sessions]
        [('s1', 0.0, 7.0, (0.0, 2.0)), ('s1', 9.0, 14.0, (9.0,)), ('s1', 20.0, 25.0, (20.0,))]
    """
    from ._window_session import window_session as build

    return build(
        gap,
        key=key,
        max_duration=max_duration,
        scheduler=scheduler,
        timestamp=timestamp,
        out_of_orderness=out_of_orderness,
        allowed_lateness=allowed_lateness,
        idle_timeout=idle_timeout,
        on_late=on_late,
        on_drop=on_drop,
        metrics=metrics,
        name=name,
    )
