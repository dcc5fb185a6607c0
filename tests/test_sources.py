"""``pfrx.envelopes``: observables of envelopes from plain events."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler
from reactivex.testing import TestScheduler

import pfrx
from pfrx import Context, Envelope

ALICE = Context("alice", "s1")


def test_wraps_each_event_with_the_context_in_order() -> None:
    out = pfrx.envelopes(["a", "b", "c"], ALICE).pipe(ops.to_list()).run()
    assert [e.event for e in out] == ["a", "b", "c"]
    assert all(isinstance(e, Envelope) and e.context is ALICE for e in out)
    assert all(isinstance(e.timestamp, float) for e in out)


def test_empty_events_complete_at_once() -> None:
    seen: list[str] = []
    pfrx.envelopes([], ALICE).subscribe(
        on_next=lambda _: seen.append("next"), on_completed=lambda: seen.append("completed")
    )
    assert seen == ["completed"]


def test_timestamps_come_from_the_given_scheduler() -> None:
    scheduler = TestScheduler()
    got: list[Envelope] = []
    scheduler.advance_to(42.0)
    pfrx.envelopes(["x", "y"], ALICE, scheduler=scheduler).subscribe(got.append)
    assert got == []  # nothing happens until the scheduler runs
    scheduler.start()
    assert [(e.event, e.timestamp) for e in got] == [("x", 42.0), ("y", 42.0)]


def test_the_subscribe_scheduler_is_used_when_none_is_given() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(7.0)
    got: list[Envelope] = []
    pfrx.envelopes(["x"], ALICE).subscribe(got.append, scheduler=scheduler)
    assert got == []
    scheduler.start()
    assert [(e.event, e.timestamp) for e in got] == [("x", 7.0)]


def test_the_given_scheduler_wins_over_the_subscribe_scheduler() -> None:
    mine, theirs = TestScheduler(), TestScheduler()
    mine.advance_to(5.0)
    got: list[Envelope] = []
    pfrx.envelopes(["x"], ALICE, scheduler=mine).subscribe(got.append, scheduler=theirs)
    theirs.start()
    assert got == []
    mine.start()
    assert [e.timestamp for e in got] == [5.0]


def test_events_are_read_lazily_once_per_subscription() -> None:
    reads: list[int] = []

    def events() -> Iterator[int]:
        for i in range(3):
            reads.append(i)
            yield i

    generated = events()
    source = pfrx.envelopes(generated, ALICE)
    assert reads == []
    assert [e.event for e in source.pipe(ops.to_list()).run()] == [0, 1, 2]
    # a generator is exhausted after one subscription; a list is read again
    assert source.pipe(ops.to_list()).run() == []
    listed = pfrx.envelopes([1, 2], ALICE)
    assert listed.pipe(ops.count()).run() == 2
    assert listed.pipe(ops.count()).run() == 2


def test_disposal_stops_an_infinite_iterable() -> None:
    out = pfrx.envelopes(itertools.count(), ALICE).pipe(ops.take(3), ops.to_list()).run()
    assert [e.event for e in out] == [0, 1, 2]


def test_a_failing_iterable_becomes_on_error() -> None:
    def events() -> Iterator[str]:
        yield "ok"
        raise RuntimeError("source broke")

    got: list[Any] = []
    errors: list[Exception] = []
    pfrx.envelopes(events(), ALICE).subscribe(got.append, errors.append)
    assert [e.event for e in got] == ["ok"]
    assert [str(e) for e in errors] == ["source broke"]


def test_the_context_must_be_a_context() -> None:
    with pytest.raises(TypeError, match=r"context must be a pfrx\.Context, not str"):
        pfrx.envelopes(["a"], "alice")  # type: ignore[arg-type]


def test_composes_with_merge_and_keeps_each_context() -> None:
    bob = Context("bob")
    merged = reactivex.merge(pfrx.envelopes(["a"], ALICE), pfrx.envelopes(["b"], bob))
    out = merged.pipe(ops.to_list()).run()
    assert sorted((e.event, e.context.user_id) for e in out) == [("a", "alice"), ("b", "bob")]


@pytest.mark.threads
def test_runs_on_a_thread_scheduler() -> None:
    loop = EventLoopScheduler()
    done = threading.Event()
    threads: set[int] = set()
    got: list[Any] = []

    def on_next(envelope: Envelope) -> None:
        threads.add(threading.get_ident())
        got.append(envelope.event)

    try:
        pfrx.envelopes(range(100), ALICE, scheduler=loop).subscribe(on_next, on_completed=done.set)
        assert done.wait(5)
    finally:
        loop.dispose()
    assert got == list(range(100))
    assert threads and threading.get_ident() not in threads


def test_batches_emits_prebuilt_items_one_by_one_to_plain_subscribers() -> None:
    ctx = Context("alice")
    items = [pfrx.Envelope(i, ctx, 0.0) for i in range(5)]
    assert pfrx.sources.batches(items, 2).pipe(ops.to_list()).run() == items
    with pytest.raises(ValueError, match="size must be at least 1"):
        pfrx.sources.batches(items, 0)


def test_disposal_stops_a_batched_source_between_items() -> None:
    ctx = Context("alice")
    seen: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    pfrx.envelopes(endless(), ctx, batch=8).pipe(ops.take(3)).subscribe(
        lambda e: seen.append(e.event)
    )
    assert seen == [0, 1, 2]
