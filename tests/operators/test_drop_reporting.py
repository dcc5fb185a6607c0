"""Issue 12: how operators report their drops, stated exactly: the operator's own counters for
late items (whose records name the windows they missed), and an ``on_drop`` handler that raises
(logged naming the operator, counted as an error, the drop still counted)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")


@pytest.fixture
def lines() -> Iterator[list[str]]:
    caught: list[str] = []

    def keep(message: Any) -> None:
        caught.append(f"{message.record['level'].name} {message.record['message']}")

    logger.enable("pfrx")
    sink = logger.add(keep, level="INFO")
    try:
        yield caught
    finally:
        logger.remove(sink)
        logger.disable("pfrx")


def _late_run(on_drop: Any) -> tuple[list[Any], pfrx.MetricsSnapshot]:
    """Event-time tumbling windows of 1 s: 5.0 sets the watermark to 5, so 1.0 and 0.5 are
    late (their windows [1, 2) and [0, 1) have fired), 5.5 joins 5.0's window."""
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    got: list[Any] = []
    items = [pfrx.Envelope(t, CTX, 0.0) for t in (5.0, 1.0, 0.5, 5.5)]
    reactivex.from_iterable(items).pipe(
        pf.window_time(
            1.0,
            timestamp=lambda env: env.event,
            on_drop=on_drop,
            metrics=metrics,
            scheduler=scheduler,
        )
    ).subscribe(lambda w: got.append((w.start, w.end, [env.event for env in w.items])))
    return got, metrics.snapshot()


def test_late_items_are_counted_once_each_by_the_operator_and_name_their_windows() -> None:
    lost: list[pfrx.Dropped] = []
    got, m = _late_run(lost.append)
    assert got == [(5.0, 6.0, [5.0, 5.5])]
    assert [(d.item.event, d.reason, d.operator, d.windows) for d in lost] == [
        (1.0, "late", "window_time", ((1.0, 2.0),)),
        (0.5, "late", "window_time", ((0.0, 1.0),)),
    ]
    assert m.operators == (pfrx.OperatorSnapshot("window_time", 4, 1, 2, 0),)
    assert (m.dropped, dict(m.drops_by_reason), m.errors) == (2, {"late": 2}, 0)


def test_a_raising_handler_of_late_drops_is_logged_and_counted_and_the_drops_still_are(
    lines: list[str],
) -> None:
    def broken(record: pfrx.Dropped) -> None:
        raise RuntimeError("handler bug")

    got, m = _late_run(broken)
    assert got == [(5.0, 6.0, [5.0, 5.5])]
    assert lines == ["ERROR on_drop handler of window_time failed"] * 2
    assert m.operators == (pfrx.OperatorSnapshot("window_time", 4, 1, 2, 0),)
    assert (m.dropped, m.errors) == (2, 2)


def test_a_raising_handler_of_ordinary_drops_is_logged_and_counted(lines: list[str]) -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    got: list[Any] = []
    seen: list[str] = []

    def broken(record: pfrx.Dropped) -> None:
        seen.append(record.reason)
        raise RuntimeError("handler bug")

    items = [pfrx.Envelope(e, CTX, 0.0) for e in ("a", "bad", "c")]
    reactivex.from_iterable(items).pipe(
        pf.transform(
            lambda e, ctx: pfrx.Reject("refused") if e == "bad" else e,
            on_drop=broken,
            metrics=metrics,
        )
    ).subscribe(lambda env: got.append(env.event))
    assert got == ["a", "c"]
    assert seen == ["refused"]
    assert lines == ["ERROR on_drop handler of transform failed"]
    m = metrics.snapshot()
    assert (m.received, m.emitted, m.dropped, m.errors) == (3, 2, 1, 1)
