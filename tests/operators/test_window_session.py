from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
import reactivex
from hypothesis import example, given
from hypothesis import strategies as st
from reactivex.scheduler import TimeoutScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

ALICE = pfrx.Context("alice", "s-alice")
BOB = pfrx.Context("bob", "s-bob")


def names(value: Any) -> Any:
    if isinstance(value, pfrx.Window):
        return "".join(e.event[0] for e in value.items)
    return value


def stamped(spec: str) -> dict[str, tuple[str, float]]:
    return {word[0]: (word[0], float(word[1:])) for word in spec.split()}


def event_time(env: pfrx.Envelope) -> float:
    return float(env.event[1])


# -- processing time ---------------------------------------------------------------------


def test_two_bursts_make_two_sessions_closed_by_timers() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b------c-|").pipe(pf.window_session(3)))
        m.expect(result, "------x-----(y|)", {"x": ("a", "b"), "y": ("c",)})
        assert [(w.key, w.start, w.end) for w in result.raw_values] == [
            ("marble-session", 201.0, 206.0),
            ("marble-session", 210.0, 213.0),
        ]


def test_items_closer_than_gap_merge_into_one_session() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d---------").pipe(pf.window_session(3)))
        m.expect(result, "__________x".replace("_", "-"), {"x": ("a", "b", "c", "d")})


def test_an_item_exactly_gap_after_the_previous_starts_a_new_session() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a--b--c-----").pipe(pf.window_session(3)))
        m.expect(result, "----x--y--z", {"x": ("a",), "y": ("b",), "z": ("c",)})


def test_max_duration_cuts_a_session_and_the_next_item_starts_another() -> None:
    with marbles() as m:
        result = m.run(m.hot("-abcdefgh------").pipe(pf.window_session(3, max_duration=4)))
        m.expect(result, "-----x---y---", {"x": tuple("abcd"), "y": tuple("efgh")})
        assert [(w.start, w.end) for w in result.raw_values] == [(201.0, 205.0), (205.0, 209.0)]


def test_sessions_are_per_key_with_their_own_timers() -> None:
    with marbles() as m:
        source = reactivex.merge(
            m.hot("-a-b-c-------", context=ALICE), m.hot("--x------y---", context=BOB)
        )
        result = m.run(source.pipe(pf.window_session(3)))
        m.expect(
            result,
            "-----p--q---r",
            {"p": ("x",), "q": ("a", "b", "c"), "r": ("y",)},
        )
        assert [w.key for w in result.raw_values] == ["s-bob", "s-alice", "s-bob"]


def test_custom_key_and_failing_key() -> None:
    def key(env: pfrx.Envelope) -> str:
        if env.event == "z":
            raise LookupError("no key")
        return env.context.user_id

    with marbles() as m:
        result = m.run(m.hot("-a-z-|").pipe(pf.window_session(10, key=key)))
        assert [(w.key, w.events) for w in result.raw_values] == [("marble-user", ("a",))]
        assert result.drop_reasons() == ["no key"]


def test_completion_flushes_in_end_order_and_error_drops_held_items() -> None:
    with marbles() as m:
        source = reactivex.merge(
            m.hot("-a---b---|", context=ALICE), m.hot("--x------", context=BOB)
        )
        result = m.run(source.pipe(pf.window_session(10)))
        assert [w.key for w in result.raw_values] == ["s-bob", "s-alice"]
    boom = RuntimeError("boom")
    with marbles() as m:
        result = m.run(m.hot("-a-b-#", error=boom).pipe(pf.window_session(10)))
        assert result.error is boom and result.raw_values == []
        assert [(d.item.event, d.reason) for d in result.dropped] == [
            ("a", "upstream_error"),
            ("b", "upstream_error"),
        ]


def test_disposal_drops_held_items_and_cancels_timers() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b------").pipe(pf.window_session(5)), disposed=205)
        assert result.notes == []
        assert result.drop_reasons() == ["disposed", "disposed"]
    windows: list[pfrx.Window] = []
    lost: list[pfrx.Dropped] = []
    subject: Subject[pfrx.Envelope] = Subject()
    subscription = subject.pipe(
        pf.window_session(0.3, scheduler=TimeoutScheduler(), on_drop=lost.append)
    ).subscribe(windows.append)
    subject.on_next(pfrx.Envelope("a", ALICE, 0.0))
    subscription.dispose()
    threading.Event().wait(0.7)  # past the session's end: its timer would have fired
    assert windows == []
    assert [d.reason for d in lost] == ["disposed"]


