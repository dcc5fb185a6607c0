"""The ledger under hypothesis: random producer and consumer timings in virtual time.

For every strategy, every item that entered the operator is delivered or dropped exactly
once, in order, with a reason the strategy allows; the metrics agree; terminal
notifications come after everything buffered.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import slow_consumer

ALLOWED = {
    "drop_oldest": {"overflow"},
    "drop_newest": {"overflow"},
    "latest": {"overwritten"},
    "block": set(),
    "error": {"overflow"},
    "adaptive": {"overflow", "shed"},
}
FULL = {"overflow", "overwritten"}  # reasons that mean "found the buffer full"


def timed_source(scheduler: TestScheduler, gaps: list[int], ending: str) -> Observable[int]:
    """Items 0..n-1 after the given gaps (ticks), then complete, fail or stay open."""

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
        handles = CompositeDisposable()
        at = 0.0
        for i, gap in enumerate(gaps):
            at += gap
            handles.add(scheduler.schedule_relative(at, lambda *_, i=i: observer.on_next(i)))
        at += 1
        if ending == "complete":
            handles.add(scheduler.schedule_relative(at, lambda *_: observer.on_completed()))
        elif ending == "error":
            handles.add(
                scheduler.schedule_relative(at, lambda *_: observer.on_error(ValueError("up")))
            )
        return handles

    return Observable(subscribe)


@settings(max_examples=600)
@given(
    strategy=st.sampled_from(sorted(ALLOWED)),
    buffer_size=st.integers(1, 6),
    batch_size=st.integers(1, 5),
    gaps=st.lists(st.integers(0, 4), max_size=30),
    work=st.integers(0, 7),
    ending=st.sampled_from(["complete", "error", "open"]),
    dispose_at=st.none() | st.integers(0, 150),
)
def test_every_item_is_delivered_or_dropped_exactly_once(
    strategy: str,
    buffer_size: int,
    batch_size: int,
    gaps: list[int],
    work: int,
    ending: str,
    dispose_at: int | None,
) -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    entered: list[int] = []
    delivered: list[int] = []
    lost: list[pfrx.Dropped] = []
    notes: list[tuple[str, Any]] = []

    subscription = (
        timed_source(scheduler, gaps, ending)
        .pipe(
            ops.do_action(on_next=entered.append),
            pf.backpressure(
                strategy,
                buffer_size=buffer_size,
                batch_size=batch_size,
                metrics=metrics,
                on_drop=lost.append,
            ),
            slow_consumer(work, scheduler),
        )
        .subscribe(
            lambda v: (delivered.append(v), notes.append(("next", v))),
            lambda e: notes.append(("error", e)),
            lambda: notes.append(("completed", None)),
            scheduler=scheduler,
        )
    )
    if dispose_at is not None:
        scheduler.schedule_absolute(float(dispose_at), lambda *_: subscription.dispose())
    scheduler.start()

    dropped = [d.item for d in lost]
    # Exactly once: nothing both delivered and dropped, nothing missing, nothing invented.
    assert sorted(delivered + dropped) == entered
    assert delivered == sorted(delivered)  # order preserved
    reasons = {d.reason for d in lost}
    assert reasons <= ALLOWED[strategy] | {"disposed"}
    disposed_early = any(d.reason == "disposed" for d in lost)

    # Terminal notifications: at most one, last, after every delivered item.
    terminals = [kind for kind, _ in notes if kind != "next"]
    assert len(terminals) <= 1
    if terminals:
        assert notes[-1][0] == terminals[0]
        assert not disposed_early
    overflowed = strategy == "error" and "overflow" in reasons
    if overflowed:
        assert terminals in (["error"], [])  # [] only when disposed before the drain ended
        if terminals:
            assert isinstance(notes[-1][1], pfrx.BackpressureOverflow)
            assert [d.reason for d in lost] == ["overflow"]
    elif dispose_at is None and ending == "complete":
        assert terminals == ["completed"]
        assert entered == list(range(len(gaps)))
    elif dispose_at is None and ending == "error":
        assert terminals == ["error"]
        assert isinstance(notes[-1][1], ValueError)

    # Strategy promises, when the run was not cut short.
    finished = bool(terminals)
    if strategy == "block":
        assert reasons <= {"disposed"}
        if finished:
            assert delivered == entered
    if finished and entered and not overflowed:
        if strategy in ("latest", "drop_oldest", "adaptive"):
            assert delivered[-1] == entered[-1]  # the final item always arrives
        if strategy == "drop_oldest":
            tail = entered[-buffer_size:]
            assert delivered[-len(tail) :] == tail  # the newest items survive

    # Metrics agree with the ledger.
    snapshot = metrics.snapshot()
    assert snapshot.received == len(entered)
    assert snapshot.emitted == len(delivered)
    assert snapshot.dropped == len(lost)
    assert snapshot.buffered == 0
    if strategy != "block":
        assert snapshot.backpressure_events == sum(d.reason in FULL for d in lost)
    assert snapshot.peak_buffer_utilization <= 1.0
