"""The drop ledger, for every operator of issue 3: received = emitted + dropped, item by item.

Inputs are random marble-like timelines (items at random ticks, optional error or completion);
each item says what the operator will do with it, so every path is exercised.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

FileCap = pfrx.CapabilityFamily("file", actions=("read", "write"), implies={"write": ("read",)})
CONTEXTS = [
    pfrx.Context("reader", capabilities=[FileCap.read("/docs")]),
    pfrx.Context("writer", capabilities=[FileCap.write("/")]),
    pfrx.Context("nobody"),
]
PATHS = ["/docs/a", "/docs/../etc/x", "/etc/y", "/docs2/z", "relative", "/docs/sub/b"]
OUTCOMES = ["pass", "reject", "raise", "err", "absorb"]

item = st.tuples(
    st.integers(min_value=1, max_value=5),  # ticks since the previous item
    st.integers(min_value=0, max_value=len(CONTEXTS) - 1),
    st.sampled_from(PATHS),
    st.sampled_from(OUTCOMES),
)
timeline = st.tuples(st.lists(item, max_size=40), st.sampled_from(["|", "#", ""]))


def to_marbles(items: list[tuple[int, int, str, str]], end: str) -> tuple[str, dict[str, Any]]:
    """A hot marble string with one distinct symbol per item (several contexts merged in)."""
    symbols = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    text, lookup = "^", {}
    for gap, ctx, path, outcome in items:
        symbol = next(symbols)
        lookup[symbol] = (symbol, ctx, path, outcome)
        text += "-" * (gap - 1) + symbol
    return text + "-" + end, lookup


def run(operator: Any, items: list[tuple[int, int, str, str]], end: str) -> tuple[Any, Any]:
    text, lookup = to_marbles(items, end)
    with marbles() as m:
        source = m.hot(text, lookup, error=RuntimeError("upstream"))
        # Each item travels with the context it names, so capability decisions vary.
        per_context = source.pipe(
            ops.map(lambda env: pfrx.Envelope(env.event, CONTEXTS[env.event[1]], env.timestamp))
        )
        result = m.run(per_context.pipe(operator))
        counts = next(s for s in m.metrics.snapshot().operators if s.name == "under_test")
        return result, counts


def check_ledger(result: Any, counts: Any, items: list[Any], end: str) -> None:
    """Every item left or was dropped at most once; the counters agree with the records."""
    passed = [value[0] for value in result.values]
    dropped = [d.item.event[0] for d in result.dropped]
    assert counts.received == len(items)
    assert counts.dropped == len(dropped)
    assert len(set(passed)) == len(passed) and len(set(dropped)) == len(dropped)
    assert not set(passed) & set(dropped)
    if end == "|":
        assert result.completed
    if end == "#":
        assert isinstance(result.error, RuntimeError)


@settings(max_examples=500)
@given(timeline)
def test_capability_filter_ledger(case: tuple[list[Any], str]) -> None:
    items, end = case
    op = pf.capability_filter(lambda e: FileCap.read(e[2]), name="under_test")
    result, counts = run(op, items, end)
    check_ledger(result, counts, items, end)
    assert counts.received == counts.emitted + counts.dropped
    assert len(result.values) + len(result.dropped) == len(items)
    for value in result.raw_values:
        assert value.context.has_capability(FileCap.read(value.event[2]))
    for record in result.dropped:
        assert not record.item.context.has_capability(FileCap.read(record.item.event[2]))


def outcome_of_transform(event: tuple[str, int, str, str], context: pfrx.Context) -> Any:
    outcome = event[3]
    if outcome == "reject":
        return pfrx.Reject("rejected")
    if outcome in ("raise", "err"):
        raise ValueError(f"failed {event[0]}")
    return event


@settings(max_examples=500)
@given(timeline)
def test_transform_ledger(case: tuple[list[Any], str]) -> None:
    items, end = case
    result, counts = run(pf.transform(outcome_of_transform, name="under_test"), items, end)
    check_ledger(result, counts, items, end)
    assert counts.received == counts.emitted + counts.dropped
    assert len(result.values) + len(result.dropped) == len(items)
    expected_drops = sum(1 for *_, outcome in items if outcome in ("reject", "raise", "err"))
    assert counts.dropped == expected_drops
    assert counts.errors == sum(1 for *_, outcome in items if outcome in ("raise", "err"))


class Scripted:
    """Counts accepted items; each item's outcome says what happens to it."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: tuple[str, int, str, str], context: Any, state: int) -> Any:
        outcome = event[3]
        if outcome == "raise":
            raise RuntimeError("boom")
        if outcome in ("err", "reject"):
            return pfrx.Err("refused", state)
        if outcome == "absorb":
            return pfrx.Ok(state + 1)
        return pfrx.Ok(state + 1, effects=[event])


@settings(max_examples=500)
@given(timeline)
def test_process_ledger(case: tuple[list[Any], str]) -> None:
    items, end = case
    result, counts = run(pf.process(Scripted(), name="under_test"), items, end)
    check_ledger(result, counts, items, end)
    absorbed = sum(1 for *_, outcome in items if outcome == "absorb")
    # received = emitted + dropped + absorbed by design (an Ok without effects)
    assert counts.received == counts.emitted + counts.dropped + absorbed
    assert counts.dropped == sum(1 for *_, o in items if o in ("raise", "err", "reject"))


@settings(max_examples=500)
@given(timeline)
def test_metrics_tap_ledger(case: tuple[list[Any], str]) -> None:
    items, end = case
    result, counts = run(pf.metrics_tap(name="under_test"), items, end)
    check_ledger(result, counts, items, end)
    assert counts.received == counts.emitted == len(items)
    assert result.dropped == []
