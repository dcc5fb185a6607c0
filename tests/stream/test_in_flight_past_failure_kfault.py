"""What is in flight past the failure point when a stream fails ends exactly once.

A drain thread hands item 1 to a window, which emits a Window holding item 0 (and perhaps
item 1) into a later raw operator; the stream fails meanwhile. The stream finishes only once
that hand-over is over (bounded by ``IN_FLIGHT_GRACE``), and the Window that comes out of
the raw operator after the failure is reported as one ``Dropped`` ("failed") at the boundary
after it, while ``dropped`` is still open: every accepted item is delivered or dropped once.

Attacked from every side the brief names: ``send`` and ``send_many``; ``window_count``,
event-time ``window_time`` and ``window_session``; ``fail()`` from outside, from the raw
operator itself (on the drain thread), from an operator function before the window, from a
results subscriber; ``close()`` racing; and a hand-over that outlasts the grace.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.disposable import Disposable

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger

pytestmark = pytest.mark.threads

WAIT = 2.0
#: More examples for a longer hunt: ATTACK_EXAMPLES=600.
EXAMPLES = int(os.environ.get("ATTACK_EXAMPLES", "25"))


def held_operator(inside: threading.Event, release: threading.Event, box: dict[str, Any]) -> Any:
    """A raw operator that holds each value until ``release`` (after ``box["before"]()``,
    when given, is called with it in hand), then hands it on."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                inside.set()
                before = box.get("before")
                if before is not None:
                    before()
                assert release.wait(WAIT)
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def window_of(kind: str) -> Any:
    """A window that emits a Window (holding item 0) while item 1 is handed to it."""
    if kind == "count":
        return pf.window_count(2)
    if kind == "time":
        return pf.window_time(10.0, timestamp=lambda e: e.event * 10.0)
    assert kind == "session"
    return pf.window_session(5.0, key=lambda e: "k", timestamp=lambda e: e.event * 10.0)


def events_seen(ledger: Ledger) -> list[Any]:
    """Every event delivered or dropped, windows opened (a Window counts its items)."""
    with ledger.lock:
        values = list(ledger.delivered) + [record.item for record in ledger.dropped]
    seen: list[Any] = []
    for value in values:
        if isinstance(value, pfrx.Window):
            seen.extend(envelope.event for envelope in value.items)
        else:
            seen.append(value.event if isinstance(value, pfrx.Envelope) else value)
    return seen


def send(stream: Stream, events: list[int], mode: str) -> list[bool]:
    if mode == "send":
        return [stream.send(event, CTX).ok for event in events]
    return [result.ok for result in stream.send_many(events, CTX)]


@pytest.mark.parametrize("mode", ["send", "send_many"])
@pytest.mark.parametrize("kind", ["count", "time", "session"])
def test_fail_from_outside_while_a_window_is_in_flight_past_the_failure_point(
    kind: str, mode: str
) -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        window_of(kind),
        held_operator(inside, release, {}),
    )
    ledger = Ledger(stream)
    assert send(stream, [0, 1], mode) == [True, True]
    assert inside.wait(WAIT)  # a Window holding item 0 is inside the raw operator
    # (A timed window emits under its lock: there fail() waits for the emission to return.)
    failer = threading.Thread(target=lambda: stream.fail(RuntimeError("outside")), daemon=True)
    failer.start()
    failer.join(0.05)
    assert not stream.done  # waits for the drain's hand-over past the failure point
    assert stream.send(2, CTX).reason == "failed"
    release.set()
    failer.join(WAIT)
    assert not failer.is_alive()
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(WAIT)
    assert stream.done
    assert sorted(events_seen(ledger)) == [0, 1]
    with ledger.lock:
        assert ledger.ends == ["error:RuntimeError"]
        assert not ledger.delivered
        windows = [d for d in ledger.dropped if isinstance(d.item, pfrx.Window)]
        assert [(d.reason, d.operator) for d in windows] == [("failed", "stream")]
    snapshot = stream.metrics()
    assert snapshot.received == 2
    assert snapshot.dropped == len(ledger.dropped)


