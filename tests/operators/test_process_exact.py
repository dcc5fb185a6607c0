"""Issue 12: process stated exactly: state threading, effects, every drop reason, the figures."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

ALICE = pfrx.Context("alice", "s1")
MALLORY = pfrx.Context("mallory", "s9")


class Counter:
    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
        if event == "err":
            return pfrx.Err("refused", state + 100)
        if event == "boom":
            raise ValueError("exploded")
        if event == "junk":
            return 42
        if event == "forge":
            return pfrx.Ok(state + 1, (pfrx.Envelope("forged", MALLORY, 99.0),))
        if event == "none":
            return pfrx.Ok(state + 1)
        return pfrx.Ok(state + 1, (f"{event}:{state + 1}", f"{event}!"))


def test_states_effects_and_drops_exactly() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(5.0)
    metrics = pfrx.StreamMetrics(scheduler)
    lost: list[pfrx.Dropped] = []
    out: list[pfrx.Envelope] = []
    items = [
        pfrx.Envelope("a", ALICE, 1.0),
        pfrx.Envelope("err", ALICE, 2.0),
        pfrx.Envelope("b", ALICE, 3.0),
        pfrx.Envelope("boom", ALICE, 4.0),
        "stray",
        pfrx.Envelope("junk", ALICE, 5.0),
        pfrx.Envelope("forge", ALICE, 6.0),
        pfrx.Envelope("none", ALICE, 7.0),
        pfrx.Envelope("c", ALICE, 8.0),
    ]
    reactivex.from_iterable(items).pipe(
        pf.process(Counter(), on_drop=lost.append, metrics=metrics, name="count")
    ).subscribe(out.append, scheduler=scheduler)
    scheduler.advance_by(1.0)
    assert [(e.event, e.context, e.timestamp) for e in out] == [
        ("a:1", ALICE, 1.0),
        ("a!", ALICE, 1.0),
        ("b:102", ALICE, 3.0),  # Err kept its new state (101), the raise kept the old one
        ("b!", ALICE, 3.0),
        ("forged", ALICE, 6.0),  # an envelope effect keeps only its event
        ("c:105", ALICE, 8.0),
        ("c!", ALICE, 8.0),
    ]
    assert [(d.item, d.reason, d.operator, d.timestamp) for d in lost] == [
        (items[1], "refused", "count", 5.0),
        (items[3], "exploded", "count", 5.0),
        ("stray", "not_an_envelope", "count", 5.0),
        (items[5], "processor returned int, not Ok or Err", "count", 5.0),
    ]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (9, 7, 4, 3)
    assert snap.avg_processing_time == 0.0
    op = snap.operators[0].to_dict()
    assert op == {"name": "count", "received": 9, "emitted": 7, "dropped": 4, "errors": 3}


def test_bad_processors_are_named_exactly() -> None:
    class NoInit:
        def process_event(self, event: Any, context: Any, state: Any) -> Any:
            return pfrx.Ok(state)

    bad = NoInit()
    with pytest.raises(TypeError) as caught:
        pf.process(bad)  # type: ignore[arg-type]
    assert str(caught.value) == f"processor must have a callable initial_state(); {bad!r} has not"

    class NoStep:
        def initial_state(self) -> int:
            return 0

        process_event = 5

    step = NoStep()
    with pytest.raises(TypeError) as caught:
        pf.process(step)  # type: ignore[arg-type]
    assert str(caught.value) == f"processor must have a callable process_event(); {step!r} has not"

    class TwoArgs:
        def initial_state(self) -> int:
            return 0

        def process_event(self, event: Any, context: Any) -> Any:
            return pfrx.Ok(0)

    two = TwoArgs()
    with pytest.raises(TypeError) as caught:
        pf.process(two)  # type: ignore[arg-type]
    assert str(caught.value).startswith(
        "process calls processor.process_event(event, context, state); "
    )
    with pytest.raises(ValueError) as value_error:
        pf.process(Counter(), processing_timeout=-1)
    assert str(value_error.value).startswith("processing_timeout must be")


def test_each_subscription_starts_from_the_initial_state() -> None:
    source = reactivex.from_iterable([pfrx.Envelope("a", ALICE, 0.0)])
    op = pf.process(Counter())
    first = source.pipe(op).run()
    second = source.pipe(op).run()
    assert (first.event, second.event) == ("a!", "a!")
