"""window_session and window_count stated exactly where the suite left room (issue 12, helper
kwin): what is checked when a session operator is built, whose scheduler closes a session, a
watermark in processing time, a clock stepping back, what a checkpoint holds before any item
and after completion; a sliding count window's gauge item by item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler.scheduler import Scheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")

pytestmark = pytest.mark.filterwarnings("ignore::pfrx.UnobservedDropWarning")


def env(name: str) -> pfrx.Envelope:
    return pfrx.Envelope(name, CTX, 0.0)


def names(window: pfrx.Window) -> tuple[Any, ...]:
    return tuple(e.event for e in window.items)


# -- window_session: construction ----------------------------------------------------------------


def test_a_session_operator_checks_its_arguments_with_exact_messages() -> None:
    with pytest.raises(TypeError) as caught:
        pf.window_session(1, metrics="m")  # type: ignore[arg-type]
    assert str(caught.value) == "metrics must be a pfrx.StreamMetrics, not 'm'"
    with pytest.raises(TypeError) as caught:
        pf.window_session(1, timestamp=5)  # type: ignore[arg-type]
    assert str(caught.value) == "timestamp must be callable, not 5"
    with pytest.raises(ValueError) as value:
        pf.window_session(-1)
    assert str(value.value) == "gap must be a finite positive duration of at most 2**31 s, not -1"
    with pytest.raises(ValueError) as value:
        pf.window_session(1, max_duration=-2)
    assert str(value.value) == (
        "max_duration must be a finite positive duration of at most 2**31 s, not -2"
    )


# -- window_session: processing time ---------------------------------------------------------------


def test_a_session_closes_on_the_operators_own_scheduler() -> None:
    own = TestScheduler()
    subject: Subject[Any] = Subject()
    out: list[tuple[float, Any, Any, tuple[Any, ...]]] = []
    # subscribed without a scheduler: the operator's own one times the gap
    subject.pipe(pf.window_session(5.0, scheduler=own)).subscribe(
        lambda w: out.append((float(own.clock), w.start, w.end, names(w)))
    )
    own.advance_to(10.0)
    subject.on_next(env("a"))
    own.advance_to(12.0)
    subject.on_next(env("b"))
    own.advance_to(30.0)
    assert out == [(17.0, 10.0, 17.0, ("a", "b"))]


def test_a_watermark_is_consumed_by_a_processing_time_session() -> None:
    scheduler = TestScheduler()
    subject: Subject[Any] = Subject()
    out: list[tuple[Any, Any, tuple[Any, ...]]] = []
    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics(scheduler)
    subject.pipe(pf.window_session(5.0, on_drop=lost.append, metrics=metrics)).subscribe(
        lambda w: out.append((w.start, w.end, names(w))), scheduler=scheduler
    )
    scheduler.advance_to(1.0)
    subject.on_next(pfrx.Watermark(100.0))
    subject.on_next(env("a"))
    subject.on_completed()
    assert out == [(1.0, 6.0, ("a",))]
    assert lost == []  # consumed: neither an item nor a drop
    assert metrics.snapshot().received == 1


class SteppingClock(Scheduler):
    """A real-time-like scheduler whose clock the test sets, even backwards; timers run when
    the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.timers: list[Any] = []

    @property
    def now(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule_relative(0.0, action, state)

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        entry = [action, state, True]
        self.timers.append(entry)
        return Disposable(lambda: entry.__setitem__(2, False))

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule_relative(0.0, action, state)

    def run_timers(self) -> None:
        timers, self.timers = self.timers, []
        for action, state, live in timers:
            if live:
                action(self, state)


def test_a_session_clock_stepping_back_starts_no_session_before_a_closed_one() -> None:
    clock = SteppingClock()
    subject: Subject[Any] = Subject()
    out: list[tuple[Any, Any, tuple[Any, ...]]] = []
    subject.pipe(pf.window_session(1.0, scheduler=clock)).subscribe(
        lambda w: out.append((w.start, w.end, names(w)))
    )
    clock.seconds = 0.5
    subject.on_next(env("a"))
    clock.seconds = 1.7  # the timer for the session [0.5, 1.5) runs late
    clock.run_timers()
    clock.seconds = 0.9  # set back: the new session starts where the clock had been declared
    subject.on_next(env("b"))
    subject.on_completed()
    assert out == [(0.5, 1.5, ("a",)), (1.7, 2.7, ("b",))]


# -- window_session: checkpoints ------------------------------------------------------------


def checkpointed(op: Any) -> tuple[Subject[Any], checkpoint.CheckpointScope, TestScheduler]:
    scheduler = TestScheduler()
    subject: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        subject.pipe(op).subscribe(lambda w: None, scheduler=scheduler)
    return subject, scope, scheduler


def inner(scope: checkpoint.CheckpointScope) -> dict[str, Any]:
    ((_, state),) = scope.snapshot().states
    return state  # type: ignore[no-any-return]


@pytest.mark.parametrize("event_time", [False, True])
def test_a_fresh_session_operator_has_held_nothing(event_time: bool) -> None:
    kw: dict[str, Any] = {"timestamp": lambda e: 1.0} if event_time else {}
    _, scope, _ = checkpointed(pf.window_session(5.0, **kw))
    state = inner(scope)["state"]
    assert (state["held"], state["peak"]) == (0, 0)


def test_a_session_operator_holds_nothing_after_completion() -> None:
    subject, scope, scheduler = checkpointed(pf.window_session(5.0, key=lambda e: e.event))
    scheduler.advance_to(1.0)
    subject.on_next(env("a"))
    subject.on_next(env("b"))
    subject.on_completed()
    saved = inner(scope)
    assert saved["done"] is True
    state = saved["state"]
    assert (state["keys"], state["heap"], state["held"], state["peak"]) == ([], [], 0, 2)


# -- window_count: the sliding gauge --------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "slide", "expected"),
    [
        # items held after each of five items: (0..4); then completion
        (4, 2, [0, 1, 2, 3, 2, 3, 0]),  # [0, 4) and [2, 6) overlap: the oldest counts
        (2, 3, [0, 1, 0, 0, 1, 0, 0]),  # item 2 lies between [0, 2) and [3, 5): none held
    ],
)
def test_a_sliding_count_window_gauges_the_items_its_oldest_window_holds(
    size: int, slide: int, expected: list[int]
) -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    subject: Subject[Any] = Subject()
    subject.pipe(pf.window_count(size, slide=slide, metrics=metrics)).subscribe(lambda w: None)
    seen = []

    def look() -> None:
        snap = metrics.snapshot()
        seen.append(snap.buffered)
        assert snap.buffer_utilization == 0.0  # a window has no capacity

    look()
    for i in range(5):
        subject.on_next(env(str(i)))
        look()
    subject.on_completed()
    look()
    assert seen == expected
