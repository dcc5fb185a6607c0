"""window_time's new parameters in time: key=, offset=, datetime timestamps,
out_of_orderness versus allowed_lateness, per-window lateness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import reactivex

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

from .harness import event_key, event_ts, harness

ALICE = pfrx.Context("alice", "s-alice")
BOB = pfrx.Context("bob", "s-bob")


def names(value: Any) -> Any:
    if isinstance(value, pfrx.Window):
        return "".join(e.event[0] for e in value.items)
    return value


def by_name(env: pfrx.Envelope) -> float:
    return float(env.event[1])


def user(env: pfrx.Envelope) -> str:
    return env.context.user_id


# -- key= ------------------------------------------------------------------------------------


def test_processing_time_windows_per_key_close_together_in_opening_order() -> None:
    with marbles() as m:
        merged = reactivex.merge(
            m.hot("--a--b--c----|", context=ALICE), m.hot("-x--y--------|", context=BOB)
        )
        result = m.run(merged.pipe(pf.window_time(4, key=user)))
        # [200, 204): bob opened it first (x at 201), then alice (a at 202)
        m.expect(
            result,
            "----(pq)(rs)t|",
            {"p": ("x",), "q": ("a",), "r": ("y",), "s": ("b",), "t": ("c",)},
        )
        assert [(w.key, w.start, w.end) for w in result.raw_values] == [
            ("bob", 200, 204),
            ("alice", 200, 204),
            ("bob", 204, 208),
            ("alice", 204, 208),
            ("alice", 208, 212),
        ]


def test_event_time_sliding_windows_per_key() -> None:
    lookup = {"a": ("a", 1), "b": ("b", 3), "c": ("c", 6), "d": ("d", 9)}
    op = pf.window_time(4, slide=2, key=lambda env: env.event[0] in "ac", timestamp=by_name)
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|", lookup).pipe(op))
        got = [(w.key, w.start, w.end, names(w)) for w in result.raw_values]
        assert got == [
            (True, -2, 2, "a"),
            (True, 0, 4, "a"),
            (False, 0, 4, "b"),
            (False, 2, 6, "b"),
            (True, 4, 8, "c"),
            (True, 6, 10, "c"),  # flushed on completion from here on
            (False, 6, 10, "d"),
            (False, 8, 12, "d"),
        ]


def test_memory_of_keyed_windows_is_freed_when_they_close() -> None:
    metrics = pfrx.StreamMetrics()
    factory = lambda drop, late: pf.window_time(  # noqa: E731
        10, key=event_key, timestamp=event_ts, metrics=metrics, on_drop=drop
    )
    with harness(factory) as h:
        for k in range(500):
            h.element(k, 1.0)
        assert metrics.snapshot().buffered == 500
        h.element("last", 10.0)
        assert len(h.take()) == 500
        assert metrics.snapshot().buffered == 1


# -- offset= ---------------------------------------------------------------------------------


def test_offset_shifts_the_window_grid() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b---c---|").pipe(pf.window_time(4, offset=1)))
        # windows start at 1 + 4k: a (201) and b (203) share [201, 205); without the offset
        # a would have been alone in [200, 204)
        m.expect(result, "-----x---y-|", {"x": ("a", "b"), "y": ("c",)})
        assert [(w.start, w.end) for w in result.raw_values] == [(201, 205), (205, 209)]


def test_negative_offset_with_sliding_event_time_windows() -> None:
    op = pf.window_time(10, slide=5, offset=-2, timestamp=by_name)
    lookup = {"a": ("a", 4)}
    with marbles() as m:
        result = m.run(m.hot("-a-|", lookup).pipe(op))
        assert [(w.start, w.end) for w in result.raw_values] == [(-2, 8), (3, 13)]


# -- datetime timestamps ---------------------------------------------------------------------


T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_datetime_timestamps_give_datetime_bounds() -> None:
    paris = timezone(timedelta(hours=1))
    stamps = {
        "a": T0 + timedelta(seconds=10),
        "b": (T0 + timedelta(seconds=50)).astimezone(paris),  # another zone, same instant
        "c": T0 + timedelta(seconds=70),
    }
    op = pf.window_time(timedelta(minutes=1), timestamp=lambda env: stamps[env.event])
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|").pipe(op))
        m.expect(result, "-----x-(y|)", {"x": ("a", "b"), "y": ("c",)})
        assert [(w.start, w.end) for w in result.raw_values] == [
            (T0, T0 + timedelta(minutes=1)),
            (T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
        ]
        assert all(w.start.tzinfo is not None for w in result.raw_values)


def test_a_naive_datetime_or_a_change_of_kind_is_an_invalid_timestamp() -> None:
    stamps = {"a": T0, "n": datetime(2026, 11, 30, 9, 0, 5), "f": 12.0, "b": T0}
    op = pf.window_session(timedelta(minutes=1), timestamp=lambda env: stamps[env.event])
    with marbles() as m:
        result = m.run(m.hot("-a-n-f-b-|").pipe(op))
        m.expect(result, "---------(x|)", {"x": ("a", "b")})
        assert [(d.item.event, d.reason) for d in result.dropped] == [
            ("n", "invalid_timestamp"),
            ("f", "invalid_timestamp"),
        ]
        assert [(w.start, w.end) for w in result.raw_values] == [(T0, T0 + timedelta(minutes=1))]


# -- out_of_orderness versus allowed_lateness ------------------------------------------------


def test_out_of_orderness_delays_firing_allowed_lateness_refires() -> None:
    lookup = {"a": ("a", 1), "b": ("b", 12), "c": ("c", 4), "d": ("d", 14), "e": ("e", 5)}
    with marbles() as m:
        # out_of_orderness 3: the watermark is 9 after b, so [0, 10) is still open for c; d
        # (14) lifts it to 11: [0, 10) fires with a and c; e (5) is late.
        op = pf.window_time(10, timestamp=by_name, out_of_orderness=3)
        result = m.run(m.hot("-a-b-c-d-e-|", lookup).pipe(op))
        m.expect(result, "-------x---(y|)", {"x": "ac", "y": "bd"}, project=names)
        assert result.drop_reasons() == ["late"]
    with marbles() as m:
        # allowed_lateness 3: [0, 10) fires as soon as b lifts the watermark to 12; c is late
        # for it but within the lateness: it fires again, whole, revision 1; after d (14) the
        # window is purged and e (5) is late.
        op = pf.window_time(10, timestamp=by_name, allowed_lateness=3)
        result = m.run(m.hot("-a-b-c-d-e-|", lookup).pipe(op))
        m.expect(result, "---x-y-----(z|)", {"x": "a", "y": "ac", "z": "bd"}, project=names)
        assert [w.revision for w in result.raw_values] == [0, 1, 0]
        assert result.drop_reasons() == ["late"]


def test_sessions_with_allowed_lateness_merge_fired_sessions() -> None:
    lookup = {"a": ("a", 0), "b": ("b", 6), "c": ("c", 20), "d": ("d", 3)}
    op = pf.window_session(4, timestamp=by_name, allowed_lateness=30)
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|", lookup).pipe(op))
        # b (6) fires (a) [0, 4); c (20) fires (b) [6, 10); d (3) bridges them: one
        # session, fired at once with the highest revision of the two plus one
        m.expect(result, "---x-y-z-(w|)", {"x": "a", "y": "b", "z": "abd", "w": "c"}, project=names)
        got = [(names(w), w.start, w.end, w.revision) for w in result.raw_values]
        assert got == [("a", 0, 4, 0), ("b", 6, 10, 0), ("abd", 0, 10, 1), ("c", 20, 24, 0)]
