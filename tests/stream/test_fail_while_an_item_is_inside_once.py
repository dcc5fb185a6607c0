"""Regression (found while mutation testing; fixed by the stream runtime's batch work): an
accepted item ends exactly once, delivered or dropped, whatever fails around it."""

import threading
from typing import Any

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream


def test_an_item_inside_the_pipeline_when_the_stream_fails_is_dropped() -> None:
    inside, release = threading.Event(), threading.Event()

    def slow(event: Any, _context: Any) -> Any:
        inside.set()
        release.wait(10)
        return event

    stream = Stream(pf.transform(slow))
    delivered: list[Any] = []
    dropped: list[Any] = []
    stream.results.subscribe(lambda v: delivered.append(v.event), lambda _e: None)
    stream.dropped.subscribe(lambda d: dropped.append((d.item.event, d.reason)))
    sent: list[bool] = []
    sender = threading.Thread(target=lambda: sent.append(stream.send("y", pfrx.Context("a")).ok))
    sender.start()
    assert inside.wait(10)
    stream.fail(KeyError("from outside"))
    release.set()
    sender.join(10)
    assert sent == [True]
    snapshot = stream.metrics()
    # fails: delivered == [], dropped == [], emitted == dropped == 0 with received == 1
    assert len(delivered) + len(dropped) == 1
    assert snapshot.received == snapshot.emitted + snapshot.dropped
