"""How a boundary subscribes to the operator before it (`Boundary._listen`), stated exactly.

An operator output that is a plain ``Observable`` is subscribed with the boundary's own
observer (a `_Listener`, handed the subscribe scheduler, trampolined as RxPY's
``Observable.subscribe`` does); one whose class has its own ``subscribe`` is subscribed
through it, as before, with every callback and the scheduler.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import CurrentThreadScheduler, ImmediateScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import subscribe_with_batches
from pfrx.stream import Stream
from pfrx.stream._boundary import Boundary, Switch

from ._helpers import CTX, Ledger


class _OwnSubscribe(Observable[Any]):
    """An operator output whose class overrides ``subscribe`` (records what it was given)."""

    def __init__(self) -> None:
        super().__init__()
        self.observer: Any = None
        self.calls: list[tuple[Any, ...]] = []

    def subscribe(  # type: ignore[override]
        self,
        on_next: Any = None,
        on_error: Any = None,
        on_completed: Any = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        self.calls.append((on_next, on_error, on_completed, scheduler))
        return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)

    def _subscribe_core(self, observer: Any, scheduler: Any = None) -> abc.DisposableBase:
        self.observer = observer
        return Disposable()


def _boundary(source: Any) -> tuple[Boundary, list[Any]]:
    lost: list[Any] = []

    def raised(_boundary: Boundary, _item: Any, error: Exception) -> Exception:
        return error

    return Boundary(source, 0, Switch(), lost.append, raised, lambda: None), lost


def _subscribe(boundary: Boundary, scheduler: Any = None) -> tuple[list[Any], Any]:
    seen: list[Any] = []
    subscription = subscribe_with_batches(
        boundary,
        seen.append,
        lambda e: seen.append(("error", e)),
        lambda: seen.append("completed"),
        scheduler,
        lambda values: seen.append(("list", values)),
    )
    return seen, subscription


def test_a_source_with_its_own_subscribe_gets_every_callback_and_the_scheduler() -> None:
    source = _OwnSubscribe()
    boundary, lost = _boundary(source)
    scheduler = ImmediateScheduler()
    seen, _ = _subscribe(boundary, scheduler)
    assert len(source.calls) == 1
    on_next, on_error, on_completed, given = source.calls[0]
    assert given is scheduler
    assert callable(on_next) and callable(on_error) and callable(on_completed)
    source.observer.on_next("a")
    source.observer.on_next("b")
    source.observer.on_completed()
    assert seen == ["a", "b", "completed"]
    assert lost == []
    assert boundary.ended


def test_a_source_with_its_own_subscribe_passes_its_error_on() -> None:
    source = _OwnSubscribe()
    boundary, _ = _boundary(source)
    seen, _ = _subscribe(boundary)
    error = KeyError("upstream")
    source.observer.on_error(error)
    assert seen == [("error", error)]
    assert boundary.ended


def test_a_plain_observable_is_handed_the_subscribe_scheduler() -> None:
    given: list[Any] = []

    def subscribe(_observer: Any, scheduler: Any = None) -> Any:
        given.append(scheduler)
        return Disposable()

    boundary, _ = _boundary(Observable(subscribe))
    scheduler = ImmediateScheduler()
    _subscribe(boundary, scheduler)
    assert given == [scheduler]


class _DuckDisposable:
    """A subscription that is no ``DisposableBase`` but has ``dispose`` (and is not callable)."""

    def __init__(self) -> None:
        self.disposed = 0

    def dispose(self) -> None:
        self.disposed += 1


def test_a_subscription_with_a_dispose_method_is_disposed_by_it() -> None:
    duck = _DuckDisposable()
    boundary, _ = _boundary(Observable(lambda _o, _s=None: duck))  # type: ignore[arg-type,return-value]
    _, subscription = _subscribe(boundary)
    subscription.dispose()
    assert duck.disposed == 1


def test_subscribed_outside_any_trampoline_the_boundary_trampolines_the_operator() -> None:
    # An operator composing the boundary may call its _subscribe_core directly, with no
    # trampoline running on this thread: the boundary then runs its operator's subscribe
    # inside one (as Observable.subscribe does), so what that subscribe schedules on the
    # current thread waits until the subscribe is over.
    trampoline = CurrentThreadScheduler.singleton()
    order: list[str] = []

    def subscribe(observer: Any, _scheduler: Any = None) -> Any:
        order.append(f"subscribe, trampoline idle: {trampoline.schedule_required()}")
        trampoline.schedule(lambda _s, _t: order.append("scheduled"))
        order.append("subscribed")
        observer.on_next("a")
        return Disposable()

    boundary, _ = _boundary(Observable(subscribe))
    seen: list[Any] = []
    assert trampoline.schedule_required()  # nothing runs a trampoline here
    observer = _Collect(seen)
    boundary._subscribe_core(observer, None)
    assert order == ["subscribe, trampoline idle: False", "subscribed", "scheduled"]
    assert seen == ["a"]


class _Collect:
    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def on_next(self, value: Any) -> None:
        self.seen.append(value)

    def on_error(self, error: Exception) -> None:
        self.seen.append(("error", error))

    def on_completed(self) -> None:
        self.seen.append("completed")


class _Borrowed:
    """Not an Observable, but its class borrows ``Observable.subscribe`` (duck-typed)."""

    def __init__(self) -> None:
        self.observer: Any = None

    subscribe = Observable.subscribe

    def _subscribe_core(self, observer: Any, scheduler: Any = None) -> Any:
        self.observer = observer
        return Disposable()


def test_a_source_that_is_no_observable_is_subscribed_through_its_subscribe() -> None:
    # Only an Observable gets the boundary's listener (which reports what comes after the
    # dispose); anything else is subscribed through its subscribe, whose observer is deaf
    # once disposed.
    source = _Borrowed()
    boundary, lost = _boundary(source)
    seen, subscription = _subscribe(boundary)
    source.observer.on_next("a")
    subscription.dispose()
    source.observer.on_next("late")
    assert seen == ["a"]
    assert lost == []


def test_send_many_through_a_raw_operator_that_is_the_input_itself() -> None:
    # The boundary's listener observes the stream's input directly and offers it no
    # batch_room: the batch goes item by item, each delivered.
    stream = Stream(lambda source: source)
    ledger = Ledger(stream)
    results = stream.send_many([1, 2, 3], CTX)
    assert [r.ok for r in results] == [True, True, True]
    stream.close()
    stream.join(5.0)
    assert ledger.delivered == [1, 2, 3]
    assert ledger.dropped == []
    assert ledger.ends == ["completed"]


def test_the_grace_timer_is_a_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    # A hand-over past the failure point on another thread is waited for by a timer that
    # never keeps the process alive.
    monkeypatch.setattr("pfrx.stream._stream.IN_FLIGHT_GRACE", 5.0)
    inside, release = threading.Event(), threading.Event()

    def held(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                inside.set()
                assert release.wait(5.0)
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    stream = Stream(pf.backpressure("block", buffer_size=4), held, lambda s: s)
    ledger = Ledger(stream)
    before = set(threading.enumerate())
    assert stream.send(0, CTX).ok
    assert inside.wait(5.0)
    stream.fail(RuntimeError("outside"))
    timers = [
        t for t in threading.enumerate() if isinstance(t, threading.Timer) and t not in before
    ]
    try:
        assert not stream.done
        assert len(timers) == 1
        assert timers[0].daemon is True
    finally:
        release.set()
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(5.0)
    assert ledger.dropped_events() == [0]


def _held(inside: threading.Event, release: threading.Event) -> Any:
    """A raw operator that holds each value until ``release``, then hands it on."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                inside.set()
                assert release.wait(5.0)
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def test_after_the_grace_the_item_in_hand_at_the_first_of_many_boundaries_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Failed from outside (no failure point: every boundary is past it), with four boundaries
    # and the drain thread inside the first one: once the grace is over the stream finishes
    # and reports the item that boundary holds, before ``dropped`` ends.
    monkeypatch.setattr("pfrx.stream._stream.IN_FLIGHT_GRACE", 0.1)
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=4),
        _held(inside, release),
        lambda s: s,
        lambda s: s,
    )
    ledger = Ledger(stream)
    assert stream.send(0, CTX).ok
    assert inside.wait(5.0)
    try:
        stream.fail(RuntimeError("outside"))
        with pytest.raises(RuntimeError, match="outside"):
            stream.join(5.0)
        with ledger.lock:
            assert [(d.item.event, d.reason) for d in ledger.dropped] == [(0, "failed")]
            assert ledger.delivered == []
    finally:
        release.set()


