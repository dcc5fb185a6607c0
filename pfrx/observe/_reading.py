"""One reading of every registered stream: what each exporter and the dashboard show.

Everything here is counts, rates and reasons. Payloads, contexts and tokens never leave a
stream through this module: a reading copies the numeric fields of a snapshot by name, so a
field added to `pfrx.MetricsSnapshot` later is not exported until it is listed here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import attrs
from loguru import logger

from ..metrics import Health, MetricsSnapshot

#: ``pfrx_health`` values (the contract's order).
HEALTH_CODES = {Health.HEALTHY: 0, Health.DEGRADED: 1, Health.UNHEALTHY: 2}

#: Snapshot fields exported as numbers, by name.
NUMBERS = (
    "timestamp",
    "received",
    "emitted",
    "dropped",
    "errors",
    "backpressure_events",
    "processing_rate",
    "input_rate",
    "buffer_utilization",
    "peak_buffer_utilization",
    "buffered",
    "avg_processing_time",
    "max_processing_time",
    "slow_events",
    "error_rate",
    "drop_rate",
    "recent_received",
    "recent_error_rate",
    "recent_drop_rate",
    "recent_avg_processing_time",
)


class Readable(Protocol):
    """What a stream offers to be read (``pfrx.Stream`` does)."""

    def metrics(self) -> MetricsSnapshot: ...

    def health(self) -> Health: ...


class RegistryLike(Protocol):
    """What a registry offers to be listed (``pfrx.StreamRegistry`` does)."""

    def names(self) -> list[str]: ...

    def get(self, name: str, default: Any = None) -> Any: ...


@attrs.frozen(slots=True)
class StreamReading:
    """One stream at one moment: its registered name(s), health and snapshot."""

    name: str
    health: Health
    snapshot: MetricsSnapshot
    aliases: tuple[str, ...] = ()

    @property
    def health_code(self) -> int:
        return HEALTH_CODES[self.health]

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``/api/streams`` serves: counts, rates and reasons only."""
        snapshot = self.snapshot
        metrics: dict[str, Any] = {name: _finite(getattr(snapshot, name)) for name in NUMBERS}
        metrics["drops_by_reason"] = {
            str(reason): int(count) for reason, count in snapshot.drops_by_reason.items()
        }
        metrics["operators"] = [
            {
                "name": str(operator.name),
                "received": int(operator.received),
                "emitted": int(operator.emitted),
                "dropped": int(operator.dropped),
                "errors": int(operator.errors),
            }
            for operator in snapshot.operators
        ]
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "health": self.health.value,
            "metrics": metrics,
        }


def _finite(value: Any) -> float | int | None:
    # JSON has no NaN or infinity; a browser's JSON.parse would reject the whole message.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None


def read_streams(registry: RegistryLike) -> list[StreamReading]:
    """Read every stream registered in ``registry`` once, in name order.

    A stream registered under several names is read and reported once, under its first
    name (the others are its ``aliases``), so a sum over streams counts nothing twice. A
    stream that leaves the registry while we read is skipped.
    """
    by_stream: dict[int, tuple[Readable, list[str]]] = {}
    for name in registry.names():
        stream = registry.get(name)
        if stream is None:
            continue
        entry = by_stream.setdefault(id(stream), (stream, []))
        entry[1].append(name)
    readings = []
    for stream, names in by_stream.values():
        try:
            readings.append(_read(stream, names))
        except Exception as error:
            # One stream whose metrics cannot be read must not blank every other one.
            logger.warning("observe: cannot read stream {}: {!r}", names[0], error)
    return readings


def _read(stream: Readable, names: Iterable[str]) -> StreamReading:
    first, *others = names
    # Health first: a snapshot taken after it is never older than the health it shows.
    health = Health(stream.health())
    return StreamReading(first, health, stream.metrics(), tuple(others))
