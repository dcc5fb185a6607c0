"""backpressure in a checkpoint: the items waiting in the buffer and the strategy's state."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint as cp
from pfrx import operators as pf

ALICE = pfrx.Context("alice", "s1")


def make(strategy: str, **kwargs: Any) -> list[Any]:
    return [pf.backpressure(strategy, buffer_size=4, batch_size=2, **kwargs)]


def run(
    strategy: str,
    sends: list[int],
    *,
    restore: cp.Checkpoint | None = None,
    checkpoint_after: int | None = None,
    **kwargs: Any,
) -> tuple[list[int], list[tuple[int, str]], cp.Checkpoint | None]:
    """Send ``sends`` on a TestScheduler without draining, optionally checkpoint after that
    many sends (and stop there, as a crash would), else drain everything and close."""
    scheduler = TestScheduler()
    stream = pfrx.Stream(*make(strategy, **kwargs), scheduler=scheduler, restore=restore)
    got: list[int] = []
    lost: list[tuple[int, str]] = []
    stream.results.subscribe(lambda e: got.append(e.event))
    stream.dropped.subscribe(lambda d: lost.append((d.item.event, d.reason)))
    taken = None
    for n, value in enumerate(sends):
        if checkpoint_after is not None and n == checkpoint_after:
            break
        assert stream.send(value, ALICE).ok
    if checkpoint_after is not None:
        taken = stream.checkpoint()
        return got, lost, taken
    stream.close()
    scheduler.start()
    return got, lost, taken


@pytest.mark.parametrize("strategy", ["drop_oldest", "drop_newest", "latest", "adaptive"])
@pytest.mark.parametrize("stop", [0, 3, 6])
def test_a_restored_stream_delivers_what_was_buffered(strategy: str, stop: int) -> None:
    sends = list(range(6))
    whole, whole_lost, _ = run(strategy, sends)
    before, before_lost, saved = run(strategy, sends, checkpoint_after=stop)
    assert saved is not None and before == []  # nothing drained before the checkpoint
    after, after_lost, _ = run(strategy, sends[stop:], restore=saved)
    assert before + after == whole
    assert before_lost + after_lost == whole_lost


def test_the_checkpoint_holds_the_buffered_items_in_order() -> None:
    _, _, saved = run("drop_oldest", list(range(6)), checkpoint_after=6)
    assert saved is not None
    ((name, state),) = saved.states
    assert name == "backpressure"
    assert [e.event for e in state["items"]] == [2, 3, 4, 5]  # 0 and 1 overflowed
    assert (state["strategy"], state["capacity"]) == ("drop_oldest", 4)
    # a checkpoint survives a round trip through bytes
    assert cp.loads(cp.dumps(saved)).states[0][1]["items"] == state["items"]


def test_the_adaptive_state_is_restored() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    policy = pf.AdaptivePolicy(sustain=1, min_batch_size=1)
    saved = cp.Checkpoint(
        [
            (
                "backpressure",
                {
                    "strategy": "adaptive",
                    "capacity": 4,
                    "items": [],
                    "peak": 4,
                    "policy": {
                        "state": "shedding",
                        "streak": 0,
                        "batch_size": 1,
                        "switches": 3,
                    },
                },
            )
        ]
    )
    pfrx.Stream(
        pf.backpressure("adaptive", buffer_size=4, batch_size=2, adaptive=policy),
        scheduler=scheduler,
        metrics=metrics,
        restore=saved,
    )
    info = metrics.snapshot().info
    assert info["backpressure.adaptive_state"] == "shedding"
    assert info["backpressure.batch_size"] == 1
    assert info["backpressure.adaptive_switches"] == 3


@pytest.mark.parametrize(
    ("strategy", "kwargs"),
    [("drop_newest", {}), ("drop_oldest", {"buffer_size": 5})],
)
def test_a_checkpoint_of_another_buffer_is_refused(strategy: str, kwargs: dict[str, Any]) -> None:
    _, _, saved = run("drop_oldest", [1, 2], checkpoint_after=2)
    assert saved is not None
    options = {"buffer_size": 4, **kwargs}

    def restored() -> None:
        # Refused when built, or the stream fails with the mismatch and takes nothing.
        stream = pfrx.Stream(
            pf.backpressure(strategy, **options), scheduler=TestScheduler(), restore=saved
        )
        assert stream.send(1, ALICE).reason == "failed"
        stream.join(0)

    with pytest.raises(cp.CheckpointMismatch):
        restored()
