"""OpenTelemetry: observable instruments over every registered stream.

`instrument` registers one observable instrument per figure on a meter from the
given ``MeterProvider``. Like the Prometheus collector it keeps no counts of its own: each
collection reads the streams' snapshots, once per collection for all instruments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import (
    CallbackOptions,
    MeterProvider,
    Observation,
    get_meter_provider,
)

from .. import __version__
from .. import registry as default_registry
from ._reading import RegistryLike, StreamReading, read_streams

__all__ = ["INSTRUMENTS", "instrument"]

#: OpenTelemetry instrument name -> (kind, unit, snapshot field or "health", description).
INSTRUMENTS: dict[str, tuple[str, str, str, str]] = {
    "pfrx.received": ("counter", "{item}", "received", "Items the stream accepted."),
    "pfrx.emitted": ("counter", "{item}", "emitted", "Items the stream delivered."),
    "pfrx.dropped": ("counter", "{item}", "drops_by_reason", "Items lost, by reason."),
    "pfrx.errors": ("counter", "{error}", "errors", "Errors counted by the stream."),
    "pfrx.backpressure_events": (
        "counter",
        "{event}",
        "backpressure_events",
        "Items that found a backpressure buffer full.",
    ),
    "pfrx.buffer_utilization": (
        "gauge",
        "1",
        "buffer_utilization",
        "Fill of the fullest backpressure buffer, 0..1.",
    ),
    "pfrx.processing_rate": (
        "gauge",
        "{item}/s",
        "processing_rate",
        "Items emitted per second (sliding window).",
    ),
    "pfrx.health": ("gauge", "1", "health", "0 healthy, 1 degraded, 2 unhealthy."),
}


class _SharedReading:
    """One reading per collection, shared by every instrument's callback.

    An instrument asking a second time for the reading it already used means a new
    collection has begun: only then are the streams read again. So one collection reads
    each stream once, and no instrument ever sees an older reading than another.
    """

    def __init__(self, registry: RegistryLike) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._generation = 0
        self._readings: list[StreamReading] = []
        self._seen: dict[str, int] = {}

    def for_instrument(self, name: str) -> list[StreamReading]:
        with self._lock:
            if self._generation == 0 or self._seen.get(name, 0) >= self._generation:
                self._readings = read_streams(self._registry)
                self._generation += 1
            self._seen[name] = self._generation
            return self._readings


def instrument(
    meter_provider: MeterProvider | None = None,
    *,
    registry: RegistryLike = default_registry,
) -> list[Any]:
    """Register observable instruments for every stream in ``registry``.

    Counters (``pfrx.received``, ``pfrx.emitted``, ``pfrx.dropped`` with attribute
    ``reason``, ``pfrx.errors``, ``pfrx.backpressure_events``) and gauges
    (``pfrx.buffer_utilization``, ``pfrx.processing_rate``, ``pfrx.health``), each with the
    attribute ``stream``. A Prometheus exporter of OpenTelemetry turns them into the same
    names as `pfrx.observe.prometheus` (``pfrx_received_total``...).

    Args:
        meter_provider: where to register (default: the global provider).
        registry: the streams to report (default: `pfrx.registry`).

    Returns:
        The instruments created, in `INSTRUMENTS` order.
    """
    provider = meter_provider or get_meter_provider()
    meter = provider.get_meter("pfrx", __version__)
    shared = _SharedReading(registry)
    instruments: list[Any] = []
    for name, (kind, unit, field, description) in INSTRUMENTS.items():
        callback = _callback(name, field, shared)
        if kind == "counter":
            made: Any = meter.create_observable_counter(
                name, callbacks=[callback], unit=unit, description=description
            )
        else:
            made = meter.create_observable_gauge(
                name, callbacks=[callback], unit=unit, description=description
            )
        instruments.append(made)
    return instruments


def _callback(
    name: str, field: str, shared: _SharedReading
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for reading in shared.for_instrument(name):
            if field == "health":
                observations.append(Observation(reading.health_code, {"stream": reading.name}))
            elif field == "drops_by_reason":
                for reason, count in sorted(reading.snapshot.drops_by_reason.items()):
                    attributes = {"stream": reading.name, "reason": reason}
                    observations.append(Observation(count, attributes))
            else:
                value = getattr(reading.snapshot, field)
                observations.append(Observation(value, {"stream": reading.name}))
        return observations

    return observe
