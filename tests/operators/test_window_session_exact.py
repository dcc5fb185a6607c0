"""window_session stated exactly: session bounds, virtual firing times, revisions, drop
records, metrics and checkpoints, in processing and event time."""

from __future__ import annotations

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


def env(event: Any, ts: float = 0.0, context: pfrx.Context = CTX) -> pfrx.Envelope:
    return pfrx.Envelope(event, context, ts)


def when(envelope: pfrx.Envelope) -> Any:
    return envelope.event[1]


def who(envelope: pfrx.Envelope) -> Any:
    return envelope.event[0]


class Rig:
    """One subscription fed through a subject on a TestScheduler, with metrics and drops."""

    def __init__(
        self,
        make: Any,
        *,
        scheduler: TestScheduler | None = None,
        restore: checkpoint.Checkpoint | None = None,
    ) -> None:
        self.scheduler = scheduler or TestScheduler()
        self.metrics = pfrx.StreamMetrics(self.scheduler)
        self.drops: list[pfrx.Dropped] = []
        self.late: list[Any] = []
        self.subject: Subject[Any] = Subject()
        self.out: list[tuple[float, pfrx.Window]] = []
        self.notes: list[tuple[float, str, Any]] = []
        with checkpoint.checkpointing(restore) as self.scope:
            self.subscription: abc.DisposableBase = self.subject.pipe(make(self)).subscribe(
                lambda w: self.out.append((self.now, w)),
                lambda e: self.notes.append((self.now, "error", e)),
                lambda: self.notes.append((self.now, "completed", None)),
                scheduler=self.scheduler,
            )

    @property
    def now(self) -> float:
        return float(self.scheduler.clock)

    def at(self, t: float, item: Any) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_next(item))
        return self

    def complete_at(self, t: float) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_completed())
        return self

    def fail_at(self, t: float, error: Exception) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_error(error))
        return self

    def run_to(self, t: float) -> Rig:
        self.scheduler.advance_to(t)
        return self

    def fired(self) -> list[tuple[float, Any, Any, Any, tuple[Any, ...], int]]:
        """(virtual time, key, start, end, events, revision) per window."""
        return [
            (t, w.key, w.start, w.end, tuple(e.event for e in w.items), w.revision)
            for t, w in self.out
        ]

    def dropped(self) -> list[tuple[Any, str, str, float]]:
        return [(d.item.event, d.reason, d.operator, d.timestamp) for d in self.drops]

    def state(self) -> dict[str, Any]:
        ((_, state),) = self.scope.snapshot().states
        return state  # type: ignore[no-any-return]


def resume(first: Rig, make: Any) -> Rig:
    saved = checkpoint.loads(checkpoint.dumps(first.scope.snapshot()))
    first.subscription.dispose()
    return Rig(make, scheduler=first.scheduler, restore=saved)


def event_sessions(gap: float = 10, **kw: Any) -> Any:
    def make(rig: Rig) -> Any:
        return pf.window_session(
            gap,
            key=who,
            timestamp=when,
            on_drop=rig.drops.append,
            on_late=rig.late.append,
            metrics=rig.metrics,
            **kw,
        )

    return make


# -- event time: merging and purging -----------------------------------------------------------


def test_a_session_cut_short_by_a_merge_behind_the_watermark_fires_once_and_is_purged() -> None:
    rig = Rig(event_sessions(max_duration=15))
    rig.at(201, env(("k", 20.0))).at(202, pfrx.Watermark(28.0))
    # 12 joins [20, 30); the merged session is cut at 12 + 15 = 27, behind the watermark
    # 28: it fires at once, and with no allowed lateness it is gone
    rig.at(203, env(("k", 12.0)))
    rig.run_to(204)
    assert rig.metrics.snapshot().buffered == 0
    rig.at(205, env(("k", 14.0)))  # its only session [14, 24) is past the watermark: late
    rig.complete_at(210).run_to(300)
    assert rig.fired() == [(203.0, "k", 12.0, 27.0, (("k", 20.0), ("k", 12.0)), 0)]
    assert rig.dropped() == [(("k", 14.0), "late", "window_session", 205.0)]
    assert [e.event for e in rig.late] == [("k", 14.0)]


