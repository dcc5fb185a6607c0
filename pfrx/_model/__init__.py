"""The value types of pfrx: capabilities, contexts, envelopes and the records operators emit."""

from .capability import Capability, CapabilityFamily
from .context import Context, Envelope
from .records import (
    BackpressureOverflow,
    BackpressureTimeout,
    Dropped,
    Err,
    Ok,
    Reject,
    SendResult,
    UnobservedDropWarning,
    Watermark,
    Window,
)
from .resources import covers, normalize_resource

__all__ = [
    "BackpressureOverflow",
    "BackpressureTimeout",
    "Capability",
    "CapabilityFamily",
    "Context",
    "Dropped",
    "Envelope",
    "Err",
    "Ok",
    "Reject",
    "SendResult",
    "UnobservedDropWarning",
    "Watermark",
    "Window",
    "covers",
    "normalize_resource",
]
