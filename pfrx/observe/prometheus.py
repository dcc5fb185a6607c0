"""Prometheus exposition of every registered stream, read live at each scrape.

`PfrxCollector` is a custom ``prometheus_client`` collector: it keeps no counters of
its own, it reads each stream's snapshot when scraped. So the figures are the stream's own
(nothing counted twice, nothing drifting), and a stream that leaves the registry leaves
the exposition.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import registry as default_registry
from ._reading import RegistryLike, StreamReading, read_streams

__all__ = ["COUNTERS", "GAUGES", "PfrxCollector", "exposition"]

#: Counter name (without ``_total``) -> (snapshot field, help text).
COUNTERS = {
    "pfrx_received": ("received", "Items the stream accepted."),
    "pfrx_emitted": ("emitted", "Items the stream delivered on its results."),
    "pfrx_errors": ("errors", "Errors counted by the stream (stage errors, raising subscribers)."),
    "pfrx_backpressure_events": (
        "backpressure_events",
        "Items that found a backpressure buffer full (for block: each wait).",
    ),
}

#: Gauge name -> (snapshot field, help text).
GAUGES = {
    "pfrx_buffer_utilization": (
        "buffer_utilization",
        "Fill of the fullest backpressure buffer, 0..1.",
    ),
    "pfrx_processing_rate": ("processing_rate", "Items emitted per second (sliding window)."),
    "pfrx_input_rate": ("input_rate", "Items received per second (sliding window)."),
    "pfrx_buffered_items": ("buffered", "Items waiting in backpressure buffers."),
    "pfrx_avg_processing_seconds": (
        "avg_processing_time",
        "Mean time an item spent being processed, seconds.",
    ),
    "pfrx_error_rate": ("error_rate", "Errors per item received, 0..1."),
}


class PfrxCollector(Collector):
    """A ``prometheus_client`` collector over a `pfrx.StreamRegistry`.

    Register it with your own Prometheus registry when you already serve ``/metrics``:

    ```python
    from prometheus_client import REGISTRY
    REGISTRY.register(PfrxCollector())
    ```

    Every family carries the label ``stream`` (the registered name); ``pfrx_dropped_total``
    also carries ``reason``.
    """

    def __init__(self, registry: RegistryLike = default_registry) -> None:
        self.registry = registry

    def describe(self) -> list[Metric]:
        # Names only, so registering checks for clashes without reading any stream.
        return list(_families([]))

    def collect(self) -> Iterator[Metric]:
        yield from _families(read_streams(self.registry))


def _families(readings: list[StreamReading]) -> Iterator[Metric]:
    for name, (field, text) in COUNTERS.items():
        counter = CounterMetricFamily(name, text, labels=["stream"])
        for reading in readings:
            counter.add_metric([reading.name], getattr(reading.snapshot, field))
        yield counter
    dropped = CounterMetricFamily(
        "pfrx_dropped", "Items lost inside the stream, by reason.", labels=["stream", "reason"]
    )
    for reading in readings:
        for reason, count in sorted(reading.snapshot.drops_by_reason.items()):
            dropped.add_metric([reading.name, reason], count)
    yield dropped
    for name, (field, text) in GAUGES.items():
        gauge = GaugeMetricFamily(name, text, labels=["stream"])
        for reading in readings:
            gauge.add_metric([reading.name], getattr(reading.snapshot, field))
        yield gauge
    health = GaugeMetricFamily(
        "pfrx_health", "Stream health: 0 healthy, 1 degraded, 2 unhealthy.", labels=["stream"]
    )
    for reading in readings:
        health.add_metric([reading.name], reading.health_code)
    yield health


def exposition(registry: RegistryLike = default_registry) -> bytes:
    """The Prometheus text exposition of ``registry``'s streams, read now."""
    prometheus = CollectorRegistry(auto_describe=False)
    prometheus.register(PfrxCollector(registry))
    return generate_latest(prometheus)
