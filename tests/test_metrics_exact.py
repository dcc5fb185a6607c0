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


# -- arguments: exact messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"degraded_error_rate": "0.1"},
            TypeError,
            "degraded_error_rate must be a number, not str",
        ),
        (
            {"unhealthy_drop_rate": True},
            TypeError,
            "unhealthy_drop_rate must be a number, not bool",
        ),
        (
            {"unhealthy_error_rate": 1.5},
            ValueError,
            "unhealthy_error_rate must be a fraction in [0, 1], not 1.5",
        ),
        (
            {"degraded_buffer_utilization": -0.1},
            ValueError,
            "degraded_buffer_utilization must be a fraction in [0, 1], not -0.1",
        ),
        (
            {"unhealthy_buffer_utilization": float("nan")},
            ValueError,
            "unhealthy_buffer_utilization must be a fraction in [0, 1], not nan",
        ),
        (
            {"min_processing_rate": "fast"},
            TypeError,
            "min_processing_rate must be a number or None, not str",
        ),
        (
            {"min_processing_rate": False},
            TypeError,
            "min_processing_rate must be a number or None, not bool",
        ),
        (
            {"min_processing_rate": -1},
            ValueError,
            "min_processing_rate must be finite and >= 0, not -1",
        ),
        (
            {"min_processing_rate": float("inf")},
            ValueError,
            "min_processing_rate must be finite and >= 0, not inf",
        ),
        (
            {"degraded_error_rate": 0.3, "unhealthy_error_rate": 0.2},
            ValueError,
            "degraded_error_rate (0.3) must not exceed unhealthy_error_rate (0.2)",
        ),
        (
            {"degraded_buffer_utilization": 0.96},
            ValueError,
            "degraded_buffer_utilization (0.96) must not exceed"
            " unhealthy_buffer_utilization (0.95)",
        ),
        (
            {"degraded_drop_rate": 0.6},
            ValueError,
            "degraded_drop_rate (0.6) must not exceed unhealthy_drop_rate (0.5)",
        ),
    ],
)
def test_bad_thresholds_are_named_exactly(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        HealthThresholds(**kwargs)
    assert str(info.value) == message


def test_threshold_edges_are_accepted_exactly() -> None:
    edges = HealthThresholds(
        degraded_error_rate=0,
        unhealthy_error_rate=0,
        degraded_buffer_utilization=1,
        unhealthy_buffer_utilization=1,
        degraded_drop_rate=0.5,
        unhealthy_drop_rate=0.5,
        min_processing_rate=0,
    )
    assert edges.unhealthy_buffer_utilization == 1
    assert edges.min_processing_rate == 0
    assert HealthThresholds(min_processing_rate=2.5).min_processing_rate == 2.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheduler": "x"}, "scheduler must be a reactivex scheduler, not 'x'"),
        ({"thresholds": {}}, "thresholds must be HealthThresholds, not {}"),
        ({"name": 5}, "name must be a str or None, not 5"),
    ],
)
def test_bad_metrics_arguments_are_named_exactly(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as info:
        pfrx.StreamMetrics(**kwargs)
    assert str(info.value) == message


def test_defaults_and_given_arguments_are_kept() -> None:
    thresholds = HealthThresholds(degraded_error_rate=0.01)
    s = TestScheduler()
    m = pfrx.StreamMetrics(s, thresholds=thresholds, name="orders", rate_interval=4)
    assert m.scheduler is s
    assert m.thresholds is thresholds
    assert m.name == "orders"
    assert m.rate_interval == 4.0
    assert m.rate_bucket == 0.4
    plain = pfrx.StreamMetrics(TestScheduler())
    assert plain.thresholds == HealthThresholds()
    assert plain.name is None
    assert plain.rate_interval == 10.0
    assert plain.rate_bucket == 1.0
    assert HealthThresholds() == HealthThresholds(0.05, 0.25, 0.80, 0.95, 0.10, 0.50, None)


# -- every boundary of classify: above trips, equal does not ----------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"error_rate": 0.05}, Health.HEALTHY),
        ({"error_rate": 0.0500001}, Health.DEGRADED),
        ({"error_rate": 0.25}, Health.DEGRADED),
        ({"error_rate": 0.2500001}, Health.UNHEALTHY),
        ({"buffer_utilization": 0.80}, Health.HEALTHY),
        ({"buffer_utilization": 0.8000001}, Health.DEGRADED),
        ({"buffer_utilization": 0.95}, Health.DEGRADED),
        ({"buffer_utilization": 0.9500001}, Health.UNHEALTHY),
        ({"drop_rate": 0.10}, Health.HEALTHY),
        ({"drop_rate": 0.1000001}, Health.DEGRADED),
        ({"drop_rate": 0.50}, Health.DEGRADED),
        ({"drop_rate": 0.5000001}, Health.UNHEALTHY),
        # the recent window wins while it holds traffic, in both directions
        ({"recent_received": 1, "error_rate": 0.9, "recent_error_rate": 0.05}, Health.HEALTHY),
        ({"recent_received": 1, "error_rate": 0.0, "recent_error_rate": 0.3}, Health.UNHEALTHY),
        ({"recent_received": 1, "error_rate": 0.0, "recent_error_rate": 0.06}, Health.DEGRADED),
        ({"recent_received": 1, "drop_rate": 0.9, "recent_drop_rate": 0.1}, Health.HEALTHY),
        ({"recent_received": 1, "drop_rate": 0.0, "recent_drop_rate": 0.6}, Health.UNHEALTHY),
        ({"recent_received": 1, "drop_rate": 0.0, "recent_drop_rate": 0.2}, Health.DEGRADED),
        ({"recent_received": 0, "recent_error_rate": 0.9, "recent_drop_rate": 0.9}, Health.HEALTHY),
    ],
)
def test_every_threshold_trips_only_above_its_value(
    fields: dict[str, Any], expected: Health
) -> None:
    assert CLASSIFY.classify(snap(**fields)) is expected


