"""Window operators stated exactly where the after-disposal fix left room (issue 12, helper
kwin3): a key function that disposes an event-time session operator with a late item, a
timestamp function raising an exception with neither text nor type name, the window of an
on-time item whose index needs two corrections, and what the event clock of a time window
without an idle timeout records in a checkpoint."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")

pytestmark = pytest.mark.filterwarnings("ignore::pfrx.UnobservedDropWarning")


def env(name: str, ts: float) -> pfrx.Envelope:
    return pfrx.Envelope((name, ts), CTX, 0.0)


def stamp(e: pfrx.Envelope) -> Any:
    return e.event[1]


# An exception whose text and type name are both empty: the reason falls back to the
# operator's own ("invalid_timestamp"), never an empty string.
_Nameless = type("", (Exception,), {})


def test_a_late_item_whose_key_function_disposes_an_event_session_is_dropped_once() -> None:
    # The key function of the late item disposes the subscription: the item is reported
    # once, "disposed", and never goes on to be judged late (a second record).
    drops: list[pfrx.Dropped] = []
    seen: list[pfrx.Window] = []
    box: dict[str, Any] = {}

    def key(e: pfrx.Envelope) -> str:
        if e.event[0] == "x":
            box["subscription"].dispose()
        return "k"

    subject: Subject[Any] = Subject()
    box["subscription"] = subject.pipe(
        pf.window_session(10.0, key=key, timestamp=stamp, on_drop=drops.append)
    ).subscribe(seen.append, scheduler=TestScheduler())
    held, late = env("a", 1000.0), env("x", 0.0)
    subject.on_next(held)
    subject.on_next(late)
    assert not seen
    assert [(d.item, d.reason, d.operator) for d in drops] == [
        (held, "disposed", "window_session"),
        (late, "disposed", "window_session"),
    ]


@pytest.mark.parametrize("kind", ["session_event", "time_per_key"])
def test_a_timestamp_error_without_text_or_type_name_is_an_invalid_timestamp(kind: str) -> None:
    def timestamp(e: pfrx.Envelope) -> float:
        if e.event[0] == "bad":
            raise _Nameless()
        return float(e.event[1])

    drops: list[pfrx.Dropped] = []
    seen: list[pfrx.Window] = []
    metrics = pfrx.StreamMetrics()
    kw: dict[str, Any] = {"timestamp": timestamp, "on_drop": drops.append, "metrics": metrics}
    op = (
        pf.window_session(10.0, key=lambda e: "k", **kw)
        if kind == "session_event"
        else pf.window_time(10.0, key=lambda e: "k", watermark="per_key", **kw)
    )
    subject: Subject[Any] = Subject()
    subject.pipe(op).subscribe(seen.append, scheduler=TestScheduler())
    bad, good = env("bad", 1.0), env("good", 2.0)
    subject.on_next(bad)
    subject.on_next(good)
    subject.on_completed()
    assert [(d.item, d.reason) for d in drops] == [(bad, "invalid_timestamp")]
    assert [(w.key, w.start, w.end, w.items) for w in seen] == [
        (
            "k",
            2.0 if kind == "session_event" else 0.0,
            12.0 if kind == "session_event" else 10.0,
            (good,),
        )
    ]
    snapshot = metrics.snapshot()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped, snapshot.errors) == (2, 1, 1, 1)
    assert dict(snapshot.drops_by_reason) == {"invalid_timestamp": 1}


@pytest.mark.parametrize("per_key", [False, True])
def test_an_on_time_item_lands_in_the_window_starting_at_or_before_it(per_key: bool) -> None:
    # ts = -3.6999999999999997 with offset 0.5 and span 0.7: (ts - offset) / span rounds to
    # -5.999999999999999 (truncated: -5) while the floor is -6, and in floats window -6 starts
    # at -3.6999999999999993, after ts: the item's window is -7,
    # [-4.3999999999999995, -3.6999999999999993), the highest starting at or before it.
    ts = -3.6999999999999997
    assert 0.5 + -6 * 0.7 > ts >= 0.5 + -7 * 0.7
    kw: dict[str, Any] = {"key": lambda e: "k", "watermark": "per_key"} if per_key else {}
    seen: list[pfrx.Window] = []
    subject: Subject[Any] = Subject()
    subject.pipe(pf.window_time(0.7, offset=0.5, timestamp=stamp, **kw)).subscribe(
        seen.append, scheduler=TestScheduler()
    )
    item = env("a", ts)
    subject.on_next(item)
    subject.on_completed()
    assert [(w.start, w.end, w.items) for w in seen] == [
        (-4.3999999999999995, -3.6999999999999993, (item,))
    ]
    assert seen[0].start <= ts < seen[0].end


def test_the_event_clock_without_idle_timeout_records_arrivals_as_its_checkpoint_says() -> None:
    # Without an idle timeout an item's arrival is recorded as 0.0 (the idle clock, which
    # alone reads it, is off), an explicit watermark's at the scheduler time; an item that
    # does not raise the highest timestamp records nothing. A checkpoint carries the clock
    # (its settings do not name the idle timeout).
    scheduler = TestScheduler()
    subject: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        subject.pipe(pf.window_time(10.0, timestamp=stamp)).subscribe(scheduler=scheduler)

    def clock() -> dict[str, Any]:
        ((_, saved),) = scope.snapshot().states
        return dict(saved["state"]["clock"])

    base = {"sources": None, "datetimes": False}
    scheduler.advance_to(30.0)
    subject.on_next(env("a", 5.0))
    assert clock() == {"value": 5.0, "anchor": 5.0, "max_ts": 5.0, "last_arrival": 0.0, **base}
    scheduler.advance_to(50.0)
    subject.on_next(pfrx.Watermark(3.0))
    assert clock() == {"value": 5.0, "anchor": 5.0, "max_ts": 5.0, "last_arrival": 50.0, **base}
    scheduler.advance_to(70.0)
    subject.on_next(env("b", 5.0))  # at the highest timestamp: the clock records nothing
    subject.on_next(env("c", 4.0))
    assert clock() == {"value": 5.0, "anchor": 5.0, "max_ts": 5.0, "last_arrival": 50.0, **base}
