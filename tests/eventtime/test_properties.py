"""Properties of event time and checkpoints.

- Any arrival order within the out-of-orderness bound gives the windows of the sorted input.
- A checkpoint taken at any step and restored (through pickle, as a file would) gives the
  same output and drops as the uninterrupted run, in event time and in processing time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("prop", "s1")


def key_of(env: pfrx.Envelope) -> Any:
    return env.event[0]


def ts_of(env: pfrx.Envelope) -> Any:
    return env.event[1]


def build(shape: str, ooo: float, lateness: float) -> Callable[..., Any]:
    def make(drop: Callable[[pfrx.Dropped], None]) -> Any:
        common = {
            "key": key_of,
            "timestamp": ts_of,
            "out_of_orderness": ooo,
            "allowed_lateness": lateness,
            "on_drop": drop,
        }
        if shape == "tumbling":
            return pf.window_time(5, **common)
        if shape == "sliding":
            return pf.window_time(6, slide=2, offset=1, **common)
        return pf.window_session(3, **common)

    return make


class Run:
    """One subscription; its ledger holds windows and drops in the order they happened."""

    def __init__(
        self,
        make: Callable[..., Any],
        restore: checkpoint.Checkpoint | None = None,
        scheduler: TestScheduler | None = None,
    ) -> None:
        self.ledger: list[tuple[Any, ...]] = []
        self.subject: Subject[Any] = Subject()
        self.scheduler = scheduler or TestScheduler()
        op = make(lambda d: self.ledger.append(("drop", d.item.event, d.reason)))
        with checkpoint.checkpointing(restore) as self.scope:
            self.subscription = self.subject.pipe(op).subscribe(
                lambda w: self.ledger.append(
                    ("window", w.key, w.start, w.end, tuple(sorted(w.events)), w.revision)
                ),
                scheduler=self.scheduler,
            )

    def feed(self, step: Any) -> None:
        if step[0] == "mark":
            self.subject.on_next(pfrx.Watermark(step[1]))
        else:
            self.subject.on_next(pfrx.Envelope(step[1:], CTX, 0.0))


def windows_only(ledger: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(entry for entry in ledger if entry[0] == "window")


# -- arrival order within the out-of-orderness bound -----------------------------------------


@given(
    st.lists(st.tuples(st.sampled_from("xy"), st.integers(0, 60)), max_size=30),
    st.data(),
    st.sampled_from(["tumbling", "sliding", "session"]),
    st.sampled_from([0, 2, 5]),
)
def test_any_order_within_the_bound_gives_the_windows_of_the_sorted_input(
    items: list[tuple[str, int]], data: st.DataObject, shape: str, ooo: int
) -> None:
    numbered = [(key, ts, n) for n, (key, ts) in enumerate(items)]
    ordered = sorted(numbered, key=lambda item: (item[1], item[2]))
    # Arrival order sorted by timestamp + a delay below the bound: every item arrives with a
    # timestamp above (highest timestamp seen before it) - ooo.
    delays = data.draw(
        st.lists(
            st.floats(0, ooo, exclude_max=True) if ooo else st.just(0.0),
            min_size=len(items),
            max_size=len(items),
        )
    )
    shuffled = [
        item
        for _, item in sorted(
            zip(delays, numbered, strict=True), key=lambda p: (p[1][1] + p[0], p[1][2])
        )
    ]
    runs = []
    for order in (ordered, shuffled):
        run = Run(build(shape, ooo, 0))
        for key, ts, n in order:
            run.feed(("item", key, ts, n))
        run.subject.on_completed()
        runs.append(run.ledger)
    assert [e for e in runs[1] if e[0] == "drop"] == []
    assert windows_only(runs[0]) == windows_only(runs[1])
    assert sorted(e[4] for e in runs[1]) == sorted(e[4] for e in runs[0])
    assert all(e[5] == 0 for e in runs[1])


# -- checkpoint at any step ------------------------------------------------------------------

steps_st = st.lists(
    st.one_of(
        st.tuples(st.just("item"), st.sampled_from("xy"), st.integers(0, 40)),
        st.tuples(st.just("mark"), st.integers(0, 50)),
    ),
    max_size=30,
)


@given(
    steps_st,
    st.data(),
    st.sampled_from(["tumbling", "sliding", "session"]),
    st.sampled_from([0, 2]),
    st.sampled_from([0, 3, 10]),
)
def test_a_checkpoint_at_any_step_restores_the_same_run_in_event_time(
    steps: list[Any], data: st.DataObject, shape: str, ooo: int, lateness: int
) -> None:
    steps = [(*s, n) if s[0] == "item" else s for n, s in enumerate(steps)]
    cut = data.draw(st.integers(0, len(steps)))
    make = build(shape, ooo, lateness)

    whole = Run(make)
    for step in steps:
        whole.feed(step)
    whole.subject.on_completed()

    first = Run(make)
    for step in steps[:cut]:
        first.feed(step)
    saved = checkpoint.loads(checkpoint.dumps(first.scope.snapshot()))
    before = list(first.ledger)
    first.subscription.dispose()  # the process "dies": what it held is its own business
    second = Run(make, restore=saved)
    for step in steps[cut:]:
        second.feed(step)
    second.subject.on_completed()
    assert before + second.ledger == whole.ledger


@given(
    st.lists(st.tuples(st.sampled_from("xy"), st.integers(0, 30)), max_size=25),
    st.data(),
    st.sampled_from(["time", "sliding", "session"]),
)
def test_a_checkpoint_at_any_step_restores_the_same_run_in_processing_time(
    items: list[tuple[str, int]], data: st.DataObject, shape: str
) -> None:
    # Item n arrives at virtual time 200 + its tick + 0.5: never on a window's end, so no
    # timer and item share an instant and the order of the two runs is the same.
    arrivals = sorted((200 + tick + 0.5, key, n) for n, (key, tick) in enumerate(items))
    cut = data.draw(st.integers(0, len(arrivals)))

    def make(drop: Callable[[pfrx.Dropped], None]) -> Any:
        if shape == "time":
            return pf.window_time(4, key=lambda e: e.event[0], on_drop=drop)
        if shape == "sliding":
            return pf.window_time(4, slide=2, key=lambda e: e.event[0], on_drop=drop)
        return pf.window_session(3, key=lambda e: e.event[0], max_duration=5, on_drop=drop)

    def play(run: Run, part: list[tuple[float, str, int]]) -> None:
        for at, key, n in part:
            run.scheduler.advance_to(at)
            run.subject.on_next(pfrx.Envelope((key, n), CTX, at))

    end = 300.0
    whole = Run(make)
    play(whole, arrivals)
    whole.scheduler.advance_to(end)

    first = Run(make)
    play(first, arrivals[:cut])
    saved = checkpoint.loads(checkpoint.dumps(first.scope.snapshot()))
    before = list(first.ledger)
    stopped_at = first.scheduler.clock
    first.subscription.dispose()
    restarted = TestScheduler()
    restarted.advance_to(stopped_at)
    second = Run(make, restore=saved, scheduler=restarted)
    play(second, arrivals[cut:])
    second.scheduler.advance_to(end)
    assert before + second.ledger == whole.ledger


# -- the ledger with late firings ------------------------------------------------------------


@given(
    steps_st,
    st.sampled_from(["tumbling", "sliding", "session"]),
    st.sampled_from([0, 2]),
    st.sampled_from([0, 3, 10]),
)
def test_every_item_is_emitted_or_dropped_once_and_revisions_only_grow(
    steps: list[Any], shape: str, ooo: int, lateness: int
) -> None:
    steps = [(*s, n) if s[0] == "item" else s for n, s in enumerate(steps)]
    run = Run(build(shape, ooo, lateness))
    for step in steps:
        run.feed(step)
    run.subject.on_completed()
    items = {s[3] for s in steps if s[0] == "item"}
    emitted = {e[2] for entry in run.ledger if entry[0] == "window" for e in entry[4]}
    dropped = [entry[1][2] for entry in run.ledger if entry[0] == "drop"]
    assert len(dropped) == len(set(dropped))  # at most one drop per item
    assert emitted.isdisjoint(dropped)  # never both
    assert emitted | set(dropped) == items  # nothing lost
    if shape == "session":
        return  # sessions merge: a later revision may be a bigger window
    history: dict[tuple[Any, Any, Any], list[tuple[int, set[Any]]]] = {}
    for entry in run.ledger:
        if entry[0] == "window":
            history.setdefault(entry[1:4], []).append((entry[5], {e[2] for e in entry[4]}))
    for firings in history.values():
        assert [revision for revision, _ in firings] == list(range(len(firings)))
        for (_, before), (_, after) in itertools.pairwise(firings):
            assert before < after  # a late firing holds everything the previous one held
