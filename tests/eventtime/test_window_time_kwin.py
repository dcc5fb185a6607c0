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
    """The oracle, from the contract's words: the window [offset + k * slide, + span) whose
    start is the last one at or before t, found by walking k in float arithmetic."""
    k = math.floor(t / slide) - 4
    while offset + (k + 1) * slide <= t:
        k += 1
    assert offset + k * slide <= t < offset + (k + 1) * slide
    return offset + k * slide, offset + k * slide + slide


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
