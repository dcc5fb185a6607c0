"""Issue 12: transform stated exactly, one item at a time and a list at a time."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")
BATCHES = [0, 1, 2, 3, 100]


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def fn(event: Any, context: pfrx.Context) -> Any:
    if event == "reject":
        return pfrx.Reject("refused_here")
    if event == "boom":
        raise ValueError("bad value")
    if event == "silent":
        raise KeyError()
    if event == "mute":
        raise Unprintable()
    return f"{context.user_id}:{event}"


def run(
    items: list[Any], batch: int, **kwargs: Any
) -> tuple[list[Any], list[tuple[Any, str, str, float]], tuple[Any, ...]]:
    lost: list[pfrx.Dropped] = []
    scheduler = TestScheduler()
    scheduler.advance_to(42.0)
    metrics = pfrx.StreamMetrics(scheduler)
    source = reactivex.from_iterable(items) if batch == 0 else pfrx.sources.batches(items, batch)
    out: list[Any] = []
    # Subscribed on the test scheduler: the drops are stamped with its clock (42 s).
    source.pipe(pf.transform(fn, on_drop=lost.append, metrics=metrics, **kwargs)).subscribe(
        out.append, scheduler=scheduler
    )
    scheduler.advance_to(43.0)
    snap = metrics.snapshot()
    stage = snap.stages[0]
    return (
        out,
        [(d.item, d.reason, d.operator, d.timestamp) for d in lost],
        (
            snap.received,
            snap.emitted,
            snap.dropped,
            snap.errors,
            dict(snap.drops_by_reason),
            stage.to_dict(),
        ),
    )


@pytest.mark.parametrize("batch", BATCHES)
def test_each_item_is_mapped_or_dropped_once_with_its_reason(batch: int) -> None:
    items = [
        pfrx.Envelope("a", CTX, 1.5),
        "not an envelope",
        pfrx.Envelope("reject", CTX, 2.0),
        pfrx.Envelope("boom", CTX, 3.0),
        pfrx.Envelope("b", CTX, 4.0),
        pfrx.Envelope("silent", CTX, 5.0),
        pfrx.Envelope("mute", CTX, 6.0),
        pfrx.Envelope("c", CTX, 7.0),
    ]
    out, lost, figures = run(items, batch)
    assert [(e.event, e.context, e.timestamp) for e in out] == [
        ("alice:a", CTX, 1.5),
        ("alice:b", CTX, 4.0),
        ("alice:c", CTX, 7.0),
    ]
    assert all(type(e) is pfrx.Envelope for e in out)
    assert lost == [
        ("not an envelope", "not_an_envelope", "transform", 42.0),
        (items[2], "refused_here", "transform", 42.0),
        (items[3], "bad value", "transform", 42.0),
        (items[5], "KeyError", "transform", 42.0),
        (items[6], "Unprintable", "transform", 42.0),
    ]
    by_reason = {
        "not_an_envelope": 1,
        "refused_here": 1,
        "bad value": 1,
        "KeyError": 1,
        "Unprintable": 1,
    }
    stage = {"name": "transform", "received": 8, "emitted": 3, "dropped": 5, "errors": 3}
    assert figures == (8, 3, 5, 3, by_reason, stage)


@pytest.mark.parametrize("batch", BATCHES)
def test_a_named_transform_labels_its_drops_and_stage(batch: int) -> None:
    items = [pfrx.Envelope("reject", CTX, 0.0), pfrx.Envelope("x", CTX, 0.0)]
    out, lost, figures = run(items, batch, name="enrich")
    assert [e.event for e in out] == ["alice:x"]
    assert [(reason, operator) for _, reason, operator, _ in lost] == [("refused_here", "enrich")]
    assert figures[-1]["name"] == "enrich"


@pytest.mark.parametrize("batch", [1, 2, 100])
def test_a_batched_source_reaches_the_transform_a_list_at_a_time(batch: int) -> None:
    items = [pfrx.Envelope(i, CTX, 0.0) for i in range(5)]
    out = (
        pfrx.sources.batches(items, batch)
        .pipe(pf.transform(lambda e, c: e * 10), ops.to_list())
        .run()
    )
    assert [e.event for e in out] == [0, 10, 20, 30, 40]


def test_a_list_of_only_drops_forwards_no_empty_list() -> None:
    items = [pfrx.Envelope("reject", CTX, 0.0)] * 3
    out, lost, _ = run(items, 3)
    assert out == []
    assert len(lost) == 3


def test_bad_arguments_are_named_exactly() -> None:
    with pytest.raises(TypeError) as caught:
        pf.transform("upper")  # type: ignore[arg-type]
    assert str(caught.value) == "transform needs a callable (event, context) -> event, not 'upper'"

    def one(event: Any) -> Any:
        return event

    with pytest.raises(TypeError) as caught:
        pf.transform(one)  # type: ignore[arg-type]
    assert str(caught.value).startswith(
        f"transform calls fn(event, context); {one!r} cannot be called that way: "
    )
    assert str(caught.value) == (
        f"transform calls fn(event, context); {one!r} cannot be called that way: "
        "too many positional arguments"
    )


def test_drops_are_stamped_with_the_subscription_schedulers_clock() -> None:
    # The metrics read another clock: the drop's time is the scheduler it runs on.
    subscribe_on = TestScheduler()
    subscribe_on.advance_to(7.0)
    metrics_clock = TestScheduler()
    metrics_clock.advance_to(99.0)
    for metrics in (None, pfrx.StreamMetrics(metrics_clock)):
        lost: list[pfrx.Dropped] = []
        reactivex.from_iterable([pfrx.Envelope("reject", CTX, 0.0)]).pipe(
            pf.transform(fn, on_drop=lost.append, metrics=metrics)
        ).subscribe(scheduler=subscribe_on)
        subscribe_on.advance_to(subscribe_on.clock + 1)
        assert [d.timestamp for d in lost] == [subscribe_on.clock - 1]


def test_a_batched_source_passes_lists_through_the_transform() -> None:
    from pfrx.operators._shared import OnBatch, OnNext, Prepared, fuse

    seen: list[list[Any]] = []

    def recording(_scheduler: object) -> Prepared:
        def wire(forward: OnNext) -> OnNext:
            def on_next(item: Any) -> None:
                seen.append([item.event])
                forward(item)

            return on_next

        def wire_batch(forward: OnBatch) -> OnBatch:
            def on_batch(items: list[Any]) -> None:
                seen.append([e.event for e in items])
                forward(items)

            return on_batch

        return Prepared(wire, wire_batch=wire_batch)

    items = [pfrx.Envelope(e, CTX, 0.0) for e in ["a", "reject", "b", "c", "reject"]]
    out = (
        pfrx.sources.batches(items, 3)
        .pipe(pf.transform(fn, on_drop=lambda d: None), fuse(recording), ops.to_list())
        .run()
    )
    assert [e.event for e in out] == ["alice:a", "alice:b", "alice:c"]
    # One list per batch, what the transform kept (never an empty one).
    assert seen == [["alice:a", "alice:b"], ["alice:c"]]
