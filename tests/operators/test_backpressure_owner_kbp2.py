"""backpressure's owner token and its waiting producers, stated exactly (issue 12).

One thing delivers at a time: the scheduled drain, or a ``block`` producer that may not wait
and delivers the oldest items itself. A drain turn that comes due while someone else
delivers does nothing; a producer that waits asks for exactly one drain; a producer's
wait ends at its deadline, or when the drain makes room. A `Manual` scheduler holds each
drain action until the test runs it, on the thread it picks, so every interleaving here is
exact.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from reactivex.subject import Subject

import pfrx
from pfrx import operators as pf

from ._drain_kit_kbp2 import Manual, Outcome, Recorder, bounded

pytestmark = pytest.mark.threads


def block(sched: Manual, rec: Recorder, **options: Any) -> Subject[Any]:
    """A subject feeding ``backpressure("block")`` on ``sched``, delivered to ``rec``."""
    subject: Subject[Any] = Subject()
    subject.pipe(pf.backpressure("block", scheduler=sched, **options)).subscribe(
        rec.on_next, rec.on_error, rec.on_completed
    )
    return subject


def test_a_drain_turn_due_while_a_producer_delivers_inline_does_nothing() -> None:
    sched, rec = Manual(), Recorder()
    subject = block(sched, rec, buffer_size=2, batch_size=1, timeout=1.0)
    subject.on_next("a")
    assert sched.run_all() == 1  # the drain ran on this thread: a producer here may not wait
    subject.on_next("b")
    subject.on_next("c")
    assert len(sched.pending) == 1  # one turn due
    # While this thread delivers b itself, the due turn runs on another thread: the
    # producer holds the drain, so the turn must leave c alone (and return).
    rec.hooks["b"] = lambda: bounded(sched.run_all)
    subject.on_next("d")  # the buffer is full: this thread delivers b, then d finds room
    assert rec.log == Recorder.flat(["a", "b"])
    assert len(sched.pending) == 1  # the turn that did nothing is due again
    sched.run_all()
    assert rec.log == Recorder.flat(list("abcd"))


def test_a_producer_on_the_drain_thread_delivers_inside_the_turn_and_schedules_nothing() -> None:
    sched, rec = Manual(), Recorder()
    subject = block(sched, rec, buffer_size=1, batch_size=1, timeout=1.0)
    due_inside: list[int] = []

    def inside_a() -> None:
        subject.on_next("x")  # room: it waits in the buffer
        subject.on_next("y")  # full: this thread (the drain's) delivers x itself
        due_inside.append(len(sched.pending))
        bounded(sched.run_all)  # nothing is due: the turn still holds the drain

    rec.hooks["a"] = inside_a
    subject.on_next("a")
    sched.run_all()
    assert due_inside == [0]
    assert rec.log == [
        ("start", "a"),
        ("start", "x"),
        ("end", "x"),
        ("end", "a"),
        ("start", "y"),
        ("end", "y"),
    ]
    assert rec.ends == []


def test_an_inline_producer_delivers_what_the_turn_holds_before_the_buffer() -> None:
    sched, rec = Manual(), Recorder()
    subject = block(sched, rec, buffer_size=2, batch_size=2, timeout=1.0)
    rec.hooks["a"] = lambda: [subject.on_next(item) for item in "xyz"]
    subject.on_next("a")
    subject.on_next("b")
    sched.run_all()  # the turn holds a and b; z finds x and y waiting: b is older
    assert rec.items == list("abxyz")
    assert rec.log[:6] == [
        ("start", "a"),
        ("start", "b"),
        ("end", "b"),
        ("start", "x"),
        ("end", "x"),
        ("end", "a"),
    ]


def test_a_producer_waiting_while_a_turn_delivers_schedules_no_second_drain() -> None:
    sched, rec = Manual(), Recorder()
    subject = block(sched, rec, buffer_size=1, batch_size=1, timeout=0.2)
    seen: dict[str, Any] = {}

    def inside_a() -> None:
        producer = Outcome(lambda: (subject.on_next("p1"), subject.on_next("p2")), "producer")
        seen["ended"] = producer.join(5.0)
        seen["error"] = producer.error
        seen["due"] = len(sched.pending)

    rec.hooks["a"] = inside_a
    subject.on_next("a")
    sched.run_all()
    assert seen["ended"]
    # p1 found room; p2 waited for the turn holding the drain, in vain (0.2 s)
    assert isinstance(seen["error"], pfrx.BackpressureTimeout)
    assert (seen["error"].timeout, seen["error"].item) == (0.2, "p2")
    assert seen["due"] == 0  # the running turn schedules the next one itself
    assert rec.items == ["a", "p1"]


def test_a_producer_waiting_for_a_due_drain_asks_for_no_other() -> None:
    sched, rec = Manual(), Recorder()
    subject = block(sched, rec, buffer_size=1, timeout=0.05)
    subject.on_next("a")  # a drain is due
    with pytest.raises(pfrx.BackpressureTimeout) as raised:
        subject.on_next("b")  # full; this thread may wait (no drain ran here): in vain
    assert (raised.value.timeout, raised.value.item) == (0.05, "b")
    assert len(sched.pending) == 1
    sched.run_all()
    assert rec.items == ["a"]


def test_a_blocked_producer_times_out_when_the_clock_reaches_its_deadline() -> None:
    reads: list[int] = []

    def clock() -> float:  # the deadline is read at 100.0; every later read is the deadline
        reads.append(1)
        return 100.0 if len(reads) == 1 else 100.5

    sched, rec = Manual(clock=clock), Recorder()
    subject: Subject[Any] = Subject()
    lost: list[pfrx.Dropped] = []
    subscription = subject.pipe(
        pf.backpressure("block", buffer_size=1, timeout=0.5, scheduler=sched, on_drop=lost.append)
    ).subscribe(rec.on_next)
    subject.on_next("a")
    producer = Outcome(lambda: subject.on_next("b"), "producer")
    ended = producer.join(2.0)
    subscription.dispose()  # ends a producer still waiting
    assert ended, "the producer kept waiting at its deadline"
    assert isinstance(producer.error, pfrx.BackpressureTimeout)
    assert producer.error.item == "b"
    assert [(d.item, d.reason) for d in lost] == [("a", "disposed")]  # b was never taken


def test_a_waiting_producer_is_woken_after_another_one_gave_up() -> None:
    # p2 waits (10 s on its clock); p1 waits after it and gives up at its deadline. The
    # drain then makes room: p2 must be woken at once, not left to its own deadline.
    times = {"p1": [0.0, 9.95, 10.0], "p2": [0.0]}
    p2_waits = threading.Event()

    def clock() -> float:
        name = threading.current_thread().name
        seq = times.get(name)
        if seq is None:
            return 0.0
        if name == "p2":
            p2_waits.set()  # read under the buffer's lock, just before p2 waits
        return seq.pop(0) if len(seq) > 1 else seq[0]

    sched, rec = Manual(clock=clock), Recorder()
    subject: Subject[Any] = Subject()
    subscription = subject.pipe(
        pf.backpressure("block", buffer_size=1, batch_size=1, timeout=10.0, scheduler=sched)
    ).subscribe(rec.on_next)
    subject.on_next("a")  # a drain is due
    p2 = Outcome(lambda: subject.on_next("b"), "p2")
    assert p2_waits.wait(5.0)
    p1 = Outcome(lambda: subject.on_next("c"), "p1")  # gets the lock once p2 waits
    assert p1.join(5.0)
    assert isinstance(p1.error, pfrx.BackpressureTimeout)
    sched.run_all()  # the turn takes a: room for b
    woken = p2.join(2.0)
    if not woken:
        subscription.dispose()
    assert woken, "the drain made room but p2 was not woken"
    assert p2.returned
    sched.run_all()
    assert rec.items == ["a", "b"]


class Abort(BaseException):
    """Not an ``Exception``: the buffer does not catch it (as with ``KeyboardInterrupt``)."""


def test_a_producer_finding_the_buffer_full_with_no_drain_due_schedules_one() -> None:
    # An inline delivery broken off by a BaseException leaves the buffer full, nobody
    # delivering and no drain due (the turn that came due meanwhile did nothing): the next
    # producer that may wait must schedule a drain itself, once, then wait for it.
    sched, rec = Manual(), Recorder()
    metrics = pfrx.StreamMetrics()
    subject = block(sched, rec, buffer_size=2, batch_size=1, timeout=2.0, metrics=metrics)
    subject.on_next("a")
    sched.run_all()  # the drain ran on this thread: a producer here may not wait
    subject.on_next("b")
    subject.on_next("c")

    def inside_b() -> None:
        bounded(sched.run_all)  # the due turn finds b being delivered: it does nothing
        filler = Outcome(lambda: subject.on_next("p1"), "filler")  # takes b's place
        assert filler.join(5.0)
        raise Abort

    rec.hooks["b"] = inside_b
    with pytest.raises(Abort):
        subject.on_next("d")  # full: this thread delivers b itself, and b's delivery aborts
    assert sched.pending == []
    waiter = Outcome(lambda: subject.on_next("e"), "waiter")  # finds [c, p1]: full
    scheduled = bounded(lambda: wait_until(lambda: len(sched.pending) == 1))
    assert scheduled, "the waiting producer scheduled no drain"
    assert waiter.thread.is_alive()  # it waits for that drain ...
    sched.run_all()  # ... which makes room
    assert waiter.join(5.0)
    assert waiter.returned
    sched.run_all()
    assert rec.items == ["a", "b", "c", "p1", "e"]
    assert metrics.snapshot().info["backpressure.drain"]["peak_buffered"] == 2


def wait_until(condition: Any, seconds: float = 1.5) -> bool:
    deadline = threading.Event()
    for _ in range(int(seconds / 0.005)):
        if condition():
            return True
        deadline.wait(0.005)
    return bool(condition())