def test_an_event_time_checkpoint_holds_exactly_the_sessions_and_the_clock() -> None:
    rig = Rig(event_sessions(allowed_lateness=5))
    rig.at(201, env(("k", 0.0))).run_to(201)
    fresh = rig.state()
    assert fresh["settings"] == ("window_session", 10.0, float("inf"), True, 0.0, 5.0)
    assert (fresh["done"], fresh["state"]["fired"], fresh["state"]["revisions"]) == (
        False,
        [False],
        [-1],
    )
    rig.at(202, env(("k", 5.0))).at(203, pfrx.Watermark(16.0))
    rig.at(204, env(("k", 3.0)))  # late, within the lateness: [0, 15) fires again, whole
    rig.at(205, env(("k", 7.0)))  # extends it to [0, 17): open again, not fired
    rig.run_to(206)
    state = rig.state()["state"]
    items = state.pop("items")
    assert items == (
        [("k", 0.0), ("k", 5.0), ("k", 3.0), ("k", 7.0)],
        [CTX, CTX, CTX, CTX],
        [0.0, 0.0, 0.0, 0.0],
        [],
    )
    assert state == {
        "clock": {
            "value": 16.0,
            "anchor": 16.0,
            "max_ts": 7.0,
            "last_arrival": 205.0,
            "sources": None,
            "datetimes": False,
        },
        # one number per entry, per deadline pushed and per snapshot: 0 (0.0), 1 (its
        # deadline), 2 (the first snapshot), 3 (5.0), 4 (new deadline), 5 (purge at
        # 15 + 5), 6 (3.0), 7 (purge again), 8 (7.0), 9 (deadline 17), 10 (this snapshot)
        "counter": 10,
        "keys": ["k"],
        "firsts": [0.0],
        "lasts": [7.0],
        "ends": [17.0],
        "orders": [0],
        "revisions": [1],
        "fired": [False],
        "counts": [4],
        "seqs": [0, 3, 6, 8],
        "emitted": [True, True, True, False],
        "held": 4,
        "peak": 4,
    }
    assert rig.fired() == [
        (203.0, "k", 0.0, 15.0, (("k", 0.0), ("k", 5.0)), 0),
        (204.0, "k", 0.0, 15.0, (("k", 0.0), ("k", 5.0), ("k", 3.0)), 1),
    ]
    resumed = resume(rig, event_sessions(allowed_lateness=5))
    again = resumed.state()["state"]
    again.pop("items")
    assert again == state | {"counter": 11}  # 10 went to the checkpoint resumed from
    resumed.at(207, pfrx.Watermark(17.0)).run_to(208)
    assert resumed.fired() == [
        (207.0, "k", 0.0, 17.0, (("k", 0.0), ("k", 5.0), ("k", 3.0), ("k", 7.0)), 2)
    ]


def test_sessions_that_only_touch_stay_apart() -> None:
    rig = Rig(event_sessions(out_of_orderness=100))  # items fire nothing before completion
    rig.at(201, env(("k", 10.0))).at(202, env(("k", 5.0)))  # [5, 15) overlaps [10, 20)
    rig.at(203, env(("j", 0.0))).at(204, env(("j", 10.0)))  # exactly gap after: a new one
    rig.at(205, env(("i", 20.0))).at(206, env(("i", 10.0)))  # [10, 20) ends at its start
    rig.complete_at(210).run_to(300)
    assert sorted((key, start, end, events) for _, key, start, end, events, _ in rig.fired()) == [
        ("i", 10.0, 20.0, (("i", 10.0),)),
        ("i", 20.0, 30.0, (("i", 20.0),)),
        ("j", 0.0, 10.0, (("j", 0.0),)),
        ("j", 10.0, 20.0, (("j", 10.0),)),
        ("k", 5.0, 20.0, (("k", 10.0), ("k", 5.0))),
    ]


def test_an_item_whose_session_ends_exactly_at_watermark_plus_lateness_is_late() -> None:
    rig = Rig(event_sessions(allowed_lateness=2))
    rig.at(201, pfrx.Watermark(12.0)).at(202, env(("k", 0.0)))  # [0, 10): 10 + 2 <= 12
    rig.at(203, env(("j", 1.0)))  # [1, 11): 11 + 2 > 12, fired at once (end 11 <= 12)
    rig.at(204, env(("i", 2.0)))  # [2, 12): end == watermark: fired at once too
    rig.complete_at(210).run_to(300)
    assert rig.dropped() == [(("k", 0.0), "late", "window_session", 202.0)]
    assert rig.fired() == [
        (203.0, "j", 1.0, 11.0, (("j", 1.0),), 0),
        (204.0, "i", 2.0, 12.0, (("i", 2.0),), 0),
    ]


