"""A scrape under load: producers keep sending while ``/metrics`` is read; nothing drifts."""

from __future__ import annotations

import itertools
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

import pfrx
from pfrx import operators as pf
from pfrx.observe import serve

from .conftest import ALLOWED, DENIED, FileCap, get

PRODUCERS = 4
PER_PRODUCER = 10_000
SCRAPES = 50


def totals(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("stream") != "load":
                continue
            if sample.name == "pfrx_dropped_total":
                found["dropped"] = found.get("dropped", 0) + sample.value
            elif sample.name.endswith("_total"):
                found[sample.name.removeprefix("pfrx_").removesuffix("_total")] = sample.value
    return found


@pytest.mark.threads
def test_fifty_scrapes_during_four_producers_keep_the_ledger_exact(
    registry: pfrx.StreamRegistry,
) -> None:
    stream = pfrx.Stream(
        pf.capability_filter(FileCap.read("/docs")),
        pf.transform(lambda e, c: pfrx.Reject("odd") if e % 2 else e),
        pf.backpressure("block", buffer_size=256, batch_size=32),
        name="load",
    )
    delivered = [0]
    stream.results.subscribe(lambda _: delivered.__setitem__(0, delivered[0] + 1))
    registry.register("load", stream)
    refused = []

    def produce(offset: int) -> None:
        for i in range(offset, offset + PER_PRODUCER):
            if not stream.send(i, DENIED if i % 10 == 9 else ALLOWED).ok:
                refused.append(i)

    scrapes: list[dict[str, float]] = []
    with serve(registry=registry) as server:
        threads = [
            threading.Thread(target=produce, args=(k * PER_PRODUCER,)) for k in range(PRODUCERS)
        ]
        for thread in threads:
            thread.start()
        for _ in range(SCRAPES):
            status, _, body = get(server.url + "/metrics")
            assert status == 200
            scrapes.append(totals(body.decode()))
        for thread in threads:
            thread.join(60)
        drained = threading.Event()
        for _ in range(600):  # the drain finishes what is buffered
            snap = stream.metrics()
            if snap.received == snap.emitted + snap.dropped:
                drained.set()
                break
            drained.wait(0.05)
        assert drained.is_set()
        final = totals(get(server.url + "/metrics")[2].decode())
        stream.close()
        assert stream.join(60)

    sent = PRODUCERS * PER_PRODUCER
    assert refused == []
    snap = stream.metrics()
    assert snap.received == sent
    assert snap.emitted == delivered[0]
    assert snap.received == snap.emitted + snap.dropped
    assert dict(snap.drops_by_reason) == {
        "insufficient_capabilities": sent // 10,
        "odd": sent // 2 - sent // 10,
    }
    # Every scrape parsed, and counters only ever went up between scrapes.
    assert len(scrapes) == SCRAPES
    for before, after in itertools.pairwise(scrapes):
        for name in ("received", "emitted", "dropped"):
            assert after.get(name, 0) >= before.get(name, 0), name
    assert scrapes[-1]["received"] <= sent
    # Scrapes ran while the producers sent, and the last one equals the snapshot exactly.
    assert any(0 < scrape.get("received", 0) < sent for scrape in scrapes)
    assert final == {
        "received": snap.received,
        "emitted": snap.emitted,
        "dropped": snap.dropped,
        "errors": snap.errors,
        "backpressure_events": snap.backpressure_events,
    }
