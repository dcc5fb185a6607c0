"""Flink's own window cases (``WindowOperatorTest``), with Flink's expected outputs.

Translation: Flink counts milliseconds as integers and fires a window ``[start, end)`` when
the watermark reaches ``end - 1`` (its ``maxTimestamp``); late means ``maxTimestamp +
allowedLateness <= watermark``. pfrx's event time is continuous: a window fires when the
watermark reaches ``end`` and an item is late when the watermark reaches ``end +
allowed_lateness``. Flink's ``Watermark(w)`` is therefore pfrx's ``Watermark(w + 1)``;
timestamps stay the same numbers. Flink's outputs are sums of ones per key, i.e. item
counts; its sorted comparison of outputs becomes a sort within one firing instant here.
Where pfrx differs on purpose it is said at the case.
"""

from __future__ import annotations

from typing import Any

from pfrx import operators as pf

from .harness import Harness, event_key, event_ts, harness


def flink_wm(h: Harness, w: int) -> None:
    # A named source: the watermark then comes from watermarks only, as in Flink's harness
    # (items' own timestamps do not move it).
    h.watermark(w + 1, source="flink")


def tumbling(size: float, lateness: float = 0.0) -> Any:
    return lambda drop, late: pf.window_time(
        size,
        key=event_key,
        timestamp=event_ts,
        allowed_lateness=lateness,
        on_drop=drop,
        on_late=late,
    )


def sliding(size: float, slide: float, lateness: float = 0.0) -> Any:
    return lambda drop, late: pf.window_time(
        size,
        slide=slide,
        key=event_key,
        timestamp=event_ts,
        allowed_lateness=lateness,
        on_drop=drop,
        on_late=late,
    )


def sessions(gap: float, lateness: float = 0.0) -> Any:
    return lambda drop, late: pf.window_session(
        gap,
        key=event_key,
        timestamp=event_ts,
        allowed_lateness=lateness,
        on_drop=drop,
        on_late=late,
    )


def out_of_order_elements(h: Harness) -> None:
    # The source names itself before its items: from then on only its watermarks count.
    h.watermark(float("-inf"), source="flink")
    for key, ts in [
        ("key2", 3999),
        ("key2", 3000),
        ("key1", 20),
        ("key1", 0),
        ("key1", 999),
        ("key2", 1998),
        ("key2", 1999),
        ("key2", 1000),
    ]:
        h.element(key, ts)


def test_tumbling_event_time_windows_with_a_checkpoint_midway() -> None:
    # testTumblingEventTimeWindows: elements out of order, a snapshot/restore in the middle.
    with harness(tumbling(3000)) as h:
        out_of_order_elements(h)
        flink_wm(h, 999)
        assert h.take() == []
        flink_wm(h, 1999)
        assert h.take() == []
        snapshot = h.snapshot()
    with harness(tumbling(3000), restore=snapshot) as h:
        flink_wm(h, 2999)
        assert sorted(h.take()) == [("key1", 3, 0, 3000), ("key2", 3, 0, 3000)]
        flink_wm(h, 3999)
        flink_wm(h, 4999)
        assert h.take() == []
        flink_wm(h, 5999)
        assert h.take() == [("key2", 2, 3000, 6000)]
        flink_wm(h, 6999)
        flink_wm(h, 7999)
        assert h.take() == [] and h.dropped == []


def test_sliding_event_time_windows_with_a_checkpoint_midway() -> None:
    # testSlidingEventTimeWindows: size 3 s, slide 1 s.
    with harness(sliding(3000, 1000)) as h:
        out_of_order_elements(h)
        flink_wm(h, 999)
        assert h.take() == [("key1", 3, -2000, 1000)]
        flink_wm(h, 1999)
        assert sorted(h.take()) == [("key1", 3, -1000, 2000), ("key2", 3, -1000, 2000)]
        flink_wm(h, 2999)
        assert sorted(h.take()) == [("key1", 3, 0, 3000), ("key2", 3, 0, 3000)]
        snapshot = h.snapshot()
    with harness(sliding(3000, 1000), restore=snapshot) as h:
        flink_wm(h, 3999)
        assert h.take() == [("key2", 5, 1000, 4000)]
        flink_wm(h, 4999)
        assert h.take() == [("key2", 2, 2000, 5000)]
        flink_wm(h, 5999)
        assert h.take() == [("key2", 2, 3000, 6000)]
        flink_wm(h, 6999)
        flink_wm(h, 7999)
        assert h.take() == [] and h.dropped == []