@pytest.mark.parametrize(
    ("received", "rate", "expected"),
    [
        (1, 1.9, Health.DEGRADED),
        (1, 2.0, Health.HEALTHY),
        (0, 0.0, Health.HEALTHY),  # nothing received: idle, not slow
        (5, 0.0, Health.DEGRADED),
    ],
)
def test_min_processing_rate_is_judged_only_with_traffic(
    received: int, rate: float, expected: Health
) -> None:
    slow = HealthThresholds(min_processing_rate=2.0)
    assert slow.classify(snap(received=received, processing_rate=rate)) is expected
    # Off by default: the same figures are healthy.
    assert CLASSIFY.classify(snap(received=received, processing_rate=rate)) is Health.HEALTHY


# -- the figures of one snapshot --------------------------------------------------------------


def test_every_figure_of_a_snapshot_on_a_test_scheduler() -> None:
    s = TestScheduler()
    m = pfrx.StreamMetrics(s, rate_interval=10.0)
    s.advance_to(100.0)
    m.record_received(8)
    m.record_emitted(6)
    m.record_error(2)
    m.record_drop("late", 3)
    m.record_drop("overflow")
    m.record_backpressure()
    m.record_backpressure(2)
    m.record_processing_time(0.25)
    m.record_processing_time(1.0, slow=True)
    m.record_processing_time(0.5, at=99.0)
    s.advance_to(104.0)
    got = m.snapshot()
    assert got.timestamp == 104.0
    assert (got.received, got.emitted, got.dropped, got.errors) == (8, 6, 4, 2)
    assert got.backpressure_events == 3
    assert got.slow_events == 1
    assert got.drops_by_reason == {"late": 3, "overflow": 1}
    # 4 s since the first item: 8 in / 4 s, 6 out / 4 s.
    assert got.input_rate == 2.0
    assert got.processing_rate == 1.5
    assert got.error_rate == 0.25
    assert got.drop_rate == 0.5
    assert got.recent_received == 8
    assert got.recent_error_rate == 0.25
    assert got.recent_drop_rate == 0.5
    assert got.avg_processing_time == pytest.approx(1.75 / 3)
    assert got.recent_avg_processing_time == pytest.approx(1.75 / 3)
    assert got.max_processing_time == 1.0
    assert (got.buffer_utilization, got.peak_buffer_utilization, got.buffered) == (0.0, 0.0, 0)
    assert got.operators == ()
    assert dict(got.info) == {}
    assert m.dropped == 4


