from __future__ import annotations

import json
from datetime import timedelta

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import BufferGauge, Health, HealthThresholds, StreamMetrics


def at(scheduler: TestScheduler, t: float) -> None:
    scheduler.advance_to(t)


def test_counts_and_rates_are_exact_in_virtual_time() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=10.0)
    at(s, 100.0)
    for second in range(20):  # two items a second for 20 s
        at(s, 100.0 + second)
        m.record_received(2)
        m.record_emitted(2)
    at(s, 119.5)
    snap = m.snapshot()
    assert (snap.received, snap.emitted) == (40, 40)
    # the last 10 s hold buckets 110..119: 20 items over the 10 s interval
    assert snap.processing_rate == pytest.approx(2.0)
    assert snap.input_rate == pytest.approx(2.0)


def test_rate_before_a_full_interval_uses_the_time_since_the_first_item() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=10.0)
    at(s, 50.0)
    m.record_emitted(10)
    at(s, 55.0)
    assert m.snapshot().processing_rate == pytest.approx(2.0)


def test_rate_decays_to_zero_when_idle() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=timedelta(seconds=5))
    m.record_emitted(100)
    at(s, 60.0)
    assert m.snapshot().processing_rate == 0.0


def test_drops_errors_processing_time_and_rates() -> None:
    s = TestScheduler()
    m = StreamMetrics(s)
    m.record_received(10)
    m.record_drop("overflow")
    m.record_drop("overflow")
    m.record_drop("late")
    m.record_error()
    m.record_processing_time(0.5)
    m.record_processing_time(1.5, slow=True)
    m.record_backpressure(3)
    snap = m.snapshot()
    assert snap.dropped == 3 and m.dropped == 3
    assert snap.drops_by_reason == {"overflow": 2, "late": 1}
    assert snap.error_rate == 0.1 and snap.drop_rate == 0.3
    assert snap.avg_processing_time == 1.0 and snap.max_processing_time == 1.5
    assert snap.slow_events == 1 and snap.backpressure_events == 3


def test_buffer_gauges_are_read_at_snapshot_time_and_can_be_unregistered() -> None:
    m = StreamMetrics(TestScheduler())
    state = {"size": 2}
    handle = m.register_buffer("bp", lambda: BufferGauge(state["size"], 10, 8))
    assert m.snapshot().buffer_utilization == 0.2
    state["size"] = 5
    snap = m.snapshot()
    assert (snap.buffer_utilization, snap.peak_buffer_utilization, snap.buffered) == (0.5, 0.8, 5)
    handle.dispose()
    assert m.snapshot().buffer_utilization == 0.0


def test_stages_are_listed_in_pipeline_order_with_unique_names() -> None:
    # RxPY subscribes from the last operator back to the source: the last registered is first.
    m = StreamMetrics(TestScheduler())
    sink, middle, source = m.stage("transform"), m.stage("window"), m.stage("transform")
    source.received += 1
    snap = m.snapshot()
    assert [s.name for s in snap.stages] == ["transform", "window", "transform#2"]
    assert snap.stages[0].received == 1
    assert (sink.name, middle.name) == ("transform", "window")


def test_snapshot_exports_to_a_plain_json_dict() -> None:
    m = StreamMetrics(TestScheduler())
    m.stage("x")
    m.record_drop("late")
    m.set_info("adaptive_state", "normal")
    data = m.snapshot().to_dict()
    assert data["drops_by_reason"] == {"late": 1}
    assert data["stages"][0]["name"] == "x"
    assert data["info"] == {"adaptive_state": "normal"}
    json.dumps(data)
    assert {
        "received",
        "emitted",
        "dropped",
        "errors",
        "backpressure_events",
        "processing_rate",
        "buffer_utilization",
        "avg_processing_time",
        "error_rate",
    } <= set(data)


def test_reset_forgets_counts_but_keeps_stages() -> None:
    m = StreamMetrics(TestScheduler())
    stage = m.stage("x")
    stage.received = 5
    m.record_received(5)
    m.record_drop("late")
    m.reset()
    snap = m.snapshot()
    assert (snap.received, snap.dropped, snap.stages[0].received) == (0, 0, 0)