def test_max_duration_merges_only_what_fits_and_joins_the_session_holding_the_item() -> None:
    rig = Rig(event_sessions(max_duration=15, out_of_orderness=100))
    # k: [10, 25) then 3: merging would span 3..19 > 15: 3 starts its own session
    rig.at(201, env(("k", 10.0))).at(202, env(("k", 19.0))).at(203, env(("k", 3.0)))
    # j: [10, 22) then 8: span 8..12 < 15, merged into [8, 22)
    rig.at(204, env(("j", 10.0))).at(205, env(("j", 12.0))).at(206, env(("j", 8.0)))
    # i: [10, 25) then 4: span 4..19, exactly 15: it starts its own session
    rig.at(207, env(("i", 10.0))).at(208, env(("i", 19.0))).at(209, env(("i", 4.0)))
    rig.complete_at(210).run_to(300)
    assert sorted((key, start, end, events) for _, key, start, end, events, _ in rig.fired()) == [
        ("i", 4.0, 14.0, (("i", 4.0),)),
        ("i", 10.0, 25.0, (("i", 10.0), ("i", 19.0))),
        ("j", 8.0, 22.0, (("j", 10.0), ("j", 12.0), ("j", 8.0))),
        ("k", 3.0, 13.0, (("k", 3.0),)),
        ("k", 10.0, 25.0, (("k", 10.0), ("k", 19.0))),
    ]


def test_an_item_past_max_duration_joins_the_session_that_holds_it() -> None:
    rig = Rig(event_sessions(max_duration=11, out_of_orderness=100))
    rig.at(201, env(("k", 0.0))).at(202, env(("k", 11.0)))  # [0, 10) and [11, 21)
    rig.at(203, env(("k", 9.0)))  # spans 0..11 >= 11: joins [0, ...) only, cut at 11
    rig.complete_at(210).run_to(300)
    assert [(start, end, events) for _, _, start, end, events, _ in rig.fired()] == [
        (0.0, 11.0, (("k", 0.0), ("k", 9.0))),
        (11.0, 21.0, (("k", 11.0),)),
    ]


def test_a_bridge_between_two_unfired_sessions_fires_once_as_revision_zero() -> None:
    rig = Rig(event_sessions(out_of_orderness=100))
    rig.at(201, env(("k", 0.0))).at(202, env(("k", 15.0))).at(203, env(("k", 8.0)))
    rig.at(204, pfrx.Watermark(25.0)).run_to(300)
    assert rig.fired() == [(204.0, "k", 0.0, 25.0, (("k", 0.0), ("k", 15.0), ("k", 8.0)), 0)]


def test_completion_fires_open_sessions_by_end_then_by_first_arrival() -> None:
    rig = Rig(event_sessions(out_of_orderness=100))
    rig.at(201, env(("a", 0.0))).at(202, env(("b", 40.0))).at(203, env(("a", 40.0)))
    rig.at(204, env(("c", 35.0)))  # ends first although it came last
    rig.at(205, pfrx.Watermark(30.0))  # fires a's [0, 10); a's [40, 50) stays
    rig.complete_at(206).run_to(300)
    assert [(t, key, start) for t, key, start, _, _, _ in rig.fired()] == [
        (205.0, "a", 0.0),
        (206.0, "c", 35.0),
        (206.0, "b", 40.0),
        (206.0, "a", 40.0),
    ]
    assert rig.notes == [(206.0, "completed", None)]


def test_an_error_reports_exactly_the_items_never_emitted() -> None:
    rig = Rig(event_sessions(allowed_lateness=10))
    rig.at(201, env(("k", 0.0))).at(202, pfrx.Watermark(10.0))  # [0, 10) fired, kept
    rig.at(203, env(("j", 5.0)))  # open
    rig.fail_at(204, ValueError("boom")).run_to(300)
    assert rig.dropped() == [(("j", 5.0), "upstream_error", "window_session", 204.0)]
    assert rig.fired() == [(202.0, "k", 0.0, 10.0, (("k", 0.0),), 0)]


