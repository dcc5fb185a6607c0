"""Regression (found while mutation testing; fixed by the stream runtime's batch work): an
accepted item ends exactly once, delivered or dropped, whatever fails around it."""

from typing import Any

from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx.stream import Stream


def test_an_item_delivered_on_results_is_never_also_dropped() -> None:
    scheduler = TestScheduler()
    side: Subject[Any] = Subject()
    stream = Stream(ops.merge(side), name="s", scheduler=scheduler)
    scheduler.advance_to(1.0)
    delivered: list[Any] = []
    dropped: list[Any] = []

    def on_result(envelope: Any) -> None:
        delivered.append(envelope.event)
        side.on_error(KeyError("the merged source fails"))

    stream.results.subscribe(on_result, lambda _e: None)
    stream.dropped.subscribe(lambda d: dropped.append((d.item.event, d.reason)))
    assert stream.send("x", pfrx.Context("alice", "s1")).ok
    snapshot = stream.metrics()
    assert delivered == ["x"]
    assert dropped == []  # fails: [("x", "failed")]
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (1, 1, 0)  # dropped == 1
