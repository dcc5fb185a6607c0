"""window_count stated exactly: window bounds and contents on every path (per item with and
without metrics, batched), drop records, the buffer gauge in the metrics, argument errors,
and checkpoint contents and round trips."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import abc
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf
from pfrx.checkpoint import CheckpointMismatch

CTX = pfrx.Context("alice", "s1")


def env(event: Any) -> pfrx.Envelope:
    return pfrx.Envelope(event, CTX, 0.0)


def bounds(windows: list[pfrx.Window]) -> list[tuple[Any, Any, Any, tuple[Any, ...]]]:
    return [(w.key, w.start, w.end, w.events) for w in windows]


class Rig:
    """``window_count`` on a subject, its checkpoint scope, what it emits and reports."""

    def __init__(
        self,
        size: int,
        slide: int | None = None,
        *,
        metrics: bool = False,
        restore: checkpoint.Checkpoint | None = None,
        scheduler: TestScheduler | None = None,
    ) -> None:
        self.scheduler = scheduler or TestScheduler()
        self.metrics = pfrx.StreamMetrics(self.scheduler) if metrics else None
        self.drops: list[pfrx.Dropped] = []
        self.windows: list[pfrx.Window] = []
        self.errors: list[BaseException] = []
        self.on_error_checkpoints: list[checkpoint.Checkpoint] = []
        self.on_completed_checkpoints: list[checkpoint.Checkpoint] = []
        self.subject: Subject[Any] = Subject()
        op = pf.window_count(size, slide=slide, on_drop=self.drops.append, metrics=self.metrics)
        with checkpoint.checkpointing(restore) as self.scope:
            self.subscription: abc.DisposableBase = self.subject.pipe(op).subscribe(
                self.windows.append,
                self._on_error,
                lambda: self.on_completed_checkpoints.append(self.scope.snapshot()),
                scheduler=self.scheduler,
            )

    def _on_error(self, error: BaseException) -> None:
        self.errors.append(error)
        self.on_error_checkpoints.append(self.scope.snapshot())

    def send(self, *events: Any) -> Rig:
        for event in events:
            self.subject.on_next(env(event))
        return self

    def state(self) -> dict[str, Any]:
        ((_, state),) = self.scope.snapshot().states
        return state  # type: ignore[no-any-return]

    def resumed(self) -> Rig:
        """A new subscription restored from this one's checkpoint (through bytes)."""
        saved = checkpoint.loads(checkpoint.dumps(self.scope.snapshot()))
        size, slide = self.state()["size"], self.state().get("slide")
        return Rig(size, slide, metrics=self.metrics is not None, restore=saved)

    def dropped(self) -> list[tuple[Any, str, str]]:
        return [(d.item.event, d.reason, d.operator) for d in self.drops]


# -- arguments --------------------------------------------------------------------------------


def test_argument_errors_name_the_argument() -> None:
    with pytest.raises(TypeError, match=r"^size must be an int, not str 'x'$"):
        pf.window_count("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^size must be at least 1, not 0$"):
        pf.window_count(0)
    with pytest.raises(ValueError, match=r"^slide must be at least 1, not 0$"):
        pf.window_count(2, slide=0)


# -- tumbling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("metrics", [False, True])
def test_tumbling_windows_count_their_bounds_from_zero(metrics: bool) -> None:
    rig = Rig(2, metrics=metrics).send("a", "b", "c", "d", "e")
    rig.subject.on_completed()
    assert bounds(rig.windows) == [
        (None, 0, 2, ("a", "b")),
        (None, 2, 4, ("c", "d")),
        (None, 4, 5, ("e",)),
    ]


def test_tumbling_batched_windows_count_their_bounds_and_the_metrics() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    windows: list[pfrx.Window] = []
    with checkpoint.checkpointing() as scope:
        pfrx.envelopes("abcdefg", CTX, batch=3).pipe(pf.window_count(2, metrics=metrics)).subscribe(
            windows.append, scheduler=scheduler
        )
        scheduler.advance_to(1)
    assert bounds(windows) == [
        (None, 0, 2, ("a", "b")),
        (None, 2, 4, ("c", "d")),
        (None, 4, 6, ("e", "f")),
        (None, 6, 7, ("g",)),
    ]
    ((_, state),) = scope.snapshot().states
    assert state == {"size": 2, "done": True, "start": 6, "buffer": [], "peak": 2}
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted) == (7, 4)
    assert [(s.name, s.received, s.emitted) for s in snap.stages] == [("window_count", 7, 4)]


def test_tumbling_batched_without_metrics_keeps_its_peak_in_the_checkpoint() -> None:
    scheduler = TestScheduler()
    with checkpoint.checkpointing() as scope:
        pfrx.envelopes("abcde", CTX, batch=5).pipe(pf.window_count(3)).subscribe(
            lambda _: None, scheduler=scheduler
        )
        ((_, before),) = scope.snapshot().states
        scheduler.advance_to(1)
    assert before == {"size": 3, "done": False, "start": 0, "buffer": [], "peak": 0}
    ((_, state),) = scope.snapshot().states
    assert state == {"size": 3, "done": True, "start": 3, "buffer": [], "peak": 3}


