"""A stream failing while a backpressure drain hands an item downstream loses nothing."""

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


def held_transform(inside: threading.Event, release: threading.Event) -> Any:
    def fn(event: Any, context: pfrx.Context) -> Any:
        if event == "held":
            inside.set()
            assert release.wait(5.0)
        return event

    return pf.transform(fn)


@pytest.mark.parametrize("after", [[], [pf.metrics_tap()]])
def test_an_item_mid_delivery_on_a_drain_thread_when_the_stream_fails_is_reported_once(
    after: list[Any],
) -> None:
    inside, release = threading.Event(), threading.Event()
    stream = Stream(
        pf.backpressure("block", batch_size=1),
        held_transform(inside, release),
        *after,
    )
    ledger = Ledger(stream)
    assert stream.send("held", CTX).ok
    assert inside.wait(5.0)  # the drain thread is handing "held" to the transform
    assert stream.send("queued", CTX).ok  # waits in the buffer
    stream.fail(RuntimeError("upstream broke"))
    release.set()
    with pytest.raises(RuntimeError, match="upstream broke"):
        stream.join(5.0)
    ledger.assert_exactly_once(["held", "queued"])
    assert {d.reason for d in ledger.dropped} <= {"failed", "disposed"}
    snap = stream.metrics()
    assert snap.received == 2 == snap.emitted + snap.dropped


def test_a_list_mid_delivery_on_a_drain_thread_when_the_stream_fails_is_reported_once() -> None:
    # The drain hands a turn to results as one list (through metrics_tap): a subscriber
    # holds it while the stream fails.
    inside, release = threading.Event(), threading.Event()
    stream = Stream(pf.backpressure("block", batch_size=10), pf.metrics_tap())
    ledger = Ledger(stream)

    def hold(env: pfrx.Envelope) -> None:
        if env.event == 0:
            inside.set()
            assert release.wait(5.0)

    stream.results.subscribe(hold)
    assert stream.send_many(list(range(5)), CTX) == [pfrx.SendResult(True)] * 5
    assert inside.wait(5.0)
    stream.fail(RuntimeError("upstream broke"))
    release.set()
    with pytest.raises(RuntimeError, match="upstream broke"):
        stream.join(5.0)
    deadline = time.monotonic() + 5.0
    while not ledger.ends and time.monotonic() < deadline:  # results ends after the list
        time.sleep(0.005)
    assert ledger.ends == ["error:RuntimeError"]
    ledger.assert_exactly_once(list(range(5)))


@pytest.mark.parametrize("end", ["close", "fail"])
def test_the_drain_thread_of_a_backpressure_stage_ends_with_the_stream(end: str) -> None:
    stream = Stream(pf.backpressure("block"), pf.metrics_tap())
    drains: set[int] = set()
    stream.results.subscribe(lambda _: drains.add(threading.get_ident()))
    assert stream.send_many(list(range(10)), CTX) == [pfrx.SendResult(True)] * 10
    deadline = time.monotonic() + 5.0
    while not drains and time.monotonic() < deadline:
        time.sleep(0.005)
    if end == "close":
        stream.close()
        assert stream.join(5.0)
    else:
        stream.fail(RuntimeError("stop"))
        with pytest.raises(RuntimeError):
            stream.join(5.0)
    (drain,) = drains
    while time.monotonic() < deadline and any(t.ident == drain for t in threading.enumerate()):
        time.sleep(0.005)
    assert not any(t.ident == drain for t in threading.enumerate()), "the drain thread is parked"
