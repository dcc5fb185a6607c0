"""Issue 12: what ``backpressure`` does when it is built and subscribed, stated exactly: the
message of each argument it refuses, the drain thread it owns for a ``NewThreadScheduler``
(one for the subscription, ended with it), that lists are offered only inside a stream's
batch gate, the names its figures are published under, and the peak of a fresh buffer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from reactivex.scheduler import ImmediateScheduler, NewThreadScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.metrics import MAX_OPERATORS
from pfrx.stream import Stream

ALICE = pfrx.Context("alice", "s1")


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: pf.backpressure("nope"),
            ValueError,
            "unknown backpressure strategy 'nope'; choose one of "
            "drop_oldest, drop_newest, latest, block, error, adaptive",
        ),
        (
            lambda: pf.backpressure("latest", buffer_size="2"),
            TypeError,
            "buffer_size must be an int, not str '2'",
        ),
        (
            lambda: pf.backpressure(buffer_size=0),
            ValueError,
            "buffer_size must be at least 1, not 0",
        ),
        (
            lambda: pf.backpressure(batch_size=0),
            ValueError,
            "batch_size must be at least 1, not 0",
        ),
        (
            lambda: pf.backpressure("block", timeout=-1),
            ValueError,
            "timeout must be a finite positive duration of at most 2**31 s, not -1",
        ),
        (
            lambda: pf.backpressure("drop_oldest", timeout=1.0),
            ValueError,
            "timeout applies to the 'block' strategy only, not 'drop_oldest'",
        ),
        (
            lambda: pf.backpressure("adaptive", adaptive={}),
            TypeError,
            "adaptive must be an AdaptivePolicy, not dict",
        ),
        (
            lambda: pf.backpressure("drop_newest", adaptive=pf.AdaptivePolicy()),
            ValueError,
            "adaptive= applies to the 'adaptive' strategy only, not 'drop_newest'",
        ),
    ],
)
def test_each_refused_argument_is_named_in_the_message(
    build: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        build()
    assert str(caught.value) == message


def test_a_new_thread_scheduler_drains_on_one_thread_that_ends_with_the_subscription() -> None:
    # block with room for one item: each item waits for the drain, a turn per item.
    subject: Subject[int] = Subject()
    threads: list[threading.Thread] = []
    got: list[int] = []
    done = threading.Event()

    def take(value: int) -> None:
        threads.append(threading.current_thread())
        got.append(value)

    subject.pipe(
        pf.backpressure("block", buffer_size=1, batch_size=1, scheduler=NewThreadScheduler())
    ).subscribe(take, on_completed=done.set)
    for i in range(6):
        subject.on_next(i)
    subject.on_completed()
    assert done.wait(10)
    assert got == list(range(6))
    drain = threads[0]
    assert drain is not threading.current_thread()
    assert all(thread is drain for thread in threads)  # one thread, not one per turn
    drain.join(5)
    assert not drain.is_alive()  # released with the subscription


def test_outside_a_stream_a_buffer_takes_an_upstream_drain_item_by_item() -> None:
    # Without a stream's batch gate, b offers no list entry: a's drain hands it items one
    # at a time, so when b fails on overflow (and disposes a), the rest of a's turn is a's
    # to report, as disposed.
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    lost: list[tuple[int, str, str]] = []
    got: list[int] = []
    ends: list[Any] = []

    def drop(record: pfrx.Dropped) -> None:
        lost.append((record.item, record.reason, record.operator))

    subject.pipe(
        pf.backpressure("drop_oldest", buffer_size=10, scheduler=scheduler, on_drop=drop, name="a"),
        pf.backpressure("error", buffer_size=2, scheduler=scheduler, on_drop=drop, name="b"),
    ).subscribe(got.append, ends.append)
    for i in range(5):
        subject.on_next(i)
    scheduler.advance_by(1.0)
    assert lost == [(2, "overflow", "b"), (3, "disposed", "a"), (4, "disposed", "a")]
    assert got == [0, 1]
    assert len(ends) == 1
    assert isinstance(ends[0], pfrx.BackpressureOverflow)


def test_a_stream_with_a_drain_on_the_sending_thread_takes_a_batch_item_by_item() -> None:
    stream = Stream(pf.backpressure("drop_oldest", scheduler=ImmediateScheduler()), name="s")
    got: list[Any] = []
    stream.results.subscribe(lambda value: got.append(value.event))
    assert [r.ok for r in stream.send_many([1, 2, 3], ALICE)] == [True, True, True]
    assert got == [1, 2, 3]
    assert stream.state == "open"
    snapshot = stream.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (3, 3, 0)


def test_with_the_metrics_full_of_operators_the_figures_go_under_other() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    for i in range(MAX_OPERATORS):
        metrics.operator(f"op{i}")
    subject: Subject[int] = Subject()
    got: list[int] = []
    subject.pipe(
        pf.backpressure("drop_oldest", scheduler=scheduler, metrics=metrics, name="bp")
    ).subscribe(got.append)
    subject.on_next(1)
    scheduler.advance_by(1.0)
    assert got == [1]
    info = metrics.snapshot().info
    assert "other.drain" in info
    assert not any(key.startswith("bp.") for key in info)


def test_a_fresh_buffer_has_no_peak() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    subject.pipe(
        pf.backpressure("drop_oldest", buffer_size=4, scheduler=scheduler, metrics=metrics)
    ).subscribe(lambda _: None)
    snapshot = metrics.snapshot()
    assert (snapshot.buffered, snapshot.peak_buffer_utilization) == (0, 0.0)
    subject.on_next(1)
    assert metrics.snapshot().peak_buffer_utilization == 0.25
