"""window_time stated exactly: event-time placement in sliding windows, re-firing within the
allowed lateness, drop records, the gauge, idle purging and checkpoint contents."""

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


def env(event: Any, ts: float = 0.0) -> pfrx.Envelope:
    return pfrx.Envelope(event, CTX, ts)


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
        return [
            (t, w.key, w.start, w.end, tuple(e.event for e in w.items), w.revision)
            for t, w in self.out
        ]

    def dropped(self) -> list[tuple[Any, str, str, float]]:
        return [
            (getattr(d.item, "event", d.item), d.reason, d.operator, d.timestamp)
            for d in self.drops
        ]

    def state(self) -> dict[str, Any]:
        ((_, state),) = self.scope.snapshot().states
        return state  # type: ignore[no-any-return]


def resume(first: Rig, make: Any) -> Rig:
    saved = checkpoint.loads(checkpoint.dumps(first.scope.snapshot()))
    first.subscription.dispose()
    return Rig(make, scheduler=first.scheduler, restore=saved)


def windows(span: float = 10, **kw: Any) -> Any:
    def make(rig: Rig) -> Any:
        return pf.window_time(span, on_drop=rig.drops.append, metrics=rig.metrics, **kw)

    return make


# -- event time, sliding ---------------------------------------------------------------------------


def test_event_time_between_sliding_windows_is_dropped_with_its_reason() -> None:
    rig = Rig(windows(2, slide=4, timestamp=when))
    rig.at(201, env(("a", 1.0))).at(202, env(("b", 3.0))).complete_at(203).run_to(300)
    assert rig.dropped() == [(("b", 3.0), "between_windows", "window_time", 202.0)]
    assert rig.fired() == [(203.0, None, 0.0, 2.0, (("a", 1.0),), 0)]


def test_an_error_reports_each_never_emitted_sliding_item_once() -> None:
    rig = Rig(windows(4, slide=2, timestamp=when, out_of_orderness=100))
    rig.at(201, env(("a", 1.0))).at(202, env(("b", 3.0))).at(203, env(("c", 2.0)))
    rig.fail_at(204, ValueError("boom")).run_to(300)
    assert rig.dropped() == [
        (("a", 1.0), "upstream_error", "window_time", 204.0),  # from [-2, 2)
        (("b", 3.0), "upstream_error", "window_time", 204.0),  # from [0, 4), in arrival order
        (("c", 2.0), "upstream_error", "window_time", 204.0),
    ]


def test_a_late_item_refires_its_fired_sliding_windows_and_the_checkpoint_keeps_first_flags() -> (
    None
):
    rig = Rig(windows(4, slide=2, timestamp=when, allowed_lateness=10))
    rig.at(201, env(("a", 1.0))).at(202, pfrx.Watermark(6.0))  # [-2, 2), [0, 4) fire
    rig.at(203, env(("b", 3.0)))  # late for [0, 4) (fired), on time for [2, 6)... fired too
    rig.at(204, env(("c", 5.0)))  # [2, 6) fired: re-fires; [4, 8) open
    rig.run_to(205)
    assert rig.fired() == [
        (202.0, None, -2.0, 2.0, (("a", 1.0),), 0),
        (202.0, None, 0.0, 4.0, (("a", 1.0),), 0),
        (203.0, None, 0.0, 4.0, (("a", 1.0), ("b", 3.0)), 1),
        (203.0, None, 2.0, 6.0, (("b", 3.0),), 0),
        (204.0, None, 2.0, 6.0, (("b", 3.0), ("c", 5.0)), 1),
    ]
    state = rig.state()
    assert state["settings"] == ("window_time", 4.0, 2.0, 0.0, False, True, 0.0, 10.0)
    inner = state["state"]
    assert inner["rows"] == [(2, None, -1), (-1, None, 0), (0, None, 1), (1, None, 1)]
    assert inner["counts"] == [1, 1, 2, 2]
    assert [e[0] for e in inner["items"][0]] == ["c", "a", "a", "b", "b", "c"]
    # an item's lowest window is its first: a in [-2, 2), b in [0, 4), c in [2, 6)
    assert inner["firsts"] == [False, True, False, True, False, True]
    assert (inner["slots"], inner["peak"]) == (6, 6)


def test_an_item_whose_window_ends_at_the_watermark_fires_it_at_once() -> None:
    rig = Rig(windows(10, timestamp=when, allowed_lateness=5))
    rig.at(201, pfrx.Watermark(10.0)).at(202, env(("a", 3.0))).run_to(300)
    assert rig.fired() == [(202.0, None, 0.0, 10.0, (("a", 3.0),), 0)]
    rig2 = Rig(windows(4, slide=2, timestamp=when, allowed_lateness=5))
    rig2.at(201, pfrx.Watermark(4.0)).at(202, env(("a", 3.0))).run_to(203)
    # [0, 4) ends at the watermark: fired at once; [2, 6) stays open
    assert rig2.fired() == [(202.0, None, 0.0, 4.0, (("a", 3.0),), 0)]


# -- drops of failing functions --------------------------------------------------------------------


