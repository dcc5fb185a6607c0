"""pfrx: PacketFlow's Stream Substrate as RxPY operators.

Capability-aware, backpressured, windowed and measured stream processing on ``reactivex``.
The operators live in [`pfrx.operators`][] (``from pfrx import operators as pf``).
"""

from loguru import logger as _logger

from ._model import (
    BackpressureOverflow,
    BackpressureTimeout,
    Capability,
    CapabilityFamily,
    Context,
    Dropped,
    Envelope,
    Err,
    Ok,
    Reject,
    SendResult,
    UnobservedDropWarning,
    Watermark,
    Window,
    covers,
    normalize_resource,
)
from .metrics import (
    BufferGauge,
    Health,
    HealthThresholds,
    MetricsSnapshot,
    OperatorSnapshot,
    StageSnapshot,  # deprecated alias of OperatorSnapshot, removed in the next release
    StreamMetrics,
)
from .sources import envelopes
from .stream import (
    DuplicateStreamName,
    StageError,
    Stream,
    StreamRegistry,
    connect,
    registry,
    stage,
)

# A library never configures logging for its user (loguru's advice): opt in with
# ``logger.enable("pfrx")``.
_logger.disable("pfrx")

__version__ = "0.1.0"

__all__ = [
    "BackpressureOverflow",
    "BackpressureTimeout",
    "BufferGauge",
    "Capability",
    "CapabilityFamily",
    "Context",
    "Dropped",
    "DuplicateStreamName",
    "Envelope",
    "Err",
    "Health",
    "HealthThresholds",
    "MetricsSnapshot",
    "Ok",
    "OperatorSnapshot",
    "Reject",
    "SendResult",
    "StageError",
    "StageSnapshot",
    "Stream",
    "StreamMetrics",
    "StreamRegistry",
    "UnobservedDropWarning",
    "Watermark",
    "Window",
    "__version__",
    "connect",
    "covers",
    "envelopes",
    "normalize_resource",
    "registry",
    "stage",
]
