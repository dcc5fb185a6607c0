from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

CTX = pfrx.Context("alice", "s1")


def names(value: Any) -> Any:
    """Project a window to the names of its (name, timestamp) events."""
    if isinstance(value, pfrx.Window):
        return "".join(e.event[0] for e in value.items)
    return value


def stamped(spec: str) -> dict[str, tuple[str, float]]:
    """``"a1 b5"`` -> {"a": ("a", 1.0), "b": ("b", 5.0)}: events carrying their own time."""
    return {word[0]: (word[0], float(word[1:])) for word in spec.split()}


def event_time(env: pfrx.Envelope) -> float:
    return float(env.event[1])


# -- processing time ---------------------------------------------------------------------


def test_tumbling_windows_are_aligned_to_the_clock_and_closed_by_a_timer() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b---c-----d--|").pipe(pf.window_time(4)))
        m.expect(
            result,
            "----x---y-------(z|)",
            {"x": ("a", "b"), "y": ("c",), "z": ("d",)},
        )
        assert [(w.key, w.start, w.end) for w in result.raw_values] == [
            (None, 200.0, 204.0),
            (None, 204.0, 208.0),
            (None, 212.0, 216.0),
        ]


def test_a_window_closes_at_its_end_without_a_further_item() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-------").pipe(pf.window_time(timedelta(seconds=5))))
        m.expect(result, "-----x", {"x": ("a", "b")})


def test_an_item_at_a_window_end_opens_the_next_window() -> None:
    with marbles() as m:
        result = m.run(m.hot("----a---b|").pipe(pf.window_time(4)))
        m.expect(result, "--------x(y|)", {"x": ("a",), "y": ("b",)})
        assert [w.start for w in result.raw_values] == [204.0, 208.0]


def test_sliding_windows_hold_each_item_in_every_window_covering_it() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a--b--|").pipe(pf.window_time(4, slide=2)))
        bounds = [(w.start, w.end, w.events) for w in result.raw_values]
        assert bounds == [
            (198.0, 202.0, ("a",)),
            (200.0, 204.0, ("a",)),
            (202.0, 206.0, ("b",)),
            (204.0, 208.0, ("b",)),
        ]
        assert [n.time for n in result.notes] == [202.0, 204.0, 206.0, 207.0, 207.0]


def test_items_between_sliding_windows_are_dropped() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|").pipe(pf.window_time(2, slide=4)))
        assert [w.events for w in result.raw_values] == [("a",), ("c",)]
        assert [(d.item.event, d.reason) for d in result.dropped] == [
            ("b", "between_windows"),
            ("d", "between_windows"),
        ]


def test_upstream_error_passes_and_held_items_are_dropped_once() -> None:
    boom = ValueError("boom")
    with marbles() as m:
        result = m.run(m.hot("-a-b---cd#", error=boom).pipe(pf.window_time(4, slide=2)))
        assert result.error is boom
        # c already left in [204, 208): only d, never emitted, is lost (once, not per window)
        assert [(d.item.event, d.reason) for d in result.dropped] == [("d", "upstream_error")]
        m.expect(
            result,
            "--x-y-z-w#",
            {"x": ("a",), "y": ("a", "b"), "z": ("b",), "w": ("c",)},
            error=boom,
        )


def test_disposal_cancels_the_timer_and_drops_held_items() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b----c").pipe(pf.window_time(10)), disposed=205)
        assert result.notes == []
        assert [(d.item.event, d.reason) for d in result.dropped] == [
            ("a", "disposed"),
            ("b", "disposed"),
        ]


def test_disposal_cancels_the_timer_on_a_real_scheduler() -> None:
    span = 0.3
    for _attempt in range(5):
        windows: list[pfrx.Window] = []
        lost: list[pfrx.Dropped] = []
        subject: Subject[pfrx.Envelope] = Subject()
        op = pf.window_time(span, scheduler=TimeoutScheduler(), on_drop=lost.append)
        subscription = subject.pipe(op).subscribe(windows.append)
        sent = time.monotonic()
        subject.on_next(pfrx.Envelope("a", CTX, 0.0))
        subscription.dispose()
        if time.monotonic() - sent < span / 2:
            break
        # A machine so busy that the dispose came near the window's end proves nothing:
        # the timer may rightly have fired first. Try again.
    else:
        pytest.fail("the machine never let an item and a dispose come close together")
    threading.Event().wait(span + 0.4)  # past the window's end: its timer would have fired
    assert windows == []
    assert [(d.item.event, d.reason) for d in lost] == [("a", "disposed")]