@pytest.mark.parametrize(
    ("received", "errors", "drops", "buffer", "expected"),
    [
        (100, 0, 0, 0, Health.HEALTHY),
        (100, 5, 0, 0, Health.HEALTHY),  # exactly at the threshold is still fine
        (100, 6, 0, 0, Health.DEGRADED),
        (100, 26, 0, 0, Health.UNHEALTHY),
        (100, 0, 11, 0, Health.DEGRADED),
        (100, 0, 51, 0, Health.UNHEALTHY),
        (100, 0, 0, 9, Health.DEGRADED),
        (100, 0, 0, 10, Health.UNHEALTHY),
        (0, 0, 0, 0, Health.HEALTHY),
    ],
)
def test_health_thresholds(
    received: int, errors: int, drops: int, buffer: int, expected: Health
) -> None:
    m = StreamMetrics(TestScheduler())
    m.record_received(received)
    m.record_error(errors)
    if drops:
        m.record_drop("x", drops)
    m.register_buffer("b", lambda: BufferGauge(buffer, 10))
    assert m.health() is expected
    assert m.health() == expected.value


def test_min_processing_rate_is_configurable() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, thresholds=HealthThresholds(min_processing_rate=100.0))
    assert m.health() is Health.HEALTHY  # idle: no verdict on speed
    m.record_received(10)
    m.record_emitted(10)
    at(s, 10.0)
    assert m.health() is Health.DEGRADED


def test_health_changes_emit_only_on_change() -> None:
    s = TestScheduler()
    m = StreamMetrics(s)
    seen: list[tuple[float, Health]] = []
    m.health_changes(period=1.0).subscribe(lambda h: seen.append((s.clock, h)))
    s.schedule_absolute(2.5, lambda *_: (m.record_received(10), m.record_error(1)))
    s.schedule_absolute(5.5, lambda *_: m.record_error(5))
    s.schedule_absolute(7.5, lambda *_: m.reset())
    s.advance_to(10.0)
    assert seen == [
        (0.0, Health.HEALTHY),
        (3.0, Health.DEGRADED),
        (6.0, Health.UNHEALTHY),
        (8.0, Health.HEALTHY),
    ]


def test_health_is_a_str_enum() -> None:
    assert [h.value for h in pfrx.Health] == ["healthy", "degraded", "unhealthy"]
    assert pfrx.Health("degraded") is Health.DEGRADED


def test_rate_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_interval"):
        StreamMetrics(rate_interval=0)


def test_recent_figures_cover_the_sliding_window_and_lifetime_ones_everything() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=10.0)
    m.record_received(10)
    m.record_error(5)
    m.record_drop("overflow", 2)
    m.record_processing_time(4.0)
    at(s, 30.0)  # the burst is long gone from the 10 s window
    m.record_received(10)
    m.record_processing_time(1.0)
    snap = m.snapshot()
    assert (snap.error_rate, snap.drop_rate) == (0.25, 0.1)
    assert snap.avg_processing_time == 2.5
    assert snap.recent_received == 10
    assert (snap.recent_error_rate, snap.recent_drop_rate) == (0.0, 0.0)
    assert snap.recent_avg_processing_time == 1.0


def test_health_recovers_once_an_error_burst_leaves_the_window() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=10.0)
    m.record_received(10)
    m.record_error(5)
    assert m.health() is Health.UNHEALTHY
    at(s, 30.0)
    m.record_received(10)  # healthy traffic since
    assert m.snapshot().error_rate == 0.25  # the lifetime figure remembers
    assert m.health() is Health.HEALTHY


def test_without_recent_traffic_health_reads_the_lifetime_figures() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=10.0)
    m.record_received(10)
    m.record_error(5)
    at(s, 100.0)
    assert m.snapshot().recent_received == 0
    assert m.health() is Health.UNHEALTHY
