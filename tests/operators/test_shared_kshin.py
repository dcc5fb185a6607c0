"""Issue 12: what operators share (`pfrx.operators._shared`) stated exactly: the unobserved-drop
warning's text and where it points, drop records for reasons that are str subclasses, sources
that subscribe their own way, which observers are offered lists, the batch gate's loop, and a
link that passes lists on ahead of a link a batch may not run through."""

from __future__ import annotations

import warnings
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import Gate, subscribe_with_batches
from pfrx.stream import Stream

DOCS = pfrx.CapabilityFamily("file", actions=("read",))
# Holds /docs/0 and /docs/1: an event whose value is 2 modulo 3 is denied.
CTX = pfrx.Context("alice", "s1", [DOCS.read("/docs/0"), DOCS.read("/docs/1")])
OK = pfrx.SendResult(True)


class Shout(str):
    """A reason that is a str, but not exactly one."""


class Loud(Exception):
    def __str__(self) -> str:
        return Shout("too loud")


# -- the unobserved-drop warning ------------------------------------------------------------------


def test_the_unobserved_drop_warning_says_exactly_what_to_do_and_points_at_the_operator() -> None:
    source = pfrx.envelopes(["a"], pfrx.Context("alice")).pipe(
        pf.transform(lambda e, c: pfrx.Reject("no"))
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source.subscribe()
    assert [w.category for w in caught] == [pfrx.UnobservedDropWarning]
    assert str(caught[0].message) == (
        "transform dropped an item (reason 'no') and nobody observes its drops: pass "
        "on_drop= or metrics= to the operator, or run it inside a pfrx.Stream (or "
        "pfrx.operators.reporting_into)"
    )
    # It points at the operator that dropped the item, not at the reporting machinery.
    # (under mutmut, its trampoline is the frame that calls the operator)
    assert (
        caught[0]
        .filename.replace("\\", "/")
        .endswith(("pfrx/operators/_transform.py", "mutmut/mutation/trampoline.py"))
    )


def test_the_warning_of_a_capability_filter_points_at_the_filter() -> None:
    source = pfrx.envelopes(["/etc/a"], pfrx.Context("alice")).pipe(pf.capability_filter(DOCS.read))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source.subscribe()
    assert len(caught) == 1
    # (under mutmut, its trampoline is the frame that calls the operator)
    assert (
        caught[0]
        .filename.replace("\\", "/")
        .endswith(("pfrx/operators/_capability_filter.py", "mutmut/mutation/trampoline.py"))
    )


# -- a reason that is a str subclass --------------------------------------------------------------


def test_a_reject_reason_that_is_a_str_subclass_gives_a_plain_exact_record() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(7.5)
    seen: list[pfrx.Dropped] = []
    envelope = pfrx.Envelope("a", CTX, 1.0)
    reactivex.of(envelope).pipe(
        pf.transform(lambda e, c: pfrx.Reject(Shout("shouted")), on_drop=seen.append)
    ).subscribe(scheduler=scheduler)
    scheduler.advance_by(1.0)  # the source emits at 7.5
    assert seen == [pfrx.Dropped(envelope, "shouted", "transform", 7.5)]
    record = seen[0]
    assert record.item is envelope
    assert type(record.reason) is str  # as Dropped(...) makes it, whatever str it was given
    assert record.operator == "transform"
    assert record.timestamp == 7.5
    assert record.windows == ()


def test_an_exception_whose_text_is_a_str_subclass_gives_a_plain_exact_record() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(3.0)
    seen: list[pfrx.Dropped] = []

    def fail(event: Any, context: pfrx.Context) -> Any:
        raise Loud()

    envelope = pfrx.Envelope("a", CTX, 1.0)
    reactivex.of(envelope).pipe(pf.transform(fail, on_drop=seen.append)).subscribe(
        scheduler=scheduler
    )
    scheduler.advance_by(1.0)  # the source emits at 3.0
    assert seen == [pfrx.Dropped(envelope, "too loud", "transform", 3.0)]
    assert type(seen[0].reason) is str
    assert seen[0].item is envelope


# -- sources that subscribe their own way ---------------------------------------------------------


class OwnSubscribe(Observable[Any]):
    """A source whose class has its own ``subscribe`` (it must be called, not bypassed)."""

    def __init__(self, values: list[Any], error: Exception | None = None) -> None:
        self.calls: list[Any] = []
        self.values = values
        self.error = error

        def subscribe(observer: abc.ObserverBase[Any], scheduler: Any = None) -> Any:
            def emit(*_: Any) -> None:
                for value in self.values:
                    observer.on_next(value)
                if self.error is not None:
                    observer.on_error(self.error)
                else:
                    observer.on_completed()

            if scheduler is None:
                emit()
                return Disposable()
            return scheduler.schedule_relative(1.0, emit)  # later, on the scheduler

        super().__init__(subscribe)

    def subscribe(self, *args: Any, **kwargs: Any) -> abc.DisposableBase:  # type: ignore[override]
        self.calls.append(kwargs.get("scheduler"))
        return super().subscribe(*args, **kwargs)


def _events(values: list[Any]) -> list[pfrx.Envelope]:
    return [pfrx.Envelope(v, CTX, 0.0) for v in values]


def test_a_fused_pipeline_subscribes_a_source_through_its_own_subscribe() -> None:
    source = OwnSubscribe(_events([1, 2, 3]))
    scheduler = TestScheduler()
    log: list[Any] = []
    source.pipe(pf.transform(lambda e, c: e * 10)).subscribe(
        lambda env: log.append(("next", env.event)),
        lambda error: log.append(("error", error)),
        lambda: log.append(("completed",)),
        scheduler=scheduler,
    )
    assert source.calls == [scheduler]  # called once, with the subscription's scheduler
    scheduler.advance_by(1.0)
    assert log == [("next", 10), ("next", 20), ("next", 30), ("completed",)]


def test_an_error_from_a_source_with_its_own_subscribe_reaches_the_observer() -> None:
    boom = RuntimeError("boom")
    source = OwnSubscribe(_events([1]), error=boom)
    scheduler = TestScheduler()
    log: list[Any] = []
    source.pipe(pf.transform(lambda e, c: e + 1)).subscribe(
        lambda env: log.append(("next", env.event)),
        lambda error: log.append(("error", error)),
        lambda: log.append(("completed",)),
        scheduler=scheduler,
    )
    assert source.calls == [scheduler]
    assert log == []
    scheduler.advance_by(1.0)  # the error comes after subscribe returned, on the scheduler
    assert log == [("next", 2), ("error", boom)]


def test_an_error_from_a_plain_source_reaches_the_observer_of_a_fused_pipeline() -> None:
    boom = RuntimeError("boom")
    log: list[Any] = []
    reactivex.concat(reactivex.of(*_events([4])), reactivex.throw(boom)).pipe(
        pf.transform(lambda e, c: e + 1)
    ).subscribe(
        lambda env: log.append(("next", env.event)),
        lambda error: log.append(("error", error)),
        lambda: log.append(("completed",)),
    )
    assert log == [("next", 5), ("error", boom)]


# -- which observers are offered lists ------------------------------------------------------------


class Recording(Observable[Any]):
    """A plain source that records the ``on_batch`` and ``batch_room`` its observer offers."""

    orders_batch_drops = True  # as a stream's input: a batch may run through batch entries

    def __init__(self) -> None:
        self.offered: list[tuple[Any, Any]] = []

        def subscribe(observer: abc.ObserverBase[Any], scheduler: Any = None) -> Any:
            self.offered.append(
                (getattr(observer, "on_batch", "absent"), getattr(observer, "batch_room", "absent"))
            )
            return Disposable()

        super().__init__(subscribe)


def _nothing(*_: Any) -> None:
    return None


def test_an_on_batch_that_is_not_callable_is_not_offered_upstream() -> None:
    source = Recording()
    fused = source.pipe(pf.metrics_tap(pfrx.StreamMetrics()))  # a link that passes lists on
    subscribe_with_batches(fused, _nothing, _nothing, _nothing, None, "not callable")  # type: ignore[arg-type]
    assert source.offered == [(None, None)]


def test_an_on_batch_that_is_callable_is_offered_upstream() -> None:
    # The control of the test above: the same wiring does offer a callable on_batch.
    source = Recording()
    fused = source.pipe(pf.metrics_tap(pfrx.StreamMetrics()))
    subscribe_with_batches(fused, _nothing, _nothing, _nothing, None, _nothing)
    (offered,) = source.offered
    assert callable(offered[0])
    assert offered[1] is None


def test_a_batch_room_that_is_not_callable_offers_no_batch_path_through_a_filter() -> None:
    source = Recording()
    fused = source.pipe(pf.capability_filter(DOCS.read))  # batch entry, no list pass-through
    subscribe_with_batches(fused, _nothing, _nothing, _nothing, None, _nothing, "not callable")  # type: ignore[arg-type]
    assert source.offered == [(None, None)]


def test_a_callable_batch_room_offers_the_batch_path_through_a_filter() -> None:
    source = Recording()
    fused = source.pipe(pf.capability_filter(DOCS.read))

    def room(size: int) -> bool:
        return True

    subscribe_with_batches(fused, _nothing, _nothing, _nothing, None, _nothing, room)
    (offered,) = source.offered
    assert callable(offered[0])
    assert offered[1] is room


# -- the batch gate -------------------------------------------------------------------------------


def test_the_gate_takes_a_second_pass_when_a_later_flush_feeds_an_earlier_one() -> None:
    gate = Gate()
    assert gate.thread is None and gate.flushers == []
    log: list[Any] = []
    held: dict[str, list[str]] = {"up": [], "down": ["d"]}

    def make(name: str, feeds: str | None) -> Any:
        def flush() -> bool:
            items, held[name] = held[name], []
            log.append((name, items))
            if feeds is not None:
                held[feeds].extend(items)
            return bool(items)

        return flush

    # Registered "up" first, "down" last: flushed "down" first, then "up", whose items
    # reach "down" again: only a second pass hands them on.
    gate.flushers.append(make("up", "down"))
    gate.flushers.append(make("down", None))
    held["up"] = ["u"]
    gate.flush()
    assert log == [
        ("down", ["d"]),
        ("up", ["u"]),
        ("down", ["u"]),
        ("up", []),
        ("down", []),
        ("up", []),
    ]
    assert held == {"up": [], "down": []}


# -- a link that passes lists on, ahead of one a batch may not run through ------------------------


def test_a_metrics_tap_ahead_of_links_with_own_on_drop_keeps_the_order_of_one_by_one() -> None:
    def need(event: int) -> pfrx.Capability:
        return DOCS.read(f"/docs/{event % 3}")

    def shape(event: int, context: pfrx.Context) -> Any:
        if event % 5 == 1:
            return pfrx.Reject("odd_five")
        return event * 10

    def drops(batched: bool) -> list[Any]:
        seen: list[Any] = []

        def handler(record: pfrx.Dropped) -> None:
            seen.append((record.item.event, record.operator, record.reason))

        stream = Stream(
            pf.metrics_tap(),
            pf.capability_filter(need, on_drop=handler),
            pf.transform(shape, on_drop=handler),
            pf.backpressure("block"),
            scheduler=TestScheduler(),
        )
        events = list(range(9))
        if batched:
            assert stream.send_many(events, CTX) == [OK] * 9
        else:
            assert [stream.send(e, CTX) for e in events] == [OK] * 9
        return seen

    expected = [
        (1, "transform", "odd_five"),
        (2, "capability_filter", "insufficient_capabilities"),
        (5, "capability_filter", "insufficient_capabilities"),
        (6, "transform", "odd_five"),
        (8, "capability_filter", "insufficient_capabilities"),
    ]
    assert drops(batched=False) == expected
    assert drops(batched=True) == expected


# -- where a link reports: its clock, its defaults ------------------------------------------------


def test_an_operator_with_its_own_metrics_and_no_scheduler_reads_the_metrics_clock() -> None:
    clock = TestScheduler()
    clock.advance_to(42.0)
    metrics = pfrx.StreamMetrics(clock)
    seen: list[pfrx.Dropped] = []
    envelope = pfrx.Envelope("a", CTX, 1.0)
    reactivex.of(envelope).pipe(
        pf.transform(lambda e, c: pfrx.Reject("no"), on_drop=seen.append, metrics=metrics)
    ).subscribe()
    assert seen == [pfrx.Dropped(envelope, "no", "transform", 42.0)]
    assert metrics.snapshot().dropped == 1


def test_the_subscription_scheduler_wins_over_the_metrics_clock() -> None:
    clock = TestScheduler()
    clock.advance_to(42.0)
    scheduler = TestScheduler()
    scheduler.advance_to(5.0)
    seen: list[pfrx.Dropped] = []
    envelope = pfrx.Envelope("a", CTX, 1.0)
    reactivex.of(envelope).pipe(
        pf.transform(
            lambda e, c: pfrx.Reject("no"),
            on_drop=seen.append,
            metrics=pfrx.StreamMetrics(clock),
        )
    ).subscribe(scheduler=scheduler)
    scheduler.advance_by(1.0)  # the source emits at 5.0
    assert seen == [pfrx.Dropped(envelope, "no", "transform", 5.0)]


def test_a_reporter_is_observed_unless_told_otherwise() -> None:
    from pfrx.operators._shared import Reporter

    reporter = Reporter("op", lambda: 0.0, None, None, False)
    assert reporter.observed is True
    with warnings.catch_warnings():
        warnings.simplefilter("error", pfrx.UnobservedDropWarning)
        reporter.notify("x", "why")  # observed: no warning
        reporter.drop("y", "why")


# -- a fused link's terminal hooks and its dispose ------------------------------------------------


def test_a_fused_window_reports_what_it_holds_when_the_subscription_is_disposed() -> None:
    from reactivex.subject import Subject

    scheduler = TestScheduler()
    scheduler.advance_to(9.0)
    source: Subject[Any] = Subject()
    seen: list[pfrx.Dropped] = []
    windows: list[Any] = []
    first, second = _events([1, 2])
    subscription = source.pipe(pf.window_count(3, on_drop=seen.append)).subscribe(
        windows.append, scheduler=scheduler
    )
    source.on_next(first)
    source.on_next(second)
    assert seen == []
    subscription.dispose()
    assert seen == [
        pfrx.Dropped(first, "disposed", "window_count", 9.0),
        pfrx.Dropped(second, "disposed", "window_count", 9.0),
    ]
    assert windows == []


def test_a_fused_window_reports_what_it_holds_when_upstream_fails() -> None:
    from reactivex.subject import Subject

    scheduler = TestScheduler()
    scheduler.advance_to(4.0)
    source: Subject[Any] = Subject()
    seen: list[pfrx.Dropped] = []
    log: list[Any] = []
    first, second = _events([1, 2])
    source.pipe(pf.window_count(3, on_drop=seen.append)).subscribe(
        log.append, lambda error: log.append(("error", error)), scheduler=scheduler
    )
    source.on_next(first)
    source.on_next(second)
    boom = RuntimeError("upstream")
    source.on_error(boom)
    assert seen == [
        pfrx.Dropped(first, "upstream_error", "window_count", 4.0),
        pfrx.Dropped(second, "upstream_error", "window_count", 4.0),
    ]
    assert log == [("error", boom)]


def test_a_source_that_does_not_order_batch_drops_is_offered_no_batch_path() -> None:
    class Plain(Observable[Any]):
        """A source without ``orders_batch_drops``: the drops of a batch would not be ordered."""

        def __init__(self) -> None:
            self.offered: list[tuple[Any, Any]] = []

            def subscribe(observer: abc.ObserverBase[Any], scheduler: Any = None) -> Any:
                self.offered.append((observer.on_batch, observer.batch_room))  # type: ignore[attr-defined]
                return Disposable()

            super().__init__(subscribe)

    source = Plain()
    fused = source.pipe(pf.capability_filter(DOCS.read))

    def room(size: int) -> bool:
        return True

    subscribe_with_batches(fused, _nothing, _nothing, _nothing, None, _nothing, room)
    assert source.offered == [(None, None)]


# -- a batched source and links with and without batch entries ------------------------------------


class Echo:
    """A processor passing each event on, counting them in its state."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
        return pfrx.Ok(state + 1, (event,))


def test_a_batched_source_runs_lists_up_to_the_first_link_without_a_batch_entry() -> None:
    seen: list[pfrx.Dropped] = []
    out = pfrx.envelopes(range(5), pfrx.Context("alice"), batch=2).pipe(
        pf.transform(lambda e, c: e * 10, on_drop=seen.append),
        pf.process(Echo(), on_drop=seen.append),  # no batch entry: one by one from here
        pf.transform(lambda e, c: e + 1, on_drop=seen.append),
    )
    events: list[Any] = []
    out.subscribe(lambda env: events.append(env.event))
    assert events == [1, 11, 21, 31, 41]
    assert seen == []


def test_a_batched_source_whose_first_link_has_no_batch_entry_goes_one_by_one() -> None:
    seen: list[pfrx.Dropped] = []
    events: list[Any] = []
    pfrx.envelopes(range(5), pfrx.Context("alice"), batch=2).pipe(
        pf.process(Echo(), on_drop=seen.append),
        pf.transform(lambda e, c: e * 10, on_drop=seen.append),
    ).subscribe(lambda env: events.append(env.event))
    assert events == [0, 10, 20, 30, 40]
    assert seen == []


def test_a_batched_source_failing_reaches_the_observer_through_the_links() -> None:
    def events() -> Any:
        yield 1
        yield 2
        raise ValueError("the iterable broke")

    log: list[Any] = []
    pfrx.envelopes(events(), pfrx.Context("alice"), batch=2).pipe(
        pf.transform(lambda e, c: e * 10, on_drop=_nothing)
    ).subscribe(
        lambda env: log.append(("next", env.event)),
        lambda error: log.append(("error", str(error))),
        lambda: log.append(("completed",)),
    )
    assert log == [("next", 10), ("next", 20), ("error", "the iterable broke")]


def test_a_batched_source_runs_on_the_subscription_scheduler() -> None:
    scheduler = TestScheduler()
    log: list[Any] = []
    pfrx.envelopes(range(3), pfrx.Context("alice"), batch=2).pipe(
        pf.transform(lambda e, c: e + 1, on_drop=_nothing)
    ).subscribe(
        lambda env: log.append(env.event), lambda error: log.append(error), scheduler=scheduler
    )
    assert log == []  # nothing until the scheduler runs
    scheduler.advance_by(1.0)
    assert log == [1, 2, 3]


def test_a_links_error_hook_receives_the_error_itself() -> None:
    from pfrx.operators._shared import Prepared, fuse

    hooked: list[Exception] = []

    def link(_scheduler: Any) -> Prepared:
        return Prepared(lambda forward: forward, on_error=hooked.append)

    boom = RuntimeError("boom")
    log: list[Any] = []
    reactivex.throw(boom).pipe(fuse(link)).subscribe(
        log.append, lambda error: log.append(("error", error))
    )
    assert hooked == [boom]
    assert log == [("error", boom)]


def test_disposing_a_fused_pipeline_with_a_stateful_link_lets_go_of_the_source() -> None:
    from reactivex.subject import Subject

    source: Subject[Any] = Subject()
    calls: list[Any] = []
    dropped: list[pfrx.Dropped] = []

    def record(event: Any, context: pfrx.Context) -> Any:
        calls.append(event)
        return event

    subscription = source.pipe(
        pf.transform(record, on_drop=dropped.append),
        pf.window_count(2, on_drop=dropped.append),  # a link with a dispose of its own
    ).subscribe(_nothing)
    first, second = _events([1, 2])
    source.on_next(first)
    subscription.dispose()
    assert [d.reason for d in dropped] == ["disposed"]
    source.on_next(second)  # the source no longer reaches the pipeline
    assert calls == [1]
    assert [d.reason for d in dropped] == ["disposed"]


# -- what a source's subscribe function returns ---------------------------------------------------


def test_a_source_whose_subscribe_returns_a_function_is_disposed_through_it() -> None:
    calls: list[str] = []
    source = reactivex.create(lambda observer, scheduler: lambda: calls.append("disposed"))
    subscription = source.pipe(pf.transform(lambda e, c: e)).subscribe(_nothing)
    assert calls == []
    subscription.dispose()
    assert calls == ["disposed"]


def test_a_source_whose_subscribe_returns_a_disposable_lookalike_is_disposed_as_it_is() -> None:
    class Lookalike:
        """Has ``dispose`` but is no DisposableBase (nor callable)."""

        def __init__(self) -> None:
            self.disposed = 0

        def dispose(self) -> None:
            self.disposed += 1

    lookalike = Lookalike()
    source = reactivex.create(lambda observer, scheduler: lookalike)
    subscription = source.pipe(pf.transform(lambda e, c: e)).subscribe(_nothing)
    assert lookalike.disposed == 0
    subscription.dispose()
    assert lookalike.disposed == 1


# -- an operator's own metrics: exact counts, its own name, no warning ----------------------------


def test_an_operator_with_its_own_metrics_counts_exactly_under_its_name_and_never_warns() -> None:
    metrics = pfrx.StreamMetrics()
    seen: list[Any] = []

    def odd_out(event: int, context: pfrx.Context) -> Any:
        return pfrx.Reject("odd") if event % 2 else event * 10

    with warnings.catch_warnings():
        warnings.simplefilter("error", pfrx.UnobservedDropWarning)
        reactivex.of(*_events([0, 1, 2, 3, 4])).pipe(
            pf.transform(odd_out, metrics=metrics)
        ).subscribe(lambda env: seen.append(env.event))
    assert seen == [0, 20, 40]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (5, 3, 2)
    assert dict(snap.drops_by_reason) == {"odd": 2}
    (counts,) = snap.operators
    assert (counts.name, counts.received, counts.emitted, counts.dropped) == ("transform", 5, 3, 2)


def test_an_operator_with_only_an_on_drop_never_warns() -> None:
    seen: list[pfrx.Dropped] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", pfrx.UnobservedDropWarning)
        reactivex.of(*_events([1])).pipe(
            pf.transform(lambda e, c: pfrx.Reject("no"), on_drop=seen.append)
        ).subscribe(_nothing)
    assert [d.reason for d in seen] == ["no"]


def test_an_operator_with_only_metrics_drops_quietly_for_a_capability_filter() -> None:
    metrics = pfrx.StreamMetrics()
    with warnings.catch_warnings():
        warnings.simplefilter("error", pfrx.UnobservedDropWarning)
        reactivex.of(*[pfrx.Envelope(f"/etc/{i}", CTX, 0.0) for i in range(3)]).pipe(
            pf.capability_filter(DOCS.read, metrics=metrics)
        ).subscribe(_nothing)
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (3, 0, 3)
    assert dict(snap.drops_by_reason) == {"insufficient_capabilities": 3}


# -- completion hooks of fused links --------------------------------------------------------------


def test_a_fused_window_flushes_its_partial_window_on_completion() -> None:
    out: list[Any] = []
    reactivex.of(*_events([1, 2, 3])).pipe(
        pf.transform(lambda e, c: e), pf.window_count(2)
    ).subscribe(lambda window: out.append(window.events))
    assert out == [(1, 2), (3,)]


def test_a_batched_source_runs_two_leading_batch_links_as_lists() -> None:
    seen: list[pfrx.Dropped] = []
    events: list[Any] = []
    pfrx.envelopes(range(4), pfrx.Context("alice"), batch=2).pipe(
        pf.transform(lambda e, c: e * 10, on_drop=seen.append),
        pf.transform(lambda e, c: e + 1, on_drop=seen.append),
        pf.process(Echo(), on_drop=seen.append),
    ).subscribe(lambda env: events.append(env.event))
    assert events == [1, 11, 21, 31]
    assert seen == []


# -- lists through a stream's links ---------------------------------------------------------------


def test_a_drain_turn_passes_through_a_metrics_tap_as_one_list() -> None:
    scheduler = TestScheduler()
    stream = Stream(pf.backpressure("block"), pf.metrics_tap(), scheduler=scheduler)
    seen: list[Any] = []
    stream.results.subscribe(lambda env: seen.append((env.event, stream.metrics().emitted)))
    assert [stream.send(e, CTX) for e in range(3)] == [OK] * 3
    scheduler.advance_by(1.0)
    assert seen == [(0, 3), (1, 3), (2, 3)]  # one list, counted once before it is published
    assert stream.error is None


def test_a_send_many_batch_runs_through_a_filter_and_a_map_into_a_buffer() -> None:
    def need(event: int) -> pfrx.Capability:
        return DOCS.read(f"/docs/{event % 3}")

    scheduler = TestScheduler()
    stream = Stream(
        pf.capability_filter(need),
        pf.transform(lambda e, c: e * 10),
        pf.backpressure("block"),
        scheduler=scheduler,
    )
    seen: list[Any] = []
    drops: list[Any] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    stream.dropped.subscribe(lambda d: drops.append((d.item.event, d.reason)))
    assert stream.send_many(list(range(6)), CTX) == [OK] * 6
    scheduler.advance_by(1.0)
    assert seen == [0, 10, 30, 40]
    assert drops == [(2, "insufficient_capabilities"), (5, "insufficient_capabilities")]
    assert stream.error is None


def test_links_that_pass_lists_followed_by_an_rx_operator_are_fed_one_by_one() -> None:
    # The observer after the metrics_tap (an RxPY map) takes no lists: the drain upstream
    # must not be offered any.
    scheduler = TestScheduler()
    stream = Stream(
        pf.backpressure("block"),
        pf.metrics_tap(),
        ops.map(lambda env: env),
        scheduler=scheduler,
    )
    seen: list[Any] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    assert [stream.send(e, CTX) for e in range(3)] == [OK] * 3
    scheduler.advance_by(1.0)
    assert seen == [0, 1, 2]
    assert stream.error is None
    assert stream.metrics().emitted == 3


def test_a_plain_observer_offers_no_lists_through_links_that_pass_them() -> None:
    source = Recording()
    source.pipe(pf.metrics_tap(pfrx.StreamMetrics())).subscribe(_nothing)
    assert source.offered == [(None, None)]
