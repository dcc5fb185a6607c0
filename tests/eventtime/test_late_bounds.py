"""A late item's `Dropped` names the windows it missed (``Dropped.windows``): exact bounds for
tumbling, sliding, offset, datetime, keyed and session windows, on ``on_drop``, in marble
results and on a Stream's ``dropped``; checkpoints do not change them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

from .harness import event_key, event_ts, harness

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def by_name(env: pfrx.Envelope) -> float:
    return float(env.event[1])


def names(value: Any) -> Any:
    if isinstance(value, pfrx.Window):
        return "".join(e.event[0] for e in value.items)
    return value


def late_bounds(dropped: list[pfrx.Dropped]) -> list[tuple[Any, str, tuple[Any, ...]]]:
    return [(d.item.event[0], d.reason, d.windows) for d in dropped]


def test_tumbling_late_item_names_its_window() -> None:
    lookup = {"a": ("a", 1), "b": ("b", 12), "c": ("c", 4)}
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|", lookup).pipe(pf.window_time(10, timestamp=by_name)))
        m.expect(result, "---x---(y|)", {"x": "a", "y": "b"}, project=names)
        assert late_bounds(result.dropped) == [("c", "late", ((0.0, 10.0),))]


def test_sliding_late_item_names_every_window_it_missed_earliest_first() -> None:
    # Windows of 6 every 2: ts 5 belongs to [0, 6), [2, 8) and [4, 10); the watermark 20
    # has passed all three.
    lookup = {"a": ("a", 1), "b": ("b", 20), "c": ("c", 5)}
    with marbles() as m:
        op = pf.window_time(6, slide=2, timestamp=by_name)
        result = m.run(m.hot("-a-b-c-|", lookup).pipe(op))
        assert late_bounds(result.dropped) == [("c", "late", ((0.0, 6.0), (2.0, 8.0), (4.0, 10.0)))]


def test_sliding_item_late_for_some_windows_only_is_accepted_not_dropped() -> None:
    # ts 5 misses [0, 6) and [2, 8) (watermark 8) but [4, 10) is still open: accepted.
    lookup = {"a": ("a", 1), "b": ("b", 8), "c": ("c", 5)}
    with marbles() as m:
        op = pf.window_time(6, slide=2, timestamp=by_name)
        result = m.run(m.hot("-a-b-c-|", lookup).pipe(op))
        assert result.dropped == []
        [last] = [w for w in result.raw_values if w.start == 4.0]
        assert [e[0] for e in last.events] == ["b", "c"]


def test_offset_windows_report_offset_bounds() -> None:
    lookup = {"a": ("a", 4), "b": ("b", 30), "c": ("c", 2)}
    with marbles() as m:
        op = pf.window_time(10, offset=3, timestamp=by_name)
        result = m.run(m.hot("-a-b-c-|", lookup).pipe(op))
        # ts 2 lies in [-7, 3); ts 4 in [3, 13)
        assert late_bounds(result.dropped) == [("c", "late", ((-7.0, 3.0),))]
    with marbles() as m:
        op = pf.window_time(10, slide=5, offset=-2, timestamp=by_name)
        result = m.run(m.hot("-a-b-c-|", lookup).pipe(op))
        assert late_bounds(result.dropped) == [("c", "late", ((-7.0, 3.0), (-2.0, 8.0)))]


def test_datetime_timestamps_give_datetime_bounds() -> None:
    stamps = {
        "a": T0 + timedelta(seconds=10),
        "b": T0 + timedelta(minutes=5),
        "c": T0 + timedelta(seconds=70),
    }
    op = pf.window_time(timedelta(minutes=1), timestamp=lambda env: stamps[env.event])
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|").pipe(op))
        [drop] = result.dropped
        assert drop.reason == "late"
        assert drop.windows == ((T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),)
        assert all(bound.tzinfo is not None for bound in drop.windows[0])


def test_keyed_windows_report_the_bounds_key_is_on_the_item() -> None:
    late: list[Any] = []
    with harness(
        lambda drop, on_late: pf.window_time(
            10, key=event_key, timestamp=event_ts, on_drop=drop, on_late=on_late
        )
    ) as h:
        h.element("x", 1)
        h.element("y", 25)  # the watermark (one per operator) is 25: [0, 10) and [10, 20) fired
        h.element("x", 12)
        h.element("y", 3)
        late = [(d.item.event[0], d.windows) for d in h.dropped]
        assert late == [("x", ((10.0, 20.0),)), ("y", ((0.0, 10.0),))]
        # on_late keeps getting the envelope itself
        assert h.take_late() == [12, 3]


def test_session_late_item_names_the_session_it_alone_would_have_made() -> None:
    lookup = {"a": ("a", 1), "b": ("b", 30), "c": ("c", 5), "d": ("d", 26)}
    with marbles() as m:
        op = pf.window_session(4, key=lambda env: "k", timestamp=by_name)
        result = m.run(m.hot("-a-b-c-d-|", lookup).pipe(op))
        # c (5) would make [5, 9), ended before the watermark 30; d (26) would make
        # [26, 30), which only touches b's [30, 34) (no merge) and has ended too.
        assert late_bounds(result.dropped) == [
            ("c", "late", ((5.0, 9.0),)),
            ("d", "late", ((26.0, 30.0),)),
        ]


def test_session_bounds_are_cut_at_max_duration_and_shifted_by_lateness() -> None:
    lookup = {"a": ("a", 0), "b": ("b", 30), "c": ("c", 20)}
    with marbles() as m:
        op = pf.window_session(
            8, max_duration=3, allowed_lateness=5, key=lambda env: "k", timestamp=by_name
        )
        result = m.run(m.hot("-a-b-c-|", lookup).pipe(op))
        # c would make [20, 23) (max_duration cuts the gap); 23 + 5 <= 30: late
        assert late_bounds(result.dropped) == [("c", "late", ((20.0, 23.0),))]


def test_allowed_lateness_drop_reports_the_purged_window() -> None:
    lookup = {"a": ("a", 1), "b": ("b", 12), "c": ("c", 4), "d": ("d", 16), "e": ("e", 5)}
    with marbles() as m:
        op = pf.window_time(10, timestamp=by_name, allowed_lateness=3)
        result = m.run(m.hot("-a-b-c-d-e-|", lookup).pipe(op))
        assert [w.revision for w in result.raw_values] == [0, 1, 0]
        assert late_bounds(result.dropped) == [("e", "late", ((0.0, 10.0),))]


def test_other_drops_name_no_window() -> None:
    stamps = {"a": 1.0, "n": datetime(2026, 1, 1)}  # naive: invalid_timestamp
    with marbles() as m:
        op = pf.window_time(10, slide=20, timestamp=lambda env: stamps.get(env.event, 15.0))
        result = m.run(m.hot("-a-n-z-|").pipe(op))
        assert [(d.reason, d.windows) for d in result.dropped] == [
            ("invalid_timestamp", ()),
            ("between_windows", ()),
        ]


def test_a_streams_dropped_carries_the_bounds() -> None:
    scheduler = TestScheduler()
    seen: list[pfrx.Dropped] = []
    with pfrx.Stream(pf.window_time(10, timestamp=by_name), scheduler=scheduler) as stream:
        stream.dropped.subscribe(seen.append)
        ctx = pfrx.Context("u")
        for event in (("a", 1), ("b", 12), ("c", 4)):
            assert stream.send(event, ctx).ok
        scheduler.start()
    assert late_bounds(seen) == [("c", "late", ((0.0, 10.0),))]
    assert stream.metrics().drops_by_reason == {"late": 1}


def test_late_bounds_after_a_checkpoint_and_restore() -> None:
    def factory(drop: Any, late: Any) -> Any:
        return pf.window_time(
            10, slide=5, key=event_key, timestamp=event_ts, on_drop=drop, on_late=late
        )

    with harness(factory) as h:
        h.element("k", 1)
        h.element("k", 17)
        saved = h.snapshot()
    with harness(factory, restore=saved) as restored:
        restored.element("k", 3)  # [-5, 5) and [0, 10) fired before the checkpoint
        restored.element("k", 11)  # [5, 15) fired, but [10, 20) is open: accepted
        assert [(d.item.event[1], d.windows) for d in restored.dropped] == [
            (3, ((-5.0, 5.0), (0.0, 10.0))),
        ]


def test_session_bounds_with_datetime_timestamps() -> None:
    stamps = {"a": T0, "b": T0 + timedelta(minutes=10), "c": T0 + timedelta(minutes=2)}
    op = pf.window_session(timedelta(minutes=1), timestamp=lambda env: stamps[env.event])
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|").pipe(op))
        [drop] = result.dropped
        start = T0 + timedelta(minutes=2)
        assert drop.windows == ((start, start + timedelta(minutes=1)),)


def test_a_failing_on_drop_for_a_late_item_is_logged_and_counted() -> None:
    metrics = pfrx.StreamMetrics()
    calls: list[pfrx.Dropped] = []

    def broken(record: pfrx.Dropped) -> None:
        calls.append(record)
        raise RuntimeError("handler down")

    with harness(
        lambda drop, late: pf.window_time(
            10, timestamp=event_ts, on_drop=broken, metrics=metrics, on_late=late
        )
    ) as h:
        h.element("k", 1)
        h.element("k", 15)
        h.element("k", 2)  # late: the handler raises
        h.element("k", 25)  # the operator goes on
        assert [w[2:] for w in h.take()] == [(0, 10), (10, 20)]
        assert [(d.reason, d.windows) for d in calls] == [("late", ((0, 10),))]
        snap = metrics.snapshot()
        assert snap.errors == 1 and snap.drops_by_reason == {"late": 1}
        assert h.take_late() == [2]


def test_unobserved_late_drops_warn_once_without_building_records() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = [pfrx.Envelope(("k", t), pfrx.Context("u"), 0.0) for t in (1, 15, 2, 3)]
        import reactivex

        out: list[Any] = []
        reactivex.from_iterable(source).pipe(pf.window_time(10, timestamp=event_ts)).subscribe(
            out.append
        )
    assert [w.start for w in out] == [0, 10]
    assert [type(w.message).__name__ for w in caught] == ["UnobservedDropWarning"]
    assert "'late'" in str(caught[0].message)
