from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import BufferGauge, Health, HealthThresholds, StreamMetrics
from pfrx import operators as pf
from pfrx.metrics import MAX_DROP_REASONS, MAX_OPERATORS


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


def test_operators_are_listed_in_pipeline_order_with_unique_names() -> None:
    # RxPY subscribes from the last operator back to the source: the last registered is first.
    m = StreamMetrics(TestScheduler())
    sink, middle, source = m.operator("transform"), m.operator("window"), m.operator("transform")
    source.received += 1
    snap = m.snapshot()
    assert [s.name for s in snap.operators] == ["transform", "window", "transform#2"]
    assert snap.operators[0].received == 1
    assert (sink.name, middle.name) == ("transform", "window")


def test_snapshot_exports_to_a_plain_json_dict() -> None:
    m = StreamMetrics(TestScheduler())
    m.operator("x")
    m.record_drop("late")
    m.set_info("adaptive_state", "normal")
    data = m.snapshot().to_dict()
    assert data["drops_by_reason"] == {"late": 1}
    assert data["operators"][0]["name"] == "x"
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


def test_reset_forgets_counts_but_keeps_operators() -> None:
    m = StreamMetrics(TestScheduler())
    counters = m.operator("x")
    counters.received = 5
    m.record_received(5)
    m.record_drop("late")
    m.reset()
    snap = m.snapshot()
    assert (snap.received, snap.dropped, snap.operators[0].received) == (0, 0, 0)