def test_a_failing_key_or_timestamp_function_drops_with_exact_records() -> None:
    def key(e: pfrx.Envelope) -> Any:
        if e.event[0] == "bad":
            raise KeyError("no key for bad")
        return e.event[0]

    def stamp(e: pfrx.Envelope) -> Any:
        if e.event[0] == "late-stamp":
            raise ValueError("no time")
        return e.event[1]

    rig = Rig(windows(10, key=key, timestamp=stamp))
    rig.at(201, env(("bad", 1.0))).at(202, 7).at(203, env(("late-stamp", 1.0)))
    rig.complete_at(204).run_to(300)
    assert [(d.item, d.reason, d.operator, d.timestamp) for d in rig.drops] == [
        (env(("bad", 1.0)), "'no key for bad'", "window_time", 201.0),
        (7, "not_an_envelope", "window_time", 202.0),
        (env(("late-stamp", 1.0)), "no time", "window_time", 203.0),
    ]
    assert rig.metrics.snapshot().errors == 2


# -- errors, gauge ---------------------------------------------------------------------------------


def test_an_error_reports_every_keys_items_and_nothing_is_held_after() -> None:
    seen: list[Any] = []
    rig = Rig(windows(10, key=who))

    def look(*_: Any) -> None:
        seen.append(rig.state()["state"]["slots"])

    rig.subject.subscribe(on_error=look)
    rig.at(201, env(("a", 0))).at(202, env(("b", 0))).at(203, env(("a", 1)))
    rig.fail_at(204, ValueError("boom")).run_to(300)
    assert rig.dropped() == [
        (("a", 0), "upstream_error", "window_time", 204.0),
        (("a", 1), "upstream_error", "window_time", 204.0),
        (("b", 0), "upstream_error", "window_time", 204.0),
    ]
    assert seen == [0]


def test_the_gauge_counts_item_slots_with_no_capacity() -> None:
    rig = Rig(windows(4, slide=2))
    seen: list[tuple[int, float]] = []

    def look(*_: Any) -> None:
        snap = rig.metrics.snapshot()
        seen.append((snap.buffered, snap.buffer_utilization))

    rig.at(201, env("a")).at(202, env("b"))
    for t in (201.5, 202.5, 204.5):
        rig.scheduler.schedule_absolute(t, look)
    rig.run_to(205)
    # a and b sit in [198, 202) / [200, 204) and [200, 204) / [202, 206): two slots each
    assert seen == [(2, 0.0), (3, 0.0), (1, 0.0)]


# -- idleness and purging --------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_an_idle_input_purges_a_fired_window_at_its_lateness_deadline() -> None:
    rig = Rig(windows(10, timestamp=when, idle_timeout=5, allowed_lateness=10))
    rig.at(200, env(("a", 0.0)))
    rig.at(221, env(("b", 5.0)))  # watermark 0 + (220 - 200) = 20 >= 10 + 10 at 220: late
    rig.run_to(300)
    assert rig.fired() == [(210.0, None, 0.0, 10.0, (("a", 0.0),), 0)]
    assert rig.dropped() == [(("b", 5.0), "late", "window_time", 221.0)]


def test_an_idle_input_still_refires_before_the_deadline() -> None:
    rig = Rig(windows(10, timestamp=when, idle_timeout=5, allowed_lateness=10))
    rig.at(200, env(("a", 0.0))).at(219, env(("b", 5.0))).run_to(300)
    assert rig.fired() == [
        (210.0, None, 0.0, 10.0, (("a", 0.0),), 0),
        (219.0, None, 0.0, 10.0, (("a", 0.0), ("b", 5.0)), 1),
    ]


# -- checkpoints -----------------------------------------------------------------------------------


def test_the_checkpoint_names_the_operators_settings_and_refuses_others() -> None:
    rig = Rig(windows(10, key=who)).at(201, env(("a", 0))).run_to(202)
    state = rig.state()
    assert state["settings"] == ("window_time", 10.0, 10.0, 0.0, True, False, 0.0, 0.0)
    assert state["state"]["rows"] == [(20, "a", -1)]
    second = Rig(windows(10), scheduler=rig.scheduler, restore=rig.scope.snapshot())
    ((_, kind, error),) = second.notes
    assert kind == "error"
    assert isinstance(error, checkpoint.CheckpointMismatch)
    assert str(error) == (
        "window_time: checkpoint taken with ('window_time', 10.0, 10.0, 0.0, True, False, "
        "0.0, 0.0), restored into ('window_time', 10.0, 10.0, 0.0, False, False, 0.0, 0.0)"
    )


def test_fired_windows_of_several_keys_survive_a_restore() -> None:
    make = windows(10, key=who, timestamp=when, allowed_lateness=10)
    rig = Rig(make).at(201, env(("a", 1.0))).at(202, env(("b", 2.0)))
    rig.at(203, pfrx.Watermark(10.0)).run_to(204)
    resumed = resume(rig, make)
    resumed.at(205, env(("a", 3.0))).at(206, env(("b", 4.0))).run_to(300)
    assert resumed.fired() == [
        (205.0, "a", 0.0, 10.0, (("a", 1.0), ("a", 3.0)), 1),
        (206.0, "b", 0.0, 10.0, (("b", 2.0), ("b", 4.0)), 1),
    ]


def test_a_checkpoint_whose_rows_and_counts_disagree_is_refused() -> None:
    make = windows(10, key=who)
    rig = Rig(make).at(201, env(("a", 0))).at(202, env(("b", 0))).run_to(203)
    ((name, state),) = rig.scope.snapshot().states
    inner = {**state["state"], "rows": state["state"]["rows"][:-1]}
    damaged = checkpoint.Checkpoint([(name, {**state, "state": inner})])
    second = Rig(make, scheduler=rig.scheduler, restore=damaged)
    ((_, kind, error),) = second.notes
    assert kind == "error"
    assert isinstance(error, ValueError)
    assert "zip()" in str(error)
