"""A stream failed from inside a window operator's own user function (``key=`` or
``timestamp=``) loses nothing: the item being keyed or timed was accepted, and the window
operator, disposed by the failure while it was reading that function, reports it as one
``Dropped`` ("disposed") instead of keeping it in a window nobody will ever emit.

Every timed window state is covered (sessions and time windows, processing and event time,
the shared and the per-key watermark), through ``send`` and ``send_many``, with the failure
coming from the key or the timestamp function. The same on a drain thread (the function
runs on a backpressure drain, past the failure point) and from a results subscriber.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger

pytestmark = pytest.mark.threads

Fn = Callable[[pfrx.Envelope], Any]


def _operators(kind: str, key: Fn, timestamp: Fn) -> Any:
    """A window operator of ``kind`` using ``key`` and/or ``timestamp``."""
    if kind == "session":
        return pf.window_session(100.0, key=key)
    if kind == "session_event":
        return pf.window_session(100.0, key=key, timestamp=timestamp)
    if kind == "time":
        return pf.window_time(100.0, key=key)
    if kind == "time_event":
        return pf.window_time(100.0, key=key, timestamp=timestamp)
    assert kind == "time_per_key"
    return pf.window_time(100.0, key=key, timestamp=timestamp, watermark="per_key")


CASES = [
    ("session", "key"),
    ("session_event", "key"),
    ("session_event", "timestamp"),
    ("time", "key"),
    ("time_event", "key"),
    ("time_event", "timestamp"),
    ("time_per_key", "key"),
    ("time_per_key", "timestamp"),
]


def _failing(box: dict[str, Any], which: str) -> tuple[Fn, Fn]:
    """A key and a timestamp function; the one named ``which`` fails the stream on event 1."""

    def maybe_fail(envelope: pfrx.Envelope, role: str) -> None:
        if role == which and envelope.event == 1 and "failed" not in box:
            box["failed"] = True
            box["stream"].fail(RuntimeError("from inside"))

    def key(envelope: pfrx.Envelope) -> str:
        maybe_fail(envelope, "key")
        return "k"

    def timestamp(envelope: pfrx.Envelope) -> float:
        maybe_fail(envelope, "timestamp")
        return float(envelope.event)

    return key, timestamp


def _seen(ledger: Ledger) -> list[Any]:
    with ledger.lock:
        events = [
            e.event
            for value in ledger.delivered
            for e in (value.items if isinstance(value, pfrx.Window) else [value])
        ]
        for record in ledger.dropped:
            item = record.item
            events.extend(
                e.event for e in (item.items if isinstance(item, pfrx.Window) else [item])
            )
    return events


@pytest.mark.parametrize("mode", ["send", "send_many"])
@pytest.mark.parametrize(("kind", "which"), CASES)
def test_fail_from_a_window_function_on_the_sending_thread_loses_nothing(
    kind: str, which: str, mode: str
) -> None:
    box: dict[str, Any] = {}
    key, timestamp = _failing(box, which)
    stream = Stream(_operators(kind, key, timestamp))
    box["stream"] = stream
    ledger = Ledger(stream)
    if mode == "send":
        results = [stream.send(i, CTX) for i in range(3)]
    else:
        results = stream.send_many(range(3), CTX)
    with pytest.raises(RuntimeError, match="from inside"):
        stream.join(1.0)
    assert stream.done
    assert [r.ok for r in results] == [True, True, False]
    assert sorted(_seen(ledger)) == [0, 1]
    with ledger.lock:
        assert {(d.item.event, d.reason) for d in ledger.dropped} == {
            (0, "disposed"),
            (1, "disposed"),
        }
    snapshot = stream.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (2, 0, 2)


@pytest.mark.parametrize(("kind", "which"), CASES)
def test_fail_from_a_window_function_on_a_drain_thread_loses_nothing(kind: str, which: str) -> None:
    # The window runs on a backpressure drain (past the failure point of a fail()): the
    # stream finishes once the drain is out of the window, the keyed item reported.
    box: dict[str, Any] = {}
    key, timestamp = _failing(box, which)
    stream = Stream(pf.backpressure("block", buffer_size=8), _operators(kind, key, timestamp))
    box["stream"] = stream
    ledger = Ledger(stream)
    results = stream.send_many(range(4), CTX)
    assert all(r.ok for r in results)
    with pytest.raises(RuntimeError, match="from inside"):
        stream.join(2.0)
    assert stream.done
    assert sorted(_seen(ledger)) == [0, 1, 2, 3]
    snapshot = stream.metrics()
    assert snapshot.received == 4 == snapshot.emitted + snapshot.dropped


@pytest.mark.parametrize("kind", ["session", "time"])
def test_fail_from_another_thread_while_a_key_function_holds_the_drain_loses_nothing(
    kind: str,
) -> None:
    # The drain is inside the key function with item 1 when another thread fails the
    # stream: that thread's dispose waits for the window's lock, the window takes item 1,
    # then reports it with the others; the stream is not done before the drain is out.
    inside, release = threading.Event(), threading.Event()

    def key(envelope: pfrx.Envelope) -> str:
        if envelope.event == 1:
            inside.set()
            assert release.wait(2.0)
        return "k"

    window = (
        pf.window_session(100.0, key=key) if kind == "session" else pf.window_time(100.0, key=key)
    )
    stream = Stream(pf.backpressure("block", buffer_size=8), window)
    ledger = Ledger(stream)
    assert all(r.ok for r in stream.send_many(range(3), CTX))
    assert inside.wait(2.0)
    failer = threading.Thread(target=lambda: stream.fail(RuntimeError("outside")), daemon=True)
    failer.start()
    failer.join(0.1)
    assert not stream.done  # the drain is still inside the window with item 1
    release.set()
    failer.join(2.0)
    with pytest.raises(RuntimeError, match="outside"):
        stream.join(2.0)
    assert stream.done
    assert sorted(_seen(ledger)) == [0, 1, 2]
    snapshot = stream.metrics()
    assert snapshot.received == 3 == snapshot.emitted + snapshot.dropped
