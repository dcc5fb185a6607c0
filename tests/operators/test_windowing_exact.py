"""What the time-aware windows share (`pfrx.operators._windowing`), stated exactly: how an
item's time is read (drop reasons, error counts), how the watermark moves (plain and named
watermarks, idleness), at which virtual instant a window fires, and what a checkpoint holds
and gives back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pytest
from reactivex import abc
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")

# A restore disposes the first subscription, which reports what it held as dropped.
pytestmark = pytest.mark.filterwarnings("ignore::pfrx.UnobservedDropWarning")


def env(event: Any, ts: float = 0.0) -> pfrx.Envelope:
    return pfrx.Envelope(event, CTX, ts)


def ts_of(envelope: pfrx.Envelope) -> Any:
    return envelope.event[1]


class Rig:
    """One subscription of ``op`` fed through a subject on a TestScheduler: what it emits
    (with the virtual time), what it drops, its metrics, its checkpoint scope."""

    def __init__(
        self,
        op: Any,
        *,
        scheduler: TestScheduler | None = None,
        restore: checkpoint.Checkpoint | None = None,
    ) -> None:
        self.scheduler = scheduler or TestScheduler()
        self.subject: Subject[Any] = Subject()
        self.out: list[tuple[float, Any]] = []
        self.error: BaseException | None = None
        self.completed_at: float | None = None
        with checkpoint.checkpointing(restore) as self.scope:
            self.subscription: abc.DisposableBase = self.subject.pipe(op).subscribe(
                lambda w: self.out.append((self.now, w)),
                self._on_error,
                self._on_completed,
                scheduler=self.scheduler,
            )

    @property
    def now(self) -> float:
        return float(self.scheduler.clock)

    def _on_error(self, error: BaseException) -> None:
        self.error = error

    def _on_completed(self) -> None:
        self.completed_at = self.now

    def at(self, t: float, item: Any) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_next(item))
        return self

    def complete_at(self, t: float) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_completed())
        return self

    def run_to(self, t: float) -> Rig:
        self.scheduler.advance_to(t)
        return self

    def fired(self) -> list[tuple[float, Any, Any, tuple[Any, ...], int]]:
        """(virtual time, start, end, events, revision) per emitted window."""
        return [
            (t, w.start, w.end, tuple(e.event for e in w.items), w.revision) for t, w in self.out
        ]


def metrics_and_drops(scheduler: TestScheduler) -> tuple[pfrx.StreamMetrics, list[pfrx.Dropped]]:
    return pfrx.StreamMetrics(scheduler), []


# -- reading an item's time ------------------------------------------------------------------


def test_timestamp_failures_have_exact_reasons_and_only_a_raising_function_is_an_error() -> None:
    scheduler = TestScheduler()
    metrics, drops = metrics_and_drops(scheduler)

    def stamp(e: pfrx.Envelope) -> Any:
        if e.event == "boom":
            raise ValueError("no time for boom")
        return e.event

    rig = Rig(
        pf.window_session(5, timestamp=stamp, metrics=metrics, on_drop=drops.append),
        scheduler=scheduler,
    )
    rig.at(201, env("boom")).at(202, 7).at(203, env("text")).at(204, env(1.0)).complete_at(210)
    rig.run_to(300)
    assert [(d.item, d.reason, d.operator, d.timestamp) for d in drops] == [
        (env("boom"), "no time for boom", "window_session", 201.0),
        (7, "not_an_envelope", "window_session", 202.0),
        (env("text"), "invalid_timestamp", "window_session", 203.0),
    ]
    snap = metrics.snapshot()
    assert snap.errors == 1  # the raising timestamp function only
    assert dict(snap.drops_by_reason) == {
        "no time for boom": 1,
        "not_an_envelope": 1,
        "invalid_timestamp": 1,
    }
    assert rig.fired() == [(210.0, 1.0, 6.0, (1.0,), 0)]


def test_a_float_clock_refuses_datetimes_and_a_datetime_clock_refuses_floats() -> None:
    aware = datetime(2024, 1, 1, tzinfo=UTC)
    for first, second in ((3.0, aware), (aware, 3.0)):
        drops: list[pfrx.Dropped] = []
        rig = Rig(pf.window_session(5, key=lambda e: "k", timestamp=ts_of, on_drop=drops.append))
        rig.at(201, env(("a", first))).at(202, env(("b", second))).complete_at(203).run_to(300)
        assert [(d.item.event[0], d.reason) for d in drops] == [("b", "invalid_timestamp")]
        assert [tuple(e.event[0] for e in w.items) for _, w in rig.out] == [("a",)]


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: such a datetime is naive for Python."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None


def test_a_datetime_whose_tzinfo_gives_no_offset_is_an_invalid_timestamp() -> None:
    drops: list[pfrx.Dropped] = []
    rig = Rig(pf.window_session(5, key=lambda e: "k", timestamp=ts_of, on_drop=drops.append))
    unknown = datetime(2024, 1, 1, tzinfo=_NoOffset())
    aware = datetime(2024, 1, 1, tzinfo=UTC)
    rig.at(201, env(("a", unknown))).at(202, env(("b", aware))).complete_at(203).run_to(300)
    assert [(d.item.event[0], d.reason) for d in drops] == [("a", "invalid_timestamp")]
    assert [(w.start, w.end) for _, w in rig.out] == [(aware, aware + timedelta(seconds=5))]


# -- the watermark ---------------------------------------------------------------------------


def test_items_still_move_the_watermark_after_a_plain_watermark() -> None:
    rig = Rig(pf.window_time(10, timestamp=ts_of))
    rig.at(201, env(("a", 1.0))).at(202, pfrx.Watermark(5.0)).at(203, env(("b", 12.0)))
    rig.complete_at(220).run_to(300)
    # b's time lifts the watermark to 12: [0, 10) fires when b arrives, not at completion
    assert rig.fired() == [
        (203.0, 0.0, 10.0, (("a", 1.0),), 0),
        (220.0, 10.0, 20.0, (("b", 12.0),), 0),
    ]


def test_a_named_source_never_goes_back_and_the_slowest_source_is_the_watermark() -> None:
    rig = Rig(pf.window_time(10, timestamp=ts_of))
    rig.at(201, env(("x", 3.0)))
    rig.at(202, pfrx.Watermark(0.0, source="a")).at(203, pfrx.Watermark(0.0, source="b"))
    rig.at(204, pfrx.Watermark(10.0, source="a"))
    rig.at(205, pfrx.Watermark(5.0, source="a"))  # older than a's 10: a stays at 10
    rig.at(206, pfrx.Watermark(20.0, source="b"))  # min(a=10, b=20) = 10: [0, 10) fires
    rig.complete_at(230).run_to(300)
    assert rig.fired() == [(206.0, 0.0, 10.0, (("x", 3.0),), 0)]


def test_named_sources_take_over_from_items() -> None:
    rig = Rig(pf.window_time(10, timestamp=ts_of))
    rig.at(201, pfrx.Watermark(3.0, source="a")).at(202, env(("x", 5.0)))
    rig.at(203, env(("y", 25.0)))  # moves no watermark: only source a does
    rig.at(204, pfrx.Watermark(12.0, source="a"))
    rig.complete_at(230).run_to(300)
    assert rig.fired() == [
        (204.0, 0.0, 10.0, (("x", 5.0),), 0),
        (230.0, 20.0, 30.0, (("y", 25.0),), 0),
    ]


def test_an_idle_input_advances_from_its_last_watermark_on_the_scheduler_clock() -> None:
    rig = Rig(pf.window_time(10, timestamp=ts_of, idle_timeout=10))
    rig.at(200, env(("a", 0.0))).at(205, pfrx.Watermark(1.0))
    rig.run_to(300)
    # silent since the watermark (1) at 205: idle from 215, the watermark is then
    # 1 + (215 - 205) = 11 >= 10
    assert rig.fired() == [(215.0, 0.0, 10.0, (("a", 0.0),), 0)]


@pytest.mark.timeout(10)
def test_an_idle_input_waits_the_whole_idle_timeout_before_advancing() -> None:
    rig = Rig(pf.window_time(10, timestamp=ts_of, idle_timeout=20))
    rig.at(200, env(("a", 0.0)))
    rig.run_to(300)
    assert rig.fired() == [(220.0, 0.0, 10.0, (("a", 0.0),), 0)]


def test_an_item_restarts_the_idle_clock_and_an_earlier_wake_up_advances_nothing() -> None:
    rig = Rig(pf.window_time(2, timestamp=ts_of, idle_timeout=5))
    rig.at(200, env(("a", 1.0))).at(204, env(("b", 1.5)))
    rig.run_to(300)
    # the wake-up set for 205 finds the input active since 204: idle from 209, watermark
    # 1.5 + 5 = 6.5 at 209
    assert rig.fired() == [(209.0, 0.0, 2.0, (("a", 1.0), ("b", 1.5)), 0)]


# -- checkpoints -------------------------------------------------------------------------------


def resume(first: Rig, op: Any) -> Rig:
    """A second subscription of ``op`` restored from ``first``'s checkpoint (through bytes)
    on the same scheduler, ``first`` disposed."""
    saved = checkpoint.loads(checkpoint.dumps(first.scope.snapshot()))
    first.subscription.dispose()
    return Rig(op, scheduler=first.scheduler, restore=saved)


def member(rig: Rig) -> dict[str, Any]:
    ((_, state),) = rig.scope.snapshot().states
    return state  # type: ignore[no-any-return]


def test_the_clock_is_checkpointed_exactly_with_its_named_sources() -> None:
    rig = Rig(pf.window_time(10, timestamp=ts_of, idle_timeout=50))
    rig.at(201, env(("x", 4.0))).at(202, pfrx.Watermark(3.0, source="a")).run_to(203)
    assert member(rig)["state"]["clock"] == {
        "value": 4.0,
        "anchor": 4.0,
        "max_ts": 4.0,
        "last_arrival": 202.0,
        "sources": [("a", 3.0, False)],
        "datetimes": False,
    }


def test_named_sources_survive_a_restore() -> None:
    op = pf.window_time(10, timestamp=ts_of)
    first = Rig(op).at(201, pfrx.Watermark(3.0, source="a")).at(202, env(("x", 5.0))).run_to(203)
    second = resume(first, op)
    second.at(204, env(("y", 25.0)))  # items no longer move the watermark: [0, 10) stays
    second.at(205, pfrx.Watermark(12.0, source="a"))
    second.complete_at(230).run_to(300)
    assert second.fired() == [
        (205.0, 0.0, 10.0, (("x", 5.0),), 0),
        (230.0, 20.0, 30.0, (("y", 25.0),), 0),
    ]


def test_the_idle_clock_survives_a_restore() -> None:
    op = pf.window_time(10, timestamp=ts_of, idle_timeout=10)
    first = Rig(op).at(200, env(("a", 0.0))).at(205, pfrx.Watermark(1.0)).run_to(207)
    second = resume(first, op)
    second.run_to(300)
    assert first.out == []
    assert second.fired() == [(215.0, 0.0, 10.0, (("a", 0.0),), 0)]


def test_datetime_bounds_survive_a_restore() -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    op = pf.window_time(10, timestamp=ts_of)
    first = Rig(op).at(201, env(("a", base + timedelta(seconds=3)))).run_to(202)
    second = resume(first, op)
    second.complete_at(210).run_to(300)
    assert [(w.start, w.end) for _, w in second.out] == [(base, base + timedelta(seconds=10))]


def test_a_window_of_raw_items_and_envelopes_is_checkpointed_column_wise_and_restored() -> None:
    a, b = env("a", 1.5), env("b", 2.5)
    op = pf.window_time(10)
    first = Rig(op).at(201, a).at(202, 7).at(203, b).run_to(204)
    assert member(first)["state"]["items"] == (
        ["a", 7, "b"],
        [CTX, None, CTX],
        [1.5, None, 2.5],
        [1],
    )
    second = resume(first, op)
    second.complete_at(205).run_to(300)
    assert [(t, w.start, w.end, w.items) for t, w in second.out] == [
        (205.0, 200.0, 210.0, (a, 7, b))
    ]


def test_a_window_of_raw_items_only_is_restored() -> None:
    op = pf.window_time(10)
    first = Rig(op).at(201, 7).at(202, (8, "x")).run_to(204)
    assert member(first)["state"]["items"] == ([7, (8, "x")], [None, None], [None, None], [0, 1])
    second = resume(first, op)
    second.complete_at(205).run_to(300)
    assert [w.items for _, w in second.out] == [(7, (8, "x"))]


def test_a_window_of_envelopes_is_checkpointed_as_three_plain_columns() -> None:
    a, b = env("a", 1.5), env("b", 2.5)
    first = Rig(pf.window_time(10)).at(201, a).at(203, b).run_to(204)
    assert member(first)["state"]["items"] == (["a", "b"], [CTX, CTX], [1.5, 2.5], [])


def test_a_checkpoint_whose_columns_disagree_is_refused() -> None:
    op = pf.window_time(10)
    first = Rig(op).at(201, env("a", 1.5)).at(202, 7).run_to(204)
    saved = first.scope.snapshot()
    ((name, state),) = saved.states
    events, contexts, stamps, raw = state["state"]["items"]
    damaged = {**state, "state": {**state["state"], "items": (events, contexts, stamps[:1], raw)}}
    # the subscription fails at once: no window is built from misaligned columns
    second = Rig(op, restore=checkpoint.Checkpoint([(name, damaged)]))
    assert isinstance(second.error, ValueError)
    assert "zip()" in str(second.error)


def test_a_completed_operator_restores_completed_and_takes_nothing_more() -> None:
    op = pf.window_time(10)
    first = Rig(op).at(201, env("a")).complete_at(202).run_to(203)
    assert member(first)["done"] is True
    second = resume(first, op)
    second.at(204, env("b")).complete_at(230).run_to(300)
    assert second.out == []


def test_an_upstream_error_leaves_the_operator_done_in_its_checkpoint() -> None:
    op = pf.window_time(10)
    first = Rig(op).at(201, env("a")).run_to(202)
    first.scheduler.schedule_absolute(203, lambda *_: first.subject.on_error(ValueError("x")))
    first.run_to(204)
    assert member(first)["done"] is True
    second = resume(first, op)
    second.at(205, env("b")).complete_at(230).run_to(300)
    assert second.out == []


def test_a_checkpoint_taken_while_the_error_passes_records_the_operator_done() -> None:
    op = pf.window_time(10)
    taken: list[checkpoint.Checkpoint] = []

    class Failing(Rig):
        def _on_error(self, error: BaseException) -> None:
            taken.append(self.scope.snapshot())  # e.g. a last checkpoint on failure

    first = Failing(op).at(203, env("a"))
    first.scheduler.schedule_absolute(204, lambda *_: first.subject.on_error(ValueError("x")))
    first.run_to(205)
    ((_, state),) = taken[0].states
    assert state["done"] is True
    second = Rig(op, scheduler=first.scheduler, restore=taken[0])
    second.at(206, env("b")).complete_at(230).run_to(300)
    assert second.out == []
