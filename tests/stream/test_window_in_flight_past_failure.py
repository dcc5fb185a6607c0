"""Regression (was a known bug, kept in /work/wt/keep): a Window in flight past the failure
point when a stream finishes lost the items absorbed into it before the held one.

A drain thread hands item 1 to window_count(2), which completes the window (0, 1) and hands
it to a later raw operator that is slow; meanwhile the stream fails (``fail()`` from outside).
The finish waited for no operator past the failure point and reported only what the
boundary held (item 1, "failed"); the Window carrying item 0 came out after `results` and
`dropped` had ended, into a deaf observer: item 0 was neither delivered nor dropped. Now the
finish waits for that hand-over (bounded) and the boundary after the slow operator reports
the late Window as dropped ("failed") while `dropped` is still open."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from reactivex import Observable

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger

pytestmark = pytest.mark.threads


def slow_after(inside: threading.Event) -> Any:
    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                inside.set()
                time.sleep(0.3)
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def test_items_inside_a_window_in_flight_when_the_stream_fails_are_not_lost() -> None:
    inside = threading.Event()
    stream = Stream(pf.backpressure("block", buffer_size=8), pf.window_count(2), slow_after(inside))
    ledger = Ledger(stream)
    assert all(r.ok for r in stream.send_many([0, 1], CTX))
    assert inside.wait(1.5)  # the window (0, 1) is past window_count, in the slow operator
    stream.fail(RuntimeError("outside"))
    with pytest.raises(RuntimeError):
        stream.join(1.5)
    time.sleep(0.5)
    with ledger.lock:
        seen = [
            e.event
            for value in ledger.delivered
            for e in (value.items if isinstance(value, pfrx.Window) else [])
        ]
        for record in ledger.dropped:
            item = record.item
            if isinstance(item, pfrx.Window):
                seen.extend(e.event for e in item.items)
            else:
                seen.append(item.event)
    assert sorted(seen) == [0, 1]  # was [1]: item 0 went with the window after the end
