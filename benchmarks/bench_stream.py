"""The runtime: events/s through a ``pfrx.Stream`` sent from producer threads.

``Stream(capability_filter, transform, backpressure("block"), metrics_tap)`` with the drain on
its dedicated thread. Each run sends the same total: from one producer thread with ``send``,
from four producer threads with ``send``, and from one thread with ``send_many`` in batches
of 100. The runs take turns, five rounds; rates are the best of the rounds, ratios the median
of each round's ratio (runs of one round are close in time, so a machine whose load drifts
still compares like with like). Each run's ledger is checked at the end
(accepted = emitted + dropped, nothing refused), so a fast but lossy run cannot pass.

Targets (issue "fast as written"): four producers reach at least 0.9x the rate of one (more
producers must never mean less throughput), and ``send_many`` at least 2x the per-event
``send`` rate. The last two rows measure the entry alone (a stream without operators), where
the batch saves what it can save: what is left in the full pipeline is the operators' own
per-item work.
"""

from __future__ import annotations

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


def _empty_stream() -> pfrx.Stream:
    return pfrx.Stream(name="bench-entry")


def _events(start: int, stop: int, user: int) -> list[tuple[int, str]]:
    return [(i, f"/home/u{user}/f{i % 7}") for i in range(start, stop)]


def _per_event(stream: pfrx.Stream, start: int, stop: int) -> None:
    send = stream.send
    for block in range(start, stop, BATCH):
        user = (block // BATCH) % USERS
        context = CONTEXTS[user]
        for event in _events(block, min(block + BATCH, stop), user):
            send(event, context)


def _batched(stream: pfrx.Stream, start: int, stop: int) -> None:
    send_many = stream.send_many
    for block in range(start, stop, BATCH):
        user = (block // BATCH) % USERS
        send_many(_events(block, min(block + BATCH, stop), user), CONTEXTS[user])


def _one_run(
    make: Callable[[], pfrx.Stream],
    n: int,
    producers: int,
    produce: Callable[[pfrx.Stream, int, int], None],
) -> tuple[float, pfrx.MetricsSnapshot, float]:
    """Events/s (wall clock), the final snapshot, and CPU seconds per event (all threads)."""
    stream = make()
    delivered = [0]

    def count(_: Any) -> None:
        delivered[0] += 1

    stream.results.subscribe(count)
    per = n // producers
    threads = [
        threading.Thread(target=produce, args=(stream, k * per, (k + 1) * per))
        for k in range(producers)
    ]
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
    return sent / elapsed, snap, cpu / sent


def run(quick: bool) -> list[Row]:
    n = 20_000 if quick else 200_000
    rounds = 1 if quick else 5
    cases: dict[str, tuple[Callable[[], pfrx.Stream], int, Any]] = {
        "send, 1 producer": (_full_stream, 1, _per_event),
        "send, 4 producers": (_full_stream, 4, _per_event),
        "send_many, 1 producer": (_full_stream, 1, _batched),
        "entry: send": (_empty_stream, 1, _per_event),
        "entry: send_many": (_empty_stream, 1, _batched),
    }
    rates: dict[str, list[float]] = {label: [] for label in cases}
    cpus: dict[str, list[float]] = {label: [] for label in cases}
    snaps: dict[str, pfrx.MetricsSnapshot] = {}
    for _ in range(rounds):
        for label, (make, producers, produce) in cases.items():
            rate, snap, cpu = _one_run(make, n, producers, produce)
            rates[label].append(rate)
            cpus[label].append(cpu)
            snaps[label] = snap

    def cpu_us(label: str) -> str:
        # CPU time of the whole process per event: what the work costs, whatever else the
        # machine is running (wall-clock rates on a shared machine drift with its load).
        return f"{min(cpus[label]) * 1e6:.1f} us CPU/event"

    def ratio(a: str, b: str) -> float:
        # Runs of one round sit next to each other in time: their ratio is the fair one on
        # a machine whose load drifts. The median over rounds.
        return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))

    best = {label: max(values) for label, values in rates.items()}
    four = ratio("send, 4 producers", "send, 1 producer")
    many = ratio("send_many, 1 producer", "send, 1 producer")
    entry = ratio("entry: send_many", "entry: send")
    denied = snaps["send, 1 producer"].dropped
    return [
        Row(
            GROUP,
            f"Stream send -> results, 1 producer thread, {n:,} events",
            f"{best['send, 1 producer']:,.0f} events/s, {cpu_us('send, 1 producer')}; "
            f"{denied:,} denied, none lost",
        ),
        Row(
            GROUP,
            f"Stream send -> results, 4 producer threads, {n:,} events",
            f"{best['send, 4 producers']:,.0f} events/s ({four:.2f}x one producer), "
            f"{cpu_us('send, 4 producers')}",
            ">= 0.9x one producer",
            four >= 0.9,
        ),
        Row(
            GROUP,
            f"Stream send_many({BATCH}) -> results, 1 producer, {n:,} events",
            f"{best['send_many, 1 producer']:,.0f} events/s ({many:.2f}x send), "
            f"{cpu_us('send_many, 1 producer')}",
            ">= 2x send",
            many >= 2,
        ),
        Row(
            GROUP,
            f"Stream entry alone (no operators): send_many({BATCH}) vs send",
            f"{best['entry: send_many']:,.0f} vs {best['entry: send']:,.0f} events/s "
            f"({entry:.2f}x)",
            ">= 2x send",
            entry >= 2,
        ),
    ]