def test_the_gauge_counts_held_items_until_their_session_is_purged() -> None:
    rig = Rig(event_sessions(allowed_lateness=5))
    seen: list[tuple[int, float]] = []

    def look(*_: Any) -> None:
        snap = rig.metrics.snapshot()
        seen.append((snap.buffered, snap.buffer_utilization))

    rig.at(201, env(("a", 0.0))).at(202, pfrx.Watermark(10.0))  # a fired, kept until 15
    rig.at(203, env(("a", 1.0)))  # late: extends a to [0, 11), open again
    rig.at(204, env(("b", 2.0)))  # [2, 12)
    rig.at(205, pfrx.Watermark(12.0))  # both fire; a's deadline at 15 is stale
    rig.at(206, pfrx.Watermark(20.0))  # purges a (at 16) and b (at 17): nothing held
    for t in (201.5, 203.5, 205.5, 206.5):
        rig.scheduler.schedule_absolute(t, look)
    rig.at(207, env(("b", 3.0)))  # b is gone: late
    rig.run_to(300)
    assert seen == [(1, 0.0), (2, 0.0), (3, 0.0), (0, 0.0)]
    assert rig.dropped() == [(("b", 3.0), "late", "window_session", 207.0)]


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_held_is_zero_while_completion_and_errors_pass_downstream(end: str) -> None:
    seen: list[Any] = []
    rig = Rig(event_sessions())

    def look(*_: Any) -> None:
        seen.append((rig.metrics.snapshot().buffered, rig.state()))

    rig.subject.subscribe(on_error=look, on_completed=look)
    rig.at(202, env(("a", 0.0)))
    if end == "complete":
        rig.complete_at(203)
    else:
        rig.fail_at(203, ValueError("x"))
    rig.run_to(300)
    ((buffered, state),) = seen
    assert buffered == 0
    assert state["done"] is True
    assert (state["state"]["held"], state["state"]["keys"]) == (0, [])


def test_two_sessions_of_one_key_survive_a_restore_and_merge_after_it() -> None:
    make = event_sessions(allowed_lateness=5, out_of_orderness=100)
    rig = Rig(make).at(201, env(("k", 0.0))).at(202, env(("k", 20.0))).run_to(203)
    resumed = resume(rig, make)
    resumed.at(204, env(("k", 25.0)))  # extends [20, 30) to [20, 35)
    resumed.at(205, pfrx.Watermark(12.0))  # [0, 10) fires, kept until 15
    resumed.at(206, env(("k", 1.0)))  # within its lateness: it fires again
    resumed.at(207, pfrx.Watermark(20.0))  # purged now (at 11 + 5)
    resumed.at(208, env(("k", 2.0)))  # late
    resumed.complete_at(209).run_to(300)
    assert resumed.fired() == [
        (205.0, "k", 0.0, 10.0, (("k", 0.0),), 0),
        (206.0, "k", 0.0, 11.0, (("k", 0.0), ("k", 1.0)), 1),
        (209.0, "k", 20.0, 35.0, (("k", 20.0), ("k", 25.0)), 0),
    ]
    assert resumed.dropped() == [(("k", 2.0), "late", "window_session", 208.0)]


def test_a_fired_session_keeps_its_lateness_across_a_restore() -> None:
    make = event_sessions(allowed_lateness=5)
    rig = Rig(make).at(201, env(("k", 0.0))).at(202, env(("j", 0.0)))
    rig.at(203, pfrx.Watermark(10.0)).run_to(204)  # both fired, kept until 15
    resumed = resume(rig, make)
    resumed.at(205, pfrx.Watermark(14.0)).at(206, env(("k", 1.0)))  # still re-fires
    resumed.at(207, pfrx.Watermark(16.0)).at(208, env(("j", 1.0)))  # purged: late
    resumed.run_to(300)
    assert resumed.fired() == [(206.0, "k", 0.0, 11.0, (("k", 0.0), ("k", 1.0)), 1)]
    assert resumed.dropped() == [(("j", 1.0), "late", "window_session", 208.0)]


@pytest.mark.parametrize("column", ["seqs", "keys", "emitted"])
def test_an_event_time_checkpoint_whose_columns_disagree_is_refused(column: str) -> None:
    make = event_sessions()
    rig = Rig(make).at(201, env(("k", 0.0))).at(202, env(("k", 20.0))).run_to(203)
    ((name, state),) = rig.scope.snapshot().states
    inner = dict(state["state"])
    inner[column] = inner[column][:-1]
    damaged = checkpoint.Checkpoint([(name, {**state, "state": inner})])
    second = Rig(make, scheduler=rig.scheduler, restore=damaged)
    ((_, kind, error),) = second.notes
    assert kind == "error"
    assert isinstance(error, ValueError)
    assert "zip()" in str(error)


def test_a_checkpoint_of_other_settings_is_refused_naming_both() -> None:
    rig = Rig(event_sessions()).at(201, env(("k", 0.0))).run_to(202)
    saved = rig.scope.snapshot()
    second = Rig(event_sessions(gap=5), scheduler=rig.scheduler, restore=saved)
    ((_, kind, error),) = second.notes
    assert kind == "error"
    assert isinstance(error, checkpoint.CheckpointMismatch)
    assert str(error) == (
        "window_session: checkpoint taken with ('window_session', 10.0, inf, True, 0.0, 0.0), "
        "restored into ('window_session', 5.0, inf, True, 0.0, 0.0)"
    )


