"""The machinery every timed window operator shares, stated exactly (issue 12, helper kwin):
the message of every refused argument, whose scheduler stamps drops, what disposal releases
(the upstream, the metrics' hold on the state), the timer on virtual and on real-time
schedulers, and what a fresh operator's checkpoint says."""

from __future__ import annotations

import gc
import math
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import reactivex
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


def env(name: str, ts: float = 0.0) -> pfrx.Envelope:
    return pfrx.Envelope((name, ts), CTX, 0.0)


def stamp(e: pfrx.Envelope) -> Any:
    return e.event[1]


REFUSED = [
    ({"name": ""}, TypeError, "name must be a non-empty str, not ''"),
    ({"on_drop": 5}, TypeError, "on_drop must be callable, not 5"),
    ({"scheduler": 5}, TypeError, "scheduler must be a reactivex scheduler, not 5"),
    ({"metrics": "m"}, TypeError, "metrics must be a pfrx.StreamMetrics, not 'm'"),
    ({"timestamp": 5}, TypeError, "timestamp must be callable, not 5"),
    (
        {"watermark": "per_key"},
        ValueError,
        'watermark="per_key" needs key= and timestamp= (event time per key)',
    ),
    (
        {"span": -1},
        ValueError,
        "span must be a finite positive duration of at most 2**31 s, not -1",
    ),
    (
        {"slide": -1},
        ValueError,
        "slide must be a finite positive duration of at most 2**31 s, not -1",
    ),
    (
        {"timestamp": stamp, "on_late": 5},
        TypeError,
        "on_late must be a callable or an observer, not 5",
    ),
    (
        {"timestamp": stamp, "out_of_orderness": -1},
        ValueError,
        "out_of_orderness must be a finite duration >= 0 of at most 2**31 s, not -1",
    ),
    (
        {"timestamp": stamp, "allowed_lateness": -1},
        ValueError,
        "allowed_lateness must be a finite duration >= 0 of at most 2**31 s, not -1",
    ),
    (
        {"timestamp": stamp, "idle_timeout": -1},
        ValueError,
        "idle_timeout must be a finite positive duration of at most 2**31 s, not -1",
    ),
]


@pytest.mark.parametrize(("kw", "error", "message"), REFUSED)
def test_window_time_refuses_each_bad_argument_with_its_name(
    kw: dict[str, Any], error: type[Exception], message: str
) -> None:
    kw = dict(kw)
    span = kw.pop("span", 1)
    with pytest.raises(error) as caught:
        pf.window_time(span, **kw)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "make",
    [
        lambda s, d: pf.window_time(10, scheduler=s, on_drop=d, key=lambda e: e.event[0]),
        lambda s, d: pf.window_session(10, scheduler=s, on_drop=d, key=lambda e: e.event[0]),
    ],
)
def test_drops_are_stamped_by_the_window_operators_own_scheduler(make: Any) -> None:
    own = TestScheduler()
    own.advance_to(7.0)
    lost: list[pfrx.Dropped] = []
    reactivex.from_iterable(["stray"]).pipe(make(own, lost.append)).subscribe()
    assert [(d.item, d.reason, d.timestamp) for d in lost] == [("stray", "not_an_envelope", 7.0)]


def test_disposing_a_window_subscription_disposes_its_upstream() -> None:
    events: list[str] = []

    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any = None) -> abc.DisposableBase:
        events.append("subscribed")
        return Disposable(lambda: events.append("upstream disposed"))

    source: reactivex.Observable[Any] = reactivex.create(subscribe)
    subscription = source.pipe(pf.window_time(10, scheduler=TestScheduler())).subscribe()
    subscription.dispose()
    assert events == ["subscribed", "upstream disposed"]


class KeyOf:
    """A key function the test can watch being released."""

    def __call__(self, envelope: pfrx.Envelope) -> Any:
        return envelope.event[0]


@pytest.mark.parametrize("kind", ["time", "session"])
def test_disposing_a_window_subscription_releases_its_state_from_the_metrics(kind: str) -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    key = KeyOf()
    watch = weakref.ref(key)
    subject: Subject[Any] = Subject()
    if kind == "time":
        op = pf.window_time(10, key=key, timestamp=stamp, metrics=metrics, scheduler=scheduler)
    else:
        op = pf.window_session(10, key=key, timestamp=stamp, metrics=metrics, scheduler=scheduler)
    subscription = subject.pipe(op).subscribe()
    subject.on_next(env("a"))
    assert metrics.snapshot().buffered == 1
    subscription.dispose()
    del op, key, subscription
    gc.collect()
    # nothing but the disposed subscription's state held the key function
    assert watch() is None
    assert metrics.snapshot().buffered == 0


