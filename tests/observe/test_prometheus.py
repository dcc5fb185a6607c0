"""``/metrics`` read back with prometheus-client's own parser equals the streams' snapshots."""

from __future__ import annotations

from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from reactivex.testing import TestScheduler

import pfrx
from pfrx.observe import PfrxCollector, exposition, serve

from .conftest import ALLOWED, SECRETS, get, known_workload

CONTRACT = {
    "pfrx_received": "counter",
    "pfrx_emitted": "counter",
    "pfrx_dropped": "counter",
    "pfrx_errors": "counter",
    "pfrx_backpressure_events": "counter",
    "pfrx_buffer_utilization": "gauge",
    "pfrx_processing_rate": "gauge",
    "pfrx_health": "gauge",
}


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}, and check each family's type on the way."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        if family.name in CONTRACT:
            assert family.type == CONTRACT[family.name], family.name
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_endpoint_equals_the_snapshots_after_a_known_workload(
    registry: pfrx.StreamRegistry,
) -> None:
    files = known_workload("files", 100)
    quiet = pfrx.Stream(name="quiet", scheduler=TestScheduler())
    quiet.send("one", ALLOWED)
    registry.register("files", files)
    registry.register("quiet", quiet)

    with serve(registry=registry) as server:
        status, headers, body = get(server.url + "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    samples = parse(body.decode())

    for name, stream in (("files", files), ("quiet", quiet)):
        snap = stream.metrics()
        label = (("stream", name),)
        assert samples["pfrx_received_total"][label] == snap.received
        assert samples["pfrx_emitted_total"][label] == snap.emitted
        assert samples["pfrx_errors_total"][label] == snap.errors
        assert samples["pfrx_backpressure_events_total"][label] == snap.backpressure_events
        assert samples["pfrx_buffer_utilization"][label] == snap.buffer_utilization
        assert samples["pfrx_processing_rate"][label] == snap.processing_rate
        health = {"healthy": 0, "degraded": 1, "unhealthy": 2}[stream.health().value]
        assert samples["pfrx_health"][label] == health
        drops = {
            dict(labels)["reason"]: value
            for labels, value in samples["pfrx_dropped_total"].items()
            if dict(labels)["stream"] == name
        }
        assert drops == dict(snap.drops_by_reason)

    # The workload's figures, so a collector that read nothing (or the wrong stream) fails.
    assert samples["pfrx_received_total"][(("stream", "files"),)] == 100
    assert samples["pfrx_emitted_total"][(("stream", "files"),)] == 20
    assert samples["pfrx_backpressure_events_total"][(("stream", "files"),)] == 24
    assert samples["pfrx_buffer_utilization"][(("stream", "files"),)] == 1.0
    assert samples["pfrx_processing_rate"][(("stream", "files"),)] == 20.0
    assert samples["pfrx_health"][(("stream", "files"),)] == 2
    assert samples["pfrx_health"][(("stream", "quiet"),)] == 0
    assert {
        dict(labels)["reason"]: value
        for labels, value in samples["pfrx_dropped_total"].items()
        if dict(labels)["stream"] == "files"
    } == {"insufficient_capabilities": 25, "multiple of seven": 11, "overflow": 24}
    for secret in SECRETS:
        assert secret not in body.decode()


def test_every_contract_family_carries_the_stream_label(registry: pfrx.StreamRegistry) -> None:
    registry.register("files", known_workload())
    families = {f.name: f for f in text_string_to_metric_families(exposition(registry).decode())}
    assert set(CONTRACT) <= set(families)
    for name in CONTRACT:
        assert families[name].samples, name
        for sample in families[name].samples:
            assert sample.labels["stream"] == "files"
    assert {tuple(sorted(s.labels)) for s in families["pfrx_dropped"].samples} == {
        ("reason", "stream")
    }


def test_user_controlled_names_and_reasons_are_escaped(registry: pfrx.StreamRegistry) -> None:
    from pfrx import operators as pf

    odd = 'we"ird\\name\nwith newline'
    reason = 'reason "quoted"\\ and\nnewline'
    stream = pfrx.Stream(pf.transform(lambda e, c: pfrx.Reject(reason)), name="odd")
    registry.register(odd, stream)
    stream.send(1, ALLOWED)
    samples = parse(exposition(registry).decode())
    assert samples["pfrx_received_total"][(("stream", odd),)] == 1
    assert samples["pfrx_dropped_total"][(("reason", reason), ("stream", odd))] == 1


def test_a_scrape_reads_live_figures_and_follows_the_registry(
    registry: pfrx.StreamRegistry,
) -> None:
    stream = pfrx.Stream(name="live", scheduler=TestScheduler())
    registry.register("live", stream)
    registry.register("alias", stream)  # the same stream twice: reported once
    assert parse(exposition(registry).decode())["pfrx_received_total"] == {
        (("stream", "alias"),): 0
    }
    for _ in range(3):
        stream.send("x", ALLOWED)
    assert parse(exposition(registry).decode())["pfrx_received_total"] == {
        (("stream", "alias"),): 3
    }
    registry.unregister("alias")
    registry.unregister("live")
    assert "pfrx_received_total" not in parse(exposition(registry).decode())


def test_the_collector_plugs_into_an_existing_prometheus_registry(
    registry: pfrx.StreamRegistry,
) -> None:
    registry.register("files", known_workload())
    prometheus = CollectorRegistry()  # auto_describe: describe() is called on register
    prometheus.register(PfrxCollector(registry))
    samples = parse(generate_latest(prometheus).decode())
    assert samples["pfrx_received_total"][(("stream", "files"),)] == 100
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        prometheus.register(PfrxCollector(registry))
