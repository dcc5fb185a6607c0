"""A ``send_many`` made from inside the stream while a buffer holds items gathered from the
sending thread: the buffer's room for a whole list counts what it gathered (the list goes in
after it), so a ``block`` buffer without room for both takes the list item by item, and a
timeout drops that item alone, as for a re-entrant ``send``, instead of failing the stream.

Real threads, driven by events: the drain is held inside a results subscriber (on its first
item) while the batch is handed over, so the buffer cannot make room in time.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

pytestmark = pytest.mark.threads

ALICE = pfrx.Context("alice", "s1")
OK = pfrx.SendResult(True)
TIMEOUT = pfrx.SendResult(False, "timeout")


def run(resend: str) -> tuple[list[Any], list[Any], list[Any], str]:
    entered, release = threading.Event(), threading.Event()
    log: list[Any] = []
    again: list[Any] = []

    def fn(event: str, _context: pfrx.Context) -> str:
        if event == "x3":  # x0..x3 are gathered by now: the buffer's room is theirs
            if resend == "send_many":
                again.extend(stream.send_many(["y"], ALICE))
            else:
                again.append(stream.send("y", ALICE))
        return event

    def on_result(value: pfrx.Envelope) -> None:
        log.append(("result", value.event))
        if value.event == "w":  # hold the drain: nothing leaves the buffer meanwhile
            entered.set()
            release.wait(10)

    stream = Stream(
        pf.transform(fn),
        pf.backpressure("block", buffer_size=4, batch_size=1, timeout=0.05),
        name="s",
    )
    stream.results.subscribe(on_result, lambda error: log.append(("error", repr(error))))
    stream.dropped.subscribe(lambda d: log.append(("drop", d.item.event, d.reason, d.operator)))
    try:
        assert stream.send("w", ALICE) == OK
        assert entered.wait(10)
        sent = stream.send_many(["x0", "x1", "x2", "x3", "x4"], ALICE)
    finally:
        release.set()
    stream.close()
    stream.join(10)
    return sent, again, log, stream.state


def test_a_reentrant_send_many_that_times_out_drops_its_item_as_a_reentrant_send_does() -> None:
    one = run("send")
    many = run("send_many")
    assert many == one
    sent, again, log, state = many
    # x4 and the re-sent y find the buffer full of x0..x3 while the drain is held.
    assert sent == [OK, OK, OK, OK, TIMEOUT]
    assert again == [OK]
    assert log == [
        ("result", "w"),
        ("drop", "y", "timeout", "stream"),
        ("result", "x0"),
        ("result", "x1"),
        ("result", "x2"),
        ("result", "x3"),
    ]
    assert state == "done"