def test_scheduler_argument_wins_over_the_subscribe_scheduler() -> None:
    own = TestScheduler()
    with marbles() as m:
        result = m.run(m.hot("-a-b-|").pipe(pf.window_time(2, scheduler=own)))
        # own's clock stands at 0: both items fall in [0, 2) and only completion closes it
        assert [(w.start, w.events) for w in result.raw_values] == [(0.0, ("a", "b"))]


def test_metrics_count_items_and_windows() -> None:
    with marbles() as m:
        m.run(m.hot("-a-b---c-|").pipe(pf.window_time(4)))
        counts = m.metrics.snapshot().operators[0]
        assert (counts.name, counts.received, counts.emitted, counts.dropped) == (
            "window_time",
            3,
            2,
            0,
        )


# -- event time ------------------------------------------------------------------------------


def test_event_time_out_of_order_within_lateness_and_late_items() -> None:
    late: list[pfrx.Envelope] = []
    lookup = stamped("a1 b5 c3 d12 e4 f15")
    op = pf.window_time(10, timestamp=event_time, out_of_orderness=2, on_late=late.append)
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-f-|", lookup).pipe(op))
        # d (12) lifts the watermark to 10: [0, 10) closes; e (4) is behind it
        m.expect(result, "-------x-----(y|)", {"x": "abc", "y": "df"}, project=names)
        assert [(w.start, w.end) for w in result.raw_values] == [(0.0, 10.0), (10.0, 20.0)]
        assert [(d.item.event, d.reason) for d in result.dropped] == [(("e", 4.0), "late")]
        assert [e.event for e in late] == [("e", 4.0)]


def test_an_out_of_order_item_whose_window_has_not_fired_is_accepted() -> None:
    # Lateness is per window: c (3) is behind the watermark (5) but [0, 10) is still open.
    with marbles() as m:
        op = pf.window_time(10, timestamp=event_time)
        result = m.run(m.hot("-a-b-c-d-e-|", stamped("a1 b5 c3 d10 e4")).pipe(op))
        m.expect(result, "-------x---(y|)", {"x": "abc", "y": "d"}, project=names)
        assert [(d.item.event, d.reason) for d in result.dropped] == [(("e", 4.0), "late")]


def test_late_items_go_to_an_observer_side_output() -> None:
    side: Subject[pfrx.Envelope] = Subject()
    seen: list[Any] = []
    side.subscribe(lambda env: seen.append(env.event))
    with marbles() as m:
        op = pf.window_time(10, timestamp=event_time, on_late=side)
        m.run(m.hot("-a-b-c-|", stamped("a1 b15 c3")).pipe(op))
    assert seen == [("c", 3.0)]


def test_event_time_window_waits_for_the_watermark_not_the_clock() -> None:
    with marbles() as m:
        op = pf.window_time(10, timestamp=event_time)
        result = m.run(m.hot("-a----------------b-|", stamped("a1 b30")).pipe(op))
        m.expect(result, "------------------x-(y|)", {"x": "a", "y": "b"}, project=names)


def test_idle_timeout_lets_an_idle_source_close_its_windows() -> None:
    with marbles() as m:
        op = pf.window_time(10, timestamp=event_time, idle_timeout=3)
        result = m.run(m.hot("-a-b-----------", stamped("a1 b4")).pipe(op))
        # idle from 206 on: the watermark (4) follows the clock and reaches 10 at 209
        m.expect(result, "---------x", {"x": "ab"}, project=names)


