"""Stream.checkpoint(): a stream restored from a checkpoint emits what the uninterrupted one
would have — nothing lost, no completed window emitted twice."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint as cp
from pfrx import operators as pf

ALICE = pfrx.Context("alice", "s1")
BOB = pfrx.Context("bob", "s2")


class RunningTotal:
    """Emits the running total of the numbers it has seen."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: int, context: pfrx.Context, state: int) -> pfrx.Ok[int]:
        total = state + event
        return pfrx.Ok(total, effects=(total,))


def operators() -> list[Any]:
    return [
        pf.process(RunningTotal()),
        pf.window_session(3.0, key=lambda env: env.context.user_id),
    ]


def summary(window: pfrx.Window) -> tuple[Any, ...]:
    return (window.key, window.start, window.end, tuple(e.event for e in window.items))


def run(
    sends: list[tuple[float, int, pfrx.Context]],
    *,
    restore: cp.Checkpoint | None = None,
    start: float = 0.0,
    stop_after: int | None = None,
) -> tuple[list[tuple[Any, ...]], list[pfrx.Dropped], cp.Checkpoint | None]:
    """Send ``sends`` (time, value, context) into a stream on a TestScheduler; stop and take a
    checkpoint after ``stop_after`` sends, else run to the end and close."""
    scheduler = TestScheduler()
    scheduler.advance_to(start)
    stream = pfrx.Stream(*operators(), scheduler=scheduler, restore=restore)
    windows: list[tuple[Any, ...]] = []
    dropped: list[pfrx.Dropped] = []
    stream.results.subscribe(lambda w: windows.append(summary(w)))
    stream.dropped.subscribe(dropped.append)
    for n, (at, value, context) in enumerate(sends):
        if stop_after is not None and n == stop_after:
            return windows, dropped, stream.checkpoint({"sent": n, "at": at})
        scheduler.advance_to(at)
        assert stream.send(value, context).ok
    if stop_after is not None:
        return windows, dropped, stream.checkpoint({"sent": len(sends)})
    stream.close()
    scheduler.advance_by(100)
    return windows, dropped, None


SENDS = [
    (1.0, 1, ALICE),
    (2.0, 2, BOB),
    (3.0, 3, ALICE),
    (7.0, 4, ALICE),  # alice's first session [1, 6) closed at 6
    (8.0, 5, BOB),
    (9.0, 6, ALICE),
    (15.0, 7, BOB),
]


def resumed(stop_after: int) -> list[tuple[Any, ...]]:
    before, _, checkpoint = run(SENDS, stop_after=stop_after)
    assert checkpoint is not None
    restored = cp.loads(cp.dumps(checkpoint))  # through bytes, as a restarted process would
    at = SENDS[stop_after - 1][0] if stop_after else 0.0
    after, _, _ = run(SENDS[stop_after:], restore=restored, start=at)
    return before + after


def test_uninterrupted_run_is_what_the_test_expects() -> None:
    windows, dropped, _ = run(SENDS)
    assert dropped == []
    # running totals: 1, 3, 6, 10, 15, 21, 28 -> alice 1, 6, 10, 21 ; bob 3, 15, 28
    assert windows == [
        ("bob", 2.0, 5.0, (3,)),
        ("alice", 1.0, 6.0, (1, 6)),
        ("bob", 8.0, 11.0, (15,)),
        ("alice", 7.0, 12.0, (10, 21)),
        ("bob", 15.0, 18.0, (28,)),
    ]


@pytest.mark.parametrize("stop_after", range(len(SENDS) + 1))
def test_a_restored_stream_emits_what_the_uninterrupted_one_would(stop_after: int) -> None:
    whole, _, _ = run(SENDS)
    assert resumed(stop_after) == whole


@given(
    st.lists(
        st.tuples(st.floats(0, 4, allow_nan=False), st.integers(-50, 50), st.booleans()),
        max_size=25,
    ),
    st.data(),
)
def test_any_checkpoint_step_restores_the_same_run(
    steps: list[tuple[float, int, bool]], data: st.DataObject
) -> None:
    sends, now = [], 0.0
    for gap, value, is_alice in steps:
        now += gap
        sends.append((now, value, ALICE if is_alice else BOB))
    whole, _, _ = run(sends)
    stop_after = data.draw(st.integers(0, len(sends)))
    before, _, checkpoint = run(sends, stop_after=stop_after)
    assert checkpoint is not None
    at = sends[stop_after - 1][0] if stop_after else 0.0
    after, _, _ = run(sends[stop_after:], restore=checkpoint, start=at)
    assert before + after == whole


def test_the_checkpoint_names_the_stateful_operators_and_keeps_meta() -> None:
    _, _, checkpoint = run(SENDS, stop_after=3)
    assert checkpoint is not None
    # in subscription order: RxPY subscribes the last operator first
    assert [name for name, _ in checkpoint.states] == ["window_session", "process"]
    assert dict(checkpoint.meta) == {"sent": 3, "at": 7.0}


def test_a_checkpoint_from_another_pipeline_is_refused() -> None:
    _, _, checkpoint = run(SENDS, stop_after=3)
    assert checkpoint is not None
    with pytest.raises(cp.CheckpointMismatch):
        pfrx.Stream(pf.window_session(3.0), restore=checkpoint)  # one state short
    with pytest.raises(cp.CheckpointMismatch):
        pfrx.Stream(pf.process(RunningTotal()), pf.window_count(2), restore=checkpoint)
    with pytest.raises(TypeError):
        pfrx.Stream(pf.process(RunningTotal()), restore={"states": ()})  # type: ignore[arg-type]


def test_checkpoint_from_inside_the_stream_is_refused_not_deadlocked() -> None:
    stream = pfrx.Stream(pf.process(RunningTotal()))
    errors: list[BaseException] = []

    def inside(_: Any) -> None:
        try:
            stream.checkpoint()
        except RuntimeError as exc:
            errors.append(exc)

    stream.results.subscribe(inside)
    assert stream.send(1, ALICE).ok
    assert len(errors) == 1
