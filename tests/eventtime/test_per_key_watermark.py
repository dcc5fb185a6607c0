"""window_time(..., watermark="per_key"): each key's windows fire on that key's own
watermark; explicit watermarks and the idle clock move every key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pfrx
from pfrx import operators as pf
from pfrx.checkpoint import CheckpointMismatch
from pfrx.testing import marbles

from .harness import Harness, event_key, event_ts, harness


def per_key(span: float = 10, **kwargs: Any) -> Any:
    return lambda drop, late: pf.window_time(
        span,
        key=event_key,
        timestamp=event_ts,
        watermark="per_key",
        on_drop=drop,
        on_late=late,
        **kwargs,
    )


def contents(h: Harness) -> list[tuple[Any, Any, Any, list[Any], int]]:
    return [
        (w.key, w.start, w.end, [e.event[1] for e in w.items], w.revision) for w in h.take_full()
    ]


def test_each_key_fires_on_its_own_watermark() -> None:
    with harness(per_key()) as h:
        h.element("a", 1)
        h.element("b", 2)
        h.element("a", 12)  # a's watermark is 12: a's [0, 10) fires, b's stays open
        assert contents(h) == [("a", 0, 10, [1], 0)]
        h.element("b", 5)  # b's watermark is still 2: on time (shared: late)
        h.element("a", 3)  # a's [0, 10) has fired: late
        assert [(d.item.event[:2], d.reason, d.windows) for d in h.dropped] == [
            (("a", 3), "late", ((0, 10),))
        ]
        assert h.take_late() == [3]
        h.element("b", 11)
        assert contents(h) == [("b", 0, 10, [2, 5], 0)]


def test_the_shared_watermark_would_have_dropped_the_slow_key() -> None:
    def shared(drop: Any, late: Any) -> Any:
        return pf.window_time(10, key=event_key, timestamp=event_ts, on_drop=drop)

    with harness(shared) as h:
        for key, ts in (("a", 1), ("b", 2), ("a", 12), ("b", 5)):
            h.element(key, ts)
        assert [d.item.event[:2] for d in h.dropped] == [("b", 5)]


def test_an_explicit_watermark_moves_every_key_in_window_order() -> None:
    with harness(per_key(out_of_orderness=100)) as h:
        h.element("b", 14)
        h.element("a", 3)
        h.element("a", 15)
        h.element("b", 1)
        assert contents(h) == []  # out_of_orderness holds every key back
        h.watermark(20)
        # by end, then in the order keys appeared
        assert contents(h) == [
            ("b", 0, 10, [1], 0),
            ("a", 0, 10, [3], 0),
            ("b", 10, 20, [14], 0),
            ("a", 10, 20, [15], 0),
        ]
        h.element("b", 19)  # behind the shared watermark: late for every key
        assert [d.reason for d in h.dropped] == ["late"]


def test_idle_clock_fires_silent_keys_from_the_highest_watermark_reached() -> None:
    with harness(per_key(idle_timeout=5)) as h:
        h.scheduler.advance_to(100)
        h.element("a", 1)
        h.element("b", 30)  # b's watermark 30: b's [30, 40) open; a's [0, 10) waits
        assert contents(h) == []
        h.scheduler.advance_to(104)
        assert contents(h) == []  # not idle yet
        h.scheduler.advance_to(105)
        # idle from 105: the watermark follows the clock from 30 (b's): a's [0, 10) is
        # long past
        assert contents(h) == [("a", 0, 10, [1], 0)]
        h.scheduler.advance_to(115)
        assert contents(h) == [("b", 30, 40, [30], 0)]


def test_allowed_lateness_refires_and_purges_per_key() -> None:
    metrics = pfrx.StreamMetrics()
    with harness(per_key(allowed_lateness=5, metrics=metrics)) as h:
        h.element("a", 1)
        h.element("b", 2)
        h.element("a", 11)  # a: [0, 10) fires, kept until a's watermark reaches 15
        h.element("a", 4)  # re-fires a's window, whole
        assert contents(h) == [("a", 0, 10, [1], 0), ("a", 0, 10, [1, 4], 1)]
        h.element("a", 16)  # purges a's [0, 10)
        h.element("a", 5)
        assert [d.item.event[:2] for d in h.dropped] == [("a", 5)]
        h.element("b", 3)  # b's [0, 10) never fired: on time
        h.watermark(100)
        assert contents(h) == [("b", 0, 10, [2, 3], 0), ("a", 10, 20, [11, 16], 0)]
        state = h.scope.snapshot().states[0][1]["state"]
        # everything fired and purged: no window, no key, no item slot held
        assert (state["rows"], state["maxes"], state["slots"]) == ([], [], 0)
        assert metrics.snapshot().emitted == 4


def test_sliding_windows_per_key_and_their_late_bounds() -> None:
    with harness(per_key(10, slide=5)) as h:
        h.element("a", 7)
        h.element("b", 1)
        h.element("a", 16)  # a's watermark 16: a's [0, 10) and [5, 15) fire
        assert contents(h) == [("a", 0, 10, [7], 0), ("a", 5, 15, [7], 0)]
        h.element("a", 6)  # [0, 10) and [5, 15) fired; [-5, 5) does not hold 6: late
        h.element("b", 6)  # b's watermark is 1: on time
        assert [(d.item.event[:2], d.windows) for d in h.dropped] == [
            (("a", 6), ((0, 10), (5, 15)))
        ]
        h.complete()
        assert contents(h) == [
            ("b", -5, 5, [1], 0),
            ("b", 0, 10, [1, 6], 0),
            ("b", 5, 15, [6], 0),
            ("a", 10, 20, [16], 0),
            ("a", 15, 25, [16], 0),
        ]


def test_upstream_error_drops_what_never_left_once() -> None:
    with harness(per_key(10, slide=5)) as h:
        h.element("a", 7)
        h.element("a", 16)  # 7 left in [0, 10) and [5, 15); 16 never left
        h.element("b", 1)
        h.subject.on_error(RuntimeError("boom"))
        assert [(d.item.event[:2], d.reason) for d in h.dropped] == [
            (("a", 16), "upstream_error"),
            (("b", 1), "upstream_error"),
        ]


def run_all(factory: Any, steps: list[tuple[str, Any, Any]], restore_at: int | None) -> Any:
    """Windows and drops of ``steps``; with ``restore_at``, a checkpoint taken there and
    restored into a new subscription that finishes the run."""
    with harness(factory) as h:
        windows: list[Any] = []
        for i, (kind, key, value) in enumerate(steps):
            if i == restore_at:
                saved = h.snapshot()
                windows += contents(h)
                dropped = list(h.dropped)
                h.subscription.dispose()
                h = Harness(factory, restore=saved)
                h.dropped[:0] = dropped
            if kind == "item":
                h.element(key, value)
            else:
                h.watermark(value)
        h.complete()
        windows += contents(h)
        return windows, [(d.item.event[:2], d.reason, d.windows) for d in h.dropped]


STEPS = [
    ("item", "a", 1),
    ("item", "b", 2),
    ("item", "a", 12),
    ("item", "a", 4),
    ("item", "b", 5),
    ("mark", None, 8),
    ("item", "c", 9),
    ("item", "a", 3),
    ("item", "b", 22),
    ("mark", None, 14),
    ("item", "c", 13),
]


@pytest.mark.parametrize("slide", [5, None], ids=["sliding", "tumbling"])
@pytest.mark.parametrize("restore_at", range(1, len(STEPS)))
def test_checkpoint_at_any_step_gives_the_uninterrupted_output(
    restore_at: int, slide: int | None
) -> None:
    factory = per_key(10, slide=slide, allowed_lateness=3)
    assert run_all(factory, STEPS, restore_at) == run_all(factory, STEPS, None)


def test_a_shared_checkpoint_does_not_restore_into_per_key() -> None:
    def shared(drop: Any, late: Any) -> Any:
        return pf.window_time(10, key=event_key, timestamp=event_ts, on_drop=drop)

    with harness(shared) as h:
        h.element("a", 1)
        saved = h.snapshot()
    restored = Harness(per_key(), restore=saved)
    assert isinstance(restored.error, CheckpointMismatch)
    assert "per_key" in str(restored.error)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 60), st.integers(0, 4)),
        max_size=30,
    )
)
def test_any_order_within_the_bound_per_key_gives_the_sorted_windows(
    draws: list[tuple[str, int, int]],
) -> None:
    # Each key's items arrive at most 4 behind that key's highest so far: with
    # out_of_orderness=4 per key, nothing is late and the windows are those of the input
    # sorted by time, whatever the other keys do.
    arrivals: list[tuple[str, int]] = []
    highest: dict[str, int] = {}
    for key, ts, back in draws:
        at = max(ts, highest.get(key, ts) - back)
        highest[key] = max(highest.get(key, at), at)
        arrivals.append((key, at))

    def windows(items: list[tuple[str, int]]) -> set[tuple[Any, Any, tuple[int, ...]]]:
        with harness(per_key(10, out_of_orderness=4)) as h:
            for key, ts in items:
                h.element(key, ts)
            h.complete()
            assert h.dropped == []
            return {(w.key, w.start, tuple(sorted(e.event[1] for e in w.items))) for w in h.windows}

    assert windows(arrivals) == windows(sorted(arrivals, key=lambda kt: kt[1]))


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="per_key"):
        pf.window_time(10, key=event_key, timestamp=event_ts, watermark=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="per_key"):
        pf.window_time(10, key=event_key, timestamp=event_ts, watermark="each")
    with pytest.raises(ValueError, match="needs key= and timestamp="):
        pf.window_time(10, timestamp=event_ts, watermark="per_key")
    with pytest.raises(ValueError, match="needs key= and timestamp="):
        pf.window_time(10, key=event_key, watermark="per_key")


def test_marbles_per_key() -> None:
    lookup = {"a": ("x", 1), "b": ("y", 2), "c": ("x", 12), "d": ("y", 5), "e": ("y", 11)}
    op = pf.window_time(
        10, key=lambda env: env.event[0], timestamp=lambda env: env.event[1], watermark="per_key"
    )
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-|", lookup).pipe(op))
        m.expect(
            result,
            "-----p---q-(rs|)",
            {"p": (("x", 1),), "q": (("y", 2), ("y", 5)), "r": (("x", 12),), "s": (("y", 11),)},
        )
        assert result.dropped == []


def test_a_new_key_behind_the_shared_watermark_fires_at_once_within_lateness() -> None:
    with harness(per_key(allowed_lateness=5)) as h:
        h.watermark(12)
        h.element("z", 8)  # [0, 10) has fired for every key, but 10 + 5 > 12: it fires now
        assert contents(h) == [("z", 0, 10, [8], 0)]
        h.element("z", 9)
        assert contents(h) == [("z", 0, 10, [8, 9], 1)]
        h.watermark(15)  # purged
        h.element("z", 7)
        assert [(d.item.event[:2], d.reason) for d in h.dropped] == [(("z", 7), "late")]
