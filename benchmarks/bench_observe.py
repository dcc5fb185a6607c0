"""Observability's cost: a Stream's time with ``/metrics`` scraped 50 times during the run.

The pipeline of ``bench_stream`` (capability_filter, transform, backpressure("block"),
metrics_tap) with four producer threads is run unobserved (the server idle, reading
another, empty registry) and observed: the server's registry holds the stream (so its
dashboard sampler reads it every second) and a scraper reads ``/metrics`` 50 times, back to
back from the start of the run (the worst case for 50 scrapes: all of them contend with the
producers). Runs alternate; the overhead is the ratio of the medians. The ledger is checked
on every run.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from typing import Any

import pfrx
from pfrx import operators as pf

from ._table import Row

GROUP = "observe"
PRODUCERS = 4
SCRAPES = 50
FileCap = pfrx.CapabilityFamily("file", actions=("read", "write"))
CONTEXTS = [
    pfrx.Context(f"u{i}", f"s{i}", [FileCap.read(f"/home/u{i}")] if i % 10 else [])
    for i in range(100)
]


def _required(event: tuple[int, str]) -> pfrx.Capability:
    return FileCap.read(event[1])


def _one_run(n: int, served: _SwitchableRegistry, scrape_url: str | None) -> tuple[float, int]:
    registry = pfrx.StreamRegistry()
    stream = pfrx.Stream(
        pf.capability_filter(_required),
        pf.transform(lambda event, context: (event[0], context.user_id)),
        pf.backpressure("block", buffer_size=10_000, batch_size=100),
        pf.metrics_tap(),
        name="bench",
    )
    registry.register("bench", stream)
    served.current = registry if scrape_url else pfrx.StreamRegistry()
    per = n // PRODUCERS

    def produce(offset: int) -> None:
        send = stream.send
        for i in range(offset, offset + per):
            user = i % 100
            send((i, f"/home/u{user}/f{i % 7}"), CONTEXTS[user])

    scraped = [0]
    done = threading.Event()

    def scrape() -> None:
        assert scrape_url is not None
        while scraped[0] < SCRAPES and not done.is_set():
            with urllib.request.urlopen(scrape_url, timeout=10) as response:
                assert b"pfrx_received_total" in response.read()
            scraped[0] += 1

    threads = [threading.Thread(target=produce, args=(k * per,)) for k in range(PRODUCERS)]
    scraper = threading.Thread(target=scrape) if scrape_url else None
    started = time.perf_counter()
    if scraper:
        scraper.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.close()
    stream.join(timeout=60)
    elapsed = time.perf_counter() - started
    done.set()
    if scraper:
        scraper.join()
    snap = stream.metrics()
    sent = per * PRODUCERS
    assert snap.received == sent, "a send was refused"
    assert snap.received == snap.emitted + snap.dropped, "the ledger does not balance"
    return elapsed, scraped[0]


class _SwitchableRegistry:
    """The registry the server reads, pointed at each run's own registry in turn."""

    def __init__(self) -> None:
        self.current: Any = pfrx.StreamRegistry()

    def names(self) -> list[str]:
        names: list[str] = self.current.names()
        return names

    def get(self, name: str, default: Any = None) -> Any:
        return self.current.get(name, default)


def run(quick: bool) -> list[Row]:
    from pfrx.observe import serve

    n = 20_000 if quick else 200_000
    rounds = 2 if quick else 5
    switch = _SwitchableRegistry()
    plain: list[float] = []
    observed: list[float] = []
    scrapes: list[int] = []
    with serve(registry=switch) as server:
        url = server.url + "/metrics"
        _one_run(n // 4, switch, None)  # warm-up
        for index in range(rounds):
            # Alternate which variant goes first, so neither always runs on a warmer process.
            for variant in ("plain", "observed") if index % 2 else ("observed", "plain"):
                if variant == "plain":
                    plain.append(_one_run(n, switch, None)[0])
                else:
                    elapsed, count = _one_run(n, switch, url)
                    observed.append(elapsed)
                    scrapes.append(count)
    base, with_scrapes = statistics.median(plain), statistics.median(observed)
    overhead = with_scrapes / base - 1
    return [
        Row(
            GROUP,
            f"Stream, {PRODUCERS} producers, {n:,} events: /metrics scraped during the run",
            f"{overhead:+.1%} time ({base * 1e3:,.0f} ms -> {with_scrapes * 1e3:,.0f} ms, "
            f"median of {rounds}; {min(scrapes)}-{max(scrapes)} scrapes/run), ledger exact",
            "< 5%",
            overhead < 0.05,
        )
    ]
