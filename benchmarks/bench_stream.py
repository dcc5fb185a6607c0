"""The runtime: events/s through a ``pfrx.Stream`` sent from producer threads.

Three streams: the *full pipeline* ``Stream(capability_filter, transform,
backpressure("block"), metrics_tap)``, whose results leave on the buffer's drain thread; the
same without the buffer (*no thread boundary*: results come back on the sending thread); and
the *entry alone* (no operators: what the stream itself costs per event). Each run sends the
same 100,000 events, made before the clock starts: from one producer thread with ``send``,
from four producer threads with ``send`` (full pipeline), or from one thread with
``send_many`` in batches of 100. Every run's ledger is checked at the end (accepted =
emitted + dropped, the expected denials, nothing refused), so a fast but lossy run cannot
pass.

Fair on a shared 2-core machine: the runs take turns in rounds (the order reversed every
other round, so a drift in the machine's load hits both sides alike), and each ratio is the
median over rounds of the ratio within one round. Each run records its wall-clock rate and
the CPU time of the whole process (every thread) per event.

- ``send_many`` vs ``send`` (one producer thread each, the same threads otherwise): CPU
  time per event, which is what the call saves and what other processes on the machine do
  not move. The wall-clock ratio is shown beside it.
- Four producers vs one: wall-clock rate, since a producer that waits (on a lock, for room)
  costs time and no CPU, and CPU time would hide exactly that. The CPU ratio is shown beside
  it: it says whether four producers cost more work per event.

Targets (issue "fast as written"): four producers reach at least 0.9x the rate of one (more
producers must never mean less throughput), and ``send_many`` at least 2x the per-event
``send`` rate. ``send_many`` saves the stream's own per-event cost (one hand-off, one count;
the entry-alone row is that cost) and, in the full pipeline, the operators' per-event calls:
the batch runs through ``capability_filter`` and ``transform`` as one list (one loop each),
into the buffer under one lock with one wake of the drain. The drain hands each turn on as
one list, through ``metrics_tap`` to the results, for ``send`` and ``send_many`` alike (so
the per-event ``send`` gains from it too). What is left per event is the user's functions,
the envelopes and the subscriber.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pfrx
from pfrx import operators as pf

from ._table import Row

GROUP = "stream"
BATCH = 100
FileCap = pfrx.CapabilityFamily("file", actions=("read", "write"), implies={"write": ("read",)})
USERS = 100
CONTEXTS = [
    pfrx.Context(f"u{i}", f"s{i}", [FileCap.read(f"/home/u{i}")] if i % 10 else [])
    for i in range(USERS)
]


def _required(event: tuple[int, str]) -> pfrx.Capability:
    return FileCap.read(event[1])


def _full_stream() -> pfrx.Stream:
    return pfrx.Stream(
        pf.capability_filter(_required),
        pf.transform(lambda event, context: (event[0], event[1], context.user_id)),
        pf.backpressure("block", buffer_size=10_000, batch_size=100),
        pf.metrics_tap(),
        name="bench",
    )


def _unbuffered_stream() -> pfrx.Stream:
    return pfrx.Stream(
        pf.capability_filter(_required),
        pf.transform(lambda event, context: (event[0], event[1], context.user_id)),
        pf.metrics_tap(),
        name="bench-unbuffered",
    )


def _empty_stream() -> pfrx.Stream:
    return pfrx.Stream(name="bench-entry")


def _events(start: int, stop: int, user: int) -> list[tuple[int, str]]:
    return [(i, f"/home/u{user}/f{i % 7}") for i in range(start, stop)]


Blocks = list[tuple[list[tuple[int, str]], pfrx.Context]]


def _blocks(start: int, stop: int) -> Blocks:
    """A producer's events, made before the clock starts: the runs time the sending."""
    return [
        (
            _events(block, min(block + BATCH, stop), (block // BATCH) % USERS),
            CONTEXTS[(block // BATCH) % USERS],
        )
        for block in range(start, stop, BATCH)
    ]


def _per_event(stream: pfrx.Stream, blocks: Blocks) -> None:
    send = stream.send
    for events, context in blocks:
        for event in events:
            send(event, context)


def _batched(stream: pfrx.Stream, blocks: Blocks) -> None:
    send_many = stream.send_many
    for events, context in blocks:
        send_many(events, context)


def _one_run(
    make: Callable[[], pfrx.Stream],
    n: int,
    producers: int,
    produce: Callable[[pfrx.Stream, Blocks], None],
) -> tuple[float, float]:
    """Events/s (wall clock) and CPU seconds per event (the whole process, every thread)."""
    stream = make()
    delivered = [0]

    def count(_: Any) -> None:
        delivered[0] += 1

    stream.results.subscribe(count)
    per = n // producers
    threads = [
        threading.Thread(target=produce, args=(stream, _blocks(k * per, (k + 1) * per)))
        for k in range(producers)
    ]
    gc.collect()
    started = time.perf_counter()
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.close()
    stream.join(timeout=120)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    snap = stream.metrics()
    sent = per * producers
    assert snap.received == sent, "a send was refused"
    assert snap.emitted == delivered[0]
    assert snap.received == snap.emitted + snap.dropped, "the ledger does not balance"
    assert snap.dropped == (0 if make is _empty_stream else sent // BATCH // 10 * BATCH)
    return sent / elapsed, cpu / sent


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    rounds = 1 if quick else 9
    cases: dict[str, tuple[Callable[[], pfrx.Stream], int, Any]] = {
        "send, 1 producer": (_full_stream, 1, _per_event),
        "send, 4 producers": (_full_stream, 4, _per_event),
        "send_many, 1 producer": (_full_stream, 1, _batched),
        "unbuffered: send": (_unbuffered_stream, 1, _per_event),
        "unbuffered: send_many": (_unbuffered_stream, 1, _batched),
        "entry: send": (_empty_stream, 1, _per_event),
        "entry: send_many": (_empty_stream, 1, _batched),
    }
    rates: dict[str, list[float]] = {label: [] for label in cases}
    cpus: dict[str, list[float]] = {label: [] for label in cases}
    order = list(cases)
    for round_ in range(rounds):
        for label in order if round_ % 2 == 0 else order[::-1]:
            make, producers, produce = cases[label]
            rate, cpu = _one_run(make, n, producers, produce)
            rates[label].append(rate)
            cpus[label].append(cpu)

    def wall(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))

    def by_cpu(a: str, b: str) -> float:
        # Events per CPU-second, a over b: CPU seconds per event, b over a.
        return statistics.median(y / x for x, y in zip(cpus[a], cpus[b], strict=True))

    def us(label: str) -> str:
        return f"{statistics.median(cpus[label]) * 1e6:.1f} us CPU/event"

    best = {label: max(values) for label, values in rates.items()}
    four, four_cpu = (
        wall("send, 4 producers", "send, 1 producer"),
        1 / by_cpu("send, 4 producers", "send, 1 producer"),
    )
    many, many_wall = (
        by_cpu("send_many, 1 producer", "send, 1 producer"),
        wall("send_many, 1 producer", "send, 1 producer"),
    )
    unbuffered, unbuffered_wall = (
        by_cpu("unbuffered: send_many", "unbuffered: send"),
        wall("unbuffered: send_many", "unbuffered: send"),
    )
    entry, entry_wall = (
        by_cpu("entry: send_many", "entry: send"),
        wall("entry: send_many", "entry: send"),
    )
    pairs = f"median of {rounds} interleaved rounds"
    return [
        Row(
            GROUP,
            f"Stream send -> results, 1 producer thread, {n:,} events",
            f"{best['send, 1 producer']:,.0f} events/s best, {us('send, 1 producer')}; "
            f"{n // BATCH // 10 * BATCH:,} denied, none lost",
        ),
        Row(
            GROUP,
            f"Stream send, 4 producer threads vs 1 (wall clock, {pairs})",
            f"{four:.2f}x one producer ({best['send, 4 producers']:,.0f} events/s best); "
            f"CPU per event {four_cpu:.2f}x one producer's",
            ">= 0.9x one producer",
            four >= 0.9,
        ),
        Row(
            GROUP,
            f"Stream send_many({BATCH}) vs send, full pipeline (CPU time, {pairs})",
            f"{many:.2f}x send ({us('send_many, 1 producer')} vs {us('send, 1 producer')}); "
            f"wall clock {many_wall:.2f}x",
            ">= 2x send",
            many >= 2,
        ),
        Row(
            GROUP,
            f"Stream send_many({BATCH}) vs send, no thread boundary (CPU time, {pairs})",
            f"{unbuffered:.2f}x send ({us('unbuffered: send_many')} vs "
            f"{us('unbuffered: send')}); wall clock {unbuffered_wall:.2f}x",
        ),
        Row(
            GROUP,
            f"Stream entry alone (no operators): send_many({BATCH}) vs send (CPU time, {pairs})",
            f"{entry:.2f}x send ({us('entry: send_many')} vs {us('entry: send')}); "
            f"wall clock {entry_wall:.2f}x",
            ">= 2x send",
            entry >= 2,
        ),
    ]
