"""OpenTelemetry instruments read back with the SDK's in-memory reader."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from reactivex.testing import TestScheduler

import pfrx
from pfrx.observe import instrument

from .conftest import ALLOWED, known_workload


def collect(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """instrument name -> {sorted attributes: value} from one collection."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "pfrx"
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    points[tuple(sorted(point.attributes.items()))] = point.value
    return found


class CountingRegistry:
    """A registry that counts how often each stream is read."""

    def __init__(self, streams: dict[str, pfrx.Stream]) -> None:
        self.streams = streams
        self.reads = 0

    def names(self) -> list[str]:
        return sorted(self.streams)

    def get(self, name: str, default: Any = None) -> Any:
        stream = self.streams.get(name, default)
        registry = self

        class Counted:
            def metrics(self) -> pfrx.MetricsSnapshot:
                registry.reads += 1
                return stream.metrics()

            def health(self) -> pfrx.Health:
                return stream.health()

        return Counted()


def test_instruments_equal_the_snapshots(registry: pfrx.StreamRegistry) -> None:
    files = known_workload("files", 100)
    registry.register("files", files)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = instrument(provider, registry=registry)
    assert len(instruments) == 8

    found = collect(reader)
    snap = files.metrics()
    stream = (("stream", "files"),)
    assert found["pfrx.received"][stream] == snap.received == 100
    assert found["pfrx.emitted"][stream] == snap.emitted == 20
    assert found["pfrx.errors"][stream] == snap.errors
    assert found["pfrx.backpressure_events"][stream] == snap.backpressure_events == 24
    assert found["pfrx.buffer_utilization"][stream] == snap.buffer_utilization
    assert found["pfrx.processing_rate"][stream] == snap.processing_rate == 20.0
    assert found["pfrx.health"][stream] == 2
    assert found["pfrx.dropped"] == {
        (("reason", reason), ("stream", "files")): count
        for reason, count in snap.drops_by_reason.items()
    }
    provider.shutdown()


def test_each_collection_reads_each_stream_once_and_sees_new_figures() -> None:
    stream = pfrx.Stream(name="counted", scheduler=TestScheduler())
    counting = CountingRegistry({"counted": stream})
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument(provider, registry=counting)

    first = collect(reader)
    assert counting.reads == 1  # eight instruments, one reading
    assert first["pfrx.received"][(("stream", "counted"),)] == 0
    for _ in range(5):
        stream.send("x", ALLOWED)
    second = collect(reader)
    assert counting.reads == 2
    assert second["pfrx.received"][(("stream", "counted"),)] == 5
    assert second["pfrx.emitted"][(("stream", "counted"),)] == 5
    provider.shutdown()
