"""Issue 12: the adaptive strategy's machine stated exactly through the operator, on a
TestScheduler: each switch's log line (what, old -> new, and why, with the numbers in it), the
drops it sheds, the streak that makes a backlog "sustained", the marks at their exact values,
both batch-size thresholds at their exact boundary, and a restored machine.

Each expected timeline is worked out by hand in the test from the module's documented rules:
high-water mark ``ceil(high_water * buffer_size)``, low-water mark
``floor(low_water * buffer_size)`` (at most high - 1), a turn takes at most ``batch_size``
items; the consumer here works ``work(item)`` virtual seconds on each item."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream
from pfrx.testing import slow_consumer

ALICE = pfrx.Context("alice", "s1")


@pytest.fixture
def lines() -> Iterator[list[str]]:
    caught: list[str] = []
    logger.enable("pfrx")
    sink = logger.add(
        lambda message: caught.append(message.record["message"]),
        level="INFO",
        filter=lambda record: "adaptive" in record["message"],
    )
    try:
        yield caught
    finally:
        logger.remove(sink)
        logger.disable("pfrx")


def _working(scheduler: TestScheduler, work: Callable[[Any], float]) -> Any:
    """A consumer that works ``work(item)`` virtual seconds on each item (after taking it)."""

    def take(item: Any) -> None:
        seconds = work(item)
        if seconds:
            scheduler.sleep(seconds)

    return ops.do_action(take)


class Run:
    """``backpressure("adaptive", name="bp")`` between a scheduled source and a consumer."""

    def __init__(
        self,
        arrivals: dict[float, list[Any]],
        *,
        buffer_size: int,
        batch_size: int,
        policy: pf.AdaptivePolicy,
        work: Callable[[Any], float] = lambda item: 0.0,
    ) -> None:
        self.scheduler = TestScheduler()
        self.metrics = pfrx.StreamMetrics(self.scheduler)
        self.got: list[Any] = []
        self.lost: list[tuple[Any, str]] = []
        scheduler = self.scheduler

        def source(observer: Any, _: Any = None) -> Disposable:
            for at, items in arrivals.items():
                for item in items:
                    scheduler.schedule_absolute(at, lambda *_, item=item: observer.on_next(item))
            return Disposable()

        reactivex.create(source).pipe(
            pf.backpressure(
                "adaptive",
                buffer_size=buffer_size,
                batch_size=batch_size,
                adaptive=policy,
                metrics=self.metrics,
                on_drop=lambda d: self.lost.append((d.item, d.reason)),
                name="bp",
            ),
            _working(scheduler, work),
        ).subscribe(self.got.append, scheduler=scheduler)
        scheduler.start()

    def info(self, key: str) -> Any:
        return self.metrics.snapshot().info[f"bp.{key}"]


# -- the load state --------------------------------------------------------------------------------


def test_a_sustained_backlog_sheds_the_oldest_and_the_turn_end_stops_it(lines: list[str]) -> None:
    # buffer 10: high mark 8, low mark 5; one turn at or above 8 is sustained enough.
    policy = pf.AdaptivePolicy(sustain=1, min_batch_size=2)
    run = Run(
        {0.0: list(range(8)), 1.0: [8]},
        buffer_size=10,
        batch_size=2,
        policy=policy,
        work=lambda item: 1.0,
    )
    # t=0: the turn starts with 8 (>= 8): shedding; it delivers 0 and 1 (until t=2): 6 left.
    # Item 8 (due at t=1) arrives at t=2 while shedding with 6 > 5 buffered: item 2 is shed.
    # t=2: the turn starts with 6 (stays shedding), delivers 3 and 4, ends with 4 <= 5: normal.
    assert lines == [
        "bp: adaptive state normal -> shedding (1 turn(s) started >= high-water mark)",
        "bp: adaptive state shedding -> normal (4 buffered <= low-water mark)",
    ]
    assert run.lost == [(2, "shed")]
    assert run.got == [0, 1, 3, 4, 5, 6, 7, 8]
    assert run.info("adaptive_state") == "normal"
    assert run.info("adaptive_switches") == 2
    m = run.metrics.snapshot()
    assert (m.backpressure_events, dict(m.drops_by_reason)) == (0, {"shed": 1})


def test_an_arrival_at_the_low_mark_while_shedding_stops_it_without_shedding(
    lines: list[str],
) -> None:
    scheduler = TestScheduler()
    source: Subject[int] = Subject()
    got: list[int] = []
    lost: list[tuple[Any, str]] = []

    def feed_back(item: int) -> None:
        got.append(item)
        if item == 0:
            source.on_next(100)  # arrives while the turn delivers: 4 are buffered

    source.pipe(
        pf.backpressure(
            "adaptive",
            buffer_size=10,
            batch_size=4,
            adaptive=pf.AdaptivePolicy(sustain=1, min_batch_size=4),
            on_drop=lambda d: lost.append((d.item, d.reason)),
            name="bp",
        )
    ).subscribe(feed_back, scheduler=scheduler)
    for item in range(8):
        source.on_next(item)
    scheduler.advance_to(1.0)
    # The turn starts with 8: shedding; it takes 0-3, leaving 4; item 100 arrives with 4 <= 5
    # buffered: normal again, nothing shed. (A turn's own switches are logged when it ends,
    # the arrival's at once: the order of the two lines is not what this states.)
    assert sorted(lines) == [
        "bp: adaptive state normal -> shedding (1 turn(s) started >= high-water mark)",
        "bp: adaptive state shedding -> normal (4 buffered <= low-water mark)",
    ]
    assert lost == []
    assert got == [0, 1, 2, 3, 4, 5, 6, 7, 100]


def test_a_turn_below_the_high_mark_restarts_the_streak(lines: list[str]) -> None:
    # sustain 2: turns start with 8 (streak 1), then 4 (the streak restarts), then 8 (streak 1
    # again): never two in a row, so never shedding.
    run = Run(
        {0.0: list(range(8)), 10.0: list(range(8, 16))},
        buffer_size=10,
        batch_size=4,
        policy=pf.AdaptivePolicy(sustain=2, min_batch_size=4),
        work=lambda item: 1.0,
    )
    assert lines == []
    assert run.lost == []
    assert run.got == list(range(16))
    assert run.info("adaptive_switches") == 0


def test_after_a_shedding_episode_a_backlog_must_be_sustained_again(lines: list[str]) -> None:
    run = Run(
        {0.0: list(range(10)), 2.0: list(range(10, 14)), 10.0: list(range(14, 20))},
        buffer_size=10,
        batch_size=4,
        policy=pf.AdaptivePolicy(sustain=2, min_batch_size=4),
        work=lambda item: 1.0,
    )
    # t=0: starts with 10 (streak 1), delivers 0-3 until t=4, leaves 6; 10-13 arrive: 10.
    # t=4: starts with 10 (streak 2): shedding; delivers 4-7 until t=8, leaves 6.
    # t=8: starts with 6, delivers 8-11 until t=12, leaves 2 <= 5: normal; 14-19 arrive: 8.
    # t=12: starts with 8: the first turn of a new streak, not shedding again.
    assert lines == [
        "bp: adaptive state normal -> shedding (2 turn(s) started >= high-water mark)",
        "bp: adaptive state shedding -> normal (2 buffered <= low-water mark)",
    ]
    assert run.lost == []
    assert run.got == list(range(20))
    assert run.metrics.snapshot().info["bp.drain"]["turns"] == 5


def test_marks_a_hair_apart_keep_the_low_mark_below_the_high_mark(lines: list[str]) -> None:
    # buffer 2: high mark ceil(0.5 * 2) = 1; floor(0.4999999999 * 2) would be 1 as well (the
    # marks are rounded with a 1e-9 tolerance), so the low mark is held at 1 - 1 = 0.
    run = Run(
        {0.0: ["a", "b"]},
        buffer_size=2,
        batch_size=1,
        policy=pf.AdaptivePolicy(high_water=0.5, low_water=0.4999999999, sustain=1),
    )
    # The turn starts with 2: shedding; it leaves 1 (> 0): still shedding; the next leaves 0.
    assert lines == [
        "bp: adaptive state normal -> shedding (1 turn(s) started >= high-water mark)",
        "bp: adaptive state shedding -> normal (0 buffered <= low-water mark)",
    ]
    assert run.got == ["a", "b"]


# -- the batch size --------------------------------------------------------------------------------


def test_the_batch_size_halves_above_slow_and_doubles_at_exactly_half_of_it(
    lines: list[str],
) -> None:
    # slow_item_time 2 s: above 2 s per item halves, at or below 1 s doubles, between keeps.
    run = Run(
        {0.0: [4.0], 10.0: [2.0, 2.0], 20.0: [1.0, 1.0], 30.0: [0.0] * 4},
        buffer_size=10,
        batch_size=4,
        policy=pf.AdaptivePolicy(min_batch_size=1, slow_item_time=2.0),
        work=lambda item: item,  # each item says how long it takes
    )
    # t=0: one item, 4 s: halved. t=10: two items, 2 s each (exactly slow): kept.
    # t=20: two items, 1 s each (exactly half of slow): doubled. t=30: four items in one turn.
    assert lines == [
        "bp: adaptive batch_size 4 -> 2 (4s per item > 2s)",
        "bp: adaptive batch_size 2 -> 4 (1s per item <= 1s)",
    ]
    assert run.info("batch_size") == 4
    assert run.info("adaptive_switches") == 2
    assert run.metrics.snapshot().info["bp.drain"]["turns"] == 4


def test_the_why_of_a_batch_size_change_shows_fractions_of_a_second(lines: list[str]) -> None:
    run = Run(
        {0.0: [0.125], 10.0: [0.0]},
        buffer_size=10,
        batch_size=4,
        policy=pf.AdaptivePolicy(min_batch_size=1, slow_item_time=0.1),
        work=lambda item: item,
    )
    assert lines == [
        "bp: adaptive batch_size 4 -> 2 (0.125s per item > 0.1s)",
        "bp: adaptive batch_size 2 -> 4 (0s per item <= 0.05s)",
    ]
    assert run.got == [0.125, 0.0]


# -- a restored machine ----------------------------------------------------------------------------


def _pipeline(policy: pf.AdaptivePolicy, scheduler: TestScheduler) -> tuple[Any, ...]:
    return (
        pf.backpressure("adaptive", buffer_size=10, batch_size=2, adaptive=policy, name="bp"),
        slow_consumer(1, scheduler),
    )


def test_a_restored_shedding_machine_at_its_low_mark_turns_normal_at_the_first_turn(
    lines: list[str],
) -> None:
    first_scheduler = TestScheduler()
    first = Stream(
        *_pipeline(pf.AdaptivePolicy(sustain=1, min_batch_size=2), first_scheduler),
        scheduler=first_scheduler,
        name="first",
    )
    assert all(r.ok for r in first.send_many(range(8), ALICE))
    # One turn (t=0..2): it starts with 8 >= 8, sheds from then on, delivers 2, leaves 6 > 5.
    first_scheduler.advance_to(1.5)
    checkpoint = first.checkpoint()
    assert lines == ["bp: adaptive state normal -> shedding (1 turn(s) started >= high-water mark)"]
    lines.clear()

    # Restored with a low-water mark of 6 (high 9): the first turn starts with exactly 6.
    scheduler = TestScheduler()
    policy = pf.AdaptivePolicy(high_water=0.9, low_water=0.6, sustain=1, min_batch_size=2)
    second = Stream(*_pipeline(policy, scheduler), scheduler=scheduler, restore=checkpoint)
    got: list[Any] = []
    second.results.subscribe(lambda env: got.append(env.event))
    scheduler.advance_to(1.0)
    assert lines == ["bp: adaptive state shedding -> normal (6 buffered <= low-water mark)"]
    scheduler.advance_to(100.0)
    assert got == [2, 3, 4, 5, 6, 7]
    assert lines == ["bp: adaptive state shedding -> normal (6 buffered <= low-water mark)"]
