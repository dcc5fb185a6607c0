from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.subject import Subject

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

CTX = pfrx.Context("alice", "s1")


def windows_of(events: list[Any], op: Any) -> tuple[list[pfrx.Window], list[pfrx.Dropped]]:
    lost: list[pfrx.Dropped] = []
    result = pfrx.envelopes(events, CTX).pipe(op(lost.append), ops.to_list()).run()
    return result, lost


def test_tumbling_windows_close_at_size_and_the_partial_one_on_completion() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-|").pipe(pf.window_count(2)))
        m.expect(
            result,
            "---x---y---(z|)",
            {"x": ("a", "b"), "y": ("c", "d"), "z": ("e",)},
        )
        assert [(w.key, w.start, w.end) for w in result.raw_values] == [
            (None, 0, 2),
            (None, 2, 4),
            (None, 4, 5),
        ]
        assert all(isinstance(e, pfrx.Envelope) for w in result.raw_values for e in w.items)
        assert result.dropped == []


def test_sliding_windows_emit_every_open_window_on_completion() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|").pipe(pf.window_count(3, slide=1)))
        m.expect(
            result,
            "-----x-y-(zw|)",
            {"x": ("a", "b", "c"), "y": ("b", "c", "d"), "z": ("c", "d"), "w": ("d",)},
        )
        assert [(w.start, w.end) for w in result.raw_values] == [(0, 3), (1, 4), (2, 4), (3, 4)]


def test_empty_source_emits_no_window() -> None:
    for op in (pf.window_count(2), pf.window_count(2, slide=1)):
        with marbles() as m:
            m.expect(m.run(m.hot("---|").pipe(op)), "---|")


def test_items_between_sliding_windows_are_dropped_with_a_reason() -> None:
    windows, lost = windows_of(list(range(8)), lambda d: pf.window_count(2, slide=3, on_drop=d))
    assert [w.events for w in windows] == [(0, 1), (3, 4), (6, 7)]
    assert [(d.item.event, d.reason, d.operator) for d in lost] == [
        (2, "between_windows", "window_count"),
        (5, "between_windows", "window_count"),
    ]


@pytest.mark.parametrize("slide", [None, 1, 2, 3])
def test_upstream_error_passes_and_each_held_item_is_dropped_once(slide: int | None) -> None:
    boom = RuntimeError("boom")
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-#", error=boom).pipe(pf.window_count(3, slide=slide)))
        assert result.error is boom
        emitted = {e.event for w in result.raw_values for e in w.items}
        dropped = [d.item.event for d in result.dropped]
        assert set(result.drop_reasons()) <= {"upstream_error"}
        assert len(dropped) == len(set(dropped))  # exactly once
        assert emitted | set(dropped) == set("abcde")
        if slide is None:
            assert dropped == ["d", "e"]
        if slide == 1:
            assert dropped == []  # (d, e) and (e,) hold only items emitted in (c, d, e)


@pytest.mark.parametrize(
    ("slide", "n", "expected"),
    [
        # items 0..n-1, then an error; windows of 3
        (1, 5, []),  # 0..2, 1..3, 2..4 emitted; the open (3, 4) and (4,) hold emitted items
        (2, 5, []),  # 0..2, 2..4 emitted; the open (4,) holds an emitted item
        (2, 6, [5]),  # 0..2, 2..4 emitted; the open (4, 5) holds 5, in no emitted window
        (1, 2, [0, 1]),  # nothing emitted yet: (0, 1) and (1,) are reported once each
        (3, 5, [3, 4]),  # tumbling by slide: the open (3, 4) was never emitted
        (4, 6, [4, 5]),  # 0..2 emitted, 3 between windows, the open (4, 5) never emitted
    ],
)
def test_upstream_error_reports_only_items_in_no_emitted_window(
    slide: int, n: int, expected: list[int]
) -> None:
    lost: list[pfrx.Dropped] = []
    errors: list[Exception] = []
    windows: list[pfrx.Window] = []
    failing = reactivex.concat(pfrx.envelopes(range(n), CTX), reactivex.throw(OSError("disk")))
    failing.pipe(pf.window_count(3, slide=slide, on_drop=lost.append)).subscribe(
        windows.append, errors.append
    )
    emitted = {e.event for w in windows for e in w.items}
    upstream = [d.item.event for d in lost if d.reason == "upstream_error"]
    between = [d.item.event for d in lost if d.reason == "between_windows"]
    assert upstream == expected
    assert not emitted & set(upstream)  # an item that left is never counted lost
    assert emitted | set(upstream) | set(between) == set(range(n))  # every item accounted for
    assert [str(e) for e in errors] == ["disk"]


