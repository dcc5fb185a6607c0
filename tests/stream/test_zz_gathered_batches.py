"""Issue 12: results gathered while a ``send_many`` batch is handed over are published when
the batch is in, before any drop reported on the batch's own thread, and a drop reported on
another thread meanwhile does not publish them early (from that other thread).

The other thread's drop is provoked deterministically: an operator with a side door (it
forwards what is pushed through it from any thread, as an operator with its own thread
does) lets the test push an item that ``transform`` rejects while the batch's thread waits
inside ``transform`` on an event. The same door lets a test break an operator from the main
thread while a sender waits between two effects of one event.
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


class _TwoEffects:
    """A processor that turns each event into two effects, ``event + "1"`` and ``+ "2"``."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: str, _context: pfrx.Context, state: int) -> pfrx.Ok:
        return pfrx.Ok(state, effects=(event + "1", event + "2"))


def test_an_effect_reaching_the_end_after_the_stream_failed_is_dropped_as_itself() -> None:
    # The sender's thread waits between the two effects of "a" (in a results subscriber)
    # while the main thread breaks the second operator through the side door: the stream
    # fails, and, while it is failing, lets the sender go on. Its second effect reaches the
    # end of the pipeline after the failure: it is dropped as failed, carrying that effect.
    def raising(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event == "bad":
                    raise KeyError("broken")
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    doors: list[Any] = []
    stream = Stream(_side_door(doors), raising, pf.process(_TwoEffects()), name="s")
    between, release, second_dropped = threading.Event(), threading.Event(), threading.Event()
    results: list[str] = []
    drops: list[tuple[Any, str, str]] = []

    def on_result(value: Any) -> None:
        results.append(value.event)
        if value.event == "a1":
            between.set()
            assert release.wait(10)

    def on_drop(record: pfrx.Dropped) -> None:
        drops.append((getattr(record.item, "event", record.item), record.reason, record.operator))
        if record.reason == "failed" and len(drops) == 2:
            second_dropped.set()

    stream.results.subscribe(on_result, lambda _e: None)
    stream.dropped.subscribe(on_drop)
    sender = threading.Thread(target=lambda: stream.send("a", ALICE), name="sender")
    sender.start()
    assert between.wait(10)

    def while_failing() -> None:
        release.set()
        assert second_dropped.wait(10)

    stream.when_closed(while_failing)
    (door, *_rest) = doors
    door(pfrx.Envelope("bad", ALICE, 0.0))
    sender.join(10)
    assert results == ["a1"]
    assert drops == [("bad", "failed", "stream"), ("a2", "failed", "stream")]
    assert stream.state == "failed"
