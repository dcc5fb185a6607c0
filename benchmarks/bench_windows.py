"""Window operators: count windows against RxPY's ``buffer_with_count``; sessions at scale;
keyed event-time windows against a plain loop; checkpoints of many open sessions.

- ``window_count(100)`` against ``ops.buffer_with_count(100)`` on the same 1M envelopes,
  both fed by ``reactivex.from_iterable`` (target: at least 3x RxPY's throughput).
- ``window_session`` with 100k distinct keys (three items each) on a ``TestScheduler``:
  time per item, then the memory the open sessions hold (``tracemalloc``) and what is left
  once the timers have closed them (memory returns: a closed session is freed).
- Keyed tumbling event-time ``window_time`` (100k keys x 10 items, windows of 5 time units,
  so each key's windows fire halfway and at the end) against a plain loop grouping the same
  envelopes into a dict of lists by (key, window) and building the same ``Window`` records
  (target: at least half its speed); then what the operator still holds once every window
  has fired (memory returns).
- ``window_session`` in event time with 100k open sessions: checkpoint (``snapshot`` plus
  ``checkpoint.dumps``) and restore (``checkpoint.loads`` plus re-subscribing with it), each
  at most 1 s.
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
from pfrx import checkpoint
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


def _key(env: pfrx.Envelope) -> Any:
    return env.event[0]


def _stamp(env: pfrx.Envelope) -> Any:
    return env.event[1]


def _keyed_items(keys: int, per_key: int) -> list[pfrx.Envelope]:
    return [pfrx.Envelope((k, float(t)), CTX, 0.0) for t in range(per_key) for k in range(keys)]


def _keyed_operator(items: list[pfrx.Envelope], sink: list[Any]) -> Any:
    op = pf.window_time(5.0, key=_key, timestamp=_stamp)
    return reactivex.from_iterable(items).pipe(op).subscribe(sink.append)


def _keyed_plain(items: list[pfrx.Envelope], sink: list[Any]) -> None:
    """The same grouping as a plain loop: a dict of lists by (key, window index)."""
    span = 5.0
    groups: dict[tuple[Any, int], list[pfrx.Envelope]] = {}
    for envelope in items:
        key = _key(envelope)
        index = int(_stamp(envelope) // span)
        bucket = groups.get((key, index))
        if bucket is None:
            groups[(key, index)] = [envelope]
        else:
            bucket.append(envelope)
    for (key, index), bucket in sorted(groups.items(), key=lambda kv: kv[0][1]):
        sink.append(pfrx.Window(key, index * span, index * span + span, bucket))


def _keyed_windows(keys: int, per_key: int, runs: int) -> list[Row]:
    items = _keyed_items(keys, per_key)
    sink: list[Any] = []
    expected = keys * ((per_key + 4) // 5)

    def ours() -> None:
        sink.clear()
        _keyed_operator(items, sink)
        assert len(sink) == expected

    def plain() -> None:
        sink.clear()
        _keyed_plain(items, sink)
        assert len(sink) == expected

    times = interleaved({"pfrx": ours, "plain": plain}, runs)
    ours_s, plain_s = times["pfrx"][0], times["plain"][0]
    n = len(items)
    ratio = plain_s / ours_s

    # Memory: what the operator holds while windows are open, and once they have all fired.
    sink.clear()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    subject: Subject[pfrx.Envelope] = Subject()
    op = pf.window_time(5.0, key=_key, timestamp=_stamp)
    subscription = subject.pipe(op).subscribe(sink.append, scheduler=TestScheduler())
    for envelope in items[: n // 2]:
        subject.on_next(envelope)
    sink.clear()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    subject.on_next(pfrx.Watermark(float(per_key) + 5))  # every window fires
    sink.clear()
    gc.collect()
    left = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    subscription.dispose()
    label = f"{keys // 1000}k keys x {per_key}"
    return [
        Row(
            "windows",
            f"keyed window_time (event time), {label}",
            f"{n / ours_s / 1e6:.2f} M items/s",
        ),
        Row(
            "windows",
            f"plain dict-of-lists grouping, {label}",
            f"{n / plain_s / 1e6:.2f} M items/s",
        ),
        Row(
            "windows",
            "keyed window_time vs plain loop",
            f"{ratio:.2f}x",
            ">= 0.5x",
            ratio >= 0.5,
        ),
        Row("windows", "keyed window_time, open windows hold", f"{held / 2**20:.1f} MiB"),
        Row(
            "windows",
            "keyed window_time, left after windows fire",
            f"{left / 2**20:.2f} MiB",
            "< 10% of open",
            left < held * 0.1,
        ),
    ]


def _session_checkpoint(keys: int) -> list[Row]:
    def subscribe(restore: checkpoint.Checkpoint | None) -> tuple[Any, Any, Any, list[Any]]:
        subject: Subject[pfrx.Envelope] = Subject()
        windows: list[Any] = []
        op = pf.window_session(
            5.0,
            key=_key,
            timestamp=_stamp,
            allowed_lateness=10.0,
            on_drop=lambda _: None,  # the first subscription is disposed with sessions open
        )
        with checkpoint.checkpointing(restore) as scope:
            subscription = subject.pipe(op).subscribe(windows.append, scheduler=TestScheduler())
        return subject, scope, subscription, windows

    subject, scope, subscription, _ = subscribe(None)
    for k in range(keys):
        subject.on_next(pfrx.Envelope((k, 1.0), CTX, 0.0))
    gc.collect()
    started = time.perf_counter()
    data = checkpoint.dumps(scope.snapshot())
    save_s = time.perf_counter() - started
    subscription.dispose()
    gc.collect()
    started = time.perf_counter()
    subject, scope, subscription, windows = subscribe(checkpoint.loads(data))
    restore_s = time.perf_counter() - started
    subject.on_next(pfrx.Watermark(100.0))  # the restored sessions fire as the first would have
    assert len(windows) == keys and all(len(w) == 1 for w in windows)
    subscription.dispose()
    label = f"{keys // 1000}k open sessions"
    return [
        Row(
            "windows",
            f"checkpoint of {label} (snapshot + dumps)",
            f"{save_s:.2f} s ({len(data) / 2**20:.0f} MiB)",
            "<= 1 s",
            save_s <= 1.0,
        ),
        Row(
            "windows",
            f"restore of {label} (loads + subscribe)",
            f"{restore_s:.2f} s",
            "<= 1 s",
            restore_s <= 1.0,
        ),
    ]


def run(quick: bool) -> list[Row]:
    if quick:
        return (
            _count_windows(50_000, 1)
            + _sessions(5_000, 3)
            + _keyed_windows(5_000, 10, 1)
            + _session_checkpoint(5_000)
        )
    return (
        _count_windows(1_000_000, 5)
        + _sessions(100_000, 3)
        + _keyed_windows(100_000, 10, 3)
        + _session_checkpoint(100_000)
    )
