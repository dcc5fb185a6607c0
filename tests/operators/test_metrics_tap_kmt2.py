"""Issue 12: metrics_tap stated exactly, per item and on the batch path (a drain's turn
handed on as one list): which metrics it counts into inside a stream, processing times,
the slowest share, and the rate bucket each item is dated in."""

from __future__ import annotations

from typing import Any

from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.metrics import OperatorSnapshot
from pfrx.stream import Stream

CTX = pfrx.Context("alice")


def _costly(stream: Stream, scheduler: TestScheduler, costs: dict[Any, float]) -> list[Any]:
    """Subscribe to ``stream``'s results a subscriber that takes ``costs[event]`` seconds of
    the scheduler's clock with each event; return what it saw."""
    seen: list[Any] = []

    def take(envelope: pfrx.Envelope) -> None:
        seen.append(envelope.event)
        scheduler.sleep(costs[envelope.event])

    stream.results.subscribe(take)
    return seen


# -- which metrics: the stream's, or its own ---------------------------------------------------


def test_inside_a_stream_without_metrics_it_adds_its_counts_and_timing_to_the_streams() -> None:
    s = TestScheduler()
    tap = pf.metrics_tap(name="tap")
    stream = Stream(tap, scheduler=s)
    _costly(stream, s, {1: 0.5, 2: 1.5, 3: 1.0})
    for event in (1, 2, 3):
        assert stream.send(event, CTX).ok
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (3, 3, 0, 0)
    assert snap.operators == (OperatorSnapshot("tap", 3, 3, 0, 0),)
    assert (snap.avg_processing_time, snap.max_processing_time) == (1.0, 1.5)
    # Its own metrics stay untouched: the stream's hold everything.
    own = tap.metrics.snapshot()
    assert (own.received, own.emitted, own.avg_processing_time, own.operators) == (0, 0, 0.0, ())


def test_inside_a_stream_with_metrics_given_it_counts_only_into_those() -> None:
    s = TestScheduler()
    given = pfrx.StreamMetrics(s)
    stream = Stream(pf.metrics_tap(given, name="tap"), scheduler=s)
    _costly(stream, s, {1: 2.0, 2: 1.0})
    for event in (1, 2):
        assert stream.send(event, CTX).ok
    mine = given.snapshot()
    assert (mine.received, mine.emitted, mine.dropped, mine.errors) == (2, 2, 0, 0)
    assert mine.operators == (OperatorSnapshot("tap", 2, 2, 0, 0),)
    assert (mine.avg_processing_time, mine.max_processing_time) == (1.5, 2.0)
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.operators) == (2, 2, ())
    assert (snap.avg_processing_time, snap.max_processing_time) == (0.0, 0.0)


# -- per item: timing and rate buckets ---------------------------------------------------------


def test_per_item_times_and_buckets_are_exact() -> None:
    # rate_interval 20 s: buckets 2 s wide. Items A at 3.0 and 3.5 (bucket [2, 4)), items B
    # from 4.0 exactly (the start of the next bucket: A is pushed out then) to 5.5.
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s, rate_interval=20.0)
    subject: Subject[str] = Subject()
    costs = {"a1": 0.5, "a2": 0.25, "b1": 0.75, "b2": 0.5, "b3": 0.5}
    subject.pipe(pf.metrics_tap(metrics, name="tap")).subscribe(lambda v: s.sleep(costs[v]))
    for at, item in ((3.0, "a1"), (3.5, "a2"), (4.0, "b1"), (5.0, "b2"), (5.5, "b3")):
        s.advance_to(at)
        subject.on_next(item)
    s.advance_to(21.0)  # the window: buckets [2, 22), A and B
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (5, 5, 0, 0)
    assert snap.operators == (OperatorSnapshot("tap", 5, 5, 0, 0),)
    assert snap.avg_processing_time == 2.5 / 5
    assert snap.max_processing_time == 0.75
    assert snap.recent_received == 5
    assert snap.recent_avg_processing_time == 2.5 / 5
    # A is dated at the middle of its bucket (3.0), which starts the rate: 5 items in 18 s.
    assert snap.input_rate == 5 / 18
    assert snap.processing_rate == 5 / 18
    s.advance_to(23.0)  # the window: buckets [4, 24), B only
    snap = metrics.snapshot()
    assert snap.recent_received == 3
    assert snap.recent_avg_processing_time == 1.75 / 3
    assert snap.input_rate == 3 / 20


# -- as lists: a drain's turn through the tap --------------------------------------------------


