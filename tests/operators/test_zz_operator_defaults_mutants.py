"""Issue 12: the public factories' defaults and names, stated exactly (mutants of
``pfrx/operators/__init__.py``)."""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")


def test_backpressure_holds_10_000_items_by_default() -> None:
    scheduler = TestScheduler()
    lost: list[pfrx.Dropped] = []
    out: list[Any] = []
    subject: Subject[Any] = Subject()
    subject.pipe(
        pf.backpressure("drop_newest", scheduler=scheduler, on_drop=lost.append)
    ).subscribe(out.append)
    items = [pfrx.Envelope(n, CTX, 0.0) for n in range(10_002)]
    for item in items:  # nothing drains before the scheduler advances
        subject.on_next(item)
    assert [(d.item, d.reason) for d in lost] == [
        (items[10_000], "overflow"),
        (items[10_001], "overflow"),
    ]
    scheduler.advance_to(1.0)
    assert out == items[:10_000]


def test_backpressure_delivers_at_most_100_items_per_turn_by_default() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    out: list[Any] = []
    subject: Subject[Any] = Subject()
    subject.pipe(pf.backpressure(scheduler=scheduler, metrics=metrics)).subscribe(out.append)
    items = [pfrx.Envelope(n, CTX, 0.0) for n in range(250)]
    for item in items:
        subject.on_next(item)
    scheduler.advance_to(1.0)
    assert out == items
    drain = metrics.snapshot().info["backpressure.drain"]
    assert (drain["turns"], drain["items"], drain["max_batch"], drain["last_batch"]) == (
        3,
        250,
        100,
        50,
    )


def test_window_time_reports_under_the_name_it_is_given() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    lost: list[pfrx.Dropped] = []
    item = pfrx.Envelope(1, CTX, 0.0)
    source = reactivex.of(item).pipe(ops.concat(reactivex.throw(RuntimeError("upstream"))))
    errors: list[Exception] = []
    source.pipe(
        pf.window_time(5.0, name="tumbling", on_drop=lost.append, metrics=metrics)
    ).subscribe(on_error=errors.append, scheduler=scheduler)
    scheduler.advance_to(1.0)
    assert [str(e) for e in errors] == ["upstream"]
    assert [(d.item, d.reason, d.operator) for d in lost] == [(item, "upstream_error", "tumbling")]
    assert [o.name for o in metrics.snapshot().operators] == ["tumbling"]
