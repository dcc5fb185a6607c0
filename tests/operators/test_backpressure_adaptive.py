"""The adaptive strategy: its state machine on its own, then inside the operator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._backpressure_policy import NORMAL, SHEDDING, AdaptiveMachine
from pfrx.testing import slow_consumer


def machine(**policy: Any) -> AdaptiveMachine:
    # buffer 10: high-water mark 8 items, low-water mark 5 items.
    return AdaptiveMachine(pf.AdaptivePolicy(**policy), capacity=10, batch_size=16)


def test_marks_follow_the_fractions() -> None:
    m = machine()
    assert (m.high_mark, m.low_mark) == (8, 5)
    tiny = AdaptiveMachine(pf.AdaptivePolicy(), capacity=1, batch_size=1)
    assert (tiny.high_mark, tiny.low_mark) == (1, 0)


def test_one_full_turn_is_not_a_sustained_backlog() -> None:
    m = machine(sustain=2)
    assert m.turn_start(9) is None
    assert m.turn_start(7) is None  # dipped below the high-water mark: the streak restarts
    assert m.turn_start(8) is None
    switch = m.turn_start(10)
    assert switch is not None
    assert (switch.what, switch.old, switch.new) == ("state", NORMAL, SHEDDING)
    assert m.state == SHEDDING


def test_shedding_keeps_going_between_the_marks_and_stops_at_the_low_mark() -> None:
    m = machine(sustain=1)
    m.turn_start(8)
    assert m.state == SHEDDING
    # Between the marks (hysteresis band) the machine stays put in either direction.
    for size in (7, 6, 7, 6):
        shed, switch = m.arrival(size)
        assert shed
        assert switch is None
        assert m.turn_start(size) is None
    changes = m.turn_end(5, 0, 0.0)
    assert [(c.what, c.new) for c in changes] == [("state", NORMAL)]
    shed, switch = m.arrival(6)
    assert not shed
    assert switch is None
    assert m.turn_start(7) is None  # below the high mark: no shedding again yet
    assert m.state == NORMAL


def test_an_arrival_at_the_low_mark_ends_shedding() -> None:
    m = machine(sustain=1)
    m.turn_start(9)
    shed, switch = m.arrival(5)
    assert not shed
    assert switch is not None
    assert (switch.old, switch.new) == (SHEDDING, NORMAL)


def test_batch_size_halves_to_the_floor_and_grows_back() -> None:
    m = machine(min_batch_size=3, slow_item_time=0.01)
    sizes = []
    for _ in range(5):
        m.turn_end(0, m.batch_size, 0.02 * m.batch_size)  # 20 ms per item: slow
        sizes.append(m.batch_size)
    assert sizes == [8, 4, 3, 3, 3]
    m.turn_end(0, 3, 0.0075 * 3)  # 7.5 ms: inside the band, nothing changes
    assert m.batch_size == 3
    for _ in range(4):
        m.turn_end(0, m.batch_size, 0.001 * m.batch_size)  # fast again
        sizes.append(m.batch_size)
    assert sizes[-4:] == [6, 12, 16, 16]
    assert m.switches == 2 + 1 + 3  # 16->8->4->3, then 3->6->12->16


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="below high_water"):
        pf.AdaptivePolicy(high_water=0.5, low_water=0.5)
    with pytest.raises(ValueError, match="high_water"):
        pf.AdaptivePolicy(high_water=1.5)
    with pytest.raises(ValueError, match="sustain"):
        pf.AdaptivePolicy(sustain=0)
    with pytest.raises(ValueError, match="slow_item_time"):
        pf.AdaptivePolicy(slow_item_time=0)
    assert pf.AdaptivePolicy(slow_item_time=timedelta(milliseconds=5)).slow_item_time == 0.005


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    logger.enable("pfrx")
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    try:
        yield lines
    finally:
        logger.remove(sink)
        logger.disable("pfrx")


def test_adaptive_operator_sheds_reports_and_recovers(log_lines: list[str]) -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    lost: list[pfrx.Dropped] = []
    got: list[int] = []

    def source(observer: Any, _: Any = None) -> Disposable:
        # A burst of 12 at t=1, then one item per tick; the consumer needs 2 ticks per item.
        for i in range(12):
            scheduler.schedule_absolute(1.0, lambda *_, i=i: observer.on_next(i))
        for i in range(12, 40):
            scheduler.schedule_absolute(i - 10.0, lambda *_, i=i: observer.on_next(i))
        scheduler.schedule_absolute(60.0, lambda *_: observer.on_completed())
        return Disposable()

    policy = pf.AdaptivePolicy(sustain=2, min_batch_size=1, slow_item_time=1.0)
    reactivex.create(source).pipe(
        pf.backpressure(
            "adaptive",
            buffer_size=10,
            batch_size=4,
            adaptive=policy,
            metrics=metrics,
            on_drop=lost.append,
        ),
        slow_consumer(2, scheduler),
    ).subscribe(got.append, scheduler=scheduler)
    scheduler.start()

    reasons = [d.reason for d in lost]
    assert set(reasons) == {"overflow", "shed"}
    assert sorted(got + [d.item for d in lost]) == list(range(40))
    assert got == sorted(got)
    assert got[-1] == 39
    snapshot = metrics.snapshot()
    # Only items that found the buffer full are backpressure events; shedding is not.
    assert snapshot.backpressure_events == reasons.count("overflow")
    assert dict(snapshot.drops_by_reason) == {
        "overflow": reasons.count("overflow"),
        "shed": reasons.count("shed"),
    }
    info = snapshot.info
    assert info["backpressure.adaptive_state"] == NORMAL  # recovered once the load passed
    assert info["backpressure.batch_size"] == 1  # 2 s per item is slow: halved to the floor
    switches = [line for line in log_lines if "adaptive" in line]
    assert len(switches) == info["backpressure.adaptive_switches"]
    assert any("normal -> shedding" in line for line in switches)
    assert any("shedding -> normal" in line for line in switches)
    assert any("batch_size 4 -> 2" in line for line in switches)
    # No flapping: each shedding episode needs `sustain` turns above the high-water mark.
    episodes = sum("normal -> shedding" in line for line in switches)
    assert episodes <= snapshot.info["backpressure.drain"]["turns"] // policy.sustain