def test_idle_timeout_waits_for_silence() -> None:
    with marbles() as m:
        op = pf.window_time(10, timestamp=event_time, idle_timeout=3)
        result = m.run(m.hot("-a-b-c-d-----", stamped("a1 b2 c3 d4")).pipe(op))
        # items every 2 s never leave the source idle for 3 s; after d (at 207) it is
        m.expect(result, "-------------x", {"x": "abcd"}, project=names)


def test_event_time_arguments_need_a_timestamp() -> None:
    with pytest.raises(ValueError, match="event time"):
        pf.window_time(1, out_of_orderness=2)
    with pytest.raises(ValueError, match="out_of_orderness"):
        pf.window_time(1, timestamp=event_time, out_of_orderness=-1)
    with pytest.raises(ValueError, match="span"):
        pf.window_time(0)
    with pytest.raises(TypeError):
        pf.window_time("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pf.window_time(1, timestamp=event_time, on_late=42)  # type: ignore[arg-type]


def test_bad_timestamps_are_dropped_with_a_reason() -> None:
    def ts(env: pfrx.Envelope) -> Any:
        if env.event == "x":
            raise KeyError("no time")
        return {"n": "soon", "i": float("nan")}.get(env.event, 1.0)

    lost: list[pfrx.Dropped] = []
    source = reactivex.of(
        pfrx.Envelope("x", CTX, 0.0), pfrx.Envelope("n", CTX, 0.0), pfrx.Envelope("i", CTX, 0.0)
    )
    source.pipe(pf.window_time(1, timestamp=ts, on_drop=lost.append), ops.to_list()).run()
    assert [d.reason for d in lost] == ["'no time'", "invalid_timestamp", "invalid_timestamp"]


# -- the guide's TimeWindow: activity per path per minute ----------------------------------


def activity_per_path(window: pfrx.Window) -> dict[str, dict[str, int]]:
    summary: dict[str, Counter[str]] = {}
    for env in window.items:
        operation, path = env.event
        summary.setdefault(path, Counter())[operation] += 1
    return {
        path: {"read_count": c["read"], "write_count": c["write"]} for path, c in summary.items()
    }


def test_guide_time_window_activity_per_path_per_minute() -> None:
    lookup = {
        "r": ("read", "/docs/a.txt"),
        "w": ("write", "/docs/a.txt"),
        "b": ("read", "/docs/b.txt"),
    }
    with marbles(tick=10.0) as m:
        # one character = 10 s; subscribed at 200: minutes [180, 240), [240, 300), ...
        source = m.hot("-r-w-b-r-w---------|", lookup)
        result = m.run(source.pipe(pf.window_time(60), ops.map(activity_per_path)))
        assert [n.time for n in result.notes if n.kind == "next"] == [240.0, 300.0]
        assert result.values == [
            {"/docs/a.txt": {"read_count": 1, "write_count": 1}},
            {
                "/docs/b.txt": {"read_count": 1, "write_count": 0},
                "/docs/a.txt": {"read_count": 1, "write_count": 1},
            },
        ]


# -- real threads ----------------------------------------------------------------------------


def test_timer_on_a_real_scheduler_closes_the_window() -> None:
    closed = threading.Event()
    windows: list[pfrx.Window] = []

    def on_next(window: pfrx.Window) -> None:
        windows.append(window)
        closed.set()

    subject: Subject[pfrx.Envelope] = Subject()
    subscription = subject.pipe(pf.window_time(0.05, scheduler=TimeoutScheduler())).subscribe(
        on_next
    )
    subject.on_next(pfrx.Envelope("a", CTX, 0.0))
    assert closed.wait(5.0)
    assert [w.events for w in windows] == [("a",)]
    subscription.dispose()


def test_concurrent_producers_and_timers_lose_nothing() -> None:
    subject: Subject[pfrx.Envelope] = Subject()
    windows: list[pfrx.Window] = []
    done = threading.Event()
    lock = threading.Lock()

    def produce(base: int) -> None:
        for n in range(500):
            with lock:  # the Rx grammar: calls into an observer are serialized
                subject.on_next(pfrx.Envelope(base + n, CTX, 0.0))

    subject.pipe(pf.window_time(0.002, scheduler=TimeoutScheduler())).subscribe(
        windows.append, on_completed=done.set
    )
    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with lock:
        subject.on_completed()
    assert done.wait(5.0)
    events = sorted(e for w in windows for e in w.events)
    assert events == sorted(k * 1000 + n for k in range(4) for n in range(500))
    assert all(w.start < w.end and len(w) > 0 for w in windows)
    starts = [w.start for w in windows]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


# -- properties ------------------------------------------------------------------------------


def run_virtual(arrivals: list[float], op: Any) -> tuple[list[tuple[float, pfrx.Window]], list]:
    """Deliver item i at virtual time arrivals[i] (event = (i, arrival)); complete after."""
    scheduler = TestScheduler()
    subject: Subject[pfrx.Envelope] = Subject()
    out: list[tuple[float, pfrx.Window]] = []
    lost: list[pfrx.Dropped] = []
    for i, at in enumerate(arrivals):
        scheduler.schedule_absolute(
            at, lambda _s, _st, i=i, at=at: subject.on_next(pfrx.Envelope((i, at), CTX, at))
        )
    scheduler.schedule_absolute(max(arrivals, default=0) + 0.5, lambda *_: subject.on_completed())
    subject.pipe(op(lost.append)).subscribe(
        lambda w: out.append((scheduler.clock, w)), scheduler=scheduler
    )
    scheduler.start()
    return out, lost


times = st.lists(st.integers(0, 400).map(lambda n: n / 4), max_size=40).map(sorted)


@given(times, st.sampled_from([1.0, 2.5, 5.0]))
def test_each_item_lands_in_exactly_one_tumbling_window(arrivals: list[float], span: float) -> None:
    out, lost = run_virtual(arrivals, lambda d: pf.window_time(span, on_drop=d))
    flat = [event for _, w in out for event in w.events]
    assert sorted(i for i, _ in flat) == list(range(len(arrivals))) and lost == []
    for closed_at, window in out:
        assert len(window) > 0 and window.end - window.start == span
        assert all(window.start <= at < window.end for _, at in window.events)
        assert closed_at == window.end or closed_at == max(arrivals) + 0.5
    ends = [w.end for _, w in out]
    assert ends == sorted(ends)


@given(times, st.sampled_from([(4.0, 1.0), (4.0, 2.0), (5.0, 2.0), (3.0, 3.0)]))
def test_each_item_lands_in_the_right_number_of_sliding_windows(
    arrivals: list[float], shape: tuple[float, float]
) -> None:
    span, slide = shape
    out, lost = run_virtual(arrivals, lambda d: pf.window_time(span, slide=slide, on_drop=d))
    assert lost == []
    for i, at in enumerate(arrivals):
        holding = [w for _, w in out if (i, at) in w.events]
        expected = [k for k in range(-10, 200) if k * slide <= at < k * slide + span]
        assert sorted(w.start for w in holding) == [k * slide for k in expected]


@given(
    st.lists(st.integers(0, 60), max_size=40),
    st.sampled_from([0.0, 2.0, 7.0]),
    st.sampled_from([5.0, 10.0]),
)
def test_event_time_loses_nothing(stamps: list[int], lateness: float, span: float) -> None:
    arrivals = [float(n) for n in range(len(stamps))]
    late: list[pfrx.Envelope] = []

    def op(drop: Any) -> Any:
        return pf.window_time(
            span,
            timestamp=lambda env: stamps[env.event[0]],
            out_of_orderness=lateness,
            on_late=late.append,
            on_drop=drop,
        )

    out, lost = run_virtual(arrivals, op)
    in_windows = [i for _, w in out for i, _ in w.events]
    dropped = [d.item.event[0] for d in lost]
    assert sorted(in_windows + dropped) == list(range(len(stamps)))  # emitted + late = received
    assert {d.reason for d in lost} <= {"late"} and len(late) == len(lost)
    for _, window in out:
        assert all(window.start <= stamps[i] < window.end for i, _ in window.events)
        assert [i for i, _ in window.events] == sorted(i for i, _ in window.events)  # arrival
    # a late item is behind the highest timestamp seen before it by more than the lateness
    for i in dropped:
        assert stamps[i] < max(stamps[:i]) - lateness