def test_lifetime_rates_are_capped_at_one() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    m.record_received(2)
    m.record_error(3)
    m.record_drop("late", 5)
    got = m.snapshot()
    assert (got.error_rate, got.drop_rate) == (1.0, 1.0)
    assert (got.recent_error_rate, got.recent_drop_rate) == (1.0, 1.0)


def test_nothing_received_reads_zero_rates_not_a_division_error() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    m.record_error()
    m.record_drop("late")
    got = m.snapshot()
    assert (got.error_rate, got.drop_rate) == (0.0, 0.0)
    assert (got.recent_error_rate, got.recent_drop_rate, got.recent_received) == (0.0, 0.0, 0)
    assert (got.input_rate, got.processing_rate) == (0.0, 0.0)
    assert (got.avg_processing_time, got.recent_avg_processing_time) == (0.0, 0.0)
    assert got.max_processing_time == 0.0


def test_the_slowest_time_is_the_maximum_not_the_last() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    for seconds in (0.5, 2.0, 1.0):
        m.record_processing_time(seconds)
    assert m.snapshot().max_processing_time == 2.0
    m.record_batch(2, 1.0, 0.75, 0.0)
    got = m.snapshot()
    assert got.max_processing_time == 2.0
    assert got.avg_processing_time == 4.5 / 5
    m.record_batch(1, 3.0, 3.0, 0.0, totals=False)
    assert m.snapshot().max_processing_time == 3.0


def test_rates_span_at_least_one_bucket_and_at_most_the_interval() -> None:
    s = TestScheduler()
    m = pfrx.StreamMetrics(s, rate_interval=10.0)
    s.advance_to(20.0)
    m.record_received(3)
    # A lone burst reads over one bucket (1 s), not over zero seconds.
    assert m.snapshot().input_rate == 3.0
    s.advance_to(20.5)
    assert m.snapshot().input_rate == 3.0
    s.advance_to(22.0)
    assert m.snapshot().input_rate == 1.5
    s.advance_to(25.0)
    m.record_received(2)
    s.advance_to(29.9)
    assert m.snapshot().input_rate == pytest.approx(5 / 9.9)
    # Past the interval the span stays 10 s and the window keeps its ten buckets (21..30).
    s.advance_to(30.0)
    assert m.snapshot().input_rate == 0.2
    assert m.snapshot().recent_received == 2
    s.advance_to(29.99 + 5.0)
    assert m.snapshot().recent_received == 2
    s.advance_to(35.0)
    assert m.snapshot().recent_received == 0
    assert m.snapshot().input_rate == 0.0


def test_items_in_the_same_bucket_add_up_and_old_buckets_leave_the_window() -> None:
    s = TestScheduler()
    m = pfrx.StreamMetrics(s, rate_interval=1.0)  # buckets of 0.1 s
    for t in (0.0, 0.05, 0.15, 0.95):
        s.advance_to(t)
        m.record_emitted()
    assert m.snapshot().processing_rate == 4 / 0.95
    s.advance_to(1.05)
    assert m.snapshot().processing_rate == 2.0  # bucket 0 (two items) left the window
    s.advance_to(1.15)
    assert m.snapshot().processing_rate == 1.0
    s.advance_to(1.85)
    assert m.snapshot().processing_rate == 1.0
    s.advance_to(1.95)
    assert m.snapshot().processing_rate == 0.0


# -- buffers, stages, sources ------------------------------------------------------------------


def test_buffer_figures_take_the_fullest_buffer_and_skip_zero_capacity() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    m.register_buffer("a", lambda: pfrx.BufferGauge(3, 10, 4))
    m.register_buffer("b", lambda: pfrx.BufferGauge(6, 8, 7))
    m.register_buffer("c", lambda: pfrx.BufferGauge(2, 0, 9))
    got = m.snapshot()
    assert got.buffered == 11
    assert got.buffer_utilization == 0.75
    assert got.peak_buffer_utilization == 0.875


def test_buffer_figures_are_capped_at_one_and_peak_is_never_below_now() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    m.register_buffer("over", lambda: pfrx.BufferGauge(12, 10))
    got = m.snapshot()
    assert (got.buffer_utilization, got.peak_buffer_utilization, got.buffered) == (1.0, 1.0, 12)
    m2 = pfrx.StreamMetrics(TestScheduler())
    m2.register_buffer("now", lambda: pfrx.BufferGauge(5, 10, 2))
    assert m2.snapshot().peak_buffer_utilization == 0.5
    assert pfrx.BufferGauge(1, 2).peak == 0


