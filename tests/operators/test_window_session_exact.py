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


def event_sessions(**kw: Any) -> Any:
    def make(rig: Rig) -> Any:
        return pf.window_session(
            kw.pop("gap", 10),
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
