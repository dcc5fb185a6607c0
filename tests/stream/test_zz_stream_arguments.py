"""Issue 12: what `Stream` checks when it is built, and its defaults, stated exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.checkpoint import CheckpointMismatch
from pfrx.stream import Stream

ALICE = pfrx.Context("alice", "s1")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"metrics": "m"}, TypeError, "metrics must be a pfrx.StreamMetrics, not str"),
        ({"metrics": 3}, TypeError, "metrics must be a pfrx.StreamMetrics, not int"),
        ({"queue_size": True}, TypeError, "queue_size must be an int, not True"),
        ({"queue_size": 2.0}, TypeError, "queue_size must be an int, not 2.0"),
        ({"queue_size": "8"}, TypeError, "queue_size must be an int, not '8'"),
        ({"queue_size": 0}, ValueError, "queue_size must be at least 1, not 0"),
        ({"queue_size": -5}, ValueError, "queue_size must be at least 1, not -5"),
        (
            {"restore": {"states": []}},
            TypeError,
            "restore must be a pfrx.checkpoint.Checkpoint, not {'states': []}",
        ),
    ],
)
def test_a_bad_argument_is_named_exactly(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        Stream(**kwargs)
    assert str(caught.value) == message


def test_the_smallest_queue_is_accepted() -> None:
    with Stream(queue_size=1) as stream:
        assert stream.send("a", ALICE).ok


def test_a_checkpoint_of_the_same_pipeline_restores_it() -> None:
    results: list[Any] = []
    with Stream(pf.window_count(2)) as first:
        assert first.send("a", ALICE).ok
        checkpoint = first.checkpoint()
    with Stream(pf.window_count(2), restore=checkpoint) as second:
        second.results.subscribe(lambda w: results.append([e.event for e in w.items]))
        assert second.send("b", ALICE).ok
    assert results == [["a", "b"]]


def test_the_default_name_is_stream_in_the_stream_and_its_metrics() -> None:
    stream = Stream()
    assert stream.name == "stream"
    assert repr(stream) == "<pfrx.Stream 'stream' open>"
    assert stream.stream_metrics.name == "stream"
    stream.close()


# -- whose clock --------------------------------------------------------------------------


def _stamps(stream: Stream) -> list[float]:
    stamps: list[float] = []
    stream.results.subscribe(lambda e: stamps.append(e.timestamp))
    assert stream.send("a", ALICE).ok
    return stamps


def test_the_stream_scheduler_stamps_envelopes_and_clocks_the_default_metrics() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(3.0)
    stream = Stream(scheduler=scheduler)
    assert stream.scheduler is scheduler
    assert stream.stream_metrics.scheduler is scheduler
    assert _stamps(stream) == [3.0]
    scheduler.advance_to(4.5)
    assert stream.metrics().timestamp == 4.5
    # one item over the 1.5 s since it came (more than one 1 s bucket, less than the 10 s)
    assert stream.metrics().input_rate == 1 / (4.5 - 3.0)


def test_the_stream_scheduler_wins_over_the_clock_of_given_metrics() -> None:
    ours, theirs = TestScheduler(), TestScheduler()
    ours.advance_to(3.0)
    theirs.advance_to(9.0)
    stream = Stream(scheduler=ours, metrics=pfrx.StreamMetrics(theirs))
    assert _stamps(stream) == [3.0]
    assert stream.metrics().timestamp == 9.0  # the metrics keep their own clock


def test_without_a_scheduler_envelopes_are_stamped_on_the_metrics_clock() -> None:
    theirs = TestScheduler()
    theirs.advance_to(9.0)
    stream = Stream(metrics=pfrx.StreamMetrics(theirs))
    assert stream.scheduler is None
    assert _stamps(stream) == [9.0]


@pytest.mark.timeout(20)
def test_join_on_a_virtual_time_scheduler_only_reports() -> None:
    # Nothing moves while we wait on virtual time: join says where the stream is and returns.
    scheduler = TestScheduler()
    stream = Stream(pf.backpressure(), scheduler=scheduler)
    assert stream.send("a", ALICE).ok
    stream.close()
    assert stream.join() is False  # the buffered item waits for the scheduler
    scheduler.advance_by(1.0)
    assert stream.join() is True


# -- what the stream logs -----------------------------------------------------------------


@pytest.fixture
def lines() -> Iterator[list[str]]:
    caught: list[str] = []
    handler = logger.add(lambda m: caught.append(m.record["message"]), level="ERROR")
    logger.enable("pfrx")
    try:
        yield caught
    finally:
        logger.disable("pfrx")
        logger.remove(handler)


def test_a_raising_subscriber_is_logged_under_the_observable_it_subscribed(
    lines: list[str],
) -> None:
    def boom(_value: Any) -> None:
        raise RuntimeError("subscriber bug")

    with Stream(pf.transform(lambda e, _c: pfrx.Reject("no") if e == "x" else e)) as stream:
        stream.results.subscribe(boom)
        stream.dropped.subscribe(boom)
        assert stream.send("a", ALICE).ok
        assert stream.send("x", ALICE).ok
    assert lines == [
        "a subscriber of results raised; the stream goes on",
        "a subscriber of dropped raised; the stream goes on",
    ]
    assert stream.metrics().errors == 2


def test_an_operator_that_returns_no_observable_is_named() -> None:
    def broken(_source: Any) -> Any:
        return [1, 2]

    with pytest.raises(TypeError) as caught:
        Stream(broken)
    assert str(caught.value) == f"operator {broken!r} did not return an Observable"


def test_an_operator_that_is_not_callable_is_named() -> None:
    with pytest.raises(TypeError) as caught:
        Stream(pf.transform(lambda e, _c: e), 42)  # type: ignore[arg-type]
    assert str(caught.value) == "Stream operators must be callables, not 42"


def test_a_watermark_no_operator_takes_ends_at_the_stream_never_on_results() -> None:
    results: list[Any] = []
    with Stream(pf.transform(lambda e, _c: e)) as stream:
        stream.results.subscribe(lambda v: results.append(v.event))
        assert stream.send("a", ALICE).ok
        assert stream.send_watermark(5.0).ok
        assert stream.send("b", ALICE).ok
    assert results == ["a", "b"]
    snapshot = stream.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (2, 2, 0)


class _Keep:
    """A processor that keeps its state and emits nothing."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, _event: Any, _context: pfrx.Context, state: int) -> pfrx.Ok:
        return pfrx.Ok(state)


def test_a_checkpoint_of_another_pipeline_is_refused_naming_both_counts_and_the_operators() -> None:
    with Stream(pf.window_count(2)) as first:
        checkpoint = first.checkpoint()
    with pytest.raises(CheckpointMismatch) as caught:
        Stream(pf.window_count(2), pf.process(_Keep()), restore=checkpoint)
    assert str(caught.value) == (
        "the checkpoint holds 1 operator states; this stream's pipeline has 2 stateful "
        "operators (window_count, process)"
    )
