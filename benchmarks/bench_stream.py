"""The runtime: events/s through a ``pfrx.Stream`` sent from producer threads.

``Stream(capability_filter, transform, backpressure("block"), metrics_tap)`` with the drain on
its dedicated thread; one and four producer threads send 200k events in all. The ledger is
checked at the end (accepted = emitted + dropped, nothing refused), so a fast but lossy run
cannot pass.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pfrx
from pfrx import operators as pf

from ._table import Row

GROUP = "stream"
FileCap = pfrx.CapabilityFamily("file", actions=("read", "write"), implies={"write": ("read",)})
CONTEXTS = [
    pfrx.Context(f"u{i}", f"s{i}", [FileCap.read(f"/home/u{i}")] if i % 10 else [])
    for i in range(100)
]


def _required(event: tuple[int, str]) -> pfrx.Capability:
    return FileCap.read(event[1])


def _one_run(n: int, producers: int) -> tuple[float, pfrx.MetricsSnapshot, int]:
    stream = pfrx.Stream(
        pf.capability_filter(_required),
        pf.transform(lambda event, context: (event[0], event[1], context.user_id)),
        pf.backpressure("block", buffer_size=10_000, batch_size=100),
        pf.metrics_tap(),
        name="bench",
    )
    delivered = [0]

    def count(_: Any) -> None:
        delivered[0] += 1

    stream.results.subscribe(count)
    per = n // producers

    def produce(offset: int) -> None:
        send = stream.send
        for i in range(offset, offset + per):
            user = i % 100
            send((i, f"/home/u{user}/f{i % 7}"), CONTEXTS[user])

    threads = [threading.Thread(target=produce, args=(k * per,)) for k in range(producers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.close()
    stream.join(timeout=60)
    elapsed = time.perf_counter() - started
    return elapsed, stream.metrics(), delivered[0]


def run(quick: bool) -> list[Row]:
    n = 20_000 if quick else 200_000
    rows = []
    for producers in (1, 4):
        elapsed, snap, delivered = _one_run(n, producers)
        sent = n // producers * producers
        assert snap.received == sent, "a send was refused"
        assert snap.emitted == delivered
        assert snap.received == snap.emitted + snap.dropped, "the ledger does not balance"
        rows.append(
            Row(
                GROUP,
                f"Stream send -> results, {producers} producer thread(s), {sent:,} events",
                f"{sent / elapsed:,.0f} events/s; {snap.dropped:,} denied, none lost; "
                f"peak buffer {snap.peak_buffer_utilization:.0%}",
            )
        )
    return rows