def test_memory_is_freed_when_sessions_close() -> None:
    metrics = pfrx.StreamMetrics()
    scheduler = TestScheduler()
    subject: Subject[pfrx.Envelope] = Subject()
    windows: list[pfrx.Window] = []
    subject.pipe(pf.window_session(5, key=lambda e: e.event, metrics=metrics)).subscribe(
        windows.append, scheduler=scheduler
    )
    for n in range(1000):
        subject.on_next(pfrx.Envelope(n, ALICE, 0.0))
    assert metrics.snapshot().buffered == 1000
    scheduler.advance_to(5.0)
    snap = metrics.snapshot()
    assert (snap.buffered, snap.emitted, len(windows)) == (0, 1000, 1000)


def test_real_timer_closes_a_session() -> None:
    closed = threading.Event()
    windows: list[pfrx.Window] = []
    subject: Subject[pfrx.Envelope] = Subject()
    subject.pipe(pf.window_session(0.03, scheduler=TimeoutScheduler())).subscribe(
        lambda w: (windows.append(w), closed.set())
    )
    subject.on_next(pfrx.Envelope("a", ALICE, 0.0))
    subject.on_next(pfrx.Envelope("b", ALICE, 0.0))
    assert closed.wait(5.0)
    assert [(w.key, w.events) for w in windows] == [("s-alice", ("a", "b"))]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="gap"):
        pf.window_session(0)
    with pytest.raises(ValueError, match="max_duration"):
        pf.window_session(1, max_duration=-1)
    with pytest.raises(TypeError):
        pf.window_session(1, key="session")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="event time"):
        pf.window_session(1, idle_timeout=3)


# -- event time ------------------------------------------------------------------------------


def test_event_time_an_out_of_order_item_merges_two_bursts() -> None:
    op = pf.window_session(5, timestamp=event_time, out_of_orderness=10)
    with marbles() as m:
        bridged = m.run(m.hot("-a-b-c-d-e-|", stamped("a0 b1 c8 d9 e4")).pipe(op))
        m.expect(bridged, "-----------(x|)", {"x": "abcde"}, project=names)
        assert [(w.start, w.end) for w in bridged.raw_values] == [(0.0, 14.0)]
    with marbles() as m:
        apart = m.run(m.hot("-a-b-c-d-|", stamped("a0 b1 c8 d9")).pipe(op))
        m.expect(apart, "---------(xy|)", {"x": "ab", "y": "cd"}, project=names)


def test_event_time_sessions_close_on_the_watermark_and_late_items_are_reported() -> None:
    late: list[pfrx.Envelope] = []
    op = pf.window_session(3, timestamp=event_time, out_of_orderness=1, on_late=late.append)
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|", stamped("a0 b1 c9 d2")).pipe(op))
        # c (9) lifts the watermark to 8 >= 4, the end of (a, b); d (2) is late
        m.expect(result, "-----x---(y|)", {"x": "ab", "y": "c"}, project=names)
        assert result.drop_reasons() == ["late"] and [e.event for e in late] == [("d", 2.0)]


def test_event_time_max_duration_cuts_by_timestamp() -> None:
    op = pf.window_session(3, max_duration=5, timestamp=event_time)
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-|", stamped("a0 b2 c4 d6 e8")).pipe(op))
        assert [(names(w), w.start, w.end) for w in result.raw_values] == [
            ("abc", 0.0, 5.0),
            ("de", 6.0, 11.0),
        ]


def test_event_time_idle_timeout_closes_sessions() -> None:
    op = pf.window_session(3, timestamp=event_time, idle_timeout=2)
    with marbles() as m:
        result = m.run(m.hot("-a-b---------", stamped("a0 b1")).pipe(op))
        # idle from 205: the watermark (1) follows the clock and reaches 4 at 206
        m.expect(result, "------x", {"x": "ab"}, project=names)


# -- properties ------------------------------------------------------------------------------


