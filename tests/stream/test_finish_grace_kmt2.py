"""Issue 12: a stream failed from outside while a drain's thread is inside an operator past
the failure point: the grace timer it starts, and the stop it leaves behind once it has
finished (what the drain then hands on is neither delivered nor counted again)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger

pytestmark = pytest.mark.threads


def _until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.mark.parametrize("buffers_after", [0, 2])
def test_an_item_still_in_flight_after_the_grace_is_reported_once_and_never_delivered(
    monkeypatch: pytest.MonkeyPatch, buffers_after: int
) -> None:
    # With two more buffers after it, the boundary holding the item is the first of three.
    monkeypatch.setattr("pfrx.stream._stream.IN_FLIGHT_GRACE", 0.1)
    inside, release = threading.Event(), threading.Event()

    def hold(event: Any, context: pfrx.Context) -> Any:
        if event == "held":
            inside.set()
            assert release.wait(5.0)
        return event

    after = [pf.backpressure("block") for _ in range(buffers_after)]
    stream = Stream(pf.backpressure("block", batch_size=1), pf.transform(hold), *after)
    ledger = Ledger(stream)
    assert stream.send("held", CTX).ok
    assert inside.wait(5.0)  # the drain's thread is inside the transform with "held"
    stream.fail(RuntimeError("stop"))
    timer = stream._grace_timer
    assert timer is not None and timer.daemon is True  # never holds the interpreter up
    assert stream.done is False  # waiting for the hand-over, the grace at most
    assert _until(lambda: stream.done)  # the grace is over: finished, "held" reported
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        ("held", "failed", "stream")
    ]
    release.set()  # the transform hands "held" on: the stream has stopped for good
    assert _until(lambda: stream._boundaries[0].thread is None)
    assert ledger.delivered == []
    assert ledger.ends == ["error:RuntimeError"]
    snap = stream.metrics()
    assert (snap.received, snap.emitted) == (1, 0)
    if not buffers_after:  # with a buffer after it: see tests/stream/bugs_kmt2.py
        assert snap.dropped == 1
