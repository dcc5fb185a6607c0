"""Issue 12: transform's batch entry counts what it made, and only that, into the metrics."""

from __future__ import annotations

from typing import Any

from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import BatchSource, OnBatch

CTX = pfrx.Context("alice", "s1")


def ev(event: Any) -> pfrx.Envelope:
    return pfrx.Envelope(event, CTX, 0.0)


def only_even(event: int, _context: pfrx.Context) -> Any:
    return event if event % 2 == 0 else pfrx.Reject("odd")


def test_a_batch_that_makes_nothing_leaves_the_output_rate_unstarted() -> None:
    # The processing rate is what was emitted over the time since the first emission (at
    # least one tenth of the interval): a batch that emitted nothing must not start that
    # clock, so two items made at t=5 read as 2 per second (one 1 s bucket), not 2 over 5 s.
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler, rate_interval=10.0)
    feeds: list[OnBatch] = []

    def subscribe_batches(on_batch: OnBatch, *_: Any) -> Disposable:
        feeds.append(on_batch)
        return Disposable()

    source = BatchSource(lambda *_: Disposable(), subscribe_batches)
    out: list[Any] = []
    source.pipe(pf.transform(only_even, metrics=metrics)).subscribe(out.append)
    (feed,) = feeds
    feed([ev(1), ev(3)])  # at t=0: both rejected
    scheduler.advance_to(5.0)
    feed([ev(2), ev(5), ev(4)])
    assert [e.event for e in out] == [2, 4]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (5, 2, 3)
    assert snap.processing_rate == 2.0
