"""Issue 12: the producer side of ``backpressure`` stated exactly: a ``send_many`` batch handed
to the buffer as a list (all of it, part of it, after a close, at a shedding ``adaptive``
buffer, breaking), what a gatherer keeps and when it hands it on, how many drain actions the
producer path schedules (one when none is pending or running, none more), the log line of
``error``, and a watermark that an ``adaptive`` buffer sheds.

The buffer is driven through the entry points it offers its source: ``on_next``, and, when
subscribed under a stream's batch gate, ``on_batch`` and ``batch_room`` (see
``subscribe_with_batches``). The source keeps the functions it was handed, as a source on
another thread may still hold them when the subscription is disposed. The drain runs on
`Steps`, a virtual-time scheduler that keeps each scheduled action until the test runs it:
the test sees exactly how many drain actions are pending at each point.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger
from reactivex import Observable
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import BatchBroken, Gate, gathering_into


class Steps(TestScheduler):
    """A virtual-time scheduler whose scheduled actions wait in `pending` until the test
    runs them, one at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[Any, Any]] = []

    def schedule(self, action: Any, state: Any = None) -> Disposable:
        self.pending.append((action, state))
        return Disposable()

    def step(self) -> None:
        action, state = self.pending.pop(0)
        action(self, state)

    def run_all(self) -> None:
        for _ in range(100):
            if not self.pending:
                return
            self.step()
        raise AssertionError("the drain never stops scheduling itself")


class Runaway(BaseException):
    """Stops a test whose buffer reports drops without end (a broken loop): a
    BaseException, so no ``except Exception`` on the way swallows it."""


class BrokenCounts(pfrx.StreamMetrics):
    """Metrics whose received count breaks once armed: a buffer breaking as it takes items."""

    armed = False

    def record_received(self, n: int = 1) -> None:
        if self.armed:
            raise RuntimeError("buffer bug")
        super().record_received(n)


class Entry:
    """``backpressure`` (named ``bp``) subscribed under a batch gate, on `Steps`, its source
    holding the entry points it was handed; records what comes out, is dropped, and ends."""

    def __init__(
        self,
        strategy: str,
        *,
        metrics: pfrx.StreamMetrics | None = None,
        consumer: Any = None,
        **options: Any,
    ) -> None:
        self.scheduler = Steps()
        self.metrics = metrics if metrics is not None else pfrx.StreamMetrics(self.scheduler)
        self.gate = Gate()
        self.got: list[Any] = []
        self.lost: list[tuple[Any, str]] = []
        self.ends: list[Any] = []
        self.consumer = consumer
        handed: list[Any] = []

        def subscribe(observer: Any, _scheduler: Any = None) -> Disposable:
            handed.append(observer)
            return Disposable()

        with gathering_into(self.gate):
            self.subscription = (
                Observable(subscribe)
                .pipe(
                    pf.backpressure(
                        strategy,
                        scheduler=self.scheduler,
                        metrics=self.metrics,
                        on_drop=self._drop,
                        name="bp",
                        **options,
                    )
                )
                .subscribe(self._take, self.ends.append, lambda: self.ends.append("completed"))
            )
        (observer,) = handed
        self.on_next = observer.on_next
        self.on_batch = observer.on_batch
        self.batch_room = observer.batch_room

    def _take(self, value: Any) -> None:
        self.got.append(value)
        if self.consumer is not None:
            self.consumer(value)

    def _drop(self, record: pfrx.Dropped) -> None:
        self.lost.append((record.item, record.reason))
        if len(self.lost) > 50:
            raise Runaway(f"{len(self.lost)} drops")

    def send(self, *values: Any) -> None:
        for value in values:
            self.on_next(value)

    def counts(self) -> tuple[int, int, int, int]:
        m = self.metrics.snapshot()
        return (m.received, m.emitted, m.dropped, m.backpressure_events)

    def buffered(self) -> int:
        return self.metrics.snapshot().buffered


@pytest.fixture
def lines() -> Iterator[list[str]]:
    caught: list[str] = []
    logger.enable("pfrx")
    sink = logger.add(lambda message: caught.append(message.record["message"]), level="INFO")
    try:
        yield caught
    finally:
        logger.remove(sink)
        logger.disable("pfrx")


# -- a list handed to the buffer ----------------------------------------------------------------


