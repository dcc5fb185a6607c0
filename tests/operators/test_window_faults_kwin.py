"""Two faults of the window operators, each stated by the test that found it (issue 12, helper
kwin): window_count took a pfrx.Watermark for an item; a window operator restored from a
checkpoint taken after its input completed swallowed the next completion."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf
from pfrx.testing import MarbleKit

CTX = pfrx.Context("alice", "s1")

pytestmark = pytest.mark.filterwarnings("ignore::pfrx.UnobservedDropWarning")


def env(name: str, ts: float = 0.0) -> pfrx.Envelope:
    return pfrx.Envelope(name, CTX, ts)


def events(window: pfrx.Window) -> tuple[Any, ...]:
    return tuple(e.event for e in window.items)


# -- (a) window_count and watermarks -------------------------------------------------------------


def with_watermarks(marbles: MarbleKit, source: str, at: tuple[int, ...], end: int) -> Any:
    """The marble source of envelopes, with a raw ``pfrx.Watermark`` (marbles wrap every value
    in an envelope) at each frame of ``at``; completes at frame ``end``."""
    scheduler = marbles.scheduler
    marks: Subject[Any] = Subject()
    for frame in at:
        scheduler.schedule_absolute(200 + frame, lambda *_: marks.on_next(pfrx.Watermark(5.0)))
    scheduler.schedule_absolute(200 + end, lambda *_: marks.on_completed())
    return reactivex.merge(marbles.hot(source), marks)


def test_a_watermark_never_fills_a_tumbling_count_window(marbles: MarbleKit) -> None:
    # watermarks at frames 3 and 9:  -a-W-b-c-W-d-|
    source = with_watermarks(marbles, "-a---b-c---d-|", (3, 9), 13)
    result = marbles.run(source.pipe(pf.window_count(2)))
    marbles.expect(result, "-----x-----y-|", {"x": ("a", "b"), "y": ("c", "d")})
    assert result.dropped == []


def test_a_watermark_never_fills_a_sliding_count_window(marbles: MarbleKit) -> None:
    # a watermark at frame 3:  -a-W-b-c-|
    source = with_watermarks(marbles, "-a---b-c-|", (3,), 9)
    result = marbles.run(source.pipe(pf.window_count(2, slide=1)))
    marbles.expect(result, "-----x-y-(z|)", {"x": ("a", "b"), "y": ("b", "c"), "z": ("c",)})
    assert result.dropped == []


@pytest.mark.parametrize("slide", [None, 1])
def test_a_watermark_never_fills_a_count_window_without_metrics(slide: int | None) -> None:
    items = [env("a"), pfrx.Watermark(1.0), env("b"), pfrx.Watermark(2.0)]
    out = (
        reactivex.from_iterable(items)
        .pipe(pf.window_count(2, slide=slide), reactivex.operators.to_list())
        .run()
    )
    assert [events(w) for w in out][:1] == [("a", "b")]
    assert all(type(item) is pfrx.Envelope for w in out for item in w.items)


def test_a_watermark_is_not_counted_as_received_by_a_count_window() -> None:
    scheduler = TestScheduler()
    for slide in (None, 1):
        metrics = pfrx.StreamMetrics(scheduler)
        items = [env("a"), pfrx.Watermark(1.0), env("b"), pfrx.Watermark(2.0)]
        out = (
            reactivex.from_iterable(items)
            .pipe(pf.window_count(2, slide=slide, metrics=metrics), reactivex.operators.to_list())
            .run()
        )
        assert [events(w) for w in out][:1] == [("a", "b")]
        assert metrics.snapshot().received == 2


def test_a_watermark_in_a_batch_never_fills_a_count_window() -> None:
    out: list[tuple[Any, ...]] = []
    with pfrx.Stream(pf.window_count(2)) as stream:
        stream.results.subscribe(lambda w: out.append(events(w)))
        stream.send("a", CTX)
        stream.send_watermark(3.0)
        stream.send("b", CTX)
        stream.send("c", CTX)
    assert out == [("a", "b"), ("c",)]


# -- (b) restored after completion -------------------------------------------------------------


def run_to_completion_and_restore(make: Any, items: list[Any]) -> tuple[list[Any], list[Any]]:
    """Feed ``items`` and complete, checkpoint, then restore into a new subscription and
    complete that one: what each run emitted and noted."""
    first_out: list[Any] = []
    first: Subject[Any] = Subject()
    scheduler = TestScheduler()
    with checkpoint.checkpointing() as scope:
        first.pipe(make()).subscribe(
            lambda w: first_out.append(events(w)),
            lambda e: first_out.append(f"error {e}"),
            lambda: first_out.append("completed"),
            scheduler=scheduler,
        )
    for item in items:
        first.on_next(item)
    first.on_completed()
    saved = checkpoint.loads(checkpoint.dumps(scope.snapshot()))
    second_out: list[Any] = []
    second: Subject[Any] = Subject()
    with checkpoint.checkpointing(saved):
        second.pipe(make()).subscribe(
            lambda w: second_out.append(events(w)),
            lambda e: second_out.append(f"error {e}"),
            lambda: second_out.append("completed"),
            scheduler=scheduler,
        )
    second.on_completed()
    return first_out, second_out


MAKERS = {
    "count": lambda: pf.window_count(2),
    "count_sliding": lambda: pf.window_count(2, slide=1),
    "time": lambda: pf.window_time(10),
    "time_event": lambda: pf.window_time(10, timestamp=lambda e: e.timestamp),
    "time_per_key": lambda: pf.window_time(
        10, key=lambda e: e.event, timestamp=lambda e: e.timestamp, watermark="per_key"
    ),
    "session": lambda: pf.window_session(10),
    "session_event": lambda: pf.window_session(10, timestamp=lambda e: e.timestamp),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_restored_after_completion_a_window_operator_completes_again(kind: str) -> None:
    first, second = run_to_completion_and_restore(MAKERS[kind], [env("a", 1.0)])
    assert first == [("a",), "completed"]
    assert second == ["completed"]  # nothing emitted twice, and the completion passes


def test_watermarks_in_batches_never_fill_a_count_window() -> None:
    from pfrx.sources import batches

    wm = pfrx.Watermark(1.0)
    metrics = pfrx.StreamMetrics(TestScheduler())
    items = [env("a"), wm, env("b"), wm, wm, wm, env("c"), env("d")]
    # read 3 at a time: the fused window takes [a, W, b], [W, W, W] and [c, d] as lists
    out = (
        batches(items, 3)
        .pipe(pf.window_count(2, metrics=metrics), reactivex.operators.to_list())
        .run()
    )
    assert [events(w) for w in out] == [("a", "b"), ("c", "d")]
    assert [(w.start, w.end) for w in out] == [(0, 2), (2, 4)]
    assert metrics.snapshot().received == 4


@pytest.mark.parametrize("kind", ["time", "session_event"])
def test_restored_after_completion_a_window_operator_passes_an_error_on(kind: str) -> None:
    first: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        first.pipe(MAKERS[kind]()).subscribe(scheduler=TestScheduler())
    first.on_completed()
    saved = scope.snapshot()
    notes: list[Any] = []
    second: Subject[Any] = Subject()
    with checkpoint.checkpointing(saved):
        second.pipe(MAKERS[kind]()).subscribe(
            notes.append, lambda e: notes.append(f"error {e}"), scheduler=TestScheduler()
        )
    second.on_next(env("late", 1.0))  # the input had ended: taken by no window
    second.on_error(ValueError("boom"))
    assert notes == ["error boom"]
