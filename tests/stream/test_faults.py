"""Issue 11: nothing accepted is lost, nothing hangs, whatever fails after the send."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import reactivex
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.stream import StageError, Stream

from ._helpers import CTX, Ledger, bounded

pytestmark = pytest.mark.threads


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


def test_backpressure_error_overflow_loses_no_accepted_send_and_the_stream_ends() -> None:
    gate = threading.Event()
    stream = Stream(pf.backpressure("error", buffer_size=2, batch_size=1))
    ledger = Ledger(stream)
    stream.results.subscribe(lambda env: gate.wait(5.0))  # a slow subscriber
    results = {i: stream.send(i, CTX) for i in range(8)}
    accepted = [i for i, r in results.items() if r.ok]
    refused = {r.reason for r in results.values() if not r.ok}
    assert refused <= {"failed"} and len(accepted) < 8  # once it cannot take input: refused
    gate.set()
    with pytest.raises(pfrx.BackpressureOverflow):
        bounded(lambda: stream.join(3.0))
    assert stream.done and ledger.ends == ["error:BackpressureOverflow"]
    ledger.assert_exactly_once(accepted)
    assert "overflow" in {d.reason for d in ledger.dropped}
    snap = stream.metrics()
    assert snap.received == len(accepted) == snap.emitted + snap.dropped
    assert stream.send(99, CTX) == pfrx.SendResult(False, "failed")


def test_with_stream_exits_after_a_backpressure_error_overflow() -> None:
    oks: list[bool] = []

    def run() -> None:
        with Stream(pf.backpressure("error", buffer_size=2)) as stream:
            stream.results.subscribe(lambda env: time.sleep(0.01))
            oks.extend(stream.send(i, CTX).ok for i in range(8))

    bounded(run)  # __exit__ returns once the stream has ended (with its error)
    assert oks[0] and not all(oks)


@pytest.mark.parametrize("strategy", ["drop_oldest", "block", "adaptive", "error"])
def test_a_results_subscriber_raising_on_the_drain_thread_loses_nothing(strategy: str) -> None:
    stream = Stream(pf.backpressure(strategy, buffer_size=100), name="s")
    ledger = Ledger(stream)
    calls: list[int] = []

    def flaky(env: pfrx.Envelope) -> None:
        calls.append(env.event)
        if env.event == 3:
            raise ValueError("subscriber bug")

    stream.results.subscribe(flaky)
    assert all(stream.send(i, CTX).ok for i in range(10))
    stream.close()
    assert bounded(lambda: stream.join(5.0)) is True
    assert ledger.delivered == list(range(10)) and ledger.ends == ["completed"]
    assert calls == list(range(10))  # the raising subscriber still gets the other items
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (10, 10, 0, 1)


def test_a_results_subscriber_raising_without_backpressure_keeps_the_ledger() -> None:
    stream = Stream()
    stream.results.subscribe(lambda env: 1 / 0 if env.event == 0 else None)
    assert stream.send(0, CTX).ok and stream.send(1, CTX).ok
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.errors) == (2, 2, 1)


def test_a_dropped_subscriber_raising_loses_no_other_drop() -> None:
    stream = Stream(pf.capability_filter(pfrx.Capability("file", "write", "/")))
    seen: list[int] = []
    stream.dropped.subscribe(lambda d: 1 / 0 if d.item.event == 1 else None)
    stream.dropped.subscribe(lambda d: seen.append(d.item.event))
    for i in range(4):
        assert stream.send(i, CTX).ok
    assert seen == [0, 1, 2, 3]
    assert stream.metrics().errors == 1 and not stream.closed


def test_an_operator_raising_on_the_drain_thread_drops_the_item_and_fails_the_stream() -> None:
    gate = threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=4),
        pf.transform(lambda e, c: gate.wait(5.0) and e),
        raising_on({2}),
        name="s",
    )
    ledger = Ledger(stream)
    results = [stream.send(i, CTX) for i in range(5)]
    assert all(r.ok for r in results)
    gate.set()
    with pytest.raises(StageError) as raised:
        bounded(lambda: stream.join(5.0))
    assert "operator bug on 2" in str(raised.value)
    ledger.assert_exactly_once(list(range(5)))
    assert ledger.delivered == [0, 1]
    first = ledger.dropped[0]
    assert (first.item.event, first.reason, first.operator) == (2, "failed", "stream")
    snap = stream.metrics()
    assert snap.received == 5 == snap.emitted + snap.dropped
    assert stream.send(9, CTX) == pfrx.SendResult(False, "failed")
    assert stream.health() is pfrx.Health.UNHEALTHY


def test_a_refused_send_after_an_operator_bug_is_not_counted_anywhere() -> None:
    # Issue 12: the refusal used to take `received` back by hand, leaving the rate counters
    # saying one item came in.
    stream = Stream(raising_on({"a"}), scheduler=TestScheduler())
    assert stream.send("a", CTX) == pfrx.SendResult(False, "failed")
    snap = stream.metrics()
    assert (snap.received, snap.recent_received, snap.input_rate) == (0, 0, 0.0)


def test_an_envelope_whose_context_is_not_a_context_is_refused_and_the_stream_goes_on() -> None:
    stream = Stream(pf.capability_filter(pfrx.Capability("file", "read", "/docs")))
    ledger = Ledger(stream)
    forged = pfrx.Envelope("x", "root", 0.0)  # type: ignore[arg-type]
    assert stream.send_envelope(forged) == pfrx.SendResult(False, "invalid_context")
    assert stream.send("ok", CTX).ok
    assert ledger.delivered == ["ok"] and not stream.closed
    assert stream.metrics().received == 1


# -- re-entrant sends ---------------------------------------------------------------------------


def test_a_results_subscriber_may_send_again_and_it_is_delivered_after_the_item() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    order: list[str] = []

    def echo(env: pfrx.Envelope) -> None:
        order.append(f"in:{env.event}")
        if isinstance(env.event, int) and env.event < 3:
            assert stream.send(env.event + 1, CTX).ok
        order.append(f"out:{env.event}")

    stream.results.subscribe(echo)
    assert bounded(lambda: stream.send(0, CTX)).ok
    assert order == ["in:0", "out:0", "in:1", "out:1", "in:2", "out:2", "in:3", "out:3"]
    assert stream.metrics().received == stream.metrics().emitted == 4


def test_a_dropped_subscriber_may_send_again() -> None:
    stream = Stream(pf.capability_filter(pfrx.Capability("file", "write", "/")))
    retried: list[int] = []

    def retry(record: pfrx.Dropped) -> None:
        if record.item.event < 2:
            retried.append(record.item.event)
            assert stream.send(record.item.event + 1, CTX).ok

    stream.dropped.subscribe(retry)
    assert bounded(lambda: stream.send(0, CTX)).ok
    assert retried == [0, 1]
    snap = stream.metrics()
    assert snap.received == snap.dropped == 3


def test_re_entrant_sends_from_the_drain_thread_with_block_backpressure_never_deadlock() -> None:
    stream = Stream(pf.backpressure("block", buffer_size=2, batch_size=1), queue_size=8)
    ledger = Ledger(stream)
    follow_ups: list[pfrx.SendResult] = []

    def follow_up(env: pfrx.Envelope) -> None:
        if isinstance(env.event, int):
            follow_ups.append(stream.send(f"re{env.event}", CTX))

    stream.results.subscribe(follow_up)

    def produce() -> list[int]:
        return [i for i in range(300) if stream.send(i, CTX).ok]

    producers = [threading.Thread(target=produce) for _ in range(2)]
    for thread in producers:
        thread.start()
    accepted = bounded(produce)
    for thread in producers:
        thread.join(10.0)
        assert not thread.is_alive()
    stream.close()
    assert bounded(lambda: stream.join(10.0)) is True
    assert len(accepted) == 300
    assert all(r.ok or r.reason == "full" or r.reason == "closed" for r in follow_ups)
    snap = stream.metrics()
    assert (
        snap.received == snap.emitted + snap.dropped == len(ledger.delivered) + len(ledger.dropped)
    )


def test_a_producer_waiting_for_room_holds_nobody_else_up() -> None:
    gate = threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=1),
        pf.transform(lambda e, c: gate.wait(5.0) and e),
        queue_size=4,
    )
    ledger = Ledger(stream)
    assert stream.send(0, CTX).ok  # held by the consumer at the gate
    assert stream.send(1, CTX).ok  # buffered
    waiting = threading.Thread(target=stream.send, args=(2, CTX))  # waits for room
    waiting.start()
    time.sleep(0.05)
    started = time.perf_counter()
    assert stream.send(3, CTX).ok  # queued behind the waiting one: no lock to wait on
    assert time.perf_counter() - started < 0.5
    gate.set()
    waiting.join(5.0)
    stream.close()
    assert bounded(lambda: stream.join(5.0)) is True
    assert ledger.delivered == [0, 1, 2, 3]


def test_close_and_join_from_a_subscriber_never_wait_on_themselves() -> None:
    stream = Stream(pf.backpressure("drop_oldest"))
    joined: list[bool] = []

    def stop(env: pfrx.Envelope) -> None:
        stream.close()
        joined.append(stream.join(1.0))

    stream.results.subscribe(stop)
    stream.send(1, CTX)
    assert bounded(lambda: stream.join(5.0)) is True
    assert joined == [False]


# -- registry, quiescence, send_many ----------------------------------------------------------


def test_a_buffered_stream_on_a_test_scheduler_leaves_its_registry_on_close() -> None:
    # Issue 12's surviving mutant: the old test used an unbuffered stream, which leaves the
    # registry on completion anyway. Buffered on a TestScheduler, completion waits.
    scheduler = TestScheduler()
    reg = pfrx.StreamRegistry()
    stream = Stream(pf.backpressure(), scheduler=scheduler)
    reg.register("buffered", stream)
    stream.send(1, CTX)
    stream.close()
    assert not stream.done  # nothing drained yet
    assert "buffered" not in reg and reg.names() == []


def test_quiescent_runs_while_no_item_is_in_flight() -> None:
    inside = threading.Event()
    release = threading.Event()
    in_flight: list[bool] = []

    def slow(event: Any, context: pfrx.Context) -> Any:
        inside.set()
        release.wait(5.0)
        return event

    stream = Stream(pf.transform(slow))
    ledger = Ledger(stream)
    sender = threading.Thread(target=stream.send, args=(1, CTX))
    sender.start()
    inside.wait(5.0)
    checkpointing = threading.Thread(
        target=lambda: in_flight.append(stream.quiescent(lambda: inside.is_set()))
    )
    inside.clear()
    checkpointing.start()
    time.sleep(0.05)
    assert in_flight == []  # waits for the item in flight
    release.set()
    checkpointing.join(5.0)
    sender.join(5.0)
    assert in_flight == [False] and ledger.delivered == [1]
    stream.results.subscribe(lambda env: in_flight.append(env.event))
    stream.results.subscribe(lambda env: stream.quiescent(lambda: None))
    stream.send(2, CTX)  # quiescent from inside raises in the subscriber: logged, counted
    assert stream.metrics().errors == 1


def test_send_many_gives_one_result_per_event_in_order() -> None:
    stream = Stream(pf.capability_filter(pfrx.Capability("file", "read", "/docs")))
    ledger = Ledger(stream)
    results = stream.send_many(range(5), CTX)
    assert results == [pfrx.SendResult(True)] * 5
    assert ledger.delivered == [0, 1, 2, 3, 4]
    stream.close()
    assert stream.send_many([5, 6], CTX) == [pfrx.SendResult(False, "closed")] * 2
    with pytest.raises(TypeError):
        stream.send_many([1], "alice")  # type: ignore[arg-type]


def test_send_many_keeps_each_block_timeout_its_own() -> None:
    gate = threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=1, batch_size=1, timeout=0.05),
        pf.transform(lambda e, c: gate.wait(5.0) and e),
    )
    results = stream.send_many(range(4), CTX)
    assert [r.ok for r in results] == [True, True, False, False]
    assert {r.reason for r in results if not r.ok} == {"timeout"}
    gate.set()
    stream.close()
    assert stream.join(5.0)
    snap = stream.metrics()
    assert snap.received == 2 == snap.emitted


def test_queue_size_is_checked() -> None:
    with pytest.raises(TypeError):
        Stream(queue_size="8")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Stream(queue_size=0)


def test_a_queued_send_that_times_out_later_is_one_dropped_with_reason_timeout() -> None:
    gate = threading.Event()
    stream = Stream(
        pf.backpressure("block", buffer_size=1, batch_size=1, timeout=0.1),
        pf.transform(lambda e, c: gate.wait(5.0) and e),
    )
    ledger = Ledger(stream)
    assert stream.send(0, CTX).ok  # held by the consumer
    assert stream.send(1, CTX).ok  # buffered
    own: list[pfrx.SendResult] = []
    waiting = threading.Thread(target=lambda: own.append(stream.send(2, CTX)))
    waiting.start()  # hands its own item over: waits for room, then times out itself
    time.sleep(0.02)
    queued = stream.send(3, CTX)  # queued behind it: accepted now, its fate reported later
    waiting.join(5.0)
    assert own == [pfrx.SendResult(False, "timeout")] and queued.ok
    gate.set()
    stream.close()
    assert bounded(lambda: stream.join(5.0)) is True
    ledger.assert_exactly_once([0, 1, 3])
    timed_out = [d for d in ledger.dropped if d.reason == "timeout"]
    assert [(d.item.event, d.operator) for d in timed_out] == [(3, "stream")]
    snap = stream.metrics()
    assert snap.received == 3 == snap.emitted + snap.dropped


def test_many_block_producers_through_a_small_queue_each_get_their_own_result() -> None:
    stream = Stream(
        pf.backpressure("block", buffer_size=8, batch_size=4),
        pf.transform(lambda e, c: e),
        queue_size=4,
    )
    ledger = Ledger(stream)
    results: dict[int, pfrx.SendResult] = {}

    def produce(offset: int) -> None:
        for i in range(offset, offset + 500):
            results[i] = stream.send(i, CTX)

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20.0)
        assert not thread.is_alive()
    stream.close()
    assert bounded(lambda: stream.join(10.0)) is True
    assert len(results) == 3000 and all(r.ok for r in results.values())
    assert sorted(ledger.delivered) == sorted(results) and ledger.dropped == []
    for k in range(6):  # each producer's order is kept
        mine = [e for e in ledger.delivered if k * 1000 <= e < k * 1000 + 500]
        assert mine == sorted(mine)


def test_drops_from_many_threads_wait_for_a_slow_dropped_subscriber_memory_stays_bounded() -> None:
    # Drops come from two threads: overflow on the sending thread, denials on the drain.
    stream = Stream(
        pf.backpressure("drop_newest", buffer_size=1),
        pf.capability_filter(pfrx.Capability("file", "write", "/")),
        queue_size=8,
    )
    stream.dropped.limit = 20  # type: ignore[attr-defined]
    attempted = [0]
    delivered = [0]
    backlog: list[int] = []
    guard = threading.Lock()

    inside = threading.Event()

    def slow(record: pfrx.Dropped) -> None:
        inside.set()
        time.sleep(0.001)
        delivered[0] += 1
        with guard:
            backlog.append(attempted[0] - delivered[0])

    stream.dropped.subscribe(slow)

    def produce() -> None:
        for i in range(100):
            with guard:
                attempted[0] += 1
            assert stream.send(i, CTX).ok

    # The drain thread delivers a denial first (to the slow subscriber), so the overflow
    # drops of the sending threads queue behind it.
    with guard:
        attempted[0] += 1
    stream.send("first", CTX)
    assert inside.wait(5.0)
    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20.0)
        assert not thread.is_alive()
    stream.close()
    assert bounded(lambda: stream.join(10.0)) is True
    assert delivered[0] == 401 == stream.metrics().dropped
    # the drop queue's bound, the input queue, the buffer, and what each thread has in hand
    assert max(backlog) <= 20 + 8 + 1 + 2 * 5
