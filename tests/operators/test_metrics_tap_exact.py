"""Issue 12: metrics_tap, stated exactly: names, clock, timing, rates and when counts land."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.metrics import OperatorSnapshot


def test_a_bad_scheduler_is_refused_even_when_metrics_are_given() -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    with pytest.raises(TypeError, match="scheduler must be a reactivex scheduler or None"):
        pf.metrics_tap(metrics, scheduler="not a scheduler")  # type: ignore[arg-type]


def test_the_default_stage_name_is_metrics_tap() -> None:
    tap = pf.metrics_tap()
    assert tap.name == "metrics_tap"
    assert tap.metrics.name == "metrics_tap"
    reactivex.of(1, 2, 3).pipe(tap).run()
    assert tap.metrics.snapshot().operators == (OperatorSnapshot("metrics_tap", 3, 3, 0, 0),)


def test_its_own_metrics_carry_its_name_and_run_on_its_scheduler() -> None:
    s = TestScheduler()
    tap = pf.metrics_tap(name="edge", scheduler=s)
    assert tap.metrics.name == "edge"
    assert tap.metrics.scheduler is s
    s.advance_to(7.25)
    assert tap.metrics.snapshot().timestamp == 7.25


def test_an_instant_downstream_takes_zero_seconds() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    reactivex.from_iterable([1, 2, 3], scheduler=s).pipe(pf.metrics_tap(metrics)).subscribe()
    s.start()
    snap = metrics.snapshot()
    assert (snap.received, snap.max_processing_time, snap.avg_processing_time) == (3, 0.0, 0.0)


def test_the_slowest_item_is_the_max_processing_time() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    costs = {1: 0.5, 2: 3.0, 3: 1.0}
    source = reactivex.from_iterable([1, 2, 3], scheduler=s)
    source.pipe(pf.metrics_tap(metrics)).subscribe(lambda v: s.sleep(costs[v]))
    s.start()
    snap = metrics.snapshot()
    assert snap.max_processing_time == 3.0 and snap.avg_processing_time == 1.5


@pytest.mark.parametrize("rate_interval", [10.0, 5.0])
def test_rates_since_the_first_item_are_exact_for_items_mid_bucket(rate_interval: float) -> None:
    # Items counted locally are dated at the middle of their rate bucket (a tenth of the
    # interval). Items that arrive exactly there give the true rate since the first item.
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s, rate_interval=rate_interval)
    width = rate_interval / 10
    first = width / 2
    subject: Subject[Any] = Subject()
    subject.pipe(pf.metrics_tap(metrics)).subscribe()
    for at in (first, first + width):  # mid of the first and of the second bucket
        s.schedule_absolute(at, lambda *_: subject.on_next("x"))
    now = first + 3 * width
    s.advance_to(now)
    snap = metrics.snapshot()
    assert snap.received == 2
    assert snap.input_rate == pytest.approx(2 / (now - first), rel=1e-12)
    assert snap.processing_rate == pytest.approx(2 / (now - first), rel=1e-12)


def test_an_error_counts_once_in_the_stage_and_the_metrics() -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    subject: Subject[Any] = Subject()
    subject.pipe(pf.metrics_tap(metrics, name="t")).subscribe(on_error=lambda _: None)
    subject.on_next(1)
    subject.on_error(ValueError("boom"))
    snap = metrics.snapshot()
    assert snap.errors == 1
    assert snap.operators == (OperatorSnapshot("t", 1, 1, 0, 1),)


def test_counts_are_in_the_metrics_when_downstream_sees_completion() -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    seen: list[int] = []
    reactivex.of(1, 2, 3).pipe(pf.metrics_tap(metrics)).subscribe(
        on_completed=lambda: seen.append(metrics.received)
    )
    assert seen == [3]


def test_disposing_mid_stream_flushes_the_counts_and_forgets_the_tap() -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    subject: Subject[Any] = Subject()
    subscription = subject.pipe(pf.metrics_tap(metrics)).subscribe()
    subject.on_next(1)
    subject.on_next(2)
    subscription.dispose()
    # No snapshot taken: the counts were pushed by the dispose itself.
    assert (metrics.received, metrics.emitted) == (2, 2)
