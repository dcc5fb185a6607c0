"""process stated exactly where the suite left room (issue 12, helper kwin): which clock
times an item and which places it in the metrics, the default name, the slow-event warning
word for word, the timeout boundary, the context handed to the processor, and outcomes that
are subclasses of Ok/Err."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

ALICE = pfrx.Context("alice", "s1")


class Sleeper:
    """Each event is a number of seconds the processor spends (on ``clock``'s virtual time);
    'boom' spends 2 s then raises. The effect names the context's user, so a processor
    handed another context shows it."""

    def __init__(self, clock: TestScheduler) -> None:
        self.clock = clock

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
        if event == "boom":
            self.clock.sleep(2.0)
            raise RuntimeError("went off")
        self.clock.sleep(float(event))
        return pfrx.Ok(state + 1, (f"{context.user_id}:{event}",))


def at(scheduler: TestScheduler, seconds: float) -> TestScheduler:
    scheduler.advance_to(seconds)
    return scheduler


class Warnings:
    def __enter__(self) -> list[str]:
        self.lines: list[str] = []
        logger.enable("pfrx")
        self.handler = logger.add(self.lines.append, level="WARNING", format="{message}")
        return self.lines

    def __exit__(self, *exc: object) -> None:
        logger.remove(self.handler)
        logger.disable("pfrx")


def test_the_default_operator_name_is_process() -> None:
    lost: list[pfrx.Dropped] = []
    reactivex.from_iterable(["stray"]).pipe(
        pf.process(Sleeper(TestScheduler()), on_drop=lost.append)
    ).subscribe()
    assert [(d.reason, d.operator) for d in lost] == [("not_an_envelope", "process")]


def test_an_initial_state_that_takes_arguments_is_refused_with_its_call_named() -> None:
    class Seeded:
        def initial_state(self, seed: int) -> int:
            return seed

        def process_event(self, event: Any, context: Any, state: Any) -> Any:
            return pfrx.Ok(state)

    with pytest.raises(TypeError) as caught:
        pf.process(Seeded())  # type: ignore[arg-type]
    assert str(caught.value).startswith("process calls processor.initial_state(); ")


def test_drops_are_stamped_by_the_operators_own_scheduler() -> None:
    own = at(TestScheduler(), 7.0)
    lost: list[pfrx.Dropped] = []
    # subscribed without a scheduler: the operator's own one stamps the drop
    reactivex.from_iterable(["stray"]).pipe(
        pf.process(Sleeper(own), on_drop=lost.append, scheduler=own)
    ).subscribe()
    assert [(d.reason, d.timestamp) for d in lost] == [("not_an_envelope", 7.0)]


def test_drops_are_stamped_by_the_subscribe_scheduler_when_the_operator_has_none() -> None:
    sub = at(TestScheduler(), 4.0)
    lost: list[pfrx.Dropped] = []
    reactivex.from_iterable(["stray"]).pipe(
        pf.process(Sleeper(sub), on_drop=lost.append)
    ).subscribe(scheduler=sub)
    sub.advance_by(1.0)
    assert [(d.reason, d.timestamp) for d in lost] == [("not_an_envelope", 4.0)]


def test_the_operators_scheduler_times_items_even_when_the_metrics_keep_another_clock() -> None:
    own = at(TestScheduler(), 1000.0)
    metrics_clock = at(TestScheduler(), 5.0)
    metrics = pfrx.StreamMetrics(metrics_clock)
    out: list[str] = []
    reactivex.from_iterable([pfrx.Envelope("3", ALICE, 0.0)]).pipe(
        pf.process(Sleeper(own), metrics=metrics, scheduler=own)
    ).subscribe(lambda e: out.append(e.event))
    snap = metrics.snapshot()
    assert out == ["alice:3"]
    assert (snap.avg_processing_time, snap.max_processing_time) == (3.0, 3.0)
    # the item is placed in the metrics' own window (their clock reads 5), so it counts there
    assert snap.recent_avg_processing_time == 3.0


def test_without_a_scheduler_the_metrics_clock_times_items() -> None:
    clock = at(TestScheduler(), 20.0)
    metrics = pfrx.StreamMetrics(clock)
    reactivex.from_iterable([pfrx.Envelope("2.5", ALICE, 0.0)]).pipe(
        pf.process(Sleeper(clock), metrics=metrics)
    ).subscribe()
    snap = metrics.snapshot()
    assert (snap.avg_processing_time, snap.max_processing_time) == (2.5, 2.5)
    assert snap.recent_avg_processing_time == 2.5
    assert snap.slow_events == 0


def test_metrics_alone_time_every_item() -> None:
    clock = TestScheduler()
    metrics = pfrx.StreamMetrics(clock)
    items = [pfrx.Envelope(s, ALICE, 0.0) for s in ("1", "3", "boom")]
    lost: list[pfrx.Dropped] = []
    reactivex.from_iterable(items).pipe(
        pf.process(Sleeper(clock), metrics=metrics, on_drop=lost.append, scheduler=clock)
    ).subscribe()
    snap = metrics.snapshot()
    # 1 s, 3 s and the 2 s spent before raising: all timed, none slow (no timeout)
    assert (snap.avg_processing_time, snap.max_processing_time) == (2.0, 3.0)
    assert snap.slow_events == 0
    assert [(d.reason, d.timestamp) for d in lost] == [("went off", 6.0)]


def test_a_timeout_alone_warns_of_a_slow_item_word_for_word() -> None:
    clock = TestScheduler()
    out: list[str] = []
    with Warnings() as lines:
        reactivex.from_iterable(
            [pfrx.Envelope("0.5", ALICE, 0.0), pfrx.Envelope("3", ALICE, 0.0)]
        ).pipe(pf.process(Sleeper(clock), processing_timeout=1.0, scheduler=clock)).subscribe(
            lambda e: out.append(e.event)
        )
    assert out == ["alice:0.5", "alice:3"]
    assert lines == ["process: event of user alice took 3.000000s (timeout 1.0s)\n"]


def test_an_item_that_raises_after_the_timeout_is_warned_of_and_dropped() -> None:
    clock = TestScheduler()
    lost: list[pfrx.Dropped] = []
    with Warnings() as lines:
        reactivex.from_iterable([pfrx.Envelope("boom", ALICE, 0.0)]).pipe(
            pf.process(
                Sleeper(clock),
                processing_timeout=1.5,
                on_drop=lost.append,
                name="p",
                scheduler=clock,
            )
        ).subscribe()
    assert lines == ["p: event of user alice took 2.000000s (timeout 1.5s)\n"]
    assert [(d.reason, d.operator) for d in lost] == [("went off", "p")]


def test_an_item_taking_exactly_the_timeout_is_not_slow() -> None:
    clock = TestScheduler()
    metrics = pfrx.StreamMetrics(clock)
    with Warnings() as lines:
        reactivex.from_iterable(
            [pfrx.Envelope("2", ALICE, 0.0), pfrx.Envelope("2.25", ALICE, 0.0)]
        ).pipe(pf.process(Sleeper(clock), processing_timeout=2.0, metrics=metrics)).subscribe()
    assert metrics.snapshot().slow_events == 1
    assert lines == ["process: event of user alice took 2.250000s (timeout 2.0s)\n"]


def test_the_processor_receives_the_items_context() -> None:
    bob = pfrx.Context("bob", "s2")
    seen: list[tuple[str, pfrx.Context]] = []
    reactivex.from_iterable([pfrx.Envelope("0", bob, 1.0), pfrx.Envelope("0", ALICE, 2.0)]).pipe(
        pf.process(Sleeper(TestScheduler()))
    ).subscribe(lambda e: seen.append((e.event, e.context)))
    assert seen == [("bob:0", bob), ("alice:0", ALICE)]


class OkSub(pfrx.Ok):  # type: ignore[type-arg]
    __slots__ = ()


class ErrSub(pfrx.Err):  # type: ignore[type-arg]
    __slots__ = ()


def test_subclasses_of_ok_and_err_are_not_outcomes() -> None:
    class Odd:
        def initial_state(self) -> int:
            return 0

        def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
            if event == "ok":
                return OkSub(state + 10, ("never",))
            if event == "err":
                return ErrSub("custom", state + 100)
            return pfrx.Ok(state + 1, (state + 1,))

    lost: list[pfrx.Dropped] = []
    out: list[Any] = []
    items = [pfrx.Envelope(e, ALICE, 0.0) for e in ("ok", "err", "plain")]
    reactivex.from_iterable(items).pipe(pf.process(Odd(), on_drop=lost.append)).subscribe(
        lambda e: out.append(e.event)
    )
    assert [(d.item, d.reason) for d in lost] == [
        (items[0], "processor returned OkSub, not Ok or Err"),
        (items[1], "processor returned ErrSub, not Ok or Err"),
    ]
    assert out == [1]  # neither subclass changed the state


class CountingClock(TestScheduler):
    """A virtual clock that counts how often it is read (pfrx reads a virtual clock through
    its ``clock``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    @property
    def clock(self) -> Any:
        self.reads += 1
        return self._clock

    @clock.setter
    def clock(self, value: Any) -> None:
        self._clock = value


class Silent:
    """Absorbs every event into its state (no effects), noting how often the clock had been
    read when it was called."""

    def __init__(self, clock: CountingClock) -> None:
        self.clock = clock
        self.reads_at_call: list[int] = []

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
        self.reads_at_call.append(self.clock.reads)
        return pfrx.Ok(state + 1)


def test_an_untimed_process_reads_no_clock() -> None:
    clock = CountingClock()
    processor = Silent(clock)
    reactivex.from_iterable([pfrx.Envelope("a", ALICE, 0.0), pfrx.Envelope("b", ALICE, 0.0)]).pipe(
        pf.process(processor, scheduler=clock)
    ).subscribe()
    # (building the clock function reads it once, to learn its kind; no item reads it)
    first, second = processor.reads_at_call
    assert second == first and clock.reads == first


def test_one_reading_ends_the_timing_and_places_it_in_the_metrics_sharing_the_clock() -> None:
    clock = CountingClock()
    metrics = pfrx.StreamMetrics(clock)
    processor = Silent(clock)
    reactivex.from_iterable([pfrx.Envelope("a", ALICE, 0.0)]).pipe(
        pf.process(processor, scheduler=clock, metrics=metrics)
    ).subscribe()
    [before_return] = processor.reads_at_call
    assert clock.reads - before_return == 1