def _drained(metrics: pfrx.StreamMetrics, s: TestScheduler, costs: dict[Any, float]) -> Stream:
    stream = Stream(
        pf.backpressure("block", batch_size=100),
        pf.metrics_tap(metrics, name="tap"),
        scheduler=s,
    )
    _costly(stream, s, costs)
    return stream


def test_lists_from_a_drain_are_timed_as_one_and_dated_in_their_bucket() -> None:
    # Buckets 2 s wide. Turn A at 3.0 (2 items, 0.75 s: 0.375 each), turn B at 4.0 exactly
    # (the start of the next bucket: 3 items, 1.5 s: 0.5 each, the slowest share), turn C
    # at 5.5, in B's bucket (2 items, 0.75 s: more than 0.5 in all, less than it per item).
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s, rate_interval=20.0)
    costs = {"a1": 0.25, "a2": 0.5, "b1": 0.25, "b2": 0.5, "b3": 0.75, "c1": 0.25, "c2": 0.5}
    stream = _drained(metrics, s, costs)
    turns = ((3.0, ["a1", "a2"], 3.9), (4.0, ["b1", "b2", "b3"], 5.5), (5.5, ["c1", "c2"], 7.0))
    for at, turn, drained in turns:
        s.advance_to(at)
        for event in turn:
            assert stream.send(event, CTX).ok
        s.advance_to(drained)  # the drain runs at ``at``, taking the turn whole
    assert stream.metrics().emitted == 7
    s.advance_to(21.0)  # the window: buckets [2, 22), every turn
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (7, 7, 0, 0)
    assert snap.operators == (OperatorSnapshot("tap", 7, 7, 0, 0),)
    assert snap.avg_processing_time == 3.0 / 7
    assert snap.max_processing_time == 0.5
    assert snap.recent_received == 7
    assert snap.recent_avg_processing_time == 3.0 / 7
    assert snap.input_rate == 7 / 18  # since A, dated 3.0
    s.advance_to(23.0)  # the window: buckets [4, 24), B and C (dated 5.0)
    snap = metrics.snapshot()
    assert snap.recent_received == 5
    assert snap.recent_avg_processing_time == 2.25 / 5
    assert snap.input_rate == 5 / 20


def test_a_list_whose_share_equals_the_slowest_leaves_the_max_exactly_as_it_was() -> None:
    # 0.005615 * 3 is 0.016845 in floating point, and 0.016845 / 3 is not 0.005615: the
    # slowest share is only replaced by a larger one, never recomputed from an equal one.
    # Both turns lie in one rate bucket, so they reach the metrics together.
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    costs = dict.fromkeys(["a", "b1", "b2", "b3"], 0.005615)
    stream = _drained(metrics, s, costs)
    assert stream.send("a", CTX).ok
    s.advance_to(0.5)
    for event in ("b1", "b2", "b3"):
        assert stream.send(event, CTX).ok
    s.advance_to(0.9)
    snap = metrics.snapshot()
    assert snap.received == 4
    assert snap.max_processing_time == 0.005615


def test_a_send_many_batch_into_a_buffer_is_counted_once_per_item() -> None:
    # Before a buffer with room, the tap sees a send_many batch as one list (taken whole).
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    stream = Stream(pf.metrics_tap(metrics, name="tap"), pf.backpressure("block"), scheduler=s)
    seen: list[Any] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    s.advance_to(2.0)
    assert stream.send_many([1, 2, 3], CTX) == [pfrx.SendResult(True)] * 3
    assert stream.send_many([4, 5], CTX) == [pfrx.SendResult(True)] * 2
    s.advance_to(3.0)
    assert seen == [1, 2, 3, 4, 5]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted) == (5, 5)
    assert snap.operators == (OperatorSnapshot("tap", 5, 5, 0, 0),)
    assert snap.recent_received == 5


# -- the end: completion, disposal -------------------------------------------------------------


def test_counts_are_pushed_at_completion_before_downstream_hears_of_it() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    subject: Subject[int] = Subject()
    at_end: list[tuple[int, int]] = []
    subject.pipe(pf.metrics_tap(metrics)).subscribe(
        on_completed=lambda: at_end.append((metrics.received, metrics.emitted))
    )
    subject.on_next(1)
    subject.on_next(2)
    subject.on_completed()
    assert at_end == [(2, 2)]


def test_disposing_pushes_the_counts_without_a_snapshot() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    subject: Subject[int] = Subject()
    subscription = subject.pipe(pf.metrics_tap(metrics, name="tap")).subscribe()
    for value in (1, 2, 3):
        subject.on_next(value)
    assert (metrics.received, metrics.emitted) == (0, 0)  # counted locally so far
    subscription.dispose()
    assert (metrics.received, metrics.emitted) == (3, 3)
