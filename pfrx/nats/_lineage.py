"""Which inputs an item came from, for the standalone source and sinks.

`pfrx.nats.nats_source` gives each input its own `Context` object and
records it here; pfrx operators carry that context to everything made from the input, so a
sink can name an output's sources. Entries go when their context is collected.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from .._model import Context, Envelope, Window

_lock = threading.Lock()
_ids: dict[int, str] = {}
_ordinals: dict[tuple[str, ...], int] = {}


def track(context: Context, sid: str, on_release: Callable[[str], None]) -> None:
    """Record ``context`` as input ``sid``; ``on_release(sid)`` once it is collected."""
    key = id(context)
    with _lock:
        _ids[key] = sid
        for kind in ("r", "d"):
            _ordinals.pop((sid, kind), None)
    weakref.finalize(context, _released, key, sid, on_release)


def _released(key: int, sid: str, on_release: Callable[[str], None]) -> None:
    with _lock:
        if _ids.get(key) == sid:
            del _ids[key]
    on_release(sid)


def source_ids(item: Any) -> tuple[str, ...]:
    """The input ids an envelope, a window or a ``Dropped`` record came from."""
    item = getattr(item, "item", item) if not isinstance(item, Envelope | Window) else item
    contexts: list[Any]
    if isinstance(item, Envelope):
        contexts = [item.context]
    elif isinstance(item, Window):
        contexts = [getattr(envelope, "context", None) for envelope in item.items]
    else:
        return ()
    out: list[str] = []
    for context in contexts:
        sid = _ids.get(id(context))
        if sid is not None and sid not in out:
            out.append(sid)
    return tuple(out)


def ordinal(sources: tuple[str, ...], kind: str) -> int:
    key = (*sources, kind)
    with _lock:
        n = _ordinals.get(key, 0)
        _ordinals[key] = n + 1
        if len(_ordinals) > 100_000:
            _ordinals.clear()
    return n
