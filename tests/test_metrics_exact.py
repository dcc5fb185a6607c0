"""Issue 12: health classification, batch recording and health_changes, stated exactly."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx.metrics import Health, HealthThresholds, MetricsSnapshot


def snap(**fields: Any) -> MetricsSnapshot:
    base: dict[str, Any] = dict(
        timestamp=0.0,
        received=0,
        emitted=0,
        dropped=0,
        errors=0,
        backpressure_events=0,
        processing_rate=0.0,
        input_rate=0.0,
        buffer_utilization=0.0,
        peak_buffer_utilization=0.0,
        buffered=0,
        avg_processing_time=0.0,
        max_processing_time=0.0,
        slow_events=0,
        error_rate=0.0,
        drop_rate=0.0,
        drops_by_reason={},
    )
    base.update(fields)
    return MetricsSnapshot(**base)


CLASSIFY = HealthThresholds()


def test_one_recent_item_is_enough_to_judge_on_the_recent_window() -> None:
    # An old burst of errors over the whole life; the one recent item went fine.
    old_burst = snap(received=2, errors=1, error_rate=0.5, recent_received=1)
    assert CLASSIFY.classify(old_burst) is Health.HEALTHY


def test_drops_are_judged_on_the_recent_window_while_it_holds_traffic() -> None:
    recovered = snap(received=10, dropped=9, drop_rate=0.9, recent_received=5)
    assert CLASSIFY.classify(recovered) is Health.HEALTHY
    still_dropping = snap(received=10, drop_rate=0.0, recent_received=5, recent_drop_rate=0.6)
    assert CLASSIFY.classify(still_dropping) is Health.UNHEALTHY


def test_drops_are_judged_over_the_whole_life_when_the_window_is_empty() -> None:
    idle = snap(received=10, dropped=9, drop_rate=0.9, recent_received=0, recent_drop_rate=0.0)
    assert CLASSIFY.classify(idle) is Health.UNHEALTHY


def test_one_received_item_is_enough_to_be_too_slow() -> None:
    thresholds = HealthThresholds(min_processing_rate=5.0)
    assert thresholds.classify(snap(received=1, processing_rate=0.0)) is Health.DEGRADED
    assert thresholds.classify(snap(received=0, processing_rate=0.0)) is Health.HEALTHY


def test_record_batch_counts_totals_by_default_and_places_them_at_their_time() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s, rate_interval=10.0)
    metrics.record_batch(4, 2.0, 1.25, 0.5)
    s.advance_to(2.5)
    got = metrics.snapshot()
    assert (got.received, got.emitted, got.recent_received) == (4, 4, 4)
    # Since the first item (at 0.5): 4 items over 2 s, in and out.
    assert (got.input_rate, got.processing_rate) == (2.0, 2.0)
    # 2 s of downstream time over 4 items, in the whole life and in the recent window.
    assert (got.avg_processing_time, got.recent_avg_processing_time) == (0.5, 0.5)
    assert got.max_processing_time == 1.25


def test_record_batch_without_totals_records_only_time() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s, rate_interval=10.0)
    metrics.record_batch(4, 2.0, 1.25, 0.5, totals=False)
    s.advance_to(2.5)
    got = metrics.snapshot()
    assert (got.received, got.emitted, got.input_rate) == (0, 0, 0.0)
    assert (got.avg_processing_time, got.recent_avg_processing_time) == (0.5, 0.5)


def test_health_changes_checks_every_second_by_default() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    seen: list[tuple[float, Health]] = []
    metrics.health_changes().subscribe(lambda h: seen.append((s.clock, h)))
    s.schedule_absolute(0.5, lambda *_: (metrics.record_received(), metrics.record_error()))
    s.advance_to(3.0)
    assert seen == [(0.0, Health.HEALTHY), (1.0, Health.UNHEALTHY)]


@pytest.mark.parametrize("period", [0, -1.0])
def test_a_bad_period_is_named_in_the_error(period: float) -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    with pytest.raises(ValueError) as caught:
        metrics.health_changes(period)
    assert str(caught.value).startswith("period must be a finite positive duration")