def test_disposal_does_not_report_items_already_emitted_in_a_sliding_window() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-f-|").pipe(pf.window_count(3, slide=2)), disposed=210.0)
        # windows (a, b, c) and (c, d, e) left; the open (e,) holds e, already emitted
        assert [tuple(e.event for e in w.items) for w in result.raw_values] == [
            ("a", "b", "c"),
            ("c", "d", "e"),
        ]
        assert result.dropped == []


def test_disposal_drops_what_open_windows_hold() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-|").pipe(pf.window_count(3)), disposed=208)
        m.expect(result, "-----x", {"x": ("a", "b", "c")})
        assert [(d.item.event, d.reason) for d in result.dropped] == [("d", "disposed")]


def test_take_downstream_disposes_cleanly() -> None:
    lost: list[pfrx.Dropped] = []
    windows = (
        pfrx.envelopes(range(10), CTX)
        .pipe(pf.window_count(3, on_drop=lost.append), ops.take(1), ops.to_list())
        .run()
    )
    assert [w.events for w in windows] == [(0, 1, 2)]
    # take(1) disposes after the first window: the next item never reached the operator.
    assert lost == []


def test_metrics_count_items_windows_and_the_open_window() -> None:
    metrics = pfrx.StreamMetrics()
    subject: Subject[pfrx.Envelope] = Subject()
    seen: list[pfrx.Window] = []
    subject.pipe(pf.window_count(4, metrics=metrics)).subscribe(seen.append)
    for n in range(6):
        subject.on_next(pfrx.Envelope(n, CTX, 0.0))
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.buffered) == (6, 1, 2)
    assert snap.buffer_utilization == 0.0  # a window is not a backpressure buffer
    subject.on_completed()
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.buffered) == (6, 2, 0)
    assert [len(w) for w in seen] == [4, 2]


def test_reports_into_the_marble_kit_scope() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|").pipe(pf.window_count(2, slide=3)))
        assert result.drop_reasons() == ["between_windows"]
        counts = m.metrics.snapshot().operators[0]
        assert (counts.name, counts.received, counts.emitted, counts.dropped) == (
            "window_count",
            3,
            1,
            1,
        )


