"""Where the README pipeline spends its time: ``python -m benchmarks.profile_pipeline``.

Two views of the FileSystem workload of ``bench_pipeline`` (200k events, 200 users):

1. the cost each pfrx operator adds, measured by growing the README pipeline one operator at a
   time (best of 5, CPU time, microseconds per event), next to the plain loop and RxPY;
2. a cProfile of the README pipeline, by own time (``--top N`` lines).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import time
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf

from .bench_pipeline import (
    WINDOW,
    FileCap,
    add_metadata,
    pfrx_readme,
    plain_loop,
    rxpy,
    workload,
)


def _grown(items: list[pfrx.Envelope], stages: Callable[[pfrx.StreamMetrics], list[Any]]) -> None:
    out: list[Any] = []
    reactivex.from_iterable(items).pipe(
        *stages(pfrx.StreamMetrics()), pf.window_count(WINDOW), ops.map(len)
    ).subscribe(out.append)


def _readme_filter(metrics: pfrx.StreamMetrics) -> Any:
    return pf.capability_filter(lambda ev: FileCap.read(ev.path), metrics=metrics)


def stage_costs(items: list[pfrx.Envelope], runs: int = 5) -> list[tuple[str, float]]:
    candidates: dict[str, Callable[[], object]] = {
        "plain loop": lambda: plain_loop(items),
        "RxPY built-ins": lambda: rxpy(items),
        "pfrx: source + window_count + len": lambda: _grown(items, lambda m: []),
        "  + capability_filter (README form)": lambda: _grown(items, lambda m: [_readme_filter(m)]),
        "  + transform": lambda: _grown(
            items, lambda m: [_readme_filter(m), pf.transform(add_metadata)]
        ),
        "  + summary (the README pipeline)": lambda: pfrx_readme(items),
    }
    best = {name: float("inf") for name in candidates}
    for _ in range(runs):
        for name, fn in candidates.items():
            started = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - started)
    return [(name, seconds / len(items) * 1e6) for name, seconds in best.items()]


def profile(items: list[pfrx.Envelope], top: int = 12) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(pfrx_readme, items)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    # Paths shortened to what a reader needs: the module and the function.
    text = re.sub(r"\S*/(pfrx|benchmarks|reactivex)/", r"\1/", out.getvalue())
    lines = [line for line in text.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join([lines[0].strip(), *lines[start:]])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_pipeline")
    parser.add_argument("--top", type=int, default=12, help="profile lines to show")
    args = parser.parse_args(argv)
    items = workload(200_000)
    print("cost per event, best of 5 (CPU time):")
    for name, micros in stage_costs(items):
        print(f"  {name:40s} {micros:5.2f} us")
    print("\ncProfile of the README pipeline (own time):")
    print(profile(items, args.top))


if __name__ == "__main__":
    main()
