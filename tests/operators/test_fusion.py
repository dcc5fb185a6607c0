"""Fused links: the chain of plain calls behaves as the unfused RxPY pipeline would."""

from __future__ import annotations

import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf


def test_two_stateful_stages_fused_flush_in_pipeline_order() -> None:
    # The first window's partial flush on completion must pass through the second window.
    out = (
        reactivex.of(1, 2, 3, 4, 5)
        .pipe(
            pf.window_count(2, on_drop=lambda d: None),
            pf.window_count(2, on_drop=lambda d: None),
            ops.map(lambda outer: [inner.items for inner in outer.items]),
            ops.to_list(),
        )
        .run()
    )
    assert out == [[(1, 2), (3, 4)], [(5,)]]


def test_batched_source_then_a_stage_without_batches_gets_items_one_by_one() -> None:
    ctx = pfrx.Context("alice")
    seen: list[object] = []
    out = (
        pfrx.envelopes(range(5), ctx, batch=2)
        .pipe(
            pf.transform(lambda e, c: e * 10, on_drop=seen.append),
            pf.window_count(2, on_drop=seen.append),
            ops.map(lambda w: w.events),
            ops.to_list(),
        )
        .run()
    )
    assert out == [(0, 10), (20, 30), (40,)]
    assert seen == []


def test_window_count_takes_batches_whole_with_the_same_windows_and_counts() -> None:
    ctx = pfrx.Context("alice")

    def run(batch: int) -> tuple[list[tuple[int, int, tuple[int, ...]]], tuple[int, int]]:
        metrics = pfrx.StreamMetrics()
        out = (
            pfrx.envelopes(range(11), ctx, batch=batch)
            .pipe(
                pf.window_count(3, metrics=metrics),
                ops.map(lambda w: (w.start, w.end, w.events)),
                ops.to_list(),
            )
            .run()
        )
        counts = next(s for s in metrics.snapshot().operators if s.name == "window_count")
        return out, (counts.received, counts.emitted)

    expected = run(1)
    assert expected[0][-1] == (9, 11, (9, 10))  # the partial window, on completion
    assert expected[1] == (11, 4)
    for batch in (2, 3, 5, 64):
        assert run(batch) == expected
