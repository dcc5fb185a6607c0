"""Window operators: count windows against RxPY's ``buffer_with_count``; sessions at scale.

- ``window_count(100)`` against ``ops.buffer_with_count(100)`` on the same 1M envelopes,
  both fed by ``reactivex.from_iterable`` (target: at least 3x RxPY's throughput).
- ``window_session`` with 100k distinct keys (three items each) on a ``TestScheduler``:
  time per item, then the memory the open sessions hold (``tracemalloc``) and what is left
  once the timers have closed them (memory returns: a closed session is freed).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

from ._table import Row, interleaved

CTX = pfrx.Context("bench", "s1")


def _count_windows(n: int, runs: int) -> list[Row]:
    items = [pfrx.Envelope(i, CTX, 0.0) for i in range(n)]
    sink: list[Any] = []

    def ours() -> None:
        sink.clear()
        reactivex.from_iterable(items).pipe(pf.window_count(100)).subscribe(sink.append)
        assert len(sink) == n // 100

    def rxpy() -> None:
        sink.clear()
        reactivex.from_iterable(items).pipe(ops.buffer_with_count(100)).subscribe(sink.append)
        assert len(sink) == n // 100

    times = interleaved({"pfrx": ours, "rxpy": rxpy}, runs)
    ours_s, rx_s = times["pfrx"][1], times["rxpy"][1]
    ratio = rx_s / ours_s
    label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"
    return [
        Row("windows", f"window_count(100), {label} items", f"{n / ours_s / 1e6:.2f} M items/s"),
        Row(
            "windows", f"buffer_with_count(100) (RxPY), {label}", f"{n / rx_s / 1e6:.2f} M items/s"
        ),
        Row(
            "windows",
            "window_count(100) vs buffer_with_count",
            f"{ratio:.1f}x",
            ">= 3x",
            ratio >= 3,
        ),
    ]


def _feed_sessions(keys: int, per_key: int) -> tuple[float, TestScheduler, list[Any], Any]:
    scheduler = TestScheduler()
    subject: Subject[pfrx.Envelope] = Subject()
    windows: list[Any] = []
    op = pf.window_session(5.0, key=lambda env: env.event)
    subscription = subject.pipe(op).subscribe(windows.append, scheduler=scheduler)
    envelopes = [pfrx.Envelope(k, CTX, 0.0) for k in range(keys)]
    on_next = subject.on_next
    started = time.perf_counter()
    for round_ in range(per_key):
        scheduler.advance_to(float(round_))  # each key's items 1 s apart: one session each
        for envelope in envelopes:
            on_next(envelope)
    elapsed = time.perf_counter() - started
    return elapsed, scheduler, windows, subscription


def _sessions(keys: int, per_key: int) -> list[Row]:
    gc.collect()
    elapsed, scheduler, windows, subscription = _feed_sessions(keys, per_key)
    closing = time.perf_counter()
    scheduler.advance_to(per_key + 10.0)
    close_s = time.perf_counter() - closing
    assert len(windows) == keys
    subscription.dispose()
    del windows, subscription, scheduler
    gc.collect()

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    _, scheduler, windows, subscription = _feed_sessions(keys, per_key)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    windows.clear()  # what the consumer keeps is not the operator's
    scheduler.advance_to(per_key + 10.0)
    windows.clear()
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    subscription.dispose()
    left = after - base
    items = keys * per_key
    label = f"{keys // 1000}k keys x {per_key}"
    return [
        Row("windows", f"window_session, {label}", f"{elapsed / items * 1e6:.2f} us/item"),
        Row("windows", f"window_session, closing {keys // 1000}k sessions", f"{close_s:.2f} s"),
        Row("windows", "window_session, open sessions hold", f"{held / 2**20:.1f} MiB"),
        Row("windows", "window_session, peak (traced)", f"{(peak - base) / 2**20:.1f} MiB"),
        Row(
            "windows",
            "window_session, left after sessions close",
            f"{left / 2**20:.2f} MiB",
            "< 10% of open",
            left < held * 0.1,
        ),
    ]


def run(quick: bool) -> list[Row]:
    if quick:
        return _count_windows(50_000, 1) + _sessions(5_000, 3)
    return _count_windows(1_000_000, 5) + _sessions(100_000, 3)