@pytest.mark.parametrize("mode", ["send", "send_many"])
def test_fail_from_the_raw_operator_on_the_drain_thread_finishes_when_its_hand_over_ends(
    mode: str,
) -> None:
    # fail() from inside the operator past the window (on the drain thread): nobody waits on
    # anybody; fail returns with the stream still finishing, the drain ends it.
    inside, release = threading.Event(), threading.Event()
    box: dict[str, Any] = {}
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, box),
    )
    ledger = Ledger(stream)
    states: list[bool] = []

    def fail_here() -> None:
        stream.fail(RuntimeError("inside"))
        # Not done yet, and no timer: the hand-over waited for is this very thread's.
        states.append((stream.done, stream._grace_timer))
        release.set()

    box["before"] = fail_here
    assert send(stream, [0, 1, 2], mode) == [True, True, True]
    with pytest.raises(RuntimeError, match="inside"):
        stream.join(WAIT)
    assert states == [(False, None)]
    assert stream.done
    assert sorted(events_seen(ledger)) == [0, 1, 2]
    with ledger.lock:
        assert ledger.ends == ["error:RuntimeError"]


def test_fail_from_an_operator_function_before_the_window_on_the_drain_thread() -> None:
    # The transform's function fails the stream while it holds item 1 on the drain thread:
    # the item comes out after the stop into window_count, which is disposed: reported once.
    def fn(event: Any, _context: Any) -> Any:
        if event == 1:
            stream.fail(RuntimeError("from a function"))
        return event

    stream = Stream(pf.backpressure("block", buffer_size=8), pf.transform(fn), pf.window_count(2))
    ledger = Ledger(stream)
    assert all(r.ok for r in stream.send_many([0, 1, 2], CTX))
    with pytest.raises(RuntimeError, match="from a function"):
        stream.join(WAIT)
    assert stream.done
    assert sorted(events_seen(ledger)) == [0, 1, 2]


def test_fail_from_a_results_subscriber_while_another_window_is_in_flight() -> None:
    # Two windows: the first is delivered and its subscriber fails the stream while the drain
    # is inside the raw operator with nothing (the subscriber runs past it)... so a second
    # drain holds the second Window: both streams' windows end once.
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, {}),
    )
    ledger = Ledger(stream)
    release.set()  # the first Window passes at once
    failed = threading.Event()

    def on_result(window: Any) -> None:
        if not failed.is_set():
            failed.set()
            release.clear()  # the next Window waits inside the raw operator
            stream.fail(RuntimeError("from a subscriber"))

    stream.results.subscribe(on_result)
    assert all(r.ok for r in stream.send_many([0, 1], CTX))
    assert failed.wait(WAIT)
    with pytest.raises(RuntimeError, match="from a subscriber"):
        stream.join(WAIT)
    assert stream.done  # the subscriber ran past every hand-over: the finish was at once
    assert sorted(events_seen(ledger)) == [0, 1]
    assert stream.send(5, CTX).reason == "failed"


def test_close_racing_a_window_in_flight_delivers_it() -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, {}),
    )
    ledger = Ledger(stream)
    assert all(r.ok for r in stream.send_many([0, 1, 2], CTX))
    assert inside.wait(WAIT)
    closer = threading.Thread(target=stream.close, daemon=True)
    closer.start()
    closer.join(WAIT)
    assert not closer.is_alive()  # close never blocks
    release.set()
    assert stream.join(WAIT)
    with ledger.lock:
        assert not ledger.dropped
        assert [[e.event for e in w.items] for w in ledger.delivered] == [[0, 1], [2]]


