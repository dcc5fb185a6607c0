"""What comes of what a boundary hands on is no longer its to report (``settle`` in
`Stream.__init__`): a stream failed from a subscriber of a result of a drained list, or of
the drop of an item being handed on, finishes before ``fail()`` returns and reports each
item exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger


def test_a_stream_failed_by_a_subscriber_of_a_drained_list_finishes_at_once() -> None:
    # The drain hands the buffered items on as one list; the first of its results fails
    # the stream. The list has become results: nothing is in flight, so the stream is done
    # when fail() returns, and no delivered item is also dropped.
    scheduler = TestScheduler()
    stream = Stream(pf.backpressure("block", buffer_size=8), scheduler=scheduler)
    ledger = Ledger(stream)
    states: list[bool] = []

    def on_result(envelope: Any) -> None:
        if not states:
            stream.fail(RuntimeError("from a subscriber"))
            states.append(stream.done)

    stream.results.subscribe(on_result, lambda _e: None)
    assert all(result.ok for result in stream.send_many([0, 1, 2], CTX))
    scheduler.advance_by(1.0)
    assert states == [True]
    with pytest.raises(RuntimeError, match="from a subscriber"):
        stream.join(5.0)
    assert ledger.ends == ["error:RuntimeError"]
    ledger.assert_exactly_once([0, 1, 2])
    assert not set(ledger.delivered) & set(ledger.dropped_events())


def test_a_stream_failed_by_a_subscriber_of_a_drop_past_a_boundary_finishes_at_once() -> None:
    # The drain hands an item on; the transform after the buffer rejects it, and the
    # subscriber of that drop fails the stream. The item has become a drop: the boundary
    # no longer holds it, so the stream is done when fail() returns and the item ends once.
    scheduler = TestScheduler()
    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        pf.transform(lambda e, c: pfrx.Reject("no")),
        scheduler=scheduler,
    )
    ledger = Ledger(stream)
    states: list[bool] = []

    def on_drop(record: pfrx.Dropped) -> None:
        if not states:
            stream.fail(RuntimeError("from a drop subscriber"))
            states.append(stream.done)

    stream.dropped.subscribe(on_drop)
    assert stream.send(0, CTX).ok
    scheduler.advance_by(1.0)
    assert states == [True]
    with pytest.raises(RuntimeError, match="from a drop subscriber"):
        stream.join(5.0)
    assert [d.reason for d in ledger.dropped] == ["no"]
    ledger.assert_exactly_once([0])
