"""Per-key state is freed: after many keys' windows fire and are purged, the operator holds
(almost) nothing, measured with tracemalloc."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from pfrx import operators as pf

from .harness import event_key, event_ts, harness


@pytest.mark.parametrize(
    "make",
    [
        lambda drop: pf.window_time(
            5, key=event_key, timestamp=event_ts, allowed_lateness=2, on_drop=drop
        ),
        lambda drop: pf.window_time(
            6, slide=2, key=event_key, timestamp=event_ts, allowed_lateness=2, on_drop=drop
        ),
        lambda drop: pf.window_session(
            3, key=event_key, timestamp=event_ts, allowed_lateness=2, on_drop=drop
        ),
    ],
    ids=["tumbling", "sliding", "sessions"],
)
def test_state_of_20k_keys_is_freed_once_their_windows_are_purged(make: Any) -> None:
    with harness(lambda drop, late: make(drop)) as h:
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for n in range(20_000):
                h.element(f"key-{n}", 1.0 + (n % 3))
            held = tracemalloc.get_traced_memory()[0] - base
            h.watermark(6.5)  # windows ending by 6.5 fire, and are kept for their lateness
            h.watermark(100.0)  # every window has fired, and is purged (100 > end + 2)
            h.windows.clear()
            gc.collect()
            left = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert h.dropped == []
        assert held > 2_000_000  # the keys' windows really were held
        assert left < held * 0.05, (held, left)