def test_tumbling_checkpoint_holds_exactly_the_open_window() -> None:
    rig = Rig(3, metrics=True)
    assert rig.state() == {"size": 3, "done": False, "start": 0, "buffer": [], "peak": 0}
    rig.send("a", "b", "c", "d")
    assert rig.state() == {"size": 3, "done": False, "start": 3, "buffer": [env("d")], "peak": 3}
    assert rig.metrics is not None
    assert rig.metrics.snapshot().buffered == 1
    resumed = rig.resumed().send("e", "f", "g")
    assert bounds(resumed.windows) == [(None, 3, 6, ("d", "e", "f"))]
    assert resumed.state() == {
        "size": 3,
        "done": False,
        "start": 6,
        "buffer": [env("g")],
        "peak": 3,
    }


def test_a_checkpoint_of_another_size_is_refused_with_both_sizes() -> None:
    saved = Rig(2).send("a").scope.snapshot()
    # the subscription fails at once with the mismatch
    (error,) = Rig(3, restore=saved).errors
    assert isinstance(error, CheckpointMismatch)
    assert str(error).startswith("window_count(3) cannot restore {'size': 2, 'done': False, ")
    (error,) = Rig(2, slide=1, restore=saved).errors
    assert isinstance(error, CheckpointMismatch)
    assert str(error).startswith("window_count(2, slide=1) cannot restore {'size': 2, ")
    (error,) = Rig(2, restore=checkpoint.Checkpoint([("window_count", {"size": 2})])).errors
    assert str(error) == "window_count(2) cannot restore {'size': 2}"


@pytest.mark.parametrize("slide", [None, 2])
def test_completion_error_and_disposal_each_leave_the_operator_done(slide: int | None) -> None:
    done = Rig(3, slide).send("a")
    done.subject.on_completed()
    ((_, state),) = done.on_completed_checkpoints[0].states
    assert state["done"] is True  # already while the completion passes downstream
    assert done.state()["done"] is True

    disposed = Rig(3, slide).send("a")
    disposed.subscription.dispose()
    assert disposed.state()["done"] is True
    assert disposed.dropped() == [("a", "disposed", "window_count")]

    failed = Rig(3, slide).send("a")
    failed.subject.on_error(ValueError("boom"))
    ((_, state),) = failed.on_error_checkpoints[0].states
    assert state["done"] is True  # already while the error passes downstream
    assert failed.dropped() == [("a", "upstream_error", "window_count")]


def test_a_drop_is_stamped_with_the_subscribe_schedulers_clock() -> None:
    scheduler = TestScheduler()
    drops: list[pfrx.Dropped] = []
    subject: Subject[Any] = Subject()
    subscription = subject.pipe(pf.window_count(3, on_drop=drops.append)).subscribe(
        scheduler=scheduler
    )
    scheduler.advance_to(205)
    subject.on_next(env("a"))
    subscription.dispose()
    assert [(d.item, d.reason, d.operator, d.timestamp) for d in drops] == [
        (env("a"), "disposed", "window_count", 205.0)
    ]


# -- sliding ------------------------------------------------------------------------------------


def test_sliding_checkpoint_holds_every_open_window_and_round_trips() -> None:
    rig = Rig(3, 1, metrics=True)
    assert rig.state() == {
        "size": 3,
        "slide": 1,
        "done": False,
        "index": 0,
        "open": [],
        "emitted_end": 0,
        "peak": 0,
    }
    rig.send("a", "b", "c", "d")
    assert rig.state() == {
        "size": 3,
        "slide": 1,
        "done": False,
        "index": 4,
        "open": [(2, [env("c"), env("d")]), (3, [env("d")])],
        "emitted_end": 4,
        "peak": 3,
    }
    resumed = rig.resumed()
    assert resumed.state() == rig.state()


def test_sliding_gaps_round_trip_their_emitted_end() -> None:
    rig = Rig(2, 3).send("a", "b")
    assert rig.state()["emitted_end"] == 2
    assert rig.state()["open"] == []
    assert rig.resumed().state() == rig.state()


def test_the_sliding_gauge_counts_items_held_from_the_oldest_open_window() -> None:
    rig = Rig(4, 2, metrics=True)
    metrics = rig.metrics
    assert metrics is not None
    seen = []
    for event in "abcdefg":
        rig.send(event)
        snap = metrics.snapshot()
        seen.append((snap.buffered, snap.buffer_utilization))
    # windows start at 0, 2, 4, 6 and hold 4 items; held = index - oldest open start
    assert seen == [(1, 0.0), (2, 0.0), (3, 0.0), (2, 0.0), (3, 0.0), (2, 0.0), (3, 0.0)]
    assert rig.state()["peak"] == 4
    rig.subject.on_completed()
    assert metrics.snapshot().buffered == 0


def test_between_sliding_windows_nothing_is_held() -> None:
    rig = Rig(1, 2, metrics=True).send("a", "b")
    assert rig.metrics is not None
    assert rig.metrics.snapshot().buffered == 0
    assert rig.dropped() == [("b", "between_windows", "window_count")]
    assert bounds(rig.windows) == [(None, 0, 1, ("a",))]


def test_an_old_sliding_checkpoint_derives_what_has_left_already() -> None:
    # windows [0, 3) and [2, 5): "c" left in the first, "d" is held by the second only
    rig = Rig(3, 2).send("a", "b", "c", "d")
    state = rig.state()
    assert state["emitted_end"] == 3
    legacy = {k: v for k, v in state.items() if k != "emitted_end"}
    resumed = Rig(3, 2, restore=checkpoint.Checkpoint([("window_count", legacy)]))
    assert resumed.state()["emitted_end"] == 3
    resumed.subject.on_error(ValueError("boom"))
    assert resumed.dropped() == [("d", "upstream_error", "window_count")]
