"""Issue 12: results gathered while a ``send_many`` batch is handed over are published when
the batch is in, before any drop reported on the batch's own thread, and a drop reported on
another thread meanwhile does not publish them early (from that other thread).

The other thread's drop is provoked deterministically: an operator with a side door (it
forwards what is pushed through it from any thread, as an operator with its own thread
does) lets the test push an item that ``transform`` rejects while the batch's thread waits
inside ``transform`` on an event.
"""

from __future__ import annotations

import threading
from typing import Any

from reactivex import Observable

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

ALICE = pfrx.Context("alice", "s1")


def _side_door(doors: list[Any]) -> Any:
    """A pass-through (not fused) that also forwards what is pushed into ``doors[0]``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            doors.append(observer.on_next)
            return source.subscribe(
                observer.on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def test_a_drop_on_another_thread_leaves_the_gathered_results_to_the_batch() -> None:
    inside, release = threading.Event(), threading.Event()
    batch_thread: list[str] = []

    def fn(event: str, _context: pfrx.Context) -> Any:
        if event == "y":
            batch_thread.append(threading.current_thread().name)
            inside.set()
            assert release.wait(10)
        return pfrx.Reject("not this one") if event == "r" else event

    doors: list[Any] = []
    stream = Stream(_side_door(doors), pf.transform(fn), name="s")
    log: list[tuple[str, str, str]] = []
    stream.results.subscribe(
        lambda v: log.append(("result", v.event, threading.current_thread().name))
    )
    stream.dropped.subscribe(
        lambda d: log.append(("drop", d.item.event, threading.current_thread().name))
    )
    sent: list[list[bool]] = []
    batch = threading.Thread(
        target=lambda: sent.append([r.ok for r in stream.send_many(["x", "y"], ALICE)]),
        name="batch",
    )
    batch.start()
    assert inside.wait(10)  # "x" is gathered, "y" is inside transform
    (door,) = doors
    door(pfrx.Envelope("r", ALICE, 0.0))  # rejected on this thread, while the batch waits
    assert log == [("drop", "r", "MainThread")]
    release.set()
    batch.join(10)
    assert sent == [[True, True]]
    assert batch_thread == ["batch"]
    assert log == [
        ("drop", "r", "MainThread"),
        ("result", "x", "batch"),
        ("result", "y", "batch"),
    ]
    snapshot = stream.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (2, 2, 1)


def test_a_drop_on_the_batch_thread_comes_after_the_results_gathered_before_it() -> None:
    stream = Stream(pf.transform(lambda e, _c: pfrx.Reject("odd") if e % 2 else e), name="s")
    log: list[tuple[str, int]] = []
    stream.results.subscribe(lambda v: log.append(("result", v.event)))
    stream.dropped.subscribe(lambda d: log.append(("drop", d.item.event)))
    assert all(r.ok for r in stream.send_many([0, 2, 3, 4], ALICE))
    assert log == [("result", 0), ("result", 2), ("drop", 3), ("result", 4)]
