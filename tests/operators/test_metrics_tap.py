from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles


def test_passes_everything_through_and_counts_it() -> None:
    with marbles() as m:
        metrics = pfrx.StreamMetrics(m.scheduler, rate_interval=10.0)
        result = m.run(m.hot("-a-b-c-|").pipe(pf.metrics_tap(metrics)))
        m.expect(result, "-a-b-c-|")
        snap = metrics.snapshot()
        assert (snap.received, snap.emitted, snap.errors) == (3, 3, 0)
        # 3 items between 201 and 205, read at 1000: long idle, so the rate has decayed
        assert snap.processing_rate == 0.0


def test_rate_while_flowing_is_exact() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s, rate_interval=10.0)
    source = reactivex.interval(0.5, scheduler=s).pipe(ops.take(40))
    source.pipe(pf.metrics_tap(metrics)).subscribe(scheduler=s)
    s.advance_to(20.25)
    # Rates count whole tenths of the interval: at 20.25 the window is [11, 21), which holds
    # the 19 items at 11.0, 11.5, ... 20.0; over the 10 s interval that is 1.9 items/s.
    assert metrics.snapshot().processing_rate == 1.9


def test_measures_how_long_downstream_takes() -> None:
    s = TestScheduler()
    metrics = pfrx.StreamMetrics(s)
    source = reactivex.from_iterable([1, 2], scheduler=s)
    source.pipe(pf.metrics_tap(metrics)).subscribe(lambda _: s.sleep(2.0))
    s.start()
    snap = metrics.snapshot()
    assert snap.avg_processing_time == 2.0 and snap.max_processing_time == 2.0


def test_without_metrics_it_makes_its_own() -> None:
    tap = pf.metrics_tap(name="edge")
    assert reactivex.of(1, 2).pipe(tap, ops.to_list()).run() == [1, 2]
    snap = tap.metrics.snapshot()
    assert snap.emitted == 2
    assert snap.operators[0].name == "edge"


def test_counts_upstream_errors() -> None:
    boom = ValueError("x")
    with marbles() as m:
        metrics = pfrx.StreamMetrics(m.scheduler)
        result = m.run(m.hot("-a-#", error=boom).pipe(pf.metrics_tap(metrics)))
        m.expect(result, "-a-#", error=boom)
        assert metrics.snapshot().errors == 1


def test_inside_a_reporting_scope_it_records_only_its_stage() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-|").pipe(pf.metrics_tap(name="tap")))
        m.expect(result, "-a-b-|")
        snap = m.metrics.snapshot()
        assert snap.received == 0  # totals belong to the stream that owns the scope
        assert snap.operators[0].received == 2 and snap.operators[0].emitted == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((5,), {}, TypeError, "StreamMetrics"),
        (("m",), {}, TypeError, "StreamMetrics"),
        ((), {"scheduler": "x"}, TypeError, "scheduler"),
        ((), {"name": 5}, TypeError, "name"),
        ((), {"name": ""}, ValueError, "name"),
    ],
)
def test_every_argument_is_checked_when_built(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        pf.metrics_tap(*args, **kwargs)
