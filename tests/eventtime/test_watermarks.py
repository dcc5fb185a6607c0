"""Explicit watermarks: consumed by the window operators, the minimum of a merge's sources,
idle sources that stop holding the others back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

from .harness import event_key, event_ts, harness


def names(value: Any) -> Any:
    if isinstance(value, pfrx.Window):
        return "".join(e.event[0] for e in value.items)
    return value


def unwrap_marks(env: pfrx.Envelope) -> Any:
    """Marble sources wrap every value in an envelope: let watermarks through bare."""
    return env.event if isinstance(env.event, pfrx.Watermark) else env


def by_name(env: pfrx.Envelope) -> float:
    return float(env.event[1])


def test_a_watermark_item_fires_windows_and_is_not_emitted() -> None:
    lookup = {"a": ("a", 1), "b": ("b", 6), "W": pfrx.Watermark(10), "c": ("c", 12)}
    # out_of_orderness 5: items alone hold the watermark at 1 (b: 6 - 5); W lifts it to 10
    # at once (nothing subtracted), so [0, 10) fires at 205.
    op = pf.window_time(10, timestamp=by_name, out_of_orderness=5)
    with marbles() as m:
        source = m.hot("-a-b-W-c-|", lookup).pipe(ops.map(unwrap_marks))
        result = m.run(source.pipe(op))
        m.expect(result, "-----x---(y|)", {"x": "ab", "y": "c"}, project=names)
        assert all(isinstance(v, pfrx.Window) for v in result.raw_values)
        assert result.dropped == []


def test_a_watermark_never_moves_the_watermark_back() -> None:
    lookup = {"a": ("a", 1), "W": pfrx.Watermark(12), "V": pfrx.Watermark(3), "b": ("b", 5)}
    op = pf.window_time(10, timestamp=by_name)
    with marbles() as m:
        source = m.hot("-a-W-V-b-|", lookup).pipe(ops.map(unwrap_marks))
        result = m.run(source.pipe(op))
        m.expect(result, "---x-----|", {"x": "a"}, project=names)
        assert result.drop_reasons() == ["late"]  # b (5) after the watermark reached 12


def test_watermarks_are_ignored_in_processing_time() -> None:
    with marbles() as m:
        lookup = {"W": pfrx.Watermark(1e9)}
        source = m.hot("-a-W-b-|", lookup).pipe(ops.map(unwrap_marks))
        result = m.run(source.pipe(pf.window_time(4)))
        m.expect(result, "----x--(y|)", {"x": ("a",), "y": ("b",)})


def test_the_watermark_of_a_merge_is_the_minimum_of_its_sources() -> None:
    # Two sources stamp their items and send watermarks under their own names; the fast one
    # (A, at 20 by 204) cannot fire [0, 10) before the slow one (B) says 10 at 208.
    a = {"a": ("a", 3), "P": pfrx.Watermark(20, source="A")}
    b = {"b": ("b", 8), "Q": pfrx.Watermark(5, source="B"), "R": pfrx.Watermark(10, source="B")}
    op = pf.window_time(10, timestamp=by_name)
    with marbles() as m:
        merged = reactivex.merge(m.hot("-a-P------|", a), m.hot("--Q-b---R-|", b))
        result = m.run(merged.pipe(ops.map(unwrap_marks), op))
        m.expect(result, "--------x-|", {"x": "ab"}, project=names)
        assert result.dropped == []


def test_an_idle_source_stops_holding_the_others_back() -> None:
    a = {"a": ("a", 3), "P": pfrx.Watermark(20, source="A")}
    b = {"Q": pfrx.Watermark(5, source="B"), "I": pfrx.Watermark(5, source="B", idle=True)}
    op = pf.window_time(10, timestamp=by_name)
    with marbles() as m:
        merged = reactivex.merge(m.hot("-a-P--------|", a), m.hot("-Q----I-----|", b))
        result = m.run(merged.pipe(ops.map(unwrap_marks), op))
        # B idle at 206: the watermark is A's alone, 20, and [0, 10) fires
        m.expect(result, "------x-----|", {"x": "a"}, project=names)


def test_an_idle_source_that_speaks_again_counts_again() -> None:
    factory = lambda drop, late: pf.window_time(  # noqa: E731
        10, key=event_key, timestamp=event_ts, on_drop=drop, on_late=late
    )
    with harness(factory) as h:
        h.watermark(0, source="A")
        h.watermark(0, source="B")
        h.element("k", 1)
        h.watermark(0, source="B", idle=True)
        h.watermark(15, source="A")
        assert h.take() == [("k", 1, 0, 10)]
        h.watermark(15, source="B")  # B is back, at 15
        h.element("k", 16)
        h.watermark(40, source="A")  # the minimum is B's 15: [10, 20) waits
        assert h.take() == []
        h.watermark(25, source="B")
        assert h.take() == [("k", 1, 10, 20)]


def test_when_every_source_is_idle_the_watermark_stands() -> None:
    factory = lambda drop, late: pf.window_session(  # noqa: E731
        3, key=event_key, timestamp=event_ts, on_drop=drop, on_late=late
    )
    with harness(factory) as h:
        h.watermark(0, source="A")
        h.element("k", 1)
        h.watermark(2, source="A", idle=True)
        assert h.take() == []  # an idle source says nothing about event time
        h.element("k", 50)  # nor do items once sources have named themselves
        assert h.take() == []
        h.watermark(100, source="A")
        assert h.take() == [("k", 1, 1, 4), ("k", 1, 50, 53)]


def test_session_windows_take_watermark_items() -> None:
    factory = lambda drop, late: pf.window_session(  # noqa: E731
        3, key=event_key, timestamp=event_ts, out_of_orderness=100, on_drop=drop, on_late=late
    )
    with harness(factory) as h:
        h.element("k", 1)
        h.element("k", 2)
        assert h.take() == []
        h.watermark(5)
        assert h.take() == [("k", 2, 1, 5)]
        assert h.windows == []  # the watermark itself is never emitted


def test_datetime_watermarks_with_datetime_timestamps() -> None:
    t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    factory = lambda drop, late: pf.window_time(  # noqa: E731
        timedelta(minutes=1),
        key=event_key,
        timestamp=event_ts,
        out_of_orderness=timedelta(hours=1),
        on_drop=drop,
        on_late=late,
    )
    with harness(factory) as h:
        h.element("k", t0 + timedelta(seconds=10))
        h.watermark(t0 + timedelta(minutes=1))
        windows = h.take_full()
        assert [(w.start, w.end) for w in windows] == [(t0, t0 + timedelta(minutes=1))]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (datetime(2026, 1, 1), ValueError),  # naive
        (float("nan"), ValueError),
        ("10", TypeError),
        (True, TypeError),
    ],
)
def test_a_watermark_needs_a_time(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        pfrx.Watermark(value)
