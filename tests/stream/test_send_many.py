"""send_many: one hand-off per batch, and every promise of send kept for each of its events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream
from pfrx.stream._stream import GATHER_LIMIT

from ._helpers import CTX, Ledger, bounded

pytestmark = pytest.mark.threads

OK = pfrx.SendResult(True)


def raising_on(bad: set[Any]) -> Any:
    """An operator whose on_next raises (an operator bug) for the events in ``bad``."""

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event in bad:
                    raise RuntimeError(f"operator bug on {value.event}")
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.Observable(subscribe)

    return operator


def gated_transform(inside: threading.Event, release: threading.Event) -> Any:
    def fn(event: Any, context: pfrx.Context) -> Any:
        if event == "hold":
            inside.set()
            release.wait(5.0)
        return event

    return pf.transform(fn)


# -- what is refused whole, never half-accepted ----------------------------------------------------


def test_a_bad_context_or_events_refuses_the_whole_call_and_accepts_nothing() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    ledger = Ledger(stream)
    with pytest.raises(TypeError):
        stream.send_many([1, 2], "alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        stream.send_many([1, 2], None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        stream.send_many(42, CTX)  # type: ignore[arg-type]

    def broken_events() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("the producer's iterator broke")

    with pytest.raises(ValueError, match="iterator broke"):
        stream.send_many(broken_events(), CTX)
    assert stream.send_many([], CTX) == []
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (0, 0, 0)
    assert ledger.delivered == [] and ledger.dropped == []
    assert stream.send_many([3], CTX) == [OK]  # the stream goes on
    assert ledger.delivered == [3]


def test_events_bad_for_the_pipeline_are_one_dropped_each_and_the_rest_delivered() -> None:
    def strict(event: Any, context: pfrx.Context) -> Any:
        return event * 2 if isinstance(event, int) else {}["not a number"]

    stream = Stream(pf.transform(strict))
    ledger = Ledger(stream)
    events: list[Any] = [1, "x", 2, None, pfrx.Envelope(3, CTX, 0.0), 4]
    assert stream.send_many(events, CTX) == [OK] * 6  # events are payloads: all accepted
    assert ledger.delivered == [2, 4, 8]
    assert [d.item.event for d in ledger.dropped] == ["x", None, events[4]]
    assert all(d.reason for d in ledger.dropped)
    snap = stream.metrics()
    assert snap.received == 6 == snap.emitted + snap.dropped


# -- re-entrant send_many ------------------------------------------------------------------------


def test_send_many_from_a_subscriber_of_results_is_delivered_after_and_never_deadlocks() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    ledger = Ledger(stream)
    answers: list[list[pfrx.SendResult]] = []

    def echo(env: pfrx.Envelope) -> None:
        if isinstance(env.event, int) and env.event < 3:
            answers.append(stream.send_many([env.event + 10, env.event + 20], CTX))

    stream.results.subscribe(echo)
    assert bounded(lambda: stream.send_many([0, 1, 2, 3], CTX)) == [OK] * 4
    assert answers == [[OK, OK]] * 3
    assert ledger.delivered == [0, 1, 2, 3, 10, 20, 11, 21, 12, 22]
    stream.close()
    assert stream.join(5.0)
    snap = stream.metrics()
    assert snap.received == 10 == snap.emitted


def test_send_many_from_an_operator_function_and_a_drop_subscriber_never_deadlocks() -> None:
    streams: list[Stream] = []

    def fan(event: Any, context: pfrx.Context) -> Any:
        if event == "fan":
            streams[0].send_many(["a", "b"], context)
        if event == "deny":
            raise ValueError("denied")
        return event

    stream = Stream(pf.transform(fan))
    streams.append(stream)
    ledger = Ledger(stream)
    stream.dropped.subscribe(lambda d: stream.send_many(["after-drop"], CTX))
    assert bounded(lambda: stream.send_many(["fan", "deny", "z"], CTX)) == [OK] * 3
    stream.close()
    assert stream.join(5.0)
    assert sorted(ledger.delivered) == sorted(["fan", "z", "a", "b", "after-drop"])
    assert ledger.delivered.index("fan") < ledger.delivered.index("a")
    assert ledger.dropped_events() == ["deny"]


def test_a_re_entrant_batch_that_finds_the_queue_full_is_refused_whole() -> None:
    stream = Stream(pf.transform(lambda e, c: e), queue_size=1)
    ledger = Ledger(stream)
    answers: list[list[pfrx.SendResult]] = []

    def resend(env: pfrx.Envelope) -> None:
        if env.event == 0:
            answers.append(stream.send_many([1, 2], CTX))  # queued: the one slot
            answers.append(stream.send_many([3, 4], CTX))  # the queue is full: refused
            answers.append([stream.send(5, CTX)])

    stream.results.subscribe(resend)
    assert bounded(lambda: stream.send(0, CTX)) == OK
    full = pfrx.SendResult(False, "full")
    assert answers == [[OK, OK], [full, full], [full]]
    assert ledger.delivered == [0, 1, 2]
    snap = stream.metrics()
    assert snap.received == 3 == snap.emitted


# -- one hand-off: queued whole, gathered results -------------------------------------------


def test_a_batch_behind_a_busy_sender_is_queued_whole_and_handed_over_in_order() -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(gated_transform(inside, release), queue_size=2)
    ledger = Ledger(stream)
    sender = threading.Thread(target=stream.send, args=("hold", CTX), daemon=True)
    sender.start()
    assert inside.wait(5.0)
    # One queue entry per call, however long the batch: a queue of 2 takes both.
    assert stream.send_many(list(range(10)), CTX) == [OK] * 10
    assert stream.send_many(list(range(10, 15)), CTX) == [OK] * 5
    assert stream.metrics().received == 0  # counted when handed over, not when queued
    release.set()
    sender.join(5.0)
    stream.close()
    assert stream.join(5.0)
    assert ledger.delivered == ["hold", *range(15)]
    assert stream.metrics().received == 16 == stream.metrics().emitted


def test_results_of_a_batch_are_published_together_in_order_and_counted() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    seen: list[Any] = []
    during: list[int] = []

    def watch(env: pfrx.Envelope) -> None:
        seen.append(env.event)
        during.append(stream.metrics().emitted)

    stream.results.subscribe(watch)
    n = GATHER_LIMIT * 2 + 7
    assert stream.send_many(list(range(n)), CTX) == [OK] * n
    assert seen == list(range(n))
    # Published a list at a time, each counted before its first subscriber call.
    assert during[0] == GATHER_LIMIT and during[GATHER_LIMIT] == 2 * GATHER_LIMIT
    assert during[-1] == n


def test_a_subscriber_that_raises_on_a_gathered_batch_loses_nothing_else() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    ledger = Ledger(stream)

    def picky(env: pfrx.Envelope) -> None:
        if env.event % 3 == 0:
            raise RuntimeError("subscriber bug")

    stream.results.subscribe(picky)
    assert stream.send_many(list(range(9)), CTX) == [OK] * 9
    assert ledger.delivered == list(range(9))
    assert stream.metrics().errors == 3
    stream.close()
    assert stream.join(5.0)


# -- failures in the middle of a batch ------------------------------------------------------------


def test_an_operator_failing_mid_batch_refuses_the_rest_and_the_ledger_balances() -> None:
    stream = Stream(raising_on({2}))
    ledger = Ledger(stream)
    results = stream.send_many([0, 1, 2, 3, 4], CTX)
    assert results[:2] == [OK, OK]
    assert results[2:] == [pfrx.SendResult(False, "failed")] * 3
    assert ledger.delivered == [0, 1]  # delivered before the failure, not held back
    with pytest.raises(pfrx.stream.StageError):
        stream.join(5.0)
    snap = stream.metrics()
    assert snap.received == 2 == snap.emitted + snap.dropped


def test_a_queued_batch_that_meets_a_failure_is_one_dropped_per_lost_event() -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(gated_transform(inside, release), raising_on({2}))
    ledger = Ledger(stream)
    sender = threading.Thread(target=stream.send, args=("hold", CTX), daemon=True)
    sender.start()
    assert inside.wait(5.0)
    assert stream.send_many([0, 1, 2, 3, 4], CTX) == [OK] * 5  # queued: accepted
    release.set()
    sender.join(5.0)
    with pytest.raises(pfrx.stream.StageError):
        stream.join(5.0)
    ledger.assert_exactly_once(["hold", 0, 1, 2, 3, 4])
    assert sorted(ledger.dropped_events()) == [2, 3, 4]
    assert {d.reason for d in ledger.dropped} == {"failed"}
    snap = stream.metrics()
    assert snap.received == 6 == snap.emitted + snap.dropped


def test_a_queued_batch_that_times_out_in_a_block_buffer_is_one_dropped_each() -> None:
    gate = threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=1, batch_size=1, timeout=0.05),
        pf.transform(lambda e, c: gate.wait(5.0) and e),
    )
    ledger = Ledger(stream)
    assert stream.send(0, CTX).ok  # held by the consumer
    assert stream.send(1, CTX).ok  # buffered
    own: list[pfrx.SendResult] = []
    waiting = threading.Thread(target=lambda: own.append(stream.send(2, CTX)))
    waiting.start()  # takes the role, waits for room, times out itself
    time.sleep(0.01)
    queued = stream.send_many([3, 4, 5], CTX)  # behind it, or handed over directly
    waiting.join(5.0)
    gate.set()
    stream.close()
    assert stream.join(5.0)
    later = [e for e, r in zip([3, 4, 5], queued, strict=True) if r.ok]
    accepted = [0, 1] + [2] * own[0].ok + later
    ledger.assert_exactly_once(accepted)
    assert {d.reason for d in ledger.dropped} <= {"timeout"}
    timed_out = [e for e, r in zip([3, 4, 5], queued, strict=True) if not r.ok]
    assert all(r.reason == "timeout" for r in queued if not r.ok)
    # Each of 3..5 timed out once: refused (handed over directly) or dropped (queued).
    assert sorted(timed_out + [e for e in ledger.dropped_events() if e in (3, 4, 5)]) == [3, 4, 5]
    snap = stream.metrics()
    assert snap.received == len(accepted) == snap.emitted + snap.dropped


def test_a_fused_stage_before_a_block_buffer_times_out_as_dropped_not_half_refused() -> None:
    gate = threading.Event()
    stream = Stream(
        pf.transform(lambda e, c: e),
        pf.backpressure("block", buffer_size=1, batch_size=1, timeout=0.05),
        pf.transform(lambda e, c: gate.wait(5.0) and e),
    )
    ledger = Ledger(stream)
    results = stream.send_many(list(range(5)), CTX)
    gate.set()
    stream.close()
    assert stream.join(5.0)
    accepted = [e for e, r in zip(range(5), results, strict=True) if r.ok]
    assert {r.reason for r in results if not r.ok} <= {"timeout"}
    ledger.assert_exactly_once(accepted)
    snap = stream.metrics()
    assert snap.received == len(accepted) == snap.emitted + snap.dropped


# -- racing close, many producers ---------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.002])
def test_send_many_racing_close_accounts_for_every_accepted_event(delay: float) -> None:
    stream = Stream(
        pf.transform(lambda e, c: e),
        pf.backpressure("block", buffer_size=64, batch_size=8),
        pf.transform(lambda e, c: e),
    )
    ledger = Ledger(stream)
    accepted: list[Any] = []
    lock = threading.Lock()

    def produce(k: int) -> None:
        for b in range(40):
            events = [(k, b, i) for i in range(25)]
            results = stream.send_many(events, CTX)
            with lock:
                accepted.extend(e for e, r in zip(events, results, strict=True) if r.ok)
            assert all(r.reason in (None, "closed") for r in results)

    threads = [threading.Thread(target=produce, args=(k,), daemon=True) for k in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(delay)
    stream.close()
    for thread in threads:
        thread.join(10.0)
        assert not thread.is_alive()
    assert stream.join(10.0)
    ledger.assert_exactly_once(accepted)
    snap = stream.metrics()
    assert snap.received == len(accepted) == snap.emitted + snap.dropped
    assert stream.send_many([1], CTX) == [pfrx.SendResult(False, "closed")]


Plan = list[tuple[str, int]]
plans = st.lists(
    st.lists(st.tuples(st.sampled_from(["send", "send_many"]), st.integers(1, 30)), max_size=8),
    min_size=2,
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=plans, buffered=st.booleans(), queue_size=st.sampled_from([1, 4, 1024]))
def test_many_producers_mixing_send_and_send_many_keep_the_ledger(
    plans: list[Plan], buffered: bool, queue_size: int
) -> None:
    operators: list[Any] = [
        pf.capability_filter(lambda ev: pfrx.Capability("file", "read", f"/docs/{ev[2] % 3}")),
        pf.transform(lambda e, c: e),
    ]
    if buffered:
        operators.append(pf.backpressure("block", buffer_size=8, batch_size=4))
    denied = pfrx.Context("bob", "s2", [])
    stream = Stream(*operators, queue_size=queue_size)
    ledger = Ledger(stream)
    accepted: list[Any] = []
    lock = threading.Lock()

    def produce(k: int, plan: Plan) -> None:
        for step, (kind, n) in enumerate(plan):
            context = denied if step % 3 == 2 else CTX
            if kind == "send":
                events = [(k, step, i) for i in range(n)]
                results = [stream.send(e, context) for e in events]
            else:
                events = [(k, step, i) for i in range(n)]
                results = stream.send_many(events, context)
            with lock:
                accepted.extend(e for e, r in zip(events, results, strict=True) if r.ok)

    threads = [
        threading.Thread(target=produce, args=(k, plan), daemon=True)
        for k, plan in enumerate(plans)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
        assert not thread.is_alive(), "a producer hung"
    stream.close()
    assert stream.join(10.0)
    total = sum(n for plan in plans for _, n in plan)
    assert len(accepted) == total  # open, producers outside the stream: nothing refused
    ledger.assert_exactly_once(accepted)
    snap = stream.metrics()
    assert snap.received == total == snap.emitted + snap.dropped
    # Each producer's own events keep their order.
    for k in range(len(plans)):
        mine = [e for e in ledger.delivered if e[0] == k]
        assert mine == sorted(mine)


def test_a_producer_waiting_for_room_is_woken_when_the_emitter_takes_the_queue() -> None:
    # Not left to the wait's backstop timeout: the emitter notifies when it takes the queue.
    inside, release = threading.Event(), threading.Event()
    stream = Stream(gated_transform(inside, release), queue_size=1)
    ledger = Ledger(stream)
    room = stream._input._room
    waiting = threading.Event()
    woken: list[bool] = []
    plain_wait = room.wait

    def wait(timeout: float | None = None) -> bool:
        waiting.set()
        notified = plain_wait(timeout)
        woken.append(notified)
        return notified

    room.wait = wait  # type: ignore[method-assign]
    sender = threading.Thread(target=stream.send, args=("hold", CTX), daemon=True)
    sender.start()
    assert inside.wait(5.0)
    assert stream.send_many([1, 2], CTX) == [OK, OK]  # the one queue slot
    blocked: list[pfrx.SendResult] = []
    producer = threading.Thread(target=lambda: blocked.append(stream.send(3, CTX)), daemon=True)
    producer.start()
    assert waiting.wait(5.0)
    release.set()
    producer.join(5.0)
    sender.join(5.0)
    assert blocked == [OK]
    assert True in woken
    stream.close()
    assert stream.join(5.0)
    assert ledger.delivered == ["hold", 1, 2, 3]