@pytest.mark.parametrize(
    ("received", "errors", "drops", "buffer", "expected"),
    [
        (100, 0, 0, 0, Health.HEALTHY),
        (100, 5, 0, 0, Health.HEALTHY),  # exactly at the threshold is still fine
        (100, 6, 0, 0, Health.DEGRADED),
        (100, 26, 0, 0, Health.UNHEALTHY),
        (100, 0, 10, 0, Health.HEALTHY),  # exactly a 0.10 drop rate is still fine
        (100, 0, 11, 0, Health.DEGRADED),
        (100, 0, 50, 0, Health.DEGRADED),  # exactly 0.50: degraded, not unhealthy
        (100, 0, 51, 0, Health.UNHEALTHY),
        (100, 0, 0, 8, Health.HEALTHY),  # exactly 80 % full is still fine
        (100, 0, 0, 9, Health.DEGRADED),
        (100, 25, 0, 0, Health.DEGRADED),  # exactly 0.25 errors: degraded, not unhealthy
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


def test_buffer_boundary_uses_the_snapshot_utilization_exactly() -> None:
    m = StreamMetrics(TestScheduler())
    m.register_buffer("b", lambda: BufferGauge(8, 10))
    snap = m.snapshot()
    assert snap.buffer_utilization == 0.8
    assert HealthThresholds().classify(snap) is Health.HEALTHY


# -- thresholds and arguments are checked when built ----------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"degraded_error_rate": float("nan")}, ValueError),
        ({"unhealthy_drop_rate": float("inf")}, ValueError),
        ({"degraded_buffer_utilization": -0.1}, ValueError),
        ({"unhealthy_error_rate": 1.5}, ValueError),
        ({"degraded_drop_rate": "0.1"}, TypeError),
        ({"degraded_error_rate": True}, TypeError),
        ({"degraded_error_rate": 0.3, "unhealthy_error_rate": 0.2}, ValueError),
        ({"degraded_drop_rate": 0.6}, ValueError),  # above the default unhealthy 0.5
        ({"min_processing_rate": float("nan")}, ValueError),
        ({"min_processing_rate": -1.0}, ValueError),
        ({"min_processing_rate": "fast"}, TypeError),
    ],
)
def test_bad_thresholds_raise_when_built(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        HealthThresholds(**kwargs)


def test_edge_thresholds_are_accepted() -> None:
    t = HealthThresholds(
        degraded_error_rate=0,
        unhealthy_error_rate=1,
        degraded_drop_rate=0.5,
        unhealthy_drop_rate=0.5,
        min_processing_rate=0,
    )
    assert (t.degraded_error_rate, t.unhealthy_error_rate, t.min_processing_rate) == (0, 1, 0)


@pytest.mark.parametrize(
    "kwargs", [{"scheduler": "x"}, {"thresholds": {"degraded_error_rate": 0.1}}, {"name": 5}]
)
def test_bad_metrics_arguments_raise_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        StreamMetrics(**kwargs)


# -- one drop record, one count ---------------------------------------------------------------


def _late_through(op: Callable[..., Any], metrics: StreamMetrics) -> list[pfrx.Dropped]:
    lost: list[pfrx.Dropped] = []
    ctx = pfrx.Context("alice", "s1")
    source = reactivex.from_iterable(
        [pfrx.Envelope(t, ctx, 0.0) for t in (10.0, 0.0, 11.0)]
    )  # 0.0 arrives after the watermark passed 10: late
    source.pipe(op(on_drop=lost.append, metrics=metrics), ops.to_list()).run()
    return lost


@pytest.mark.parametrize(
    "op",
    [
        lambda **kw: pf.window_time(5.0, timestamp=lambda e: e.event, **kw),
        lambda **kw: pf.window_session(1.0, timestamp=lambda e: e.event, **kw),
    ],
    ids=["window_time", "window_session"],
)
def test_a_late_drop_is_counted_once(op: Callable[..., Any]) -> None:
    metrics = StreamMetrics(TestScheduler())
    lost = _late_through(op, metrics)
    assert [(d.item.event, d.reason) for d in lost] == [(0.0, "late")]
    snap = metrics.snapshot()
    assert snap.dropped == 1 and metrics.dropped == 1
    assert dict(snap.drops_by_reason) == {"late": 1}
    assert snap.operators[0].dropped == 1
    assert snap.received == 3
    assert snap.drop_rate == pytest.approx(1 / 3)


def test_each_drop_is_counted_once_per_reason() -> None:
    m = StreamMetrics(TestScheduler())
    for reason, n in (("late", 1), ("overflow", 3), ("late", 2)):
        m.record_drop(reason, n)
    snap = m.snapshot()
    assert dict(snap.drops_by_reason) == {"late": 3, "overflow": 3}
    assert snap.dropped == m.dropped == 6


# -- memory stays bounded by configuration, never by the variety of input ---------------------


def test_at_most_1000_distinct_drop_reasons_the_rest_under_other() -> None:
    m = StreamMetrics(TestScheduler())
    for i in range(2_500):
        m.record_drop(f"reason {i}")
    m.record_drop("reason 7", 2)  # a kept reason keeps counting by name
    snap = m.snapshot()
    assert MAX_DROP_REASONS == 1_000
    assert len(snap.drops_by_reason) == 1_001
    assert snap.drops_by_reason["reason 999"] == 1
    assert "reason 1000" not in snap.drops_by_reason
    assert snap.drops_by_reason["reason 7"] == 3
    assert snap.drops_by_reason["other"] == 1_500
    assert snap.dropped == m.dropped == 2_502


def retained_bytes(work: Callable[[], Any]) -> int:
    """Bytes still allocated (by tracemalloc) after ``work`` ran and garbage was collected,
    while what ``work`` returns is kept alive."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = work()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del kept
    return grown


def hostile_reasons(n: int) -> Iterator[str]:
    # Exception texts that carry payload: every one distinct and 200 bytes long.
    return (f"{i:08d}" + "x" * 192 for i in range(n))


def test_drop_reasons_memory_is_bounded_by_the_cap_not_the_input() -> None:
    def work() -> StreamMetrics:
        m = StreamMetrics(TestScheduler())
        for reason in hostile_reasons(20_000):
            m.record_drop(reason)
        m.snapshot()
        return m

    # 20,000 distinct 200-byte reasons would pin ~6 MB; the cap keeps 1,000 (~0.3 MB).
    assert retained_bytes(work) < 1_000_000


def test_a_snapshot_copies_at_most_the_capped_reasons() -> None:
    m = StreamMetrics(TestScheduler())
    for reason in hostile_reasons(20_000):
        m.record_drop(reason)
    snap = m.snapshot()
    assert len(snap.drops_by_reason) <= MAX_DROP_REASONS + 1
    assert sum(snap.drops_by_reason.values()) == snap.dropped == 20_000


def test_operators_are_bounded_when_a_pipeline_is_resubscribed_for_ever() -> None:
    m = StreamMetrics(TestScheduler())
    op = pf.transform(lambda e, c: e, metrics=m)
    source = pfrx.envelopes(["a"], pfrx.Context("u"))

    runs = MAX_OPERATORS + 100
    for _ in range(runs):
        source.pipe(op).run()
    snap = m.snapshot()
    assert len(snap.operators) == MAX_OPERATORS
    # Past the cap, later subscriptions count into the latest operator of their name.
    assert sum(op.received for op in snap.operators) == runs
    assert snap.received == snap.emitted == runs

    def work() -> None:
        for _ in range(20_000):
            m.operator("transform")

    assert retained_bytes(work) < 50_000


def test_operators_past_the_cap_with_new_names_share_one_other_operator() -> None:
    m = StreamMetrics(TestScheduler())
    for i in range(MAX_OPERATORS):
        m.operator(f"op{i}")
    first = m.operator("fresh")
    second = m.operator("fresher")
    assert first is second and first.name == "other"
    assert m.operator("op3").name == "op3"
    assert len(m.snapshot().operators) == MAX_OPERATORS + 1


def test_gauges_and_sources_are_released_when_disposed() -> None:
    m = StreamMetrics(TestScheduler())

    def work() -> None:
        for i in range(5_000):
            m.register_buffer(f"b{i}", lambda i=i: BufferGauge(i, 10)).dispose()
            m.register_source(lambda: None).dispose()
        m.snapshot()

    assert retained_bytes(work) < 50_000
    assert m.snapshot().buffered == 0


def test_rate_history_is_bounded_over_a_long_run() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=1.0)

    def work() -> None:
        for i in range(5_000):  # one bucket each: 5,000 buckets of history if unbounded
            s.advance_to(i * 0.1)
            m.record_received()
            m.record_emitted()
            m.record_error()
            m.record_drop("late")
            m.record_processing_time(0.01)
        m.snapshot()

    assert retained_bytes(work) < 50_000
    assert m.snapshot().recent_received == 10


def test_unhealthy_buffer_boundary_is_exclusive() -> None:
    m = StreamMetrics(TestScheduler())
    size = {"n": 19}
    m.register_buffer("b", lambda: BufferGauge(size["n"], 20))
    assert m.snapshot().buffer_utilization == 0.95
    assert m.health() is Health.DEGRADED  # exactly 95 % full: degraded, not unhealthy
    size["n"] = 20
    assert m.health() is Health.UNHEALTHY


def test_min_processing_rate_boundary_is_exclusive() -> None:
    s = TestScheduler()
    m = StreamMetrics(s, rate_interval=10.0, thresholds=HealthThresholds(min_processing_rate=2.0))
    for second in range(20):  # two items a second for 20 s
        at(s, 100.0 + second)
        m.record_received(2)
        m.record_emitted(2)
    at(s, 119.5)  # the last 10 s hold 20 items: exactly 2.0 items/s
    assert m.snapshot().processing_rate == 2.0
    assert m.health() is Health.HEALTHY
    at(s, 120.5)  # one second without items: 18 in the window
    assert m.snapshot().processing_rate == 1.8
    assert m.health() is Health.DEGRADED
