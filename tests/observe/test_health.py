"""Health transitions pushed as ``(old, new, snapshot)``, sampled on the scheduler's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.observe import HealthChange, health_changes

from .conftest import ALLOWED

HEALTHY, DEGRADED, UNHEALTHY = pfrx.Health


def test_transitions_are_emitted_at_exact_virtual_times() -> None:
    clock = TestScheduler()
    metrics = pfrx.StreamMetrics(clock, rate_interval=10.0)
    seen: list[tuple[float, HealthChange]] = []
    health_changes(metrics, interval=1.0).subscribe(lambda c: seen.append((clock.clock, c)))

    def traffic(received: int, dropped: int) -> None:
        metrics.record_received(received)
        metrics.record_emitted(received - dropped)
        if dropped:
            metrics.record_drop("overflow", dropped)

    # 2.5 s: 20% dropped -> degraded at the 3 s sample; 4.5 s: 60% -> unhealthy at 5 s.
    clock.schedule_absolute(2.5, lambda *_: traffic(10, 2))
    clock.schedule_absolute(4.5, lambda *_: traffic(10, 10))
    # 30 s: the old drops have left the 10 s window; new clean traffic -> healthy at 31 s.
    clock.schedule_absolute(30.5, lambda *_: traffic(100, 0))
    clock.advance_to(40.0)

    assert [(t, c.old, c.new) for t, c in seen] == [
        (3.0, HEALTHY, DEGRADED),
        (5.0, DEGRADED, UNHEALTHY),
        (31.0, UNHEALTHY, HEALTHY),
    ]
    # Each snapshot is the one that shows the new health, taken at the sample's time.
    for t, change in seen:
        assert change.snapshot.timestamp == t
        assert metrics.thresholds.classify(change.snapshot) == change.new
    assert seen[1][1].snapshot.dropped == 12


def test_nothing_is_emitted_while_health_stays_the_same() -> None:
    clock = TestScheduler()
    metrics = pfrx.StreamMetrics(clock)
    seen: list[HealthChange] = []
    subscription = health_changes(metrics, interval=timedelta(seconds=0.5)).subscribe(seen.append)
    metrics.record_received(100)
    metrics.record_emitted(100)
    clock.advance_to(20.0)
    assert seen == []
    metrics.record_received(1)
    metrics.record_drop("x", 60)
    subscription.dispose()  # no sample after disposal
    clock.advance_to(40.0)
    assert seen == []


def test_a_failed_stream_turns_unhealthy() -> None:
    clock = TestScheduler()

    def explode(source: object) -> object:
        from reactivex import operators as ops

        def check(envelope: pfrx.Envelope) -> pfrx.Envelope:
            if envelope.event == "boom":
                raise RuntimeError("boom")
            return envelope

        return source.pipe(ops.map(check))  # type: ignore[attr-defined]

    stream = pfrx.Stream(explode, pf.transform(lambda e, c: e), name="fragile", scheduler=clock)
    seen: list[HealthChange] = []
    health_changes(stream, interval=1.0).subscribe(seen.append)  # the stream's own scheduler
    stream.send("fine", ALLOWED)
    clock.advance_to(2.0)
    assert seen == []
    stream.send("boom", ALLOWED)
    clock.advance_to(3.0)
    assert [(c.old, c.new) for c in seen] == [(HEALTHY, UNHEALTHY)]
    assert seen[0].snapshot.received == 2


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match=r"pfrx\.Stream or a pfrx\.StreamMetrics"):
        health_changes(object())
    with pytest.raises(ValueError, match="interval"):
        health_changes(pfrx.StreamMetrics(TestScheduler()), interval=0)