def test_a_watermark_restarts_the_idle_clock() -> None:
    rig = Rig(event_sessions(idle_timeout=10))
    rig.at(200, env(("k", 0.0))).at(205, pfrx.Watermark(2.0)).run_to(206)
    assert rig.state()["state"]["clock"]["last_arrival"] == 205.0
    rig.run_to(300)
    # idle from 215: watermark 2 + (x - 205) reaches the end 10 at 213, but not before 215
    assert rig.fired() == [(215.0, "k", 0.0, 10.0, (("k", 0.0),), 0)]


# -- processing time -----------------------------------------------------------------------------


def processing_sessions(gap: float = 10, **kw: Any) -> Any:
    def make(rig: Rig) -> Any:
        return pf.window_session(gap, key=who, on_drop=rig.drops.append, metrics=rig.metrics, **kw)

    return make


def test_processing_sessions_restore_their_deadline_on_the_clock() -> None:
    make = processing_sessions()
    rig = Rig(make).at(201, env(("k", 0))).at(204, env(("j", 0))).run_to(206)
    resumed = resume(rig, make)
    resumed.run_to(300)
    assert [(t, key, start, end) for t, key, start, end, _, _ in resumed.fired()] == [
        (211.0, "k", 201.0, 211.0),
        (214.0, "j", 204.0, 214.0),
    ]


def test_a_processing_checkpoint_whose_columns_disagree_is_refused() -> None:
    make = processing_sessions()
    rig = Rig(make).at(201, env(("k", 0))).at(202, env(("j", 0))).run_to(203)
    ((name, state),) = rig.scope.snapshot().states
    inner = {**state["state"], "starts": state["state"]["starts"][:-1]}
    second = Rig(
        make,
        scheduler=rig.scheduler,
        restore=checkpoint.Checkpoint([(name, {**state, "state": inner})]),
    )
    ((_, kind, error),) = second.notes
    assert kind == "error"
    assert isinstance(error, ValueError)
    assert "zip()" in str(error)


def test_a_processing_error_leaves_nothing_held_while_it_passes() -> None:
    seen: list[Any] = []
    rig = Rig(processing_sessions())
    rig.subject.subscribe(
        on_error=lambda e: seen.append((rig.metrics.snapshot().buffered, rig.state()["state"]))
    )
    rig.at(201, env(("k", 0))).at(202, env(("k", 1))).fail_at(203, ValueError("x")).run_to(300)
    ((buffered, state),) = seen
    assert buffered == 0
    assert (state["held"], state["heap"], state["keys"]) == (0, [], [])
    assert rig.dropped() == [
        (("k", 0), "upstream_error", "window_session", 203.0),
        (("k", 1), "upstream_error", "window_session", 203.0),
    ]


def test_an_item_in_two_overlapping_sessions_joins_the_latest_that_starts_at_or_before_it() -> None:
    rig = Rig(event_sessions(max_duration=11, out_of_orderness=100))
    rig.at(201, env(("k", 0.0, "a"))).at(202, env(("k", 10.5, "b"))).at(203, env(("k", 12.0, "c")))
    # 9 spans 0..12 >= 11 with both: it joins [0, 10), now cut at 11, overlapping [10.5, 21.5)
    rig.at(204, env(("k", 9.0, "d")))
    # x at 10.5 is in both: it joins the one starting at 10.5
    rig.at(205, env(("k", 10.5, "x")))
    rig.complete_at(210).run_to(300)
    assert [
        (start, end, tuple(e[2] for e in events)) for _, _, start, end, events, _ in rig.fired()
    ] == [
        (0.0, 11.0, ("a", "d")),
        (10.5, 21.5, ("b", "c", "x")),
    ]


def test_a_restored_processing_session_closes_at_its_own_deadline() -> None:
    # deadlines below the sessions' sequence numbers: the timer must use the deadline
    make = processing_sessions(gap=0.5)
    rig = Rig(make).at(0.0, env(("a", 0))).at(0.1, env(("b", 0))).run_to(0.55)
    assert [(t, key) for t, key, _, _, _, _ in rig.fired()] == [(0.5, "a")]
    resumed = resume(rig, make)
    resumed.run_to(5)
    assert [(t, key, start, end) for t, key, start, end, _, _ in resumed.fired()] == [
        (0.6, "b", 0.1, 0.6)
    ]
