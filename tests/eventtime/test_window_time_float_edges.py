"""Tumbling event-time windows in floats: every item lies in the window it is emitted in
(``start <= ts < end``), and a window fires once per revision, even where ``start + span``
rounds to the item's own timestamp or the floor of ``(ts - offset) / span`` is off by more
than one step (found by kwin3's mutation work, issue 12)."""

from __future__ import annotations

from typing import Any

import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st

import pfrx
from pfrx import operators as pf

CTX = pfrx.Context("u", "s")


def run(timestamps: list[float], span: float, **options: Any) -> list[pfrx.Window]:
    windows: list[pfrx.Window] = []
    lost: list[pfrx.Dropped] = []
    source = reactivex.from_iterable([pfrx.Envelope(t, CTX, 0.0) for t in timestamps])
    source.pipe(
        pf.window_time(span, timestamp=lambda e: e.event, on_drop=lost.append, **options)
    ).subscribe(windows.append)
    return windows


def assert_sound(windows: list[pfrx.Window]) -> None:
    fired = set()
    for window in windows:
        for item in window.items:
            assert window.start <= item.event < window.end, (window, item.event)
        identity = (window.key, window.start, window.revision)
        assert identity not in fired, f"{identity} fired twice"
        fired.add(identity)


def test_an_item_where_start_plus_span_rounds_to_it_is_not_put_in_a_fired_window() -> None:
    # 0.5 + 0.1 == 0.6 in floats, but 6 * 0.1 is 0.6000000000000001: the item at 0.6 belongs
    # to window 5, whose end used to be computed as 0.6, so it re-opened a fired window.
    windows = run([0.6, 0.6, 0.55], 0.1)
    assert_sound(windows)
    # All three lie in window 5, [0.5, 0.6000000000000001), which the watermark (0.6) has
    # not reached: it fires once, at completion, with all of them.
    assert [(w.start, [i.event for i in w.items], w.revision) for w in windows] == [
        (0.5, [0.6, 0.6, 0.55], 0)
    ]


def test_per_key_windows_are_sound_at_the_same_edge() -> None:
    assert_sound(run([0.6, 0.6, 0.55], 0.1, key=lambda e: "k", watermark="per_key"))


def test_a_late_item_re_fires_the_window_it_belongs_to_with_the_next_revision() -> None:
    windows = run([0.6, 0.6, 0.55], 0.1, allowed_lateness=1.0)
    assert_sound(windows)
    by_start: dict[float, list[int]] = {}
    for window in windows:
        by_start.setdefault(window.start, []).append(window.revision)
    assert all(revisions == list(range(len(revisions))) for revisions in by_start.values())


def test_a_floor_off_by_two_steps_still_finds_the_window_holding_the_item() -> None:
    # kwin3's case: 1 ms windows, offset -0.5 ms, a large negative timestamp.
    windows = run([-4409353623288.984], 0.001, offset=-0.0005)
    assert_sound(windows)
    assert len(windows) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([0.001, 0.1, 0.3, 0.7, 1.1, 7.0]),
    st.floats(min_value=0.0, max_value=0.999),
    st.sampled_from([0.0, 0.5, 100.0]),
    st.booleans(),
)
def test_every_item_lies_in_its_window_and_no_revision_fires_twice(
    timestamps: list[float], span: float, offset_share: float, lateness: float, per_key: bool
) -> None:
    options: dict[str, Any] = {"offset": offset_share * span, "allowed_lateness": lateness}
    if per_key:
        options.update(key=lambda e: "k", watermark="per_key")
    assert_sound(run(timestamps, span, **options))