@pytest.mark.parametrize(
    ("size", "slide", "error"),
    [(0, None, ValueError), (-1, None, ValueError), (2, 0, ValueError), (1.5, None, TypeError)],
)
def test_bad_arguments_raise_at_construction(size: Any, slide: Any, error: type) -> None:
    with pytest.raises(error):
        pf.window_count(size, slide=slide)
    with pytest.raises(TypeError):
        pf.window_count(True)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"slide": "2"}, TypeError, "slide"),
        ({"on_drop": 5}, TypeError, "on_drop"),
        ({"metrics": 5}, TypeError, "StreamMetrics"),
        ({"name": 5}, TypeError, "name"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_every_argument_is_checked_when_built(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        pf.window_count(3, **kwargs)


def test_resubscription_starts_fresh_windows() -> None:
    source = pfrx.envelopes(range(5), CTX).pipe(pf.window_count(2))
    first = source.pipe(ops.to_list()).run()
    second = source.pipe(ops.to_list()).run()
    assert [w.events for w in first] == [w.events for w in second] == [(0, 1), (2, 3), (4,)]


# -- the guide's CountWindow: processing statistics per 100 events -------------------------


@attrs.frozen
class ProcessingStats:
    total_events: int
    avg_processing_time: float
    timestamp: float


def processing_stats(window: pfrx.Window) -> ProcessingStats:
    times = [e.event["processing_time"] for e in window.items]
    return ProcessingStats(len(times), sum(times) / len(times), window.items[-1].timestamp)


def test_guide_count_window_processing_stats_per_100_events() -> None:
    events = [{"id": n, "processing_time": (n % 10) / 1000} for n in range(250)]
    stats = (
        pfrx.envelopes(events, CTX)
        .pipe(pf.window_count(100), ops.map(processing_stats), ops.to_list())
        .run()
    )
    assert [s.total_events for s in stats] == [100, 100, 50]
    assert [round(s.avg_processing_time, 6) for s in stats] == [0.0045, 0.0045, 0.0045]


# -- properties ------------------------------------------------------------------------------


@given(st.integers(0, 60), st.integers(1, 12))
def test_each_item_lands_in_exactly_one_tumbling_window(n: int, size: int) -> None:
    windows, lost = windows_of(list(range(n)), lambda d: pf.window_count(size, on_drop=d))
    flat = [event for w in windows for event in w.events]
    assert flat == list(range(n))
    assert all(len(w) == size for w in windows[:-1]) and all(len(w) > 0 for w in windows)
    assert all(w.events == tuple(range(w.start, w.end)) for w in windows)
    assert lost == []


@given(st.integers(0, 60), st.integers(1, 12), st.integers(1, 15))
def test_each_item_lands_in_the_right_number_of_sliding_windows(
    n: int, size: int, slide: int
) -> None:
    windows, lost = windows_of(
        list(range(n)), lambda d: pf.window_count(size, slide=slide, on_drop=d)
    )
    for i in range(n):
        expected = sum(1 for k in range(n) if k * slide <= i < k * slide + size)
        assert sum(i in w.events for w in windows) == expected
        if i >= size and slide <= size and size % slide == 0:
            assert expected == math.ceil(size / slide)
    assert all(len(w) > 0 for w in windows)
    assert all(w.events == tuple(range(w.start, w.end)) for w in windows)
    # nothing lost: every item is in a window or dropped, never both
    in_windows = {event for w in windows for event in w.events}
    dropped = [d.item.event for d in lost]
    assert in_windows.isdisjoint(dropped) and len(in_windows) + len(dropped) == n


@given(st.integers(0, 40), st.integers(1, 8), st.integers(1, 8))
def test_same_windows_as_rxpy_buffer_with_count(n: int, size: int, slide: int) -> None:
    ours, lost = windows_of(list(range(n)), lambda d: pf.window_count(size, slide=slide, on_drop=d))
    assert len(lost) == sum(1 for i in range(n) if i % slide >= size)  # between windows
    theirs = reactivex.from_iterable(range(n)).pipe(
        ops.buffer_with_count(size, slide), ops.to_list()
    )
    expected = [tuple(b) for b in theirs.run() if b]
    assert [w.events for w in ours] == expected


@pytest.mark.parametrize("keep_field", [True, False])
@pytest.mark.parametrize(("sent", "expected"), [(5, []), (2, [0, 1]), (6, [])])
def test_a_restored_sliding_window_still_reports_only_items_in_no_emitted_window(
    keep_field: bool, sent: int, expected: list[int]
) -> None:
    from pfrx import checkpoint as cp

    def subscribe(
        restore: cp.Checkpoint | None,
    ) -> tuple[Subject[Any], list[pfrx.Window], list[pfrx.Dropped], cp.CheckpointScope]:
        subject: Subject[Any] = Subject()
        seen: list[pfrx.Window] = []
        lost: list[pfrx.Dropped] = []
        with cp.checkpointing(restore) as scope:
            subject.pipe(pf.window_count(3, slide=1, on_drop=lost.append)).subscribe(
                seen.append, lambda _: None
            )
        return subject, seen, lost, scope

    first, seen, _, scope = subscribe(None)
    for n in range(sent):
        first.on_next(pfrx.Envelope(n, CTX, 0.0))
    saved = scope.snapshot()
    if not keep_field:  # a checkpoint taken before the field existed
        ((name, state),) = saved.states
        state = {k: v for k, v in state.items() if k != "emitted_end"}
        saved = cp.Checkpoint([(name, state)])
    second, seen2, lost2, _ = subscribe(saved)
    second.on_error(OSError("disk"))  # at once: the restored state alone decides
    emitted = {e.event for w in seen for e in w.items}
    assert seen2 == []
    assert [d.item.event for d in lost2] == expected
    assert emitted | set(expected) == set(range(sent))