def test_side_output_due_to_lateness_tumbling() -> None:
    # testSideOutputDueToLatenessTumbling: only 1998 is late (pfrx before v2: 1980 and 1998).
    with harness(tumbling(2000)) as h:
        h.element("key2", 1000)
        flink_wm(h, 1985)
        assert h.take() == []
        h.element("key2", 1980)  # behind the watermark, but its window has not fired
        flink_wm(h, 1999)
        assert h.take() == [("key2", 2, 0, 2000)]
        h.element("key2", 1998)
        assert h.take_late() == [1998]
        h.element("key2", 2001)
        flink_wm(h, 2999)
        assert h.take() == []
        flink_wm(h, 3999)
        assert h.take() == [("key2", 1, 2000, 4000)]
        assert [(d.item.event[1], d.reason) for d in h.dropped] == [(1998, "late")]
        # The side output says which window the item missed (Dropped.windows).
        assert h.dropped[0].windows == ((0, 2000),)


def test_side_output_due_to_lateness_sliding() -> None:
    # testSideOutputDueToLatenessSliding: the two 2400 items miss [0, 3000) but are kept in
    # [1000, 4000) and [2000, 5000); only the last 3001 is late (before v2: 2400, 2400, 3001).
    with harness(sliding(3000, 1000)) as h:
        h.element("key2", 1000)
        flink_wm(h, 1999)
        assert h.take() == [("key2", 1, -1000, 2000)]
        h.element("key2", 2000)
        flink_wm(h, 3000)
        assert h.take() == [("key2", 2, 0, 3000)]
        h.element("key1", 3001)
        h.element("key2", 2400)
        h.element("key2", 2400)
        h.element("key1", 3001)
        h.element("key2", 3900)
        flink_wm(h, 6000)
        assert sorted(h.take(), key=lambda w: (w[3], w[0])) == [
            ("key1", 2, 1000, 4000),
            ("key2", 5, 1000, 4000),
            ("key1", 2, 2000, 5000),
            ("key2", 4, 2000, 5000),
            ("key1", 2, 3000, 6000),
            ("key2", 1, 3000, 6000),
        ]
        assert h.take_late() == []
        h.element("key1", 3001)
        assert h.take_late() == [3001]
        flink_wm(h, 25000)
        assert h.take() == []
        assert [d.reason for d in h.dropped] == ["late"]
        # 3001 missed every sliding window holding it, earliest first.
        assert h.dropped[0].windows == ((1000, 4000), (2000, 5000), (3000, 6000))


def session_prefix(h: Harness) -> None:
    """The first part Flink's session lateness cases share."""
    h.element("key2", 1000)
    flink_wm(h, 1999)
    assert h.take() == []
    h.element("key2", 2000)
    flink_wm(h, 4998)
    assert h.take() == []
    h.element("key2", 4500)  # behind the watermark, but its session ends after it
    h.element("key2", 8500)  # a new session
    flink_wm(h, 7400)
    assert h.take() == []
    h.element("key2", 7000)  # merges the two sessions into one
    flink_wm(h, 11501)
    assert h.take() == [("key2", 5, 1000, 11500)]
    h.element("key2", 11600)
    flink_wm(h, 14600)
    assert h.take() == [("key2", 1, 11600, 14600)]


