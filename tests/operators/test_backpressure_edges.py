"""Issue 12: ``backpressure`` at its edges, stated exactly: items arriving after ``error`` has
failed, watermarks in the buffer (alone, replaced, delivered inline by a ``block`` producer,
counted out of the room items take), a consumer failing mid-turn, a scheduler that cannot
schedule, and checkpoints (a mismatch, the peak, a restored adaptive streak, restored
watermarks). Everything on a TestScheduler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.checkpoint import CheckpointMismatch
from pfrx.stream import Stream
from pfrx.testing import slow_consumer

ALICE = pfrx.Context("alice", "s1")


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


class Buffered:
    """A Subject through ``backpressure`` (named ``bp``) on a TestScheduler, recording what
    comes out, what is dropped and how it ends."""

    def __init__(self, strategy: str, *, fail_on: Any = None, **options: Any) -> None:
        self.fail_on = fail_on
        self.scheduler = TestScheduler()
        self.metrics = pfrx.StreamMetrics(self.scheduler)
        self.source: Subject[Any] = Subject()
        self.got: list[Any] = []
        self.lost: list[tuple[Any, str]] = []
        self.ends: list[Any] = []
        self.source.pipe(
            pf.backpressure(
                strategy,
                scheduler=self.scheduler,
                metrics=self.metrics,
                on_drop=lambda d: self.lost.append((d.item, d.reason)),
                name="bp",
                **options,
            )
        ).subscribe(self.take, self.ends.append, lambda: self.ends.append("completed"))

    def take(self, value: Any) -> None:
        if self.fail_on is not None and value == self.fail_on:
            raise RuntimeError("consumer bug")
        self.got.append(value)

    def send(self, *values: Any) -> None:
        for value in values:
            self.source.on_next(value)

    def counts(self) -> tuple[int, int, int, int]:
        m = self.metrics.snapshot()
        return (m.received, m.emitted, m.dropped, m.backpressure_events)


# -- after error has failed ------------------------------------------------------------------------


def test_items_arriving_after_an_error_overflow_are_dropped_overflow_without_more_events() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    lost: list[tuple[Any, str]] = []
    got: list[Any] = []
    ends: list[Any] = []

    def source(observer: Any, _: Any = None) -> Disposable:
        for item in range(5):  # all at once, before the subscription can be disposed
            observer.on_next(item)
        return Disposable()

    reactivex.create(source).pipe(
        pf.backpressure(
            "error",
            buffer_size=2,
            scheduler=scheduler,
            metrics=metrics,
            on_drop=lambda d: lost.append((d.item, d.reason)),
        )
    ).subscribe(got.append, ends.append)
    # 0 and 1 are buffered; 2 overflows (the one backpressure event) and fails the operator;
    # 3 and 4 arrive at a failed operator: dropped with the same reason, no further event.
    assert lost == [(2, "overflow"), (3, "overflow"), (4, "overflow")]
    m = metrics.snapshot()
    assert (m.received, m.dropped, m.backpressure_events) == (5, 3, 1)
    scheduler.start()
    assert got == [0, 1]
    assert len(ends) == 1
    assert isinstance(ends[0], pfrx.BackpressureOverflow)


# -- watermarks in the buffer ----------------------------------------------------------------------


def test_a_watermark_alone_in_the_buffer_is_drained() -> None:
    run = Buffered("drop_oldest", buffer_size=4)
    mark = pfrx.Watermark(1.0)
    run.send(mark)
    run.scheduler.advance_to(1.0)
    assert run.got == [mark]
    assert run.counts() == (0, 0, 0, 0)


def test_a_later_watermark_of_the_same_time_replaces_the_waiting_one_itself() -> None:
    run = Buffered("drop_oldest", buffer_size=4)
    first, second = pfrx.Watermark(1), pfrx.Watermark(1.0)
    run.send(first, second)
    run.scheduler.advance_to(1.0)
    assert len(run.got) == 1
    assert run.got[0] is second


def test_a_block_producer_on_a_virtual_scheduler_delivers_watermarks_inline_uncounted() -> None:
    run = Buffered("block", buffer_size=1)
    w1, w2 = pfrx.Watermark(1.0), pfrx.Watermark(2.0)
    run.send(w1, "a")  # a watermark takes no room: "a" fits beside it
    assert run.got == []
    run.send("b")  # full: the producer delivers the oldest (w1, then "a") itself
    assert run.got == [w1, "a"]
    run.send("c")  # full again: it delivers "b"
    assert run.got == [w1, "a", "b"]
    run.send(w2)
    run.scheduler.advance_to(1.0)
    assert run.got == [w1, "a", "b", "c", w2]
    assert run.counts() == (3, 3, 0, 2)  # b and c each waited once


def test_watermarks_delivered_by_a_turn_stop_counting_against_the_room_of_items() -> None:
    run = Buffered("drop_newest", buffer_size=2)
    wx, wy = pfrx.Watermark(1.0, "x"), pfrx.Watermark(1.0, "y")
    run.send(wx, wy, "a")
    run.scheduler.advance_to(1.0)
    assert run.got == [wx, wy, "a"]
    run.send("b", "c", "d")  # two items fill it: "d" is the newest, dropped
    run.scheduler.advance_to(2.0)
    wx2 = pfrx.Watermark(2.0, "x")
    run.send(wx2, "e", "f", "g")  # the watermark takes no room: "e" and "f" fit, "g" not
    run.scheduler.advance_to(3.0)
    assert run.got == [wx, wy, "a", "b", "c", wx2, "e", "f"]
    assert run.lost == [("d", "overflow"), ("g", "overflow")]
    assert run.counts() == (7, 5, 2, 2)


def test_a_consumer_failing_mid_turn_among_watermarks_counts_what_it_took(
    lines: list[str],
) -> None:
    run = Buffered("drop_oldest", buffer_size=8, fail_on="b")
    mark = pfrx.Watermark(1.0)
    run.send(mark, "a", "b", "c")
    run.scheduler.advance_to(1.0)
    assert run.got == [mark, "a"]
    assert run.lost == [("c", "downstream_error")]
    m = run.metrics.snapshot()
    assert (m.received, m.emitted, m.dropped, m.errors) == (3, 1, 1, 1)
    assert "bp: downstream on_next raised; the subscription is closed" in lines


# -- a scheduler that cannot schedule --------------------------------------------------------------


class _Refusing(TestScheduler):
    def schedule(self, action: Any, state: Any = None) -> Any:
        raise RuntimeError("no more threads")


def test_a_drain_that_cannot_be_scheduled_drops_with_reason_scheduler_error(
    lines: list[str],
) -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    lost: list[tuple[Any, str]] = []
    source: Subject[Any] = Subject()
    source.pipe(
        pf.backpressure(
            "drop_oldest",
            buffer_size=4,
            scheduler=_Refusing(),
            metrics=metrics,
            on_drop=lambda d: lost.append((d.item, d.reason)),
            name="bp",
        )
    ).subscribe(lambda v: None, lambda e: None)
    source.on_next("a")  # the operator closes and lets go of its source
    source.on_next("b")
    assert lost == [("a", "scheduler_error")]
    m = metrics.snapshot()
    assert (m.received, m.dropped, m.errors) == (1, 1, 1)
    assert "bp: could not schedule the drain" in lines


# -- checkpoints -----------------------------------------------------------------------------------


def test_a_checkpoint_of_another_strategy_fails_the_restored_stream_naming_both() -> None:
    scheduler = TestScheduler()
    first = Stream(pf.backpressure("drop_oldest", buffer_size=10), scheduler=scheduler)
    checkpoint = first.checkpoint()
    second = Stream(
        pf.backpressure("drop_newest", buffer_size=10), scheduler=scheduler, restore=checkpoint
    )
    assert second.state == "failed"
    assert isinstance(second.error, CheckpointMismatch)
    assert second.send("a", ALICE) == pfrx.SendResult(False, "failed")
    message = str(second.error)
    assert message.startswith(
        "backpressure('drop_newest', capacity 10) cannot restore "
        "{'strategy': 'drop_oldest', 'capacity': 10, "
    )
    prefix = "backpressure('drop_newest', capacity 10) cannot restore "
    assert len(message) == len(prefix) + 80  # the state, cut at 80 characters


def test_a_restored_buffer_keeps_the_recorded_peak() -> None:
    scheduler = TestScheduler()

    def pipeline() -> tuple[Any, ...]:
        return (
            pf.backpressure("drop_oldest", buffer_size=10, batch_size=3),
            slow_consumer(1, scheduler),
        )

    first = Stream(*pipeline(), scheduler=scheduler)
    assert all(r.ok for r in first.send_many(range(5), ALICE))  # peak 5
    scheduler.advance_to(2.5)  # one turn (t=0..3) took 0-2: 3 and 4 wait
    checkpoint = first.checkpoint()
    second = Stream(*pipeline(), scheduler=TestScheduler(), restore=checkpoint)
    m = second.metrics()
    assert (m.buffer_utilization, m.peak_buffer_utilization) == (0.2, 0.5)


def test_a_restored_adaptive_streak_is_not_reset_by_an_empty_buffer(lines: list[str]) -> None:
    def pipeline() -> Any:
        policy = pf.AdaptivePolicy(sustain=2)
        return pf.backpressure(
            "adaptive", buffer_size=10, batch_size=10, adaptive=policy, name="bp"
        )

    first_scheduler = TestScheduler()
    first = Stream(pipeline(), scheduler=first_scheduler)
    assert all(r.ok for r in first.send_many(range(8), ALICE))
    first_scheduler.advance_to(1.0)  # one turn started with 8 (>= 8): streak 1; all delivered
    checkpoint = first.checkpoint()

    scheduler = TestScheduler()
    second = Stream(pipeline(), scheduler=scheduler, restore=checkpoint)
    scheduler.advance_to(1.0)  # nothing restored to deliver: no turn
    assert all(r.ok for r in second.send_many(range(8, 16), ALICE))
    scheduler.advance_to(2.0)  # the second turn in a row starting with 8: shedding
    switches = [line for line in lines if "adaptive" in line]
    assert switches == [
        "bp: adaptive state normal -> shedding (2 turn(s) started >= high-water mark)",
        "bp: adaptive state shedding -> normal (0 buffered <= low-water mark)",
    ]


def test_restored_watermarks_take_no_room_in_the_restored_buffer() -> None:
    def pipeline() -> Any:
        return pf.backpressure("drop_newest", buffer_size=2)

    first = Stream(pipeline(), scheduler=TestScheduler())
    assert first.send_watermark(1.0, source="x").ok
    assert first.send("a", ALICE).ok
    checkpoint = first.checkpoint()  # holds the watermark and "a"

    scheduler = TestScheduler()
    second = Stream(pipeline(), scheduler=scheduler, restore=checkpoint)
    got: list[Any] = []
    dropped: list[tuple[Any, str]] = []
    second.results.subscribe(lambda env: got.append(env.event))
    second.dropped.subscribe(lambda d: dropped.append((d.item.event, d.reason)))
    assert second.send("b", ALICE).ok  # "a" and "b": full
    assert second.send("c", ALICE).ok  # the newest, dropped
    scheduler.advance_to(1.0)
    assert got == ["a", "b"]
    assert dropped == [("c", "overflow")]


def test_restoring_only_watermarks_receives_nothing_so_the_input_rate_starts_later() -> None:
    first_scheduler = TestScheduler()
    first = Stream(
        pf.backpressure("drop_oldest", buffer_size=10, metrics=pfrx.StreamMetrics(first_scheduler)),
        scheduler=first_scheduler,
    )
    assert first.send_watermark(1.0).ok
    checkpoint = first.checkpoint()  # holds the watermark only

    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)  # 10 s rate interval: 1 s buckets
    second = Stream(
        pf.backpressure("drop_oldest", buffer_size=10, metrics=metrics),
        scheduler=scheduler,
        restore=checkpoint,
    )
    scheduler.advance_to(50.0)
    assert all(r.ok for r in second.send_many(range(10), ALICE))
    m = metrics.snapshot()
    # Ten items in the first second anything was received (one bucket wide): 10 per second.
    assert (m.received, m.input_rate) == (10, 10.0)


def test_the_defaults_are_a_buffer_of_10_000_and_turns_of_100() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    source: Subject[Any] = Subject()
    got: list[Any] = []
    source.pipe(pf.backpressure(metrics=metrics)).subscribe(got.append, scheduler=scheduler)
    for item in range(250):
        source.on_next(item)
    assert metrics.snapshot().buffer_utilization == 250 / 10_000
    scheduler.advance_to(1.0)
    assert got == list(range(250))
    drain = metrics.snapshot().info["backpressure.drain"]
    assert (drain["turns"], drain["max_batch"], drain["last_batch"]) == (3, 100, 50)


def test_latest_keeps_one_pending_item_whatever_the_buffer_size() -> None:
    run = Buffered("latest", buffer_size=5)
    run.send("a", "b", "c")
    assert run.metrics.snapshot().buffer_utilization == 1.0  # one item of a capacity of one
    run.scheduler.advance_to(1.0)
    assert run.got == ["c"]
    assert run.lost == [("a", "overwritten"), ("b", "overwritten")]
    assert run.counts() == (3, 1, 2, 2)
