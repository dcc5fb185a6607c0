"""The checkpoint protocol: members register in subscription order, a restore hands each
its state by position, mismatches are refused, files round-trip."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("u", "s", metadata={"team": "a"})


class Counter:
    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> pfrx.Ok[int]:
        return pfrx.Ok(state + event, effects=[state + event])


def pipeline() -> list[Any]:
    return [pf.process(Counter()), pf.window_count(3), pf.window_count(2, slide=1)]


def run_in_two(events: list[int], cut: int) -> tuple[list[Any], list[Any]]:
    """Outputs of one uninterrupted run, and of a run checkpointed after ``cut`` events."""

    def subscribe(restore: checkpoint.Checkpoint | None) -> tuple[Subject[Any], list[Any], Any]:
        source: Subject[Any] = Subject()
        out: list[Any] = []
        with checkpoint.checkpointing(restore) as scope:
            source.pipe(*pipeline()).subscribe(
                lambda w: out.append([[e for e in inner.events] for inner in w.items])
            )
        return source, out, scope

    whole_source, whole, _ = subscribe(None)
    for event in events:
        whole_source.on_next(pfrx.Envelope(event, CTX, 0.0))
    whole_source.on_completed()

    first, out, scope = subscribe(None)
    for event in events[:cut]:
        first.on_next(pfrx.Envelope(event, CTX, 0.0))
    saved = checkpoint.loads(checkpoint.dumps(scope.snapshot()))
    second, more, _ = subscribe(saved)
    for event in events[cut:]:
        second.on_next(pfrx.Envelope(event, CTX, 0.0))
    second.on_completed()
    return whole, out + more


@pytest.mark.parametrize("cut", [0, 1, 4, 7, 10])
def test_process_and_count_windows_restore_where_they_stood(cut: int) -> None:
    whole, resumed = run_in_two(list(range(1, 11)), cut)
    assert resumed == whole
    assert whole[0] == [[1, 3, 6], [10, 15, 21]]  # running sums, in windows of windows


def test_members_register_in_subscription_order_with_their_names() -> None:
    source: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        source.pipe(*pipeline(), pf.window_time(5, timestamp=lambda e: 0.0)).subscribe()
        source.pipe(pf.window_session(5)).subscribe()
    assert sorted(scope.names) == sorted(
        ["window_time", "process", "window_count", "window_count", "window_session"]
    )
    again: Subject[Any] = Subject()
    with checkpoint.checkpointing() as second:
        again.pipe(*pipeline(), pf.window_time(5, timestamp=lambda e: 0.0)).subscribe()
        again.pipe(pf.window_session(5)).subscribe()
    assert second.names == scope.names  # deterministic for a given pipeline


def test_a_checkpoint_that_does_not_fit_is_refused() -> None:
    source: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        source.pipe(pf.window_time(5)).subscribe()
    saved = scope.snapshot()

    def restore_into(*operators: Any) -> None:
        with checkpoint.checkpointing(saved):
            for op in operators:
                source.pipe(op).subscribe()

    with pytest.raises(checkpoint.CheckpointMismatch, match="window_session"):
        restore_into(pf.window_session(5))  # another operator at position 0
    with pytest.raises(checkpoint.CheckpointMismatch, match="checkpoint taken with"):
        restore_into(pf.window_time(6))  # the same operator, another span
    with pytest.raises(checkpoint.CheckpointMismatch, match="holds 1"):
        restore_into(pf.window_time(5), pf.window_time(5))  # one member more than recorded


def test_files_round_trip_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    source: Subject[Any] = Subject()
    with checkpoint.checkpointing() as scope:
        source.pipe(pf.window_count(3)).subscribe()
    source.on_next(pfrx.Envelope("a", CTX, 0.0))
    path = tmp_path / "state.ckpt"
    checkpoint.save(scope.snapshot({"offset": 1}), path)
    loaded = checkpoint.load(path)
    assert loaded.meta == {"offset": 1}
    assert loaded.states[0][0] == "window_count"
    assert [e.context for e in loaded.states[0][1]["buffer"]] == [CTX]  # metadata survives
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    other = tmp_path / "other"
    other.write_bytes(pickle.dumps({"not": "a checkpoint"}))
    with pytest.raises(checkpoint.CheckpointMismatch):
        checkpoint.load(other)


def test_a_completed_operator_stays_completed_after_a_restore() -> None:
    with checkpoint.checkpointing() as scope:
        reactivex.of(pfrx.Envelope("a", CTX, 0.0)).pipe(pf.window_time(5), ops.to_list()).run()
    saved = scope.snapshot()
    assert saved.states[0][1]["done"] is True
    source: Subject[Any] = Subject()
    out: list[Any] = []
    with checkpoint.checkpointing(saved):
        source.pipe(pf.window_time(5)).subscribe(out.append)
    source.on_next(pfrx.Envelope("b", CTX, 0.0))
    assert out == []