def test_side_output_due_to_lateness_session_zero_lateness() -> None:
    # testSideOutputDueToLatenessSessionZeroLateness (before v2 pfrx reported 4500, 7000,
    # 10000 and 14500 late, so nothing merged).
    with harness(sessions(3000)) as h:
        session_prefix(h)
        h.element("key2", 10000)
        assert h.take_late() == [10000]
        h.element("key2", 10100)  # also late: the two late items are not merged
        assert h.take_late() == [10100]
        h.element("key2", 14500)
        flink_wm(h, 20000)
        assert h.take() == [("key2", 1, 14500, 17500)]
        flink_wm(h, 100000)
        assert h.take() == []
        assert [d.reason for d in h.dropped] == ["late", "late"]
        # Each missed the session it alone would have made: [t, t + gap).
        assert [d.windows for d in h.dropped] == [((10000, 13000),), ((10100, 13100),)]


def test_session_with_lateness_a_late_element_merges_and_refires() -> None:
    # testNotSideOutputDueToLatenessSessionWithLateness (accumulating trigger, lateness 10):
    # 10000 merges into the fired session (11600-14600) and fires it at once.
    with harness(sessions(3000, lateness=10)) as h:
        session_prefix(h)
        h.element("key2", 10000)
        fired = h.take_full()
        assert [(w.key, len(w), w.start, w.end, w.revision) for w in fired] == [
            ("key2", 2, 10000, 14600, 1)
        ]
        h.element("key2", 14500)  # extends the session past the watermark: it waits
        assert h.take() == []
        flink_wm(h, 20000)
        fired = h.take_full()
        assert [(w.key, len(w), w.start, w.end, w.revision) for w in fired] == [
            ("key2", 3, 10000, 17500, 2)
        ]
        flink_wm(h, 100000)
        assert h.take() == [] and h.late == [] and h.dropped == []


def test_session_with_huge_lateness_merges_fired_sessions() -> None:
    # testNotSideOutputDueToLatenessSessionWithHugeLateness: 10000 bridges both fired
    # sessions (1000-11500 and 11600-14600): "key2-7", then "key2-8" once 14500 joins.
    with harness(sessions(3000, lateness=10000)) as h:
        session_prefix(h)
        h.element("key2", 10000)
        fired = h.take_full()
        assert [(w.key, len(w), w.start, w.end, w.revision) for w in fired] == [
            ("key2", 7, 1000, 14600, 1)
        ]
        h.element("key2", 14500)
        flink_wm(h, 20000)
        fired = h.take_full()
        assert [(w.key, len(w), w.start, w.end, w.revision) for w in fired] == [
            ("key2", 8, 1000, 17500, 2)
        ]
        flink_wm(h, 100000)
        assert h.take() == [] and h.late == []


def test_allowed_lateness_refires_a_tumbling_window() -> None:
    # testLateness with Flink's accumulating EventTimeTrigger (pfrx fires whole windows;
    # Flink's PurgingTrigger variant would emit only the late item): window 2 s, lateness
    # 500 ms. 1997 arrives after the window fired but within the lateness: it re-fires the
    # window at once; 1998 after the lateness is late.
    with harness(tumbling(2000, lateness=500)) as h:
        h.element("key2", 500)
        flink_wm(h, 1500)
        assert h.take() == []
        h.element("key2", 1300)
        flink_wm(h, 2300)
        first = h.take_full()
        assert [(len(w), w.start, w.end, w.revision) for w in first] == [(2, 0, 2000, 0)]
        h.element("key2", 1997)
        again = h.take_full()
        assert [(len(w), w.start, w.end, w.revision) for w in again] == [(3, 0, 2000, 1)]
        assert [e.event[1] for e in again[0].items] == [500, 1300, 1997]
        flink_wm(h, 6000)
        assert h.take() == []
        h.element("key2", 1998)
        flink_wm(h, 7000)
        assert h.take_late() == [1998] and h.take() == []


def test_cleanup_of_a_session_after_its_lateness() -> None:
    # testCleanupTimerWithEmptyReduceStateForSessionWindows: fired once, then purged.
    with harness(sessions(3000, lateness=10)) as h:
        h.element("key2", 1000)
        flink_wm(h, 4998)
        assert h.take() == [("key2", 1, 1000, 4000)]
        flink_wm(h, 14600)
        assert h.take() == []
        h.element("key2", 1000)  # its session is purged: late now
        assert h.take_late() == [1000]
