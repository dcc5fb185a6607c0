"""Issue 12: the backpressure policies' knobs and fixed strategies, stated exactly.

mutmut switches a mutant on per test, after import: the `Fixed` strategies the module builds
at import are rebuilt here, inside the tests (with the module's own arguments), so what their
constructor does is seen, and then run through a real buffer on a ``TestScheduler``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators import _backpressure_policy as policy
from pfrx.operators._backpressure_policy import Fixed, Full

ALICE = pfrx.Context("alice", "s1")


# -- AdaptivePolicy: what each knob accepts, to the boundary -------------------------------------


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"high_water": True}, "high_water must be a fraction in (0, 1], not True"),
        ({"high_water": "0.9"}, "high_water must be a fraction in (0, 1], not '0.9'"),
        ({"high_water": 1.5}, "high_water must be a fraction in (0, 1], not 1.5"),
        ({"low_water": 0}, "low_water must be a fraction in (0, 1], not 0"),
        ({"low_water": 0.0}, "low_water must be a fraction in (0, 1], not 0.0"),
        ({"low_water": False}, "low_water must be a fraction in (0, 1], not False"),
        ({"sustain": True}, "sustain must be an int >= 1, not True"),
        ({"sustain": "2"}, "sustain must be an int >= 1, not '2'"),
        ({"sustain": 2.0}, "sustain must be an int >= 1, not 2.0"),
        ({"min_batch_size": 0}, "min_batch_size must be an int >= 1, not 0"),
        (
            {"slow_item_time": 0},
            "slow_item_time must be a finite positive duration of at most 2**31 s, not 0",
        ),
        (
            {"slow_item_time": timedelta(seconds=-1)},
            "slow_item_time must be a finite positive duration of at most 2**31 s, "
            "not datetime.timedelta(days=-1, seconds=86399)",
        ),
    ],
)
def test_a_bad_knob_is_refused_with_its_name_and_value(knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        pf.AdaptivePolicy(**knobs)
    assert str(caught.value) == message


def test_the_boundaries_that_are_accepted() -> None:
    # A fraction may be exactly 1 (an int or a float), a count exactly 1.
    top = pf.AdaptivePolicy(high_water=1, low_water=0.5, sustain=1, min_batch_size=1)
    assert (top.high_water, top.low_water, top.sustain, top.min_batch_size) == (1, 0.5, 1, 1)
    assert pf.AdaptivePolicy(high_water=1.0, low_water=1e-9).low_water == 1e-9
    assert pf.AdaptivePolicy(slow_item_time=timedelta(milliseconds=5)).slow_item_time == 0.005


# -- Fixed: built inside the test ----------------------------------------------------------------


def test_a_fixed_strategy_holds_what_it_was_given() -> None:
    plain = Fixed("plain", Full.DROP_INCOMING)
    assert (plain.name, plain.full, plain.reason, plain.limit) == (
        "plain",
        Full.DROP_INCOMING,
        "overflow",
        None,
    )
    assert plain.capacity(7) == 7
    one = Fixed("one", Full.EVICT_OLDEST, reason="overwritten", limit=1)
    assert (one.name, one.full, one.reason, one.limit) == (
        "one",
        Full.EVICT_OLDEST,
        "overwritten",
        1,
    )
    assert one.capacity(7) == 1


@pytest.fixture
def rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module's fixed strategies, built again now, with the same arguments."""
    table = {
        name: Fixed(made.name, made.full, made.reason, made.limit)
        for name, made in policy._FIXED.items()
    }
    assert set(table) == {"drop_oldest", "drop_newest", "latest", "block", "error"}
    monkeypatch.setattr(policy, "_FIXED", table)


# strategy -> send results, results before the drain, drops, checkpoint (strategy, capacity,
# items), results at the end, state at the end, backpressure events
EXPECTED: dict[str, tuple[Any, ...]] = {
    "drop_oldest": (
        [True] * 4,
        [],
        [(0, "overflow"), (1, "overflow")],
        ("drop_oldest", 2, [2, 3]),
        [2, 3],
        "done",
        2,
    ),
    "drop_newest": (
        [True] * 4,
        [],
        [(2, "overflow"), (3, "overflow")],
        ("drop_newest", 2, [0, 1]),
        [0, 1],
        "done",
        2,
    ),
    "latest": (
        [True] * 4,
        [],
        [(0, "overwritten"), (1, "overwritten"), (2, "overwritten")],
        ("latest", 1, [3]),
        [3],
        "done",
        3,
    ),
    # block delivers inline on the sending thread once full: nothing is lost
    "block": ([True] * 4, [0, 1], [], ("block", 2, [2, 3]), [0, 1, 2, 3], "done", 2),
    "error": (
        [True, True, True, False],
        [],
        [(2, "overflow")],
        ("error", 2, [0, 1]),
        [0, 1],
        "failed",
        1,
    ),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_each_fixed_strategy_built_anew_runs_a_buffer_as_named(
    rebuilt: None, strategy: str
) -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(
        pf.backpressure(strategy, buffer_size=2, batch_size=10), scheduler=scheduler
    )
    got: list[int] = []
    lost: list[tuple[int, str]] = []
    stream.results.subscribe(lambda e: got.append(e.event))
    stream.dropped.subscribe(lambda d: lost.append((d.item.event, d.reason)))
    sent = [stream.send(value, ALICE).ok for value in range(4)]
    before = list(got)
    ((name, state),) = stream.checkpoint().states
    assert name == "backpressure"
    held = (state["strategy"], state["capacity"], [e.event for e in state["items"]])
    stream.close()
    scheduler.start()
    outcome = (sent, before, lost, held, got, stream.state, stream.metrics().backpressure_events)
    assert outcome == EXPECTED[strategy]