def test_a_virtual_timer_fires_at_the_exact_window_end() -> None:
    scheduler = TestScheduler()
    subject: Subject[Any] = Subject()
    seen: list[tuple[float, float]] = []
    subject.pipe(pf.window_time(0.3)).subscribe(
        lambda w: seen.append((float(scheduler.clock), w.end)), scheduler=scheduler
    )
    scheduler.advance_to(0.03)
    subject.on_next(env("a"))
    scheduler.advance_to(1.0)
    # 0.03 + (0.3 - 0.03) is 0.30000000000000004 in floats: the timer is set at the end itself
    assert seen == [(0.3, 0.3)]


class SteppingClock(Scheduler):
    """A real-time-like scheduler whose clock the test sets, even backwards; it records the
    delays it is asked for, and runs timers when the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.timers: list[Any] = []
        self.delays: list[float] = []

    @property
    def now(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule_relative(0.0, action, state)

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        self.delays.append(self.to_seconds(duetime))
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


def test_a_real_time_timer_asks_for_the_time_left_and_a_late_one_closes_up_to_now() -> None:
    clock = SteppingClock()
    subject: Subject[Any] = Subject()
    out: list[tuple[float, float, tuple[Any, ...]]] = []
    subject.pipe(pf.window_time(1.0, scheduler=clock)).subscribe(
        lambda w: out.append((w.start, w.end, tuple(e.event[0] for e in w.items)))
    )
    clock.seconds = 0.75
    subject.on_next(env("a"))
    assert clock.delays == [0.25]
    clock.seconds = 2.3  # the timer for [0, 1) runs 1.3 s late: the clock counts as 2.3
    clock.run_timers()
    clock.seconds = 1.5  # set back: 2.3 was declared past, so b belongs to [2, 3)
    subject.on_next(env("b"))
    assert clock.delays == [0.25, 1.5]  # [2, 3) ends 3 - 1.5 s after the clock's reading
    clock.seconds = 3.0
    clock.run_timers()
    assert out == [(0.0, 1.0, ("a",)), (2.0, 3.0, ("b",))]


@pytest.mark.parametrize("per_key", [False, True])
def test_a_fresh_event_time_checkpoint_has_seen_no_time(per_key: bool) -> None:
    kw: dict[str, Any] = {"key": lambda e: 0, "watermark": "per_key"} if per_key else {}
    with checkpoint.checkpointing() as scope:
        Subject().pipe(pf.window_time(10, timestamp=stamp, **kw)).subscribe()
    ((_, saved),) = scope.snapshot().states
    assert saved["done"] is False
    assert saved["state"]["clock"] == {
        "value": -math.inf,
        "anchor": -math.inf,
        "max_ts": -math.inf,
        "last_arrival": -math.inf,
        "sources": None,
        "datetimes": None,
    }


def test_a_virtual_timer_never_closes_a_window_before_its_end() -> None:
    scheduler = TestScheduler()
    subject: Subject[Any] = Subject()
    seen: list[tuple[float, float]] = []
    subject.pipe(pf.window_time(3.5e-6)).subscribe(
        lambda w: seen.append((float(scheduler.clock), w.end)), scheduler=scheduler
    )
    scheduler.advance_to(1e-6)
    subject.on_next(env("a"))
    scheduler.advance_to(1.0)
    # RxPY's virtual clock keeps whole microseconds: the end 3.5 us is reached at 4 us (a timer
    # set 2.5 us after 1 us would round its delay down and fire at 3 us, before the end)
    assert seen == [(4e-6, 3.5e-6)]


@pytest.mark.parametrize("kind", ["time", "session"])
def test_after_disposal_the_checkpoint_records_the_operator_done(kind: str) -> None:
    lost: list[pfrx.Dropped] = []
    op = (
        pf.window_time(10, on_drop=lost.append)
        if kind == "time"
        else pf.window_session(10, on_drop=lost.append)
    )
    subject: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        subscription = subject.pipe(op).subscribe(scheduler=TestScheduler())
    subject.on_next(env("a"))
    subscription.dispose()
    ((_, saved),) = scope.snapshot().states
    assert [(d.item, d.reason) for d in lost] == [(env("a"), "disposed")]
    assert saved["done"] is True


@pytest.mark.parametrize("kind", ["time", "session"])
def test_a_checkpoint_taken_while_the_completion_passes_records_the_operator_done(
    kind: str,
) -> None:
    op = pf.window_time(10) if kind == "time" else pf.window_session(10)
    subject: Subject[Any] = Subject()
    taken: list[checkpoint.Checkpoint] = []
    with checkpoint.checkpointing() as scope:
        subject.pipe(op).subscribe(
            on_completed=lambda: taken.append(scope.snapshot()), scheduler=TestScheduler()
        )
    subject.on_next(env("a"))
    subject.on_completed()
    ((_, saved),) = taken[0].states
    assert saved["done"] is True  # e.g. a last checkpoint on completion: restored, it ends