def test_a_list_fills_the_room_in_one_go_and_the_rest_meets_the_strategy_one_by_one() -> None:
    e = Entry("drop_newest", buffer_size=4)
    e.send("a")
    assert len(e.scheduler.pending) == 1
    assert e.batch_room(3) is True  # exactly the room left
    assert e.batch_room(4) is False
    e.on_batch(["b", "c", "d", "e", "f"])
    # b, c, d take the room; e and f find the buffer full: each dropped, in order.
    assert e.lost == [("e", "overflow"), ("f", "overflow")]
    assert e.counts() == (6, 0, 2, 2)
    assert e.buffered() == 4
    assert len(e.scheduler.pending) == 1  # the drain already pending: none more
    e.on_batch(["g"])  # a full buffer: no room to take in one go, no drain to add
    assert e.lost[-1] == ("g", "overflow")
    assert len(e.scheduler.pending) == 1
    e.scheduler.run_all()
    assert e.got == ["a", "b", "c", "d"]
    assert e.counts() == (7, 4, 3, 3)


def test_a_list_at_an_empty_buffer_wakes_the_drain_once() -> None:
    e = Entry("drop_oldest", buffer_size=4)
    e.on_batch(["a", "b", "c", "d", "e", "f"])
    # a..d go in at once (one drain); e and f evict a and b.
    assert e.lost == [("a", "overflow"), ("b", "overflow")]
    assert len(e.scheduler.pending) == 1
    e.scheduler.run_all()
    assert e.got == ["c", "d", "e", "f"]
    assert e.counts() == (6, 4, 2, 2)


def test_a_list_handed_over_after_a_dispose_is_dropped_item_by_item() -> None:
    e = Entry("drop_oldest", buffer_size=4)
    e.send("a")
    e.subscription.dispose()
    assert e.lost == [("a", "disposed")]
    assert e.batch_room(1) is False
    e.on_batch(["b", "c"])  # from a source that still held the entry
    assert e.lost == [("a", "disposed"), ("b", "disposed"), ("c", "disposed")]
    assert e.counts() == (3, 0, 3, 0)
    assert e.buffered() == 0
    assert len(e.scheduler.pending) == 1  # a's drain only: none for the closed buffer
    e.scheduler.run_all()
    assert e.got == []


def shedding(**options: Any) -> Entry:
    """An ``adaptive`` buffer of 4 (high-water mark 2, low-water mark 1), turns of one item,
    one turn at the high-water mark enough to shed: after one turn of a, b, c it sheds,
    holding b and c, its next turn pending."""
    policy = pf.AdaptivePolicy(high_water=0.5, low_water=0.25, sustain=1)
    e = Entry("adaptive", buffer_size=4, batch_size=1, adaptive=policy, **options)
    e.send("a", "b", "c")
    e.scheduler.step()
    assert e.got == ["a"]
    assert e.metrics.snapshot().info["bp.adaptive_state"] == "shedding"
    return e


def test_a_list_at_a_shedding_adaptive_buffer_sheds_for_each_item() -> None:
    e = shedding()
    assert e.batch_room(1) is False  # an arrival there may shed: never taken in one go
    e.on_batch(["d", "e"])
    assert e.lost == [("b", "shed"), ("c", "shed")]
    assert e.counts() == (5, 1, 2, 0)
    e.scheduler.run_all()
    assert e.got == ["a", "d", "e"]


# -- a list whose buffer breaks -------------------------------------------------------------------


def test_a_buffer_breaking_on_a_list_reports_each_item_and_says_why() -> None:
    counts = BrokenCounts()
    e = Entry("drop_oldest", buffer_size=8, metrics=counts)
    counts.armed = True
    with pytest.raises(BatchBroken) as caught:
        e.on_batch(["x", "y"])
    assert str(caught.value) == "buffer bug"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert e.lost == [("x", "failed"), ("y", "failed")]
    assert counts.snapshot().backpressure_events == 0


def test_a_buffer_breaking_on_what_it_gathered_reports_that_and_the_list() -> None:
    counts = BrokenCounts()
    e = Entry("drop_oldest", buffer_size=8, metrics=counts)
    e.gate.thread = threading.get_ident()
    e.send("a")  # gathered: it goes in before the list
    assert e.buffered() == 0
    counts.armed = True
    with pytest.raises(BatchBroken) as caught:
        e.on_batch(["b", "c"])
    assert str(caught.value) == "buffer bug"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert e.lost == [("a", "failed"), ("b", "failed"), ("c", "failed")]
    assert counts.snapshot().backpressure_events == 0


# -- what a gatherer keeps ------------------------------------------------------------------------


def test_items_from_the_gathering_thread_wait_unseen_until_the_gate_flushes() -> None:
    e = Entry("drop_oldest", buffer_size=4)
    e.gate.thread = threading.get_ident()
    e.send("a", "b")
    assert (e.buffered(), e.counts(), e.scheduler.pending) == (0, (0, 0, 0, 0), [])
    (flush,) = e.gate.flushers
    assert flush() is True  # it held something
    assert e.buffered() == 2
    assert e.counts() == (2, 0, 0, 0)
    assert flush() is False  # nothing left
    e.gate.thread = None
    e.scheduler.run_all()
    assert e.got == ["a", "b"]


