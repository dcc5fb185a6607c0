"""The stream with backpressure: block timeouts, asyncio producers, virtual time."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream, connect

CTX = pfrx.Context("alice", "s1")


def gated() -> tuple[threading.Event, Any]:
    gate = threading.Event()

    def wait_for_gate(event: Any, context: pfrx.Context) -> Any:
        gate.wait(10.0)
        return event

    return gate, pf.transform(wait_for_gate)


@pytest.mark.threads
def test_a_block_timeout_is_a_refusal_not_a_loss() -> None:
    gate, consumer = gated()
    stream = Stream(pf.backpressure("block", buffer_size=2, batch_size=1, timeout=0.2), consumer)
    seen: list[int] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    results = [stream.send(i, CTX) for i in range(5)]
    # one item held by the stuck consumer, two buffered, then no room
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert {r.reason for r in results if not r.ok} == {"timeout"}
    snap = stream.metrics()
    assert snap.received == 3
    assert snap.backpressure_events >= 2
    gate.set()
    stream.close()
    assert stream.join(timeout=5.0)
    assert seen == [0, 1, 2]
    final = stream.metrics()
    assert final.received == final.emitted == 3 and final.dropped == 0


@pytest.mark.threads
def test_close_never_blocks_even_while_a_producer_waits_for_room() -> None:
    gate, consumer = gated()
    stream = Stream(pf.backpressure("block", buffer_size=1), consumer)
    seen: list[int] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    stream.send(0, CTX)  # taken by the consumer, which waits at the gate
    stream.send(1, CTX)  # buffered
    blocked = threading.Thread(target=stream.send, args=(2, CTX))
    blocked.start()
    time.sleep(0.05)
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 0.5
    assert stream.send(3, CTX).reason == "closed"
    assert not stream.done
    gate.set()
    blocked.join(5.0)
    assert stream.join(timeout=5.0)
    assert seen == [0, 1, 2]


@pytest.mark.threads
def test_drops_from_a_drain_thread_reach_the_stream_ledger() -> None:
    gate, consumer = gated()
    stream = Stream(pf.backpressure("drop_oldest", buffer_size=3), consumer)
    dropped: list[pfrx.Dropped] = []
    seen: list[int] = []
    stream.dropped.subscribe(dropped.append)
    stream.results.subscribe(lambda env: seen.append(env.event))
    for i in range(20):
        assert stream.send(i, CTX).ok
    gate.set()
    stream.close()
    assert stream.join(timeout=5.0)
    snap = stream.metrics()
    assert snap.received == 20 == snap.emitted + snap.dropped
    assert len(dropped) == snap.dropped and {d.reason for d in dropped} == {"overflow"}
    assert seen[-3:] == [17, 18, 19]
    assert snap.backpressure_events == snap.dropped


def test_with_a_test_scheduler_backpressure_drains_only_when_it_advances() -> None:
    scheduler = TestScheduler()
    stream = Stream(pf.backpressure("drop_oldest", buffer_size=5), scheduler=scheduler)
    seen: list[int] = []
    ends: list[str] = []
    stream.results.subscribe(lambda env: seen.append(env.event), None, lambda: ends.append("c"))
    for i in range(10):
        stream.send(i, CTX)
    stream.close()
    assert seen == [] and not stream.done
    assert stream.metrics().buffered == 5
    scheduler.start()
    assert seen == [5, 6, 7, 8, 9] and ends == ["c"]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.backpressure_events) == (10, 5, 5, 5)


@pytest.mark.threads
def test_asend_waits_for_room_without_blocking_the_event_loop() -> None:
    gate, consumer = gated()
    stream = Stream(pf.backpressure("block", buffer_size=2), consumer)
    seen: list[int] = []
    stream.results.subscribe(lambda env: seen.append(env.event))

    async def main() -> tuple[list[pfrx.SendResult], int, int]:
        ticks = 0
        ticks_while_blocked = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        async def release() -> None:
            nonlocal ticks_while_blocked
            before = ticks
            await asyncio.sleep(0.2)
            ticks_while_blocked = ticks - before
            gate.set()

        ticking = asyncio.create_task(ticker())
        releasing = asyncio.create_task(release())
        results = [await stream.asend(i, CTX) for i in range(8)]
        await releasing
        ticking.cancel()
        return results, ticks, ticks_while_blocked

    results, _, ticks_while_blocked = asyncio.run(main())
    assert all(r.ok for r in results)
    assert ticks_while_blocked > 5  # the loop kept running while producers waited for room
    stream.close()
    assert stream.join(timeout=5.0)
    assert seen == list(range(8))


@pytest.mark.threads
def test_asend_from_many_tasks_and_threads_together() -> None:
    stream = Stream(pf.backpressure("block", buffer_size=16), pf.transform(lambda e, c: e))
    seen: list[int] = []
    stream.results.subscribe(lambda env: seen.append(env.event))

    def thread_producer() -> None:
        for i in range(1000, 1500):
            assert stream.send(i, CTX).ok

    async def task_producer(start: int) -> None:
        for i in range(start, start + 250):
            assert (await stream.asend(i, CTX)).ok

    async def main() -> None:
        await asyncio.gather(task_producer(0), task_producer(250), task_producer(500))

    thread = threading.Thread(target=thread_producer)
    thread.start()
    asyncio.run(main())
    thread.join()
    stream.close()
    assert stream.join(timeout=10.0)
    assert sorted(seen) == [*range(750), *range(1000, 1500)]
    for start in (0, 250, 500, 1000):  # each producer's order is kept
        mine = [x for x in seen if start <= x < start + (500 if start == 1000 else 250)]
        assert mine == sorted(mine)


def test_asend_after_close_is_refused() -> None:
    stream = Stream()
    stream.close()
    result = asyncio.run(stream.asend("x", CTX))
    assert result == pfrx.SendResult(False, "closed")


@pytest.mark.threads
def test_connect_reports_a_timeout_refusal_as_a_drop_downstream() -> None:
    gate, consumer = gated()
    first = Stream(name="first")
    second = Stream(pf.backpressure("block", buffer_size=1, timeout=0.02), consumer, name="second")
    connect(first, second)
    dropped: list[pfrx.Dropped] = []
    second.dropped.subscribe(dropped.append)
    for i in range(4):
        first.send(i, CTX)
    assert [(d.reason, d.operator) for d in dropped] == [
        ("refused: timeout", "connect"),
        ("refused: timeout", "connect"),
    ]
    gate.set()
    first.close()
    assert second.join(timeout=5.0)
    snap = second.metrics()
    assert snap.received == 4 == snap.emitted + snap.dropped