def test_fail_then_close_racing_a_window_in_flight_ends_each_item_once() -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, {}),
    )
    ledger = Ledger(stream)
    assert all(r.ok for r in stream.send_many([0, 1, 2], CTX))
    assert inside.wait(WAIT)
    threads = [
        threading.Thread(target=lambda: stream.fail(RuntimeError("outside")), daemon=True),
        threading.Thread(target=stream.close, daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    release.set()
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(WAIT)
    assert sorted(events_seen(ledger)) == [0, 1, 2]


def test_a_hand_over_that_outlasts_the_grace_lets_the_stream_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A raw operator that holds its Window longer than IN_FLIGHT_GRACE: the stream does not
    # wait for it forever. After the grace it finishes, reporting what the boundary holds
    # (item 1, once); what the operator hands on after the end is reported nowhere visible.
    monkeypatch.setattr("pfrx.stream._stream.IN_FLIGHT_GRACE", 0.1)
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, {}),
    )
    ledger = Ledger(stream)
    assert all(r.ok for r in stream.send_many([0, 1], CTX))
    assert inside.wait(WAIT)
    started = time.monotonic()
    stream.fail(RuntimeError("outside"))
    assert not stream.done
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(WAIT)
    assert stream.done
    assert 0.05 <= time.monotonic() - started < 1.5
    with ledger.lock:
        assert [(d.item.event, d.reason) for d in ledger.dropped] == [(1, "failed")]
    release.set()
    time.sleep(0.05)
    with ledger.lock:
        assert [(d.item.event, d.reason) for d in ledger.dropped] == [(1, "failed")]
        assert ledger.ends == ["error:RuntimeError"]


def test_the_grace_timer_is_cancelled_when_the_hand_over_ends_in_time() -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, {}),
    )
    assert all(r.ok for r in stream.send_many([0, 1], CTX))
    assert inside.wait(WAIT)
    stream.fail(RuntimeError("outside"))
    timer = stream._grace_timer
    assert timer is not None and timer.is_alive()
    release.set()
    with pytest.raises(RuntimeError):
        stream.join(WAIT)
    timer.join(WAIT)
    assert not timer.is_alive() and stream._grace_timer is None


def test_fail_from_a_subscriber_on_one_drain_while_another_drain_holds_a_window() -> None:
    # Results come from the second buffer's drain; its subscriber fails the stream while the
    # first buffer's drain holds a Window (item 0 and 1) inside the raw operator: fail()
    # returns at once (nobody waits on anybody), the stream ends once that drain is out.
    inside, release = threading.Event(), threading.Event()
    box: dict[str, Any] = {}
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.window_count(2),
        held_operator(inside, release, box),
        pf.backpressure("block", buffer_size=8),
    )
    ledger = Ledger(stream)
    release.set()
    returned = threading.Event()

    def hold_the_next() -> None:
        if box.get("count", 0) == 1:
            release.clear()  # the second Window waits inside the raw operator
        box["count"] = box.get("count", 0) + 1

    box["before"] = hold_the_next

    def on_result(window: Any) -> None:
        if window.items[0].event == 0:
            assert inside.wait(WAIT)
            deadline = time.monotonic() + WAIT
            while box.get("count", 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)  # the second Window is inside the raw operator
            stream.fail(RuntimeError("from a subscriber"))
            returned.set()

    stream.results.subscribe(on_result)
    assert all(r.ok for r in stream.send_many([0, 1, 2, 3], CTX))
    assert returned.wait(WAIT)
    assert not stream.done
    release.set()
    with pytest.raises(RuntimeError, match="from a subscriber"):
        stream.join(WAIT)
    assert stream.done
    assert sorted(events_seen(ledger)) == [0, 1, 2, 3]
    with ledger.lock:
        assert [[e.event for e in w.items] for w in ledger.delivered] == [[0, 1]]


