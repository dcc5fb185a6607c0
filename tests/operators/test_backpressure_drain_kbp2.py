"""backpressure's drain stated exactly (issue 12): the size of each turn and what the
metrics say of it, the end of the stream (an upstream end after an overflow, a dispose
mid-turn, one drain for a completion), a downstream that takes lists, and a batch the
buffer breaks on."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex.disposable import Disposable
from reactivex.scheduler import EventLoopScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import BatchBroken, Gate, gathering_into, subscribe_with_batches
from pfrx.testing import slow_consumer

from ._drain_kit_kbp2 import Manual, Recorder, bounded


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    lines: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(
        lambda m: lines.append(m.record["message"]), level="WARNING", format="{message}"
    )
    try:
        yield lines
    finally:
        logger.remove(handler)
        logger.disable("pfrx")


# -- the turns ---------------------------------------------------------------------------------


def test_each_turn_takes_at_most_batch_size_items_and_the_metrics_say_so() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    got: list[int] = []
    subject.pipe(
        pf.backpressure("drop_oldest", buffer_size=10, batch_size=3, metrics=metrics)
    ).subscribe(got.append, scheduler=scheduler)
    for i in range(7):
        subject.on_next(i)
    scheduler.advance_by(1.0)
    assert got == list(range(7))
    assert metrics.snapshot().info["backpressure.drain"] == {
        "turns": 3,
        "items": 7,
        "last_batch": 1,
        "max_batch": 3,
        "mean_batch": 7 / 3,
        "peak_buffered": 7,
    }


def test_an_adaptive_turn_is_timed_from_its_own_start() -> None:
    # Delivery takes no virtual time: each turn took 0 s, however late the clock reads.
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    got: list[int] = []
    policy = pf.AdaptivePolicy(min_batch_size=1, slow_item_time=1.0)
    subject.pipe(
        pf.backpressure("adaptive", buffer_size=10, batch_size=4, adaptive=policy, metrics=metrics)
    ).subscribe(got.append, scheduler=scheduler)
    for i in range(8):
        subject.on_next(i)
    scheduler.advance_by(1.0)
    assert got == list(range(8))
    info = metrics.snapshot().info
    assert info["backpressure.batch_size"] == 4  # never slow: never halved
    assert info["backpressure.adaptive_switches"] == 0
    assert info["backpressure.drain"]["turns"] == 2


def test_an_adaptive_turn_is_timed_by_the_scheduler_clock() -> None:
    # The consumer takes 0.25 s of virtual time per item, slow_item_time is 0.1 s: every
    # turn is slow, so the batch halves from 4 to the floor (1), turn by turn.
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    got: list[int] = []
    policy = pf.AdaptivePolicy(min_batch_size=1, slow_item_time=0.1)
    subject.pipe(
        pf.backpressure("adaptive", buffer_size=10, batch_size=4, adaptive=policy, metrics=metrics),
        slow_consumer(0.25, scheduler),
    ).subscribe(got.append, scheduler=scheduler)
    for i in range(8):
        subject.on_next(i)
    scheduler.advance_by(10.0)
    assert got == list(range(8))
    info = metrics.snapshot().info
    assert info["backpressure.batch_size"] == 1
    assert info["backpressure.adaptive_switches"] == 2  # 4 -> 2 -> 1
    assert info["backpressure.drain"]["turns"] == 4  # of 4, 2, 1 and 1 items


def test_a_turn_due_after_dispose_returns_at_once_and_changes_nothing() -> None:
    sched = Manual()
    metrics = pfrx.StreamMetrics()
    subject: Subject[int] = Subject()
    got: list[int] = []
    lost: list[pfrx.Dropped] = []
    policy = pf.AdaptivePolicy(high_water=0.8, low_water=0.5, sustain=1, min_batch_size=2)
    subscription = subject.pipe(
        pf.backpressure(
            "adaptive",
            buffer_size=10,
            batch_size=2,
            adaptive=policy,
            metrics=metrics,
            on_drop=lost.append,
            scheduler=sched,
        )
    ).subscribe(got.append)
    for i in range(9):
        subject.on_next(i)
    assert sched.run_one()  # 9 buffered >= 8: shedding; the turn delivers 0 and 1
    assert got == [0, 1]
    assert metrics.snapshot().info["backpressure.adaptive_state"] == "shedding"
    assert len(sched.pending) == 1
    subscription.dispose()
    assert [d.item for d in lost] == list(range(2, 9))
    assert {d.reason for d in lost} == {"disposed"}
    bounded(sched.run_one)  # the turn due now finds the buffer closed
    assert got == [0, 1]
    info = metrics.snapshot().info
    assert info["backpressure.adaptive_state"] == "shedding"  # no turn after the dispose
    assert info["backpressure.adaptive_switches"] == 1
    assert info["backpressure.drain"]["turns"] == 1
    assert sched.pending == []


def runs(frame: FrameType, method: str) -> bool:
    """Whether ``frame`` runs the buffer's ``method`` (``_Run.<method>``), also under
    mutmut, whose trampolines run it as ``xǁ_Runǁ<method>__mutmut_<n>``."""
    code = frame.f_code
    return code.co_filename.endswith("_backpressure.py") and (
        code.co_name == method or code.co_name.startswith(f"xǁ_Runǁ{method}__mutmut_")
    )


# -- the end of the stream ------------------------------------------------------------------------


def one_two_then(end: str) -> reactivex.Observable[int]:
    """1 and 2 at subscribe, then an error or the completion, before the subscription
    is even handed back (so the overflow's dispose of upstream cannot stop them)."""

    def subscribe(observer: Any, _: Any = None) -> Disposable:
        observer.on_next(1)
        observer.on_next(2)
        if end == "error":
            observer.on_error(ValueError("boom"))
        else:
            observer.on_completed()
        return Disposable()

    return reactivex.create(subscribe)


@pytest.mark.parametrize("end", ["error", "completed"])
def test_an_upstream_end_after_an_overflow_is_not_delivered(
    end: str, warnings_logged: list[str]
) -> None:
    scheduler = TestScheduler()
    rec = Recorder()
    lost: list[pfrx.Dropped] = []
    one_two_then(end).pipe(
        pf.backpressure("error", buffer_size=1, on_drop=lost.append, name="valve")
    ).subscribe(rec.on_next, rec.on_error, rec.on_completed, scheduler=scheduler)
    scheduler.advance_by(1.0)
    assert rec.items == [1]
    assert rec.ends == ["error:BackpressureOverflow"]  # the overflow, not the later end
    assert [(d.item, d.reason) for d in lost] == [(2, "overflow")]
    if end == "error":  # an upstream error is never silent: it is logged
        assert warnings_logged == [
            "valve: buffer full (1 items), failing",
            "valve: upstream error after overflow: ValueError('boom')",
        ]
    else:
        assert warnings_logged == ["valve: buffer full (1 items), failing"]


def test_a_completion_with_a_drain_due_schedules_no_second_drain() -> None:
    sched, rec = Manual(), Recorder()
    subject: Subject[str] = Subject()
    subject.pipe(pf.backpressure("block", scheduler=sched)).subscribe(
        rec.on_next, rec.on_error, rec.on_completed
    )
    subject.on_next("a")
    subject.on_next("b")
    subject.on_completed()
    assert len(sched.pending) == 1
    sched.run_all()
    assert rec.items == ["a", "b"]
    assert rec.ends == ["completed"]


def test_a_dispose_from_downstream_mid_turn_ends_the_subscription_without_a_completion() -> None:
    # A plain observer (no RxPY guard): whatever the operator calls reaches it.
    scheduler = TestScheduler()
    rec = Recorder()
    lost: list[pfrx.Dropped] = []
    observable = reactivex.from_iterable([1, 2, 3]).pipe(
        pf.backpressure("drop_oldest", on_drop=lost.append)
    )
    held: dict[str, Any] = {}
    rec.hooks[1] = lambda: held["subscription"].dispose()
    held["subscription"] = observable._subscribe_core(rec, scheduler)  # type: ignore[arg-type]
    scheduler.advance_by(1.0)  # upstream completed before the turn; the turn delivers 1
    assert rec.items == [1]
    assert rec.ends == []
    assert [(d.item, d.reason) for d in lost] == [(2, "disposed"), (3, "disposed")]


# -- a downstream that takes lists (a stream's boundary) -----------------------------------------


def test_a_list_downstream_that_raises_gets_its_turn_counted_as_nothing_delivered() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    lists: list[list[int]] = []

    def broken(items: list[int]) -> None:
        lists.append(list(items))
        raise RuntimeError("list consumer broke")

    observable = subject.pipe(pf.backpressure("block", metrics=metrics))
    subscribe_with_batches(observable, print, print, lambda: None, scheduler, broken)
    for i in range(3):
        subject.on_next(i)
    scheduler.advance_by(1.0)
    assert lists == [[0, 1, 2]]  # one turn, one list (the list's taker reports its items)
    snap = metrics.snapshot()
    assert "backpressure.drain" not in snap.info
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (3, 0, 0, 1)


def test_a_list_downstream_gets_a_turn_of_two_as_one_list_and_a_turn_of_one_as_an_item() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    items: list[int] = []
    lists: list[list[int]] = []
    observable = subject.pipe(pf.backpressure("block", batch_size=2, on_drop=print))
    subscribe_with_batches(observable, items.append, print, lambda: None, scheduler, lists.append)
    subject.on_next(1)
    scheduler.advance_by(1.0)
    assert (items, lists) == ([1], [])  # a list of one would only cost more
    for i in (2, 3, 4):
        subject.on_next(i)
    scheduler.advance_by(1.0)
    assert (items, lists) == ([1, 4], [[2, 3]])  # turns of batch_size=2, then of one


def test_a_dispose_as_the_drain_hands_its_turn_over_as_a_list_delivers_nothing() -> None:
    # The race: a close lands between the turn taking its items and its handing them over
    # as one list. A trace hook closes exactly there, on the drain's thread.
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    lists: list[list[int]] = []
    lost: list[pfrx.Dropped] = []
    observable = subject.pipe(pf.backpressure("block", metrics=metrics, on_drop=lost.append))
    subscription = subscribe_with_batches(
        observable, print, print, lambda: None, scheduler, lists.append
    )
    for i in range(3):
        subject.on_next(i)
    hits: list[str] = []

    def close_there(frame: FrameType, event: str, _: Any) -> None:
        if event == "call" and runs(frame, "_deliver_batch") and not hits:
            hits.append("_deliver_batch")
            subscription.dispose()

    previous = sys.gettrace()
    sys.settrace(close_there)
    try:
        scheduler.advance_by(1.0)
    finally:
        sys.settrace(previous)
    assert hits == ["_deliver_batch"]
    assert lists == []
    assert [(d.item, d.reason) for d in lost] == [(0, "disposed"), (1, "disposed"), (2, "disposed")]
    snap = metrics.snapshot()
    assert "backpressure.drain" not in snap.info
    assert (snap.received, snap.emitted, snap.dropped) == (3, 0, 3)


# -- a batch handed over whole, that the buffer breaks on ----------------------------------------


class BreaksOnce(pfrx.StreamMetrics):
    """Metrics whose next backpressure event (or error) breaks once armed."""

    armed = ""

    def record_backpressure(self, n: int = 1) -> None:
        if self.armed == "backpressure":
            self.armed = ""
            raise RuntimeError("metrics bug")
        super().record_backpressure(n)

    def record_error(self, n: int = 1) -> None:
        if self.armed == "error":
            self.armed = ""
            raise RuntimeError("metrics bug")
        super().record_error(n)


def batch_fed(
    scheduler: Any, metrics: pfrx.StreamMetrics, lost: list[pfrx.Dropped], **options: Any
) -> tuple[Recorder, Any]:
    """A buffer subscribed inside a stream's batch gate; returns the downstream and the
    batch entry its upstream sees (as a stream's input hands a send_many list over)."""
    rec = Recorder()
    entry: dict[str, Any] = {}

    def subscribe(observer: Any, _: Any = None) -> Disposable:
        entry["observer"] = observer
        return Disposable()

    with gathering_into(Gate()):
        reactivex.create(subscribe).pipe(
            pf.backpressure(metrics=metrics, on_drop=lost.append, scheduler=scheduler, **options)
        ).subscribe(rec.on_next, rec.on_error, rec.on_completed)
    return rec, entry["observer"].on_batch


def test_a_batch_breaking_on_an_item_it_took_reports_only_those_after_it() -> None:
    scheduler = TestScheduler()
    metrics = BreaksOnce(scheduler)
    lost: list[pfrx.Dropped] = []
    rec, on_batch = batch_fed(scheduler, metrics, lost, strategy="drop_oldest", buffer_size=2)
    metrics.armed = "backpressure"
    # 1 and 2 find room; 3 evicts 1 and goes in, then the metrics break on that event
    with pytest.raises(BatchBroken, match="metrics bug"):
        on_batch([1, 2, 3, 4])
    assert [(d.item, d.reason) for d in lost] == [(4, "failed")]  # 3 is held: not lost
    scheduler.advance_by(1.0)
    assert rec.items == [2, 3]
    snap = metrics.snapshot()
    assert snap.backpressure_events == 0  # the one event broke before it was counted
    assert dict(snap.drops_by_reason) == {"failed": 1}


def test_a_batch_breaking_after_every_item_went_in_reports_none_lost() -> None:
    sched = Manual(most=0)  # the drain cannot be scheduled ...
    metrics = BreaksOnce()
    lost: list[pfrx.Dropped] = []
    _, on_batch = batch_fed(sched, metrics, lost, strategy="block", buffer_size=4)
    metrics.armed = "error"  # ... and counting that failure breaks too
    with pytest.raises(BatchBroken, match=r"^metrics bug$"):
        on_batch([1, 2])
    assert lost == []  # both went in: none is reported lost by the batch


# -- may a producer wait? --------------------------------------------------------------------------


class StartOnly:
    """What an event loop's thread factory must return: something with ``start``."""

    def __init__(self, target: Any) -> None:
        self._runner = threading.Thread(target=target, daemon=True)

    def start(self) -> None:
        self._runner.start()


class WatchedLoop(EventLoopScheduler):
    """An event loop (on a `StartOnly` thread) that tells when ``producer`` reads its clock."""

    def __init__(self) -> None:
        super().__init__(thread_factory=StartOnly)
        self.producer: int | None = None
        self.producer_read_clock = threading.Event()

    @property
    def now(self) -> Any:
        if threading.get_ident() == self.producer:
            self.producer_read_clock.set()
        return super().now


def test_a_producer_waits_for_an_event_loop_whose_thread_shows_no_ident() -> None:
    loop = WatchedLoop()
    try:
        # The loop is busy until the producer waits (it reads the clock just before).
        loop.schedule(lambda *_: loop.producer_read_clock.wait(5.0))
        subject: Subject[str] = Subject()
        got: list[str] = []
        done = threading.Event()
        subject.pipe(
            pf.backpressure("block", buffer_size=1, timeout=5.0, scheduler=loop)
        ).subscribe(got.append, on_completed=done.set)
        subject.on_next("a")  # the drain is due, behind the busy action
        loop.producer = threading.get_ident()
        subject.on_next("b")  # full, nothing draining: this thread is not the loop's, it waits
        subject.on_completed()
        assert done.wait(5.0)
        assert got == ["a", "b"]
    finally:
        loop.dispose()


def test_an_item_racing_the_completion_in_finds_the_drain_already_due() -> None:
    # The race: a producer already inside the buffer's entry when another thread completes
    # upstream. A trace hook holds the producer there until the completion is in.
    sched, rec = Manual(), Recorder()
    subject: Subject[str] = Subject()
    subject.pipe(pf.backpressure("block", scheduler=sched)).subscribe(
        rec.on_next, rec.on_error, rec.on_completed
    )
    inside, release = threading.Event(), threading.Event()

    def hold(frame: FrameType, event: str, _: Any) -> None:
        if event == "call" and runs(frame, "take"):
            sys.settrace(None)
            inside.set()
            release.wait(5.0)

    def produce() -> None:
        sys.settrace(hold)
        subject.on_next("late")

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    assert inside.wait(5.0)
    subject.on_completed()  # nothing buffered: the completion schedules the drain
    assert len(sched.pending) == 1
    release.set()
    producer.join(5.0)
    assert not producer.is_alive()
    assert len(sched.pending) == 1  # the item went in behind the drain already due
    sched.run_all()
    assert rec.items == ["late"]
    assert rec.ends == ["completed"]
