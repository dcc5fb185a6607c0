"""Issue 12: metrics_tap's operator counters when the metrics already count the most operators
they keep apart (`pfrx.metrics.MAX_OPERATORS`): every further subscription of the tap adds
into the counters of the latest operator of its name, so its counts accumulate exactly."""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.metrics import MAX_OPERATORS, OperatorSnapshot


def _full_metrics(room: int) -> pfrx.StreamMetrics:
    """Metrics on a TestScheduler already counting ``MAX_OPERATORS - room`` other operators."""
    metrics = pfrx.StreamMetrics(TestScheduler())
    for index in range(MAX_OPERATORS - room):
        metrics.operator(f"filler{index}")
    return metrics


def test_resubscriptions_past_the_cap_add_their_errors_and_items_into_one_counter() -> None:
    metrics = _full_metrics(room=1)
    tap = pf.metrics_tap(metrics)
    errors: list[Exception] = []
    for run in range(3):
        source: reactivex.Observable[Any] = reactivex.concat(
            reactivex.of(*range(run + 1)), reactivex.throw(ValueError(f"run {run}"))
        )
        source.pipe(tap).subscribe(on_error=errors.append)
    assert [str(e) for e in errors] == ["run 0", "run 1", "run 2"]
    snapshot = metrics.snapshot()
    taps = [o for o in snapshot.operators if o.name.startswith("metrics_tap")]
    # one item, then two, then three: six in all, and three errors, in one shared counter
    assert taps == [OperatorSnapshot("metrics_tap", 6, 6, 0, 3)]
    assert (snapshot.received, snapshot.emitted, snapshot.errors) == (6, 6, 3)
    assert len(snapshot.operators) == MAX_OPERATORS


def test_below_the_cap_each_subscription_counts_apart() -> None:
    metrics = _full_metrics(room=3)
    tap = pf.metrics_tap(metrics, name="edge")
    for run in range(2):
        source: reactivex.Observable[Any] = reactivex.concat(
            reactivex.of(*range(run + 1)), reactivex.throw(ValueError("boom"))
        )
        source.pipe(tap).subscribe(on_error=lambda _e: None)
    edges = [o for o in metrics.snapshot().operators if o.name.startswith("edge")]
    # the latest subscription is listed first (it went in front), numbered from the source
    assert edges == [OperatorSnapshot("edge", 2, 2, 0, 1), OperatorSnapshot("edge#2", 1, 1, 0, 1)]