def run_virtual(
    arrivals: list[tuple[float, str]], op: Any
) -> tuple[list[pfrx.Window], list[pfrx.Dropped]]:
    """Item i (event (i, at)) of user k arrives at virtual time ``at``; completes after."""
    scheduler = TestScheduler()
    subject: Subject[pfrx.Envelope] = Subject()
    out: list[pfrx.Window] = []
    lost: list[pfrx.Dropped] = []
    for i, (at, user) in enumerate(arrivals):
        ctx = pfrx.Context(user, f"s-{user}")
        scheduler.schedule_absolute(
            at,
            lambda _s, _st, i=i, at=at, ctx=ctx: subject.on_next(pfrx.Envelope((i, at), ctx, at)),
        )
    end = max((at for at, _ in arrivals), default=0.0) + 0.5
    scheduler.schedule_absolute(end, lambda *_: subject.on_completed())
    subject.pipe(op(lost.append)).subscribe(out.append, scheduler=scheduler)
    scheduler.start()
    return out, lost


arrivals_st = st.lists(
    st.tuples(st.integers(0, 200).map(lambda n: n / 2), st.sampled_from("xyz")), max_size=40
).map(sorted)


@given(arrivals_st, st.sampled_from([1.0, 2.5, 4.0]), st.sampled_from([None, 3.0, 6.0]))
def test_sessions_split_exactly_at_gaps_and_lose_nothing(
    arrivals: list[tuple[float, str]], gap: float, max_duration: float | None
) -> None:
    out, lost = run_virtual(
        arrivals, lambda d: pf.window_session(gap, max_duration=max_duration, on_drop=d)
    )
    assert lost == []
    assert sorted(i for w in out for i, _ in w.events) == list(range(len(arrivals)))
    limit = max_duration if max_duration is not None else float("inf")
    for window in out:
        times = [at for _, at in window.events]
        assert all(b - a < gap for a, b in itertools.pairwise(times))
        assert times[-1] - times[0] < limit
        assert window.start == times[0] and window.end == min(times[-1] + gap, times[0] + limit)
        assert {arrivals[i][1] for i, _ in window.events} == {window.key[2:]}
    # consecutive sessions of a key: split by a gap, or by the cut
    for user in "xyz":
        mine = [w for w in out if w.key == f"s-{user}"]
        for before, after in itertools.pairwise(mine):
            assert after.start >= before.end


@given(
    st.lists(st.tuples(st.integers(0, 60), st.sampled_from("xy")), max_size=40),
    st.sampled_from([0.0, 3.0, 10.0]),
    st.sampled_from([2.0, 5.0]),
)
# ts 0 fires and is purged at watermark 5; ts 1 then joins only [5, 10): two sessions overlap
@example([(5, "x"), (0, "x"), (15, "x"), (1, "x")], 10.0, 5.0)
def test_event_time_sessions_lose_nothing(
    items: list[tuple[int, str]], lateness: float, gap: float
) -> None:
    arrivals = [(float(n), user) for n, (_, user) in enumerate(items)]
    late: list[pfrx.Envelope] = []

    def op(drop: Any) -> Any:
        return pf.window_session(
            gap,
            timestamp=lambda env: items[env.event[0]][0],
            out_of_orderness=lateness,
            on_late=late.append,
            on_drop=drop,
        )

    out, lost = run_virtual(arrivals, op)
    in_windows = [i for w in out for i, _ in w.events]
    dropped = [d.item.event[0] for d in lost]
    assert sorted(in_windows + dropped) == list(range(len(items)))  # emitted + late = received
    assert {d.reason for d in lost} <= {"late"} and len(late) == len(lost)
    for window in out:
        indices = [i for i, _ in window.events]
        assert indices == sorted(indices)  # arrival order
        stamps = sorted(items[i][0] for i in indices)
        assert all(b - a < gap for a, b in itertools.pairwise(stamps))
        assert window.start == stamps[0] and window.end == stamps[-1] + gap
    for user in "xy":
        mine = [w for w in out if w.key == f"s-{user}"]  # in the order they fired
        for earlier, later in itertools.combinations(mine, 2):
            # Never two sessions closer than gap, unless the earlier one had fired and was
            # purged (allowed lateness 0) before the item that bridges them arrived: Flink's
            # rule (a purged session cannot merge). So the later one holds an item that
            # arrived after every item of the earlier one.
            if later.start < earlier.end and earlier.start < later.end:
                first = [i for i, _ in earlier.events]
                second = [i for i, _ in later.events]
                assert max(second) > max(first)
