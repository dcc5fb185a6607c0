"""window_time stated exactly where the suite left room (issue 12, helper kwin): which window
an item at a float-rounding edge lands in, on every path (processing time, event time on time
and behind the watermark, per-key on time and behind); timestamps the fast path must refuse;
lateness shorter than a second; the per-key watermark's firing, re-firing, purging, error
reports, idle clock and checkpoints; a processing clock that steps back."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler.scheduler import Scheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("alice", "s1")

pytestmark = pytest.mark.filterwarnings("ignore::pfrx.UnobservedDropWarning")


def env(name: str, ts: Any = 0.0, key: str = "k") -> pfrx.Envelope:
    return pfrx.Envelope((name, ts, key), CTX, 0.0)


def stamp(e: pfrx.Envelope) -> Any:
    return e.event[1]


def key_of(e: pfrx.Envelope) -> Any:
    return e.event[2]


class Rig:
    """One subscription fed through a subject on a TestScheduler (items at set times), with
    its drops, metrics, emissions and terminal notes, and its checkpoint scope."""

    def __init__(
        self, span: float, restore: checkpoint.Checkpoint | None = None, **kw: Any
    ) -> None:
        self.scheduler = TestScheduler()
        self.metrics = pfrx.StreamMetrics(self.scheduler)
        self.drops: list[pfrx.Dropped] = []
        self.late: list[Any] = []
        self.subject: Subject[Any] = Subject()
        self.out: list[tuple[float, pfrx.Window]] = []
        self.notes: list[tuple[float, str]] = []
        self.kw = kw
        self.span = span
        with checkpoint.checkpointing(restore) as self.scope:
            self.subscription: abc.DisposableBase = self.subject.pipe(
                pf.window_time(span, on_drop=self.drops.append, metrics=self.metrics, **kw)
            ).subscribe(
                lambda w: self.out.append((self.now, w)),
                lambda e: self.notes.append((self.now, f"error {e}")),
                lambda: self.notes.append((self.now, "completed")),
                scheduler=self.scheduler,
            )

    @property
    def now(self) -> float:
        return float(self.scheduler.clock)

    def at(self, t: float, *items: Any) -> Rig:
        for item in items:
            self.scheduler.schedule_absolute(t, lambda *_, i=item: self.subject.on_next(i))
        return self

    def complete_at(self, t: float) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_completed())
        return self

    def fail_at(self, t: float) -> Rig:
        self.scheduler.schedule_absolute(t, lambda *_: self.subject.on_error(ValueError("boom")))
        return self

    def run_to(self, t: float) -> Rig:
        self.scheduler.advance_to(t)
        return self

    def fired(self) -> list[tuple[float, Any, Any, Any, tuple[Any, ...], int]]:
        return [
            (t, w.key, w.start, w.end, tuple(e.event[0] for e in w.items), w.revision)
            for t, w in self.out
        ]

    def dropped(self) -> list[tuple[Any, str, float]]:
        return [(getattr(d.item, "event", d.item), d.reason, d.timestamp) for d in self.drops]

    def state(self) -> dict[str, Any]:
        ((_, state),) = self.scope.snapshot().states
        return state  # type: ignore[no-any-return]

    def buffered(self) -> int:
        return self.metrics.snapshot().buffered


# -- which window: float edges of offset + k * slide -------------------------------------------

# (t, offset, slide): times where (t - offset) // slide is one off in float arithmetic, or
# where an offset moves the index by two, or a negative time (event time only).
EDGES = [
    (0.3, -0.1, 0.2),  # the floor is one too high
    (1.9, -0.2, 0.3),
    (1.3, -0.9, 1.1),
    (1.2, -1.0, 1.1),
    (0.5, 0.0, 0.1),  # the floor is one too low: t is exactly the start of window 5
    (0.9, 0.0, 0.1),
    (1.1, -0.1, 0.2),
    (1.4, 0.9, 1.0),
]
NEGATIVE_EDGES = [(-2.7, 0.0, 0.1), (-2.2, 0.0, 0.1)]


def window_of(t: float, offset: float, slide: float) -> tuple[float, float]:
    """The oracle, from the contract's words: the window [start, end) holding t, whose start
    is the last one at or before t, found by walking k in float arithmetic. Tumbling windows
    tile the line: a window ends where the next starts (``start + span`` may round to t)."""
    k = math.floor(t / slide) - 4
    while offset + (k + 1) * slide <= t:
        k += 1
    assert offset + k * slide <= t < offset + (k + 1) * slide
    return offset + k * slide, offset + (k + 1) * slide


@pytest.mark.parametrize(("t", "offset", "slide"), EDGES)
def test_processing_time_puts_an_item_in_the_window_holding_its_arrival(
    t: float, offset: float, slide: float
) -> None:
    rig = Rig(slide, offset=offset)
    rig.at(t, env("x")).run_to(t + 3 * slide)
    start, end = window_of(t, offset, slide)
    assert [(w.start, w.end) for _, w in rig.out] == [(start, end)]


@pytest.mark.parametrize(("t", "offset", "slide"), EDGES + NEGATIVE_EDGES)
@pytest.mark.parametrize("mode", ["on_time", "behind", "per_key", "per_key_behind"])
def test_event_time_puts_an_item_in_the_window_holding_its_timestamp(
    t: float, offset: float, slide: float, mode: str
) -> None:
    kw: dict[str, Any] = {"offset": offset, "timestamp": stamp, "allowed_lateness": 100}
    if mode.startswith("per_key"):
        kw.update(key=key_of, watermark="per_key")
    rig = Rig(slide, **kw)
    if mode == "behind":
        rig.at(1, pfrx.Watermark(t + 1.0))  # the item's window fired: it re-fires it, late
    if mode == "per_key_behind":
        rig.at(1, env("ahead", t + 1.0))  # the key's own watermark passes the item's window
    rig.at(2, env("x", t)).complete_at(3).run_to(4)
    start, end = window_of(t, offset, slide)
    got = [(w.start, w.end) for _, w in rig.out if "x" in [e.event[0] for e in w.items]]
    assert got == [(start, end)]


@pytest.mark.parametrize(("t", "offset", "slide"), EDGES[:4])
def test_a_late_drop_names_the_window_holding_its_timestamp(
    t: float, offset: float, slide: float
) -> None:
    rig = Rig(slide, offset=offset, timestamp=stamp)
    rig.at(1, pfrx.Watermark(t + 1.0)).at(2, env("x", t)).run_to(3)
    assert [(d.reason, d.windows) for d in rig.drops] == [("late", (window_of(t, offset, slide),))]


# -- timestamps the fast path must not take -----------------------------------------------------


@pytest.mark.parametrize("bad", [True, math.nan, math.inf, -math.inf])
def test_a_bool_or_non_finite_timestamp_after_a_float_is_invalid(bad: Any) -> None:
    rig = Rig(10, timestamp=stamp)
    rig.at(1, env("a", 1.0), env("bad", bad), env("b", 2.0)).complete_at(2).run_to(3)
    assert [(d.item, d.reason) for d in rig.drops] == [(env("bad", bad), "invalid_timestamp")]
    assert rig.fired() == [(2.0, None, 0.0, 10.0, ("a", "b"), 0)]


def test_a_float_timestamp_after_datetimes_is_invalid() -> None:
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    rig = Rig(10, timestamp=stamp)
    rig.at(1, env("a", epoch), env("f", 3.0), env("b", epoch + timedelta(seconds=4)))
    rig.complete_at(2).run_to(3)
    assert [(d.item, d.reason) for d in rig.drops] == [(env("f", 3.0), "invalid_timestamp")]
    assert rig.fired() == [(2.0, None, epoch, epoch + timedelta(seconds=10), ("a", "b"), 0)]


# -- lateness shorter than a second ---------------------------------------------------------------


@pytest.mark.parametrize("per_key", [False, True])
def test_half_a_second_of_lateness_keeps_the_fired_window_for_a_revision(per_key: bool) -> None:
    kw: dict[str, Any] = {"timestamp": stamp, "allowed_lateness": 0.5}
    if per_key:
        kw.update(key=key_of, watermark="per_key")
    rig = Rig(10, **kw)
    rig.at(1, env("a", 1.0), env("w", 10.2), env("late", 2.0))
    # the watermark 10.2 < 10 + 0.5: "late" re-fires [0, 10); then 10.6 purges it
    rig.at(2, env("v", 10.6), env("gone", 4.0)).complete_at(3).run_to(4)
    key = "k" if per_key else None
    assert rig.fired() == [
        (1.0, key, 0.0, 10.0, ("a",), 0),
        (1.0, key, 0.0, 10.0, ("a", "late"), 1),
        (3.0, key, 10.0, 20.0, ("w", "v"), 0),
    ]
    assert [(d.item, d.reason, d.timestamp) for d in rig.drops] == [(env("gone", 4.0), "late", 2.0)]


# -- per-key watermarks ---------------------------------------------------------------------------


def per_key(span: float = 10, **kw: Any) -> Rig:
    return Rig(span, key=key_of, timestamp=stamp, watermark="per_key", **kw)


def test_per_key_items_whose_key_fails_are_dropped_with_the_reason() -> None:
    def key(e: Any) -> Any:
        if e.event[0] == "raise":
            raise LookupError("no key")
        return e.event[2]

    rig = Rig(10, key=key, timestamp=stamp, watermark="per_key")
    rig.at(1, env("raise", 1.0), env("list", 1.0, [1]), env("ok", 1.0)).complete_at(2).run_to(3)  # type: ignore[arg-type]
    assert [(d.item, d.reason) for d in rig.drops] == [
        (env("raise", 1.0), "no key"),
        (env("list", 1.0, [1]), "unhashable_key"),  # type: ignore[arg-type]
    ]
    assert rig.fired() == [(2.0, "k", 0.0, 10.0, ("ok",), 0)]


def test_per_key_items_without_a_valid_time_are_dropped_with_the_reason() -> None:
    def when(e: Any) -> Any:
        if e.event[0] == "raise":
            raise ArithmeticError("no time")
        return e.event[1]

    rig = Rig(10, key=lambda e: "k", timestamp=when, watermark="per_key")
    naive = env("naive", datetime(2026, 1, 1))
    rig.at(1, "stray", env("raise", 1.0), naive, env("ok", 1.0)).complete_at(2).run_to(3)
    assert [(d.item, d.reason) for d in rig.drops] == [
        ("stray", "not_an_envelope"),
        (env("raise", 1.0), "no time"),
        (naive, "invalid_timestamp"),
    ]
    assert rig.metrics.snapshot().errors == 1


def test_per_key_an_item_between_sliding_windows_is_dropped_as_such() -> None:
    rig = per_key(2, slide=4)
    rig.at(1, env("a", 1.0), env("gap", 3.0)).complete_at(2).run_to(3)
    assert [(d.item, d.reason, d.timestamp) for d in rig.drops] == [
        (env("gap", 3.0), "between_windows", 1.0)
    ]
    assert rig.fired() == [(2.0, "k", 0.0, 2.0, ("a",), 0)]


def test_per_key_a_window_fires_when_its_keys_watermark_reaches_its_end_exactly() -> None:
    rig = per_key()
    rig.at(1, env("a", 1.0)).at(2, env("b", 10.0)).complete_at(5).run_to(6)
    assert rig.fired() == [(2.0, "k", 0.0, 10.0, ("a",), 0), (5.0, "k", 10.0, 20.0, ("b",), 0)]


def test_per_key_items_behind_the_shared_watermark_fill_an_open_window() -> None:
    rig = per_key()
    rig.at(1, pfrx.Watermark(15.0)).at(2, env("a", 12.0), env("b", 13.0), env("c", 11.0))
    rig.complete_at(3).run_to(4)
    assert rig.fired() == [(3.0, "k", 10.0, 20.0, ("a", "b", "c"), 0)]


def test_per_key_late_items_within_the_lateness_refire_with_rising_revisions() -> None:
    rig = per_key(allowed_lateness=5)
    rig.at(1, env("a", 1.0), env("b", 10.0))  # [0, 10) fires at the key's watermark 10
    rig.at(2, env("c", 2.0)).at(3, env("d", 3.0)).complete_at(4).run_to(5)
    assert rig.fired() == [
        (1.0, "k", 0.0, 10.0, ("a",), 0),
        (2.0, "k", 0.0, 10.0, ("a", "c"), 1),
        (3.0, "k", 0.0, 10.0, ("a", "c", "d"), 2),
        (4.0, "k", 10.0, 20.0, ("b",), 0),
    ]


def test_per_key_a_late_sliding_item_refires_its_fired_window_and_joins_the_open_one() -> None:
    rig = per_key(4, slide=2, allowed_lateness=10)
    rig.at(1, env("a", 1.0)).at(2, env("b", 5.0))  # fires [-2, 2) and [0, 4)
    rig.at(3, env("c", 3.5)).run_to(3.5)
    inner = rig.state()["state"]
    assert inner["rows"] == [(1, "k", -1), (2, "k", -1), (-1, "k", 0), (0, "k", 1)]
    assert [e[0] for e in inner["items"][0]] == ["b", "c", "b", "a", "a", "c"]
    # an item's lowest live window is its first: b in [2, 6), a in [-2, 2), c in [0, 4)
    assert inner["firsts"] == [True, False, False, True, False, True]
    rig.complete_at(4).run_to(5)
    assert rig.fired() == [
        (2.0, "k", -2.0, 2.0, ("a",), 0),
        (2.0, "k", 0.0, 4.0, ("a",), 0),
        (3.0, "k", 0.0, 4.0, ("a", "c"), 1),
        (4.0, "k", 2.0, 6.0, ("b", "c"), 0),
        (4.0, "k", 4.0, 8.0, ("b",), 0),
    ]


def test_per_key_an_error_reports_each_never_emitted_sliding_item_once() -> None:
    rig = per_key(4, slide=2, out_of_orderness=0.5)
    # a sits in [-2, 2) and [0, 4); the watermark 2.5 - 0.5 = 2 fires [-2, 2): a was emitted
    rig.at(1, env("a", 1.0)).at(2, env("b", 2.5)).at(3, env("c", 3.0)).fail_at(4).run_to(5)
    assert rig.fired() == [(2.0, "k", -2.0, 2.0, ("a",), 0)]
    assert rig.dropped() == [
        (("b", 2.5, "k"), "upstream_error", 4.0),
        (("c", 3.0, "k"), "upstream_error", 4.0),
    ]


def test_per_key_an_error_reports_every_open_window_of_every_key() -> None:
    rig = per_key(out_of_orderness=5)
    rig.at(1, env("a", 1.0), env("b", 12.0), env("x", 3.0, "j")).fail_at(2).run_to(3)
    assert rig.fired() == []
    assert rig.dropped() == [
        (("a", 1.0, "k"), "upstream_error", 2.0),
        (("b", 12.0, "k"), "upstream_error", 2.0),
        (("x", 3.0, "j"), "upstream_error", 2.0),
    ]
    assert [d.item for d in rig.drops] == [env("a", 1.0), env("b", 12.0), env("x", 3.0, "j")]
    assert rig.state()["state"]["slots"] == 0


def test_per_key_nothing_is_held_after_completion() -> None:
    rig = per_key()
    rig.at(1, env("a", 1.0), env("x", 3.0, "j")).complete_at(2).run_to(3)
    assert rig.fired() == [(2.0, "k", 0.0, 10.0, ("a",), 0), (2.0, "j", 0.0, 10.0, ("x",), 0)]
    inner = rig.state()["state"]
    assert (inner["rows"], inner["maxes"], inner["slots"], inner["peak"]) == ([], [], 0, 2)


@pytest.mark.timeout(20)
def test_per_key_an_idle_input_fires_and_purges_on_the_idle_clock() -> None:
    rig = per_key(idle_timeout=5, allowed_lateness=5)
    rig.at(100, env("a", 1.0)).at(101, pfrx.Watermark(2.0))
    # idle from 101: the watermark 2 + (x - 101) reaches 10 at 109
    # "late" at 113 re-fires [0, 10) and makes the input active again: the watermark stays 10
    # until idle from 118, and reaches 15 (the purge) at 118
    rig.at(113, env("late", 3.0)).at(119, env("gone", 4.0)).run_to(200)
    assert rig.fired() == [
        (109.0, "k", 0.0, 10.0, ("a",), 0),
        (113.0, "k", 0.0, 10.0, ("a", "late"), 1),
    ]
    assert rig.dropped() == [(("gone", 4.0, "k"), "late", 119.0)]


@pytest.mark.parametrize("keyed", [False, True])
def test_a_fired_window_is_purged_when_the_watermark_reaches_end_plus_lateness(keyed: bool) -> None:
    rig = per_key(allowed_lateness=5) if keyed else Rig(10, timestamp=stamp, allowed_lateness=5)
    held: list[int] = []
    rig.at(1, env("a", 1.0), env("b", 10.0))  # [0, 10) fired, kept; [10, 20) holds b
    rig.at(2, env("c", 15.0))  # watermark 15 = 10 + 5: [0, 10) is purged
    for t in (1.5, 2.5):
        rig.scheduler.schedule_absolute(t, lambda *_: held.append(rig.buffered()))
    rig.run_to(3)
    assert held == [2, 2]
    rows = rig.state()["state"]["rows"]
    assert rows == [(1, "k" if keyed else None, -1)]


def test_the_checkpoint_names_the_per_key_watermark_in_its_settings() -> None:
    rig = per_key(allowed_lateness=2)
    assert rig.state()["settings"] == (
        "window_time",
        10.0,
        10.0,
        0.0,
        True,
        True,
        0.0,
        2.0,
        "per_key",
    )
    saved = checkpoint.loads(checkpoint.dumps(rig.scope.snapshot()))
    shared = Rig(10, restore=saved, key=key_of, timestamp=stamp, allowed_lateness=2)
    assert shared.notes == [
        (
            0.0,
            "error window_time: checkpoint taken with "
            "('window_time', 10.0, 10.0, 0.0, True, True, 0.0, 2.0, 'per_key'), restored into "
            "('window_time', 10.0, 10.0, 0.0, True, True, 0.0, 2.0)",
        )
    ]


def test_a_fresh_window_operator_has_held_nothing() -> None:
    for rig in (Rig(10), Rig(10, timestamp=stamp), per_key()):
        inner = rig.state()["state"]
        assert (inner["slots"], inner["peak"]) == (0, 0)


# -- a processing clock that steps back --------------------------------------------------------


class SteppingClock(Scheduler):
    """A real-time-like scheduler (not virtual) whose clock the test sets, even backwards (a
    wall clock corrected by NTP); timers run when the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.timers: list[Any] = []

    @property
    def now(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule_relative(0.0, action, state)

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        entry = [action, state, True]
        self.timers.append(entry)
        return Disposable(lambda: entry.__setitem__(2, False))

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule_relative(0.0, action, state)

    def run_timers(self) -> None:
        timers, self.timers = self.timers, []
        for action, state, live in timers:
            if live:
                action(self, state)


def test_a_processing_clock_stepping_back_never_reopens_a_closed_window() -> None:
    clock = SteppingClock()
    subject: Subject[Any] = Subject()
    out: list[tuple[float, float, tuple[Any, ...]]] = []
    subject.pipe(pf.window_time(1.0, scheduler=clock)).subscribe(
        lambda w: out.append((w.start, w.end, tuple(e.event[0] for e in w.items)))
    )
    clock.seconds = 0.5
    subject.on_next(env("a"))
    clock.seconds = 1.2  # the timer for [0, 1) runs late
    clock.run_timers()
    clock.seconds = 0.9  # the clock is set back: [0, 1) has closed, b goes to [1, 2)
    subject.on_next(env("b"))
    clock.seconds = 2.0
    clock.run_timers()
    assert out == [(0.0, 1.0, ("a",)), (1.0, 2.0, ("b",))]


@pytest.mark.timeout(20)
def test_per_key_the_idle_clock_starts_from_the_highest_time_less_the_out_of_orderness() -> None:
    rig = per_key(idle_timeout=5, out_of_orderness=2)
    # idle from 100 at 1 - 2 = -1: the watermark reaches 10 at 100 + 11
    rig.at(100, env("a", 1.0)).run_to(200)
    assert rig.fired() == [(111.0, "k", 0.0, 10.0, ("a",), 0)]


def test_per_key_a_non_envelope_is_dropped_as_such_by_the_key_function() -> None:
    rig = per_key()
    rig.at(1, "stray", env("a", 1.0)).complete_at(2).run_to(3)
    assert [(d.item, d.reason, d.timestamp) for d in rig.drops] == [
        ("stray", "not_an_envelope", 1.0)
    ]
    assert rig.metrics.snapshot().errors == 0