def test_a_list_in_flight_past_the_failure_point_is_waited_for_and_reported_once() -> None:
    # The first buffer's drain hands a list to the second buffer, full (its drain is inside
    # a results subscriber with item 0) with `block`: the list waits inside that hand-over
    # when the stream fails. The stream waits for that list (and for nothing else: item 0
    # has come out): the second buffer, closed, reports each of its items once
    # ("disposed") while dropped is open.
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.backpressure("block", buffer_size=1),
    )
    ledger = Ledger(stream)

    def on_result(envelope: Any) -> None:
        if envelope.event == 0:
            inside.set()
            assert release.wait(WAIT)

    stream.results.subscribe(on_result)
    assert stream.send(0, CTX).ok
    assert inside.wait(WAIT)
    assert all(r.ok for r in stream.send_many([1, 2, 3, 4], CTX))
    deadline = time.monotonic() + WAIT
    while not stream._boundaries[0].batch and time.monotonic() < deadline:
        time.sleep(0.005)  # the list is inside the hand-over to the full buffer
    stream.fail(RuntimeError("outside"))
    release.set()
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(WAIT)
    with ledger.lock:
        assert ledger.delivered == [0]
        drops = sorted((d.item.event, d.reason, d.operator) for d in ledger.dropped)
    assert drops == [(n, "disposed", "backpressure") for n in (1, 2, 3, 4)]
    snapshot = stream.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (5, 1, 4)


def jittery() -> Any:
    """A raw operator that sleeps a little on some values before handing them on."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if isinstance(value, pfrx.Window) and len(value.items) % 2:
                    time.sleep(0.002)
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["count", "time", "session"]),
    tail=st.booleans(),
    n=st.integers(1, 40),
    delay=st.floats(0.0, 0.01),
    stop=st.sampled_from(["fail", "close", "both"]),
)
def test_any_stop_racing_windows_in_flight_ends_each_item_once(
    kind: str, tail: bool, n: int, delay: float, stop: str
) -> None:
    operators = [pf.backpressure("block", buffer_size=64, batch_size=4), window_of(kind), jittery()]
    if tail:
        operators.append(pf.backpressure("block", buffer_size=2))
    stream = Stream(*operators)
    ledger = Ledger(stream)
    events = list(range(n))
    assert all(r.ok for r in stream.send_many(events, CTX))
    time.sleep(delay)
    if stop in ("fail", "both"):
        stream.fail(RuntimeError("outside"))
    if stop in ("close", "both"):
        stream.close()
    with contextlib.suppress(RuntimeError):
        stream.join(WAIT)
    assert stream.done
    time.sleep(0.01)  # whatever a drain still does after the end must not count
    assert sorted(events_seen(ledger)) == events
    with ledger.lock:
        assert len(ledger.ends) == 1


def test_an_item_a_drain_hands_on_while_fail_disposes_the_pipeline_is_reported() -> None:
    # An operator that goes deaf when disposed before it lets go of its upstream (as RxPY's
    # own observers do) while a drain still hands items on: fail() stops the stream first,
    # so the boundary reports the item instead of handing it to the deaf operator.
    muted, reached = threading.Event(), threading.Event()
    swallowed: list[Any] = []

    def deaf_first(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            deaf = [False]

            def on_next(value: Any) -> None:
                if deaf[0]:
                    swallowed.append(value)
                    reached.set()
                    return
                observer.on_next(value)

            inner = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

            def dispose() -> None:
                deaf[0] = True
                muted.set()
                reached.wait(0.3)  # the drain hands an item on meanwhile
                inner.dispose()

            return Disposable(dispose)

        return Observable(subscribe)

    stream = Stream(pf.backpressure("block", buffer_size=8), deaf_first)
    ledger = Ledger(stream)
    assert stream.send(0, CTX).ok
    deadline = time.monotonic() + WAIT
    while not ledger.delivered and time.monotonic() < deadline:
        time.sleep(0.005)
    failer = threading.Thread(target=lambda: stream.fail(RuntimeError("outside")), daemon=True)
    failer.start()
    assert muted.wait(WAIT)
    assert stream.send(1, CTX).ok  # the input has not been let go of yet
    failer.join(WAIT)
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(WAIT)
    assert swallowed == []
    with ledger.lock:
        assert ledger.delivered == [0]
        assert [(d.item.event, d.reason) for d in ledger.dropped] == [(1, "failed")]