def test_a_gatherer_hands_on_what_it_kept_at_1024_items() -> None:
    e = Entry("drop_oldest", buffer_size=2000)
    e.gate.thread = threading.get_ident()
    for i in range(1023):
        e.on_next(i)
    assert e.buffered() == 0
    e.on_next(1023)  # the 1024th: handed on at once
    assert e.buffered() == 1024
    e.on_next(1024)  # kept again
    assert e.buffered() == 1024
    e.gate.flush()
    assert e.buffered() == 1025


# -- how many drains the producer path schedules --------------------------------------------------


def test_error_overflowing_adds_no_drain_to_the_one_pending(lines: list[str]) -> None:
    e = Entry("error", buffer_size=2)
    e.send("a", "b", "c")
    assert e.lost == [("c", "overflow")]
    assert len(e.scheduler.pending) == 1
    assert "bp: buffer full (2 items), failing" in lines
    e.scheduler.run_all()
    assert e.got == ["a", "b"]
    assert len(e.ends) == 1
    assert isinstance(e.ends[0], pfrx.BackpressureOverflow)
    assert e.counts() == (3, 2, 1, 1)


def test_error_overflowing_during_a_turn_leaves_the_next_turn_to_that_turn() -> None:
    pending_then: list[int] = []

    def consumer(value: Any) -> None:
        if value == "a":  # on the drain's turn: two more, the second overflows
            e.send("b", "c")
            pending_then.append(len(e.scheduler.pending))

    e = Entry("error", buffer_size=1, batch_size=1, consumer=consumer)
    e.send("a")
    e.scheduler.step()
    assert pending_then == [0]  # the turn in progress schedules the next as it ends
    assert e.lost == [("c", "overflow")]
    assert len(e.scheduler.pending) == 1
    e.scheduler.run_all()
    assert e.got == ["a", "b"]
    assert len(e.ends) == 1
    assert isinstance(e.ends[0], pfrx.BackpressureOverflow)


def test_block_buffering_after_an_inline_delivery_wakes_a_drain_if_none_is_left() -> None:
    # The producer delivers a inline (a virtual-time scheduler: it must not wait); meanwhile
    # the pending drain runs, finds the owner token taken and ends. The drain the producer's
    # b then needs must be scheduled anew, or b waits for good.
    def consumer(value: Any) -> None:
        if value == "a":
            e.scheduler.step()

    e = Entry("block", buffer_size=1, consumer=consumer)
    e.send("a")
    e.send("b")
    assert e.got == ["a"]
    assert len(e.scheduler.pending) == 1
    e.scheduler.run_all()
    assert e.got == ["a", "b"]
    assert e.counts() == (2, 2, 0, 1)


# -- a watermark an adaptive buffer sheds ------------------------------------------------------


def test_a_watermark_shed_by_adaptive_is_no_drop_and_frees_its_place() -> None:
    policy = pf.AdaptivePolicy(high_water=0.5, low_water=0.25, sustain=2)
    e = Entry("adaptive", buffer_size=4, batch_size=1, adaptive=policy)
    mark, later = pfrx.Watermark(1.0), pfrx.Watermark(2.0)
    e.send("a", "b", "c", "d")
    e.scheduler.step()  # a; the first turn at the high-water mark
    e.scheduler.step()  # b; the second: shedding
    assert e.metrics.snapshot().info["bp.adaptive_state"] == "shedding"
    e.send(mark, "e")  # e sheds c: [d, mark, e]
    e.scheduler.step()  # d
    e.send("f")  # f sheds the watermark: no drop, no place held: [e, f]
    e.scheduler.step()  # e; one item left: back to normal
    assert e.metrics.snapshot().info["bp.adaptive_state"] == "normal"
    e.send("g", "h", "i")  # [f, g, h, i]: full
    e.send("j")  # evicts f
    e.scheduler.step()  # g: [h, i, j]
    e.send(later, "k")  # the watermark takes no room: k goes in
    assert e.lost == [("c", "shed"), ("f", "overflow")]
    e.scheduler.run_all()
    assert e.got == ["a", "b", "d", "e", "g", "h", "i", "j", later, "k"]
    assert e.counts() == (11, 9, 2, 1)


def test_a_watermark_from_the_gathering_thread_is_never_kept_back() -> None:
    # A watermark is event-time progress, not an item waiting for room: what was kept goes
    # in first, then the watermark itself, at once (lead, after the mutation run).
    e = Entry("drop_oldest", buffer_size=4)
    e.gate.thread = threading.get_ident()
    mark = pfrx.Watermark(5.0)
    e.send("a", mark)
    assert e.buffered() == 2
    e.gate.thread = None
    e.scheduler.run_all()
    assert e.got == ["a", mark]
