"""backpressure: cross-thread throughput and latency, and memory under a 10x overload.

- Throughput: one producer thread sends integers through ``backpressure("block",
  batch_size=100)`` to a drain on its dedicated thread; items/s from the first send to the
  last delivery (target >= 500k items/s).
- Latency: the same pipeline carrying ``perf_counter_ns`` stamps; p50 and p99 from send to
  delivery, at full speed (the buffer is full, so this is mostly queueing) and paced.
- Memory: 1M items against a consumer ten times slower than the producer, for each dropping
  strategy; the growth of the resident set (sampled every few ms) must stay bounded by the
  buffer, not by the number of items sent.
- Producer path: the cost of one ``on_next`` on one thread, with the drain never running (a
  ``TestScheduler`` that is not advanced), for an item that finds room and for one that finds
  the buffer full. Less sensitive to a busy machine than the cross-thread figures (CPU time of
  the calling thread, best of several runs), so it is the row to compare before and after a
  change to the producer path.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from pfrx import operators as pf

from ._table import Row

GROUP = "backpressure"


def _pushed() -> tuple[reactivex.Observable[Any], list[abc.ObserverBase[Any]]]:
    observers: list[abc.ObserverBase[Any]] = []

    def subscribe(observer: abc.ObserverBase[Any], _: Any = None) -> abc.DisposableBase:
        observers.append(observer)
        return Disposable()

    return reactivex.create(subscribe), observers


def _run(
    operator: Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]],
    consumer: Callable[[Any], None],
    send_all: Callable[[Callable[[Any], None]], None],
) -> float:
    """Seconds from the first send to the completion seen downstream."""
    source, observers = _pushed()
    finished = threading.Event()
    source.pipe(operator).subscribe(consumer, lambda _: finished.set(), finished.set)
    (observer,) = observers
    gc.collect()
    started = time.perf_counter()
    send_all(observer.on_next)
    observer.on_completed()
    finished.wait(120)
    return time.perf_counter() - started


def _throughput(items: int) -> Row:
    count = [0]

    def consumer(_: Any) -> None:
        count[0] += 1

    def send_all(send: Callable[[Any], None]) -> None:
        for i in range(items):
            send(i)

    best = 0.0
    for _ in range(3):
        count[0] = 0
        seconds = _run(pf.backpressure("block", batch_size=100), consumer, send_all)
        assert count[0] == items
        best = max(best, items / seconds)
    return Row(
        GROUP,
        f"cross-thread throughput, block, batch 100 ({items:,} items)",
        f"{best:,.0f} items/s",
        ">= 500,000 items/s",
        best >= 500_000,
    )


def _latency(items: int, pace_every: int | None) -> Row:
    latencies: list[int] = []
    clock = time.perf_counter_ns

    def consumer(stamp: int) -> None:
        latencies.append(clock() - stamp)

    def send_all(send: Callable[[Any], None]) -> None:
        for i in range(items):
            send(clock())
            if pace_every and i % pace_every == 0:
                time.sleep(0.0005)

    _run(pf.backpressure("block", batch_size=100), consumer, send_all)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] / 1000
    p99 = latencies[int(len(latencies) * 0.99)] / 1000
    how = "full speed, buffer full" if pace_every is None else f"paced, sleep every {pace_every}"
    return Row(GROUP, f"send->delivery latency ({how})", f"p50 {p50:,.0f} us, p99 {p99:,.0f} us")


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def _overload(strategy: str, items: int, buffer_size: int) -> Row:
    # The consumer spins ten times as long per item as a send costs the producer.
    sample = 5_000
    source, observers = _pushed()
    source.pipe(pf.backpressure("drop_newest", buffer_size=sample + 1)).subscribe(lambda _: None)
    started = time.perf_counter()
    for i in range(sample):
        observers[0].on_next(i)
    per_send = (time.perf_counter() - started) / sample
    spin = 10 * per_send

    delivered = [0]
    peak = [0.0]
    stop = threading.Event()
    clock = time.perf_counter

    def consumer(_: Any) -> None:
        delivered[0] += 1
        until = clock() + spin
        while clock() < until:
            pass

    def sampler() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mib())
            stop.wait(0.005)

    def send_all(send: Callable[[Any], None]) -> None:
        for i in range(items):
            send(i)

    dropped = [0]

    def on_drop(_: Any) -> None:
        dropped[0] += 1

    gc.collect()
    baseline = _rss_mib()
    peak[0] = baseline
    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    seconds = _run(
        pf.backpressure(strategy, buffer_size=buffer_size, on_drop=on_drop),
        consumer,
        send_all,
    )
    stop.set()
    watcher.join()
    growth = peak[0] - baseline
    assert delivered[0] + dropped[0] == items, (strategy, delivered[0], dropped[0])
    limit = 16.0
    return Row(
        GROUP,
        f"10x overload, {strategy}, {items:,} items, buffer {buffer_size:,}",
        f"RSS +{growth:.1f} MiB, delivered {delivered[0]:,} ({delivered[0] / items:.1%}), "
        f"{seconds:.1f}s",
        f"<= {limit:.0f} MiB",
        growth <= limit,
    )


def _producer_path(strategy: str, full: bool, items: int) -> Row:
    """CPU time per ``on_next`` with no drain running: every item finds room, or (``full``)
    every item finds the buffer full and one item is lost (``latest`` always has one pending
    item, so it has only the full case)."""
    lost = [0]

    def on_drop(_: Any) -> None:
        lost[0] += 1

    best = float("inf")
    for _ in range(5):
        source, observers = _pushed()
        buffer_size = 1_000 if full else items + 1
        source.pipe(
            pf.backpressure(
                strategy, buffer_size=buffer_size, scheduler=TestScheduler(), on_drop=on_drop
            )
        ).subscribe(lambda _: None)
        send = observers[0].on_next
        if full:
            for i in range(1 if strategy == "latest" else buffer_size):
                send(i)  # fill the buffer first
        lost[0] = 0
        gc.collect()
        started = time.thread_time()
        for i in range(items):
            send(i)
        best = min(best, time.thread_time() - started)
        assert lost[0] == (items if full else 0), (strategy, lost[0])
    how = "buffer full" if full else "room"
    return Row(GROUP, f"producer on_next, {strategy}, {how}", f"{best / items * 1e9:,.0f} ns/item")


def run(quick: bool) -> list[Row]:
    items = 50_000 if quick else 1_000_000
    # Memory first, before the other runs grow the heap the RSS is measured against.
    rows = [
        _overload(strategy, items, 10_000)
        for strategy in ("drop_oldest", "drop_newest", "latest", "adaptive")
    ]
    path_items = 20_000 if quick else 200_000
    for strategy in ("drop_oldest", "drop_newest", "block", "error", "adaptive"):
        rows.append(_producer_path(strategy, False, path_items))
    for strategy in ("drop_oldest", "drop_newest", "latest", "adaptive"):
        rows.append(_producer_path(strategy, True, path_items))
    rows.append(_throughput(items))
    rows.append(_latency(items if quick else 200_000, None))
    rows.append(_latency(10_000 if quick else 50_000, 50))
    return rows


if __name__ == "__main__":
    from ._table import print_table

    print_table(run(quick=False))
