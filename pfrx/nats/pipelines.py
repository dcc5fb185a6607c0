"""Ready-made pipeline factories for ``pfrx worker --pipeline`` and ``pfrx demo-cluster``.

Events on the wire are JSON, so each pipeline first turns the JSON event into the domain's
value. `filesystem` is the FileSystem workload: a file intent
``{"op": "read"|"write"|"delete", "path": ..., "content"?: ...}`` is built into the
example's intent, checked against the (verified) context's capabilities and the example's
filter, and summarised; no file is touched (workers on other hosts share no disk).
`sessions` is a keyed pipeline: session windows per ``context.session_id``.
"""

from __future__ import annotations

import os
from typing import Any

from .. import operators as pf
from .._model import Context, Reject
from ..examples.filesystem import (
    DeleteFile,
    FileEventFilter,
    ReadFile,
    WriteFile,
    required_capability,
)
from ..operators import Operator

__all__ = ["filesystem", "intent_of", "sessions"]


_KINDS: dict[str, Any] = {"read": ReadFile, "write": WriteFile, "delete": DeleteFile}


def intent_of(event: Any, context: Context) -> Any:
    """The FileSystem intent a JSON event describes, or ``Reject("invalid_intent")``."""
    if not isinstance(event, dict):
        return Reject("invalid_intent")
    kind = _KINDS.get(event.get("op"))  # type: ignore[arg-type]
    path = event.get("path")
    if kind is None or not isinstance(path, str):
        return Reject("invalid_intent")
    if kind is WriteFile:
        content = event.get("content", "")
        if not isinstance(content, str):
            return Reject("invalid_intent")
        return WriteFile(path, content, context.user_id)
    return kind(path, context.user_id)


def _summary(intent: Any, context: Context) -> dict[str, Any]:
    summary = {"op": type(intent).operation, "path": intent.path, "user": context.user_id}
    if isinstance(intent, WriteFile):
        summary["bytes"] = len(intent.data)
    return summary


def filesystem() -> list[Operator]:
    """The FileSystem workload: intent → capability check → filter → summary."""
    return [
        pf.transform(intent_of),
        pf.capability_filter(required_capability),
        FileEventFilter(allowed="/", protected="/system"),
        pf.transform(_summary),
    ]


def sessions() -> list[Operator]:
    """Session windows per ``context.session_id`` (gap ``PFRX_SESSION_GAP`` s, default 1)."""
    gap = float(os.environ.get("PFRX_SESSION_GAP", "1.0"))
    return [pf.window_session(gap)]
