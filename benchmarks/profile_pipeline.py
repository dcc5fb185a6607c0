"""Where the issue-8 pipeline spends its time: ``python -m benchmarks.profile_pipeline``.

Two views of the same 200k-event workload as ``bench_pipeline``:

1. the cost each pfrx stage adds, measured by growing the pipeline one stage at a time
   (best of 5, microseconds per event), next to the plain loop and RxPY built-ins;
2. a cProfile of the full pfrx pipeline, by own time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf

from .bench_pipeline import (
    WINDOW,
    add_metadata,
    pfrx_pipeline,
    plain_loop,
    required,
    rxpy,
    summarize,
    workload,
)


def _summary(window: pfrx.Window) -> dict[str, tuple[int, int]]:
    return summarize((e[0], e[1], None) for e in window.events)


def _grown(items: list[pfrx.Envelope], stages: Callable[[list[Any]], list[Any]]) -> None:
    dropped: list[Any] = []
    out: list[Any] = []
    reactivex.from_iterable(items).pipe(
        *stages(dropped), pf.window_count(WINDOW), ops.map(_summary)
    ).subscribe(out.append)


def stage_costs(items: list[pfrx.Envelope], runs: int = 5) -> list[tuple[str, float]]:
    candidates: dict[str, Callable[[], object]] = {
        "plain loop": lambda: plain_loop(items),
        "RxPY built-ins": lambda: rxpy(items),
        "pfrx: source + window_count + summary": lambda: _grown(items, lambda d: []),
        "  + capability_filter": lambda: _grown(
            items, lambda d: [pf.capability_filter(required, on_drop=d.append)]
        ),
        "  + transform": lambda: _grown(
            items,
            lambda d: [
                pf.capability_filter(required, on_drop=d.append),
                pf.transform(lambda e, c: (*add_metadata(e, c)[:2], None)),
            ],
        ),
        "  + metrics_tap (the full pfrx pipeline)": lambda: pfrx_pipeline(items),
    }
    best = {name: float("inf") for name in candidates}
    for _ in range(runs):
        for name, fn in candidates.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return [(name, seconds / len(items) * 1e6) for name, seconds in best.items()]


def profile(items: list[pfrx.Envelope], top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(pfrx_pipeline, items)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    items = workload(200_000)
    denied = sum(1 for e in items if not e.context.has_capability(required(e.event)))
    print(f"200,000 events, {denied:,} denied ({denied / len(items):.0%})\n")
    print("cost per event, best of 5:")
    for name, micros in stage_costs(items):
        print(f"  {name:45s} {micros:5.2f} us")
    print("\ncProfile of the full pfrx pipeline (own time):")
    print(profile(items))


if __name__ == "__main__":
    main()
