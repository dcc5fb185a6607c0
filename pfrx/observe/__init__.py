"""See running streams: Prometheus and OpenTelemetry export, and a live dashboard.

Needs the ``web`` extra (``pip install 'pfrx[web]'``); `instrument` also needs the
``otel`` extra. Everything reads `pfrx.registry` (or the registry you pass) live:

- `serve` starts ``/metrics``, ``/api/streams`` and the dashboard ``/`` on a
  background thread;
- `PfrxCollector` plugs the same figures into your own Prometheus registry;
- `instrument` registers OpenTelemetry observable instruments;
- `health_changes` pushes a stream's health transitions as an observable.

Only counts, rates and drop reasons are exported: never payloads, contexts or tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import prometheus_client  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as _missing:
    raise ImportError(
        f"pfrx.observe needs the 'web' extra ({_missing.name} is missing): pip install 'pfrx[web]'"
    ) from None

from .health import HealthChange, health_changes
from .prometheus import PfrxCollector, exposition
from .server import ExposedServerWarning, ObserveServer, serve

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from ._reading import RegistryLike

__all__ = [
    "ExposedServerWarning",
    "HealthChange",
    "ObserveServer",
    "PfrxCollector",
    "exposition",
    "health_changes",
    "instrument",
    "serve",
]


def instrument(
    meter_provider: MeterProvider | None = None, *, registry: RegistryLike | None = None
) -> list[Any]:
    """Register OpenTelemetry observable instruments for every registered stream.

    See `pfrx.observe.otel.instrument` (this wrapper only says which extra is
    missing when OpenTelemetry is not installed).
    """
    try:
        from . import otel
    except ImportError as missing:
        raise ImportError(
            f"pfrx.observe.instrument needs the 'otel' extra ({missing.name} is missing): "
            "pip install 'pfrx[otel]'"
        ) from None
    if registry is None:
        return otel.instrument(meter_provider)
    return otel.instrument(meter_provider, registry=registry)