def test_a_stream_failed_by_a_subscriber_of_a_result_finishes_at_once() -> None:
    # The drain thread is still inside the boundary after the buffer, but what it handed on
    # has become a result: nothing is in flight, so fail() from that result's subscriber
    # finishes the stream before it returns.
    stream = Stream(pf.backpressure("block", buffer_size=4))
    states: list[bool] = []
    handed: list[Any] = []

    def on_result(envelope: Any) -> None:
        handed.append(envelope.event)
        stream.fail(RuntimeError("from a subscriber"))
        states.append(stream.done)

    stream.results.subscribe(on_result, lambda _e: None)
    assert stream.send(0, CTX).ok
    with pytest.raises(RuntimeError, match="from a subscriber"):
        stream.join(5.0)
    assert handed == [0]
    assert states == [True]


def test_what_an_operator_hands_on_after_the_stream_completed_is_counted_dropped() -> None:
    # A broken raw operator that kept its observer's on_next and calls it after the stream
    # completed: the boundary after it knows the stream has stopped; the item is counted as
    # dropped ("failed"), never emitted nor delivered.
    box: dict[str, Any] = {}

    def keeps_on_next(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            box["forward"] = observer.on_next
            return source.subscribe(
                observer.on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    stream = Stream(keeps_on_next)
    ledger = Ledger(stream)
    assert stream.send(1, CTX).ok
    stream.close()
    stream.join(5.0)
    assert ledger.ends == ["completed"]
    before = stream.metrics()
    assert (before.emitted, before.dropped) == (1, 0)
    box["forward"](pfrx.Envelope(2, CTX, 0.0))
    after = stream.metrics()
    assert (after.emitted, after.dropped) == (1, 1)
    assert ledger.delivered == [1]
    assert ledger.ends == ["completed"]
