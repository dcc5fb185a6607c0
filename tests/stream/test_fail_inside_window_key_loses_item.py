"""Regression (was a known bug, kept in /work/wt/keep): fail() called from a window_session key
function (a user function on the sending thread) lost the item being keyed: accepted
(ok=True), never delivered nor dropped.

Same with send and send_many. fail() disposes the pipeline first; the window_session then
took the item after its key returned and kept it in a session nobody would emit (it was
disposed), and the input counted it accepted once on_next returned. The ledger read:
received 2, emitted 0, dropped 1 (item 0 'disposed'); item 1 missing. Now the window
reports it too ('disposed'), as a transform's item coming out after the stop is reported
('failed'). Every timed window and function: test_fail_inside_window_functions_kfault.py."""

from __future__ import annotations

from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger

pytestmark = pytest.mark.threads


@pytest.mark.parametrize("mode", ["send", "send_many"])
def test_fail_from_a_window_key_function_loses_nothing(mode: str) -> None:
    box: dict[str, Any] = {}

    def key(envelope: pfrx.Envelope) -> str:
        if envelope.event == 1 and "failed" not in box:
            box["failed"] = True
            box["stream"].fail(RuntimeError("from inside"))
        return "k"

    stream = Stream(pf.window_session(100.0, key=key))
    box["stream"] = stream
    ledger = Ledger(stream)
    if mode == "send":
        results = [stream.send(i, CTX) for i in range(3)]
    else:
        results = stream.send_many(range(3), CTX)
    with pytest.raises(RuntimeError):
        stream.join(1.0)
    accepted = [i for i, r in zip(range(3), results, strict=True) if r.ok]
    assert accepted == [0, 1]
    seen = [
        e.event for w in ledger.delivered for e in (w.items if isinstance(w, pfrx.Window) else [])
    ] + ledger.dropped_events()
    snapshot = stream.metrics()
    assert sorted(seen) == accepted  # was [0]: item 1 vanished
    assert snapshot.received == snapshot.emitted + snapshot.dropped