def test_two_gauges_of_one_metrics_are_kept_apart_and_released_one_by_one() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    first = m.register_buffer("a", lambda: pfrx.BufferGauge(1, 10))
    second = m.register_buffer("b", lambda: pfrx.BufferGauge(2, 10))
    assert m.snapshot().buffered == 3
    first.dispose()
    assert m.snapshot().buffered == 2
    first.dispose()
    assert m.snapshot().buffered == 2
    second.dispose()
    assert m.snapshot().buffered == 0


def test_sources_are_flushed_before_each_snapshot_until_released() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    calls: list[str] = []

    def flush_a() -> None:
        calls.append("a")
        m.record_received()

    def flush_b() -> None:
        calls.append("b")

    handle_a = m.register_source(flush_a)
    handle_b = m.register_source(flush_b)
    assert m.snapshot().received == 1
    assert calls == ["a", "b"]
    handle_a.dispose()
    assert m.snapshot().received == 1
    assert calls == ["a", "b", "b"]
    handle_a.dispose()
    handle_b.dispose()
    m.snapshot()
    assert calls == ["a", "b", "b"]


def test_stage_snapshots_export_their_counts_and_repeat_names_are_numbered() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    last = m.operator("map")
    first = m.operator("map")
    middle_name = m.operator("filter")
    first.received, first.emitted, first.dropped, first.errors = 4, 3, 1, 2
    last.received = 9
    names = [stage.name for stage in m.snapshot().operators]
    assert names == ["filter", "map", "map#2"]
    assert middle_name.name == "filter"
    stages = m.snapshot().operators
    assert stages[1].to_dict() == {
        "name": "map",
        "received": 4,
        "emitted": 3,
        "dropped": 1,
        "errors": 2,
    }
    assert stages[2].to_dict() == {
        "name": "map#2",
        "received": 9,
        "emitted": 0,
        "dropped": 0,
        "errors": 0,
    }
    m.operator("map")
    assert [stage.name for stage in m.snapshot().operators] == ["map", "filter", "map#2", "map#3"]


def test_reset_zeroes_every_count_of_every_stage_and_figure() -> None:
    s = TestScheduler()
    m = pfrx.StreamMetrics(s)
    stage = m.operator("x")
    stage.received = stage.emitted = stage.dropped = stage.errors = 3
    m.record_received(4)
    m.record_emitted(4)
    m.record_error()
    m.record_backpressure()
    m.record_drop("late")
    m.record_processing_time(2.0, slow=True)
    m.reset()
    got = m.snapshot()
    assert got.operators[0].to_dict() == {
        "name": "x",
        "received": 0,
        "emitted": 0,
        "dropped": 0,
        "errors": 0,
    }
    assert (got.received, got.emitted, got.errors, got.dropped) == (0, 0, 0, 0)
    assert (got.backpressure_events, got.slow_events) == (0, 0)
    assert (got.avg_processing_time, got.max_processing_time) == (0.0, 0.0)
    assert got.drops_by_reason == {}
    assert (got.input_rate, got.processing_rate, got.recent_received) == (0.0, 0.0, 0)
    assert got.recent_avg_processing_time == 0.0
    # Counting starts over cleanly.
    m.record_received()
    m.record_error()
    assert m.snapshot().error_rate == 1.0


def test_snapshot_to_dict_is_every_field_as_plain_values() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    m.operator("s")
    m.record_drop("late")
    m.set_info("state", "normal")
    data = m.snapshot().to_dict()
    assert list(data) == [field.name for field in attrs_fields()]
    assert type(data["drops_by_reason"]) is dict
    assert type(data["info"]) is dict
    assert data["operators"] == [{"name": "s", "received": 0, "emitted": 0, "dropped": 0, "errors": 0}]
    assert data["info"] == {"state": "normal"}
    assert data["dropped"] == 1


def attrs_fields() -> tuple[Any, ...]:
    import attrs

    return attrs.fields(MetricsSnapshot)
