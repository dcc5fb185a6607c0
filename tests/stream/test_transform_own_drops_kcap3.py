"""Issue 12: a transform with an ``on_drop`` of its own inside a stream's ``send_many``.

Its drops go straight to its handler, past the stream's ordering of a batch's drops; so a
batch must not run through it as a list, or its drops would come before the drops the
stream orders for earlier items. Sent whole or one by one, everybody sees one order.
"""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

DOCS = pfrx.CapabilityFamily("file", actions=("read",))
# Holds /docs/0 and /docs/1: an event whose value is 2 modulo 3 is denied.
CTX = pfrx.Context("alice", "s1", [DOCS.read("/docs/0"), DOCS.read("/docs/1")])


def need(event: int) -> pfrx.Capability:
    return DOCS.read(f"/docs/{event % 3}")


def shape(event: int, _context: pfrx.Context) -> Any:
    if event % 5 == 1:
        return pfrx.Reject("odd_five")
    return event * 10


def run(batched: bool) -> list[Any]:
    scheduler = TestScheduler()
    log: list[Any] = []
    stream = pfrx.Stream(
        pf.capability_filter(need),
        pf.transform(shape, on_drop=lambda d: log.append(("own", d.item.event, d.reason))),
        pf.backpressure("block", buffer_size=100),
        scheduler=scheduler,
    )
    stream.results.subscribe(lambda e: log.append(("result", e.event)))
    stream.dropped.subscribe(lambda d: log.append(("drop", d.item.event, d.reason)))
    events = list(range(8))
    if batched:
        sent = stream.send_many(events, CTX)
    else:
        sent = [stream.send(event, CTX) for event in events]
    assert all(result.ok for result in sent)
    scheduler.advance_by(1.0)
    return log


@pytest.mark.parametrize("batched", [False, True])
def test_a_transforms_own_drops_keep_their_place_among_the_streams(batched: bool) -> None:
    assert run(batched) == [
        ("own", 1, "odd_five"),
        ("drop", 2, "insufficient_capabilities"),
        ("drop", 5, "insufficient_capabilities"),
        ("own", 6, "odd_five"),
        ("result", 0),
        ("result", 30),
        ("result", 40),
        ("result", 70),
    ]
