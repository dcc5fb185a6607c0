"""Observability's cost: a Stream's time with ``/metrics`` scraped 50 times during the run.

The pipeline of ``bench_stream`` (capability_filter, transform, backpressure("block"),
metrics_tap) with four producer threads is run unobserved (the server idle, reading
another, empty registry) and observed: the server's registry holds the stream (so its
dashboard sampler reads it every second) and a scraper process (as Prometheus is) reads
``/metrics`` 50 times, back to back from the start of the run, so all of them contend with
the producers (the row says how many completed before the run ended). Runs alternate; the
overhead is the ratio of the medians. The ledger is checked on every run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
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


def _one_run(
    n: int, served: _SwitchableRegistry, scrape_url: str | None
) -> tuple[float, float, int]:
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

    scraper = _Scraper(scrape_url) if scrape_url else None
    threads = [threading.Thread(target=produce, args=(k * per,)) for k in range(PRODUCERS)]
    started = time.perf_counter()
    cpu = time.process_time()
    if scraper:
        scraper.go()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.close()
    stream.join(timeout=60)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    ended = time.monotonic()
    during = scraper.finish(ended) if scraper else 0
    snap = stream.metrics()
    sent = per * PRODUCERS
    assert snap.received == sent, "a send was refused"
    assert snap.received == snap.emitted + snap.dropped, "the ledger does not balance"
    return elapsed, cpu, during


# Prometheus scrapes from its own process: so does this scraper, so that only the server's
# side of each scrape (parse, read the streams, format) runs in the pipeline's process.
_SCRAPER = """
import sys, time, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
sys.stdin.readline()  # wait for the run to start
for _ in range(count):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert b"pfrx_received_total" in response.read()
    print(time.monotonic(), flush=True)
"""


class _Scraper:
    """A separate process reading ``/metrics`` SCRAPES times, back to back, once told to go."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SCRAPER, url, str(SCRAPES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self, ended: float) -> int:
        """How many scrapes completed before ``ended`` (time.monotonic, shared by processes)."""
        out, _ = self.process.communicate(timeout=120)
        assert self.process.returncode == 0, "the scraper failed"
        return sum(1 for line in out.split() if float(line) <= ended)


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
    rounds = 2 if quick else 7
    switch = _SwitchableRegistry()
    plain: list[tuple[float, float]] = []
    observed: list[tuple[float, float]] = []
    scrapes: list[int] = []
    with serve(registry=switch) as server:
        url = server.url + "/metrics"
        _one_run(n // 4, switch, None)  # warm-up
        for index in range(rounds):
            # Alternate which variant goes first, so neither always runs on a warmer process.
            for variant in ("plain", "observed") if index % 2 else ("observed", "plain"):
                if variant == "plain":
                    plain.append(_one_run(n, switch, None)[:2])
                else:
                    elapsed, cpu, count = _one_run(n, switch, url)
                    observed.append((elapsed, cpu))
                    scrapes.append(count)
    wall = [statistics.median(t[0] for t in runs) for runs in (plain, observed)]
    cpu = [statistics.median(t[1] for t in runs) for runs in (plain, observed)]
    # CPU time of the pipeline's process is the cost a scrape adds to it; wall time on a
    # shared machine mostly measures the neighbours. Both are shown; CPU time is judged.
    overhead = cpu[1] / cpu[0] - 1
    return [
        Row(
            GROUP,
            f"Stream, {PRODUCERS} producers, {n:,} events, /metrics scraped {SCRAPES}x",
            f"{overhead:+.1%} CPU time ({cpu[0] * 1e3:,.0f} -> {cpu[1] * 1e3:,.0f} ms), "
            f"{wall[1] / wall[0] - 1:+.1%} wall ({wall[0] * 1e3:,.0f} -> {wall[1] * 1e3:,.0f} "
            f"ms); medians of {rounds}; {min(scrapes)}-{max(scrapes)} scrapes/run; "
            "ledger exact",
            "< 5%",
            overhead < 0.05,
        )
    ]
