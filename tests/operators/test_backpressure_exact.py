"""Issue 12: backpressure stated exactly: its buffer gauge and its log line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf


@pytest.fixture
def logged() -> Iterator[list[str]]:
    lines: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(
        lambda m: lines.append(m.record["message"]), level="INFO", format="{message}"
    )
    try:
        yield lines
    finally:
        logger.remove(handler)
        logger.disable("pfrx")


def test_the_buffer_gauge_reports_size_capacity_and_peak() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[int] = Subject()
    got: list[int] = []
    subject.pipe(pf.backpressure("block", buffer_size=8, batch_size=2, metrics=metrics)).subscribe(
        got.append, scheduler=scheduler
    )
    for i in range(6):
        subject.on_next(i)
    snap = metrics.snapshot()
    assert (snap.buffered, snap.buffer_utilization, snap.peak_buffer_utilization) == (6, 0.75, 0.75)
    scheduler.advance_by(0.001)
    assert got == list(range(6))
    snap = metrics.snapshot()
    assert (snap.buffered, snap.buffer_utilization, snap.peak_buffer_utilization) == (0, 0.0, 0.75)


def test_a_failing_consumer_is_logged_with_the_operator_name(logged: list[str]) -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    errors: list[Exception] = []

    def consumer(_: int) -> None:
        raise RuntimeError("consumer broke")

    subject.pipe(pf.backpressure("block", buffer_size=4, name="valve")).subscribe(
        consumer, errors.append, scheduler=scheduler
    )
    subject.on_next(1)
    scheduler.advance_by(0.001)
    first = [line for line in logged if "downstream" in line]
    assert first == ["valve: downstream on_next raised; the subscription is closed"]
