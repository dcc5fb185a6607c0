"""A window operator never keeps an item that reaches it once it takes no more.

A stream that fails lets go of its pipeline while other threads (or the very function
being called) may still hand items on: an item that reaches a window after its disposal is
one ``Dropped`` with reason ``"disposed"``, like the items the window held then, and a
watermark is forgotten. A timed window restored from a checkpoint taken after its input
ended takes no item either: each is one ``Dropped`` with reason ``"completed"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observable
from reactivex.disposable import Disposable

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

CTX = pfrx.Context("alice", "s1")


class _Captured:
    """A source that keeps the ``on_next`` it was subscribed with, as a thread still inside
    the pipeline does: calling it after the dispose reaches the operator."""

    def __init__(self) -> None:
        self.on_next: Callable[[Any], None] | None = None

    def observable(self) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            self.on_next = observer.on_next
            return Disposable()

        return Observable(subscribe)

    def push(self, value: Any) -> None:
        assert self.on_next is not None
        self.on_next(value)


def _env(event: Any, at: float = 0.0) -> pfrx.Envelope:
    return pfrx.Envelope(event, CTX, at)


WINDOWS: dict[str, Callable[..., Any]] = {
    "count": lambda **kw: pf.window_count(3, **kw),
    "count_sliding": lambda **kw: pf.window_count(3, slide=1, **kw),
    "session": lambda **kw: pf.window_session(100.0, **kw),
    "session_event": lambda **kw: pf.window_session(100.0, timestamp=lambda e: e.timestamp, **kw),
    "time": lambda **kw: pf.window_time(100.0, **kw),
    "time_event": lambda **kw: pf.window_time(100.0, timestamp=lambda e: e.timestamp, **kw),
    "time_per_key": lambda **kw: pf.window_time(
        100.0,
        key=lambda e: "k",
        timestamp=lambda e: e.timestamp,
        watermark="per_key",
        **kw,
    ),
}


@pytest.mark.parametrize("metrics", [False, True])
@pytest.mark.parametrize("kind", sorted(WINDOWS))
def test_an_item_reaching_a_disposed_window_is_dropped_once(kind: str, metrics: bool) -> None:
    drops: list[pfrx.Dropped] = []
    seen: list[Any] = []
    extra: dict[str, Any] = {"metrics": pfrx.StreamMetrics()} if metrics else {}
    source = _Captured()
    subscription = (
        source.observable()
        .pipe(WINDOWS[kind](on_drop=drops.append, **extra))
        .subscribe(seen.append)
    )
    held = _env("held")
    source.push(held)
    subscription.dispose()
    assert [(d.item, d.reason) for d in drops] == [(held, "disposed")]
    late = _env("late", 1.0)
    source.push(late)
    source.push(pfrx.Watermark(500.0))  # no item: forgotten, never a drop
    assert not seen
    assert [(d.item, d.reason) for d in drops] == [(held, "disposed"), (late, "disposed")]
    assert {d.operator for d in drops} == {
        "window_count" if "count" in kind else f"window_{kind.split('_')[0]}"
    }
    if metrics:
        snapshot = extra["metrics"].snapshot()
        assert snapshot.dropped == 2
        assert dict(snapshot.drops_by_reason) == {"disposed": 2}


@pytest.mark.parametrize("kind", ["session", "session_event", "time", "time_event"])
def test_a_timed_window_restored_after_its_input_ended_drops_each_item(kind: str) -> None:
    first = Stream(WINDOWS[kind]())
    assert first.send("before", CTX).ok
    first.close()
    assert first.join(2.0)
    checkpoint = first.checkpoint()
    restored = Stream(WINDOWS[kind](), restore=checkpoint)
    drops: list[pfrx.Dropped] = []
    seen: list[Any] = []
    restored.dropped.subscribe(drops.append)
    restored.results.subscribe(seen.append)
    assert restored.send("after", CTX).ok
    assert restored.send_watermark(1e9).ok  # no item: forgotten
    restored.close()
    assert restored.join(2.0)
    assert not seen
    assert [(d.item.event, d.reason) for d in drops] == [("after", "completed")]
    snapshot = restored.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (1, 0, 1)
