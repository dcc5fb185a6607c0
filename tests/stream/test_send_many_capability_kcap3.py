"""Issue 12: a function requirement judged in a stream's ``send_many`` batch, item by item.

The batch runs through the filter's batch entry (taken whole by the buffer after it): the
requirement is asked once per event, whatever it answers (a capability, nothing, something
that is no capability, an exception), and the stream reports the denials in the order of
their events, before the results the buffer delivers later, as sending one by one does.
"""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._backpressure import _Run

FileCap = pfrx.CapabilityFamily("file", actions=("read",))
CTX = pfrx.Context("alice", "s1", [FileCap.read("/docs")])
INSUFFICIENT = "insufficient_capabilities"
EVENTS = ["/etc/first", "/docs/a", "boom", "/docs/b", "junk", "none", "/docs/c", "/etc/last"]


class Need:
    def __init__(self) -> None:
        self.asked: list[Any] = []

    def __call__(self, event: Any) -> Any:
        self.asked.append(event)
        if event == "boom":
            raise RuntimeError("boom")
        if event == "junk":
            return 42
        if event == "none":
            return []
        return FileCap.read(event)


@pytest.mark.parametrize("batched", [False, True])
def test_a_mixed_batch_is_judged_as_one_by_one(
    monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    taken: list[int] = []
    plain = _Run.take_batch

    def take_batch(self: _Run, items: list[Any]) -> None:
        taken.append(len(items))
        plain(self, items)

    monkeypatch.setattr(_Run, "take_batch", take_batch)
    need = Need()
    scheduler = TestScheduler()
    stream = pfrx.Stream(
        pf.capability_filter(need), pf.backpressure("block", buffer_size=100), scheduler=scheduler
    )
    log: list[Any] = []
    stream.results.subscribe(lambda e: log.append(("result", e.event)))
    stream.dropped.subscribe(lambda d: log.append(("drop", d.item.event, d.reason, d.operator)))
    if batched:
        sent = stream.send_many(EVENTS, CTX)
        assert stream.send_many([], CTX) == []
    else:
        sent = [stream.send(event, CTX) for event in EVENTS]
    assert sent == [pfrx.SendResult(True)] * len(EVENTS)
    assert taken == ([3] if batched else [])  # the three granted events, in one list
    scheduler.advance_by(1.0)
    assert need.asked == EVENTS  # once per event, in order
    assert log == [
        ("drop", "/etc/first", INSUFFICIENT, "capability_filter"),
        ("drop", "boom", INSUFFICIENT, "capability_filter"),
        ("drop", "junk", INSUFFICIENT, "capability_filter"),
        ("drop", "none", "empty_requirement", "capability_filter"),
        ("drop", "/etc/last", INSUFFICIENT, "capability_filter"),
        ("result", "/docs/a"),
        ("result", "/docs/b"),
        ("result", "/docs/c"),
    ]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (8, 3, 5, 2)
    assert dict(snap.drops_by_reason) == {INSUFFICIENT: 4, "empty_requirement": 1}
    # The filter's own counters: every event received, three passed, five dropped.
    counters = {o.name: (o.received, o.emitted, o.dropped, o.errors) for o in snap.operators}
    assert counters["capability_filter"] == (8, 3, 5, 2)
