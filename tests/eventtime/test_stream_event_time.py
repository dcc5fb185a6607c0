"""Event time inside a Stream: late firings and late drops survive Stream.checkpoint()."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint as cp
from pfrx import operators as pf

CTX = pfrx.Context("sensor", "s1")


class Numbered:
    """Numbers the events it sees (state a checkpoint must carry too)."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> pfrx.Ok[int]:
        return pfrx.Ok(state + 1, effects=((*event, state),))


def operators() -> list[Any]:
    return [
        pf.process(Numbered()),
        pf.window_time(
            10,
            key=lambda env: env.event[0],
            timestamp=lambda env: env.event[1],
            out_of_orderness=2,
            allowed_lateness=5,
        ),
    ]


def run(
    events: list[tuple[str, int]],
    *,
    restore: cp.Checkpoint | None = None,
    stop_after: int | None = None,
) -> tuple[list[Any], cp.Checkpoint | None]:
    stream = pfrx.Stream(*operators(), scheduler=TestScheduler(), restore=restore)
    ledger: list[Any] = []
    stream.results.subscribe(lambda w: ledger.append((w.key, w.start, w.end, w.events, w.revision)))
    stream.dropped.subscribe(lambda d: ledger.append((d.operator, d.item.event, d.reason)))
    for n, event in enumerate(events):
        if n == stop_after:
            return ledger, stream.checkpoint({"sent": n})
        assert stream.send(event, CTX).ok
    if stop_after is not None:
        return ledger, stream.checkpoint({"sent": len(events)})
    stream.close()
    return ledger, None


@given(
    st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 60)), max_size=25),
    st.data(),
)
def test_a_stream_of_event_time_windows_restores_the_same_run(
    events: list[tuple[str, int]], data: st.DataObject
) -> None:
    whole, _ = run(events)
    stop_after = data.draw(st.integers(0, len(events)))
    before, checkpoint = run(events, stop_after=stop_after)
    assert checkpoint is not None and checkpoint.meta == {"sent": stop_after}
    after, _ = run(events[stop_after:], restore=cp.loads(cp.dumps(checkpoint)))
    assert before + after == whole
