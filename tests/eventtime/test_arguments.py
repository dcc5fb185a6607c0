"""Issue 11: durations and arguments are checked when a window operator is built; one bad
key is one drop. Issue 12: one late drop is counted once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

from .harness import event_key, event_ts, harness

TS = event_ts


@pytest.mark.parametrize(
    "build",
    [
        lambda: pf.window_time(1e300),
        lambda: pf.window_time(2.0**31 + 1),
        lambda: pf.window_time(float("inf")),
        lambda: pf.window_time(float("nan")),
        lambda: pf.window_time(-1),
        lambda: pf.window_time(0),
        lambda: pf.window_time(1.0, slide=1e-300),
        lambda: pf.window_time(1.0, slide=1e-4 / 1.01),  # 10,100 windows per item
        lambda: pf.window_time(1.0, slide=0.5, offset=0.5),
        lambda: pf.window_time(1.0, offset=-1.0),
        lambda: pf.window_time(1.0, offset=float("nan")),
        lambda: pf.window_time(1.0, timestamp=TS, allowed_lateness=-1),
        lambda: pf.window_time(1.0, timestamp=TS, out_of_orderness=float("inf")),
        lambda: pf.window_time(1.0, timestamp=TS, allowed_lateness=2.0**32),
        lambda: pf.window_time(1.0, timestamp=TS, idle_timeout=0),
        lambda: pf.window_session(timedelta(days=10**6)),
        lambda: pf.window_session(1e300),
        lambda: pf.window_session(1.0, max_duration=timedelta(days=10**6)),
        lambda: pf.window_session(1.0, timestamp=TS, out_of_orderness=-0.5),
        lambda: pf.window_session(1.0, allowed_lateness=1.0),  # event time only
    ],
)
def test_bad_durations_raise_value_error_at_build(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_limits_themselves_are_accepted() -> None:
    pf.window_time(2.0**31)
    pf.window_time(1.0, slide=1e-4)  # exactly 10,000 windows per item
    pf.window_time(1.0, offset=-0.999)
    pf.window_time(1.0, timestamp=TS, out_of_orderness=0, allowed_lateness=0)
    pf.window_session(timedelta(seconds=2**31), timestamp=TS, allowed_lateness=2.0**31)


@pytest.mark.parametrize(
    "build",
    [
        lambda: pf.window_time(1.0, key="user"),
        lambda: pf.window_time(1.0, timestamp=3),
        lambda: pf.window_time(1.0, scheduler="now"),
        lambda: pf.window_time(1.0, on_drop=5),
        lambda: pf.window_time(1.0, metrics=object()),
        lambda: pf.window_time("1"),
        lambda: pf.window_time(1.0, offset="0"),
        lambda: pf.window_session(1.0, key=5),
        lambda: pf.window_session(1.0, timestamp="ts"),
        lambda: pf.window_session(1.0, scheduler=object()),
        lambda: pf.window_session(1.0, on_drop="oops"),
        lambda: pf.window_session(1.0, timestamp=TS, on_late=42),
    ],
)
def test_bad_arguments_raise_type_error_at_build(build: Any) -> None:
    with pytest.raises(TypeError):
        build()


@pytest.mark.parametrize("timestamp", [None, TS])
@pytest.mark.parametrize(
    "make",
    [
        lambda ts, drop: pf.window_session(5, key=lambda e: e.event[0], timestamp=ts, on_drop=drop),
        lambda ts, drop: pf.window_time(5, key=lambda e: e.event[0], timestamp=ts, on_drop=drop),
    ],
)
def test_an_unhashable_key_is_one_drop_and_the_stream_goes_on(make: Any, timestamp: Any) -> None:
    with harness(lambda drop, late: make(timestamp, drop)) as h:
        h.element("a", 1.0)
        h.element(["un", "hashable"], 2.0)
        h.element("a", 3.0)
        h.complete()
        assert [(d.item.event[0], d.reason) for d in h.dropped] == [
            (["un", "hashable"], "unhashable_key")
        ]
        assert [(w.key, len(w)) for w in h.windows] == [("a", 2)]
        assert h.completed and h.error is None


def test_one_late_drop_is_counted_once_in_the_metrics() -> None:
    # Kills the mutant "every late drop counted twice in the metrics".
    metrics = pfrx.StreamMetrics(scheduler=TestScheduler())
    lost: list[pfrx.Dropped] = []
    subject: Subject[Any] = Subject()
    op = pf.window_time(10, timestamp=TS, on_drop=lost.append, metrics=metrics)
    subject.pipe(op).subscribe(lambda _: None, scheduler=TestScheduler())
    ctx = pfrx.Context("u", "s")
    for ts in (1.0, 15.0, 2.0):  # 15 fires [0, 10); 2 is late
        subject.on_next(pfrx.Envelope(("k", ts), ctx, 0.0))
    assert [d.reason for d in lost] == ["late"]
    snapshot = metrics.snapshot()
    assert snapshot.dropped == 1
    assert dict(snapshot.drops_by_reason) == {"late": 1}


def test_one_late_session_drop_is_counted_once() -> None:
    metrics = pfrx.StreamMetrics(scheduler=TestScheduler())
    with harness(
        lambda drop, late: pf.window_session(
            3, key=event_key, timestamp=TS, on_drop=drop, metrics=metrics
        )
    ) as h:
        h.element("k", 1.0)
        h.element("k", 10.0)
        h.element("k", 2.0)
        assert [d.reason for d in h.dropped] == ["late"]
        snapshot = metrics.snapshot()
        assert (snapshot.dropped, dict(snapshot.drops_by_reason)) == (1, {"late": 1})
