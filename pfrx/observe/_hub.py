"""What the dashboard is told: every stream's latest reading, its recent history, and the
transitions (health changes, streams appearing and leaving) since the server started.

The hub samples the registry once per interval, whether or not a page is open, so a page
opened later still gets the last minutes of history. It holds counts, rates and reasons only.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._reading import RegistryLike, StreamReading, read_streams

#: How many transitions the dashboard's log keeps.
TRANSITIONS_KEPT = 50


class Hub:
    """Samples ``registry`` on demand and remembers what the dashboard shows.

    Args:
        registry: the streams to watch.
        interval: seconds between samples (the history's resolution).
        history: seconds of history kept per stream for the rolling charts.
        clock: wall-clock seconds, for the times shown on the page.
    """

    def __init__(
        self,
        registry: RegistryLike,
        *,
        interval: float,
        history: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.interval = interval
        self.points = max(2, int(history / interval))
        self._clock = clock
        self._lock = threading.Lock()
        self._history: dict[str, deque[list[float | None]]] = {}
        self._health: dict[str, str] = {}
        self._changed: dict[str, tuple[float, str]] = {}
        self._transitions: deque[dict[str, Any]] = deque(maxlen=TRANSITIONS_KEPT)
        self._latest: dict[str, Any] = self._message(self._clock(), [])

    def sample(self) -> dict[str, Any]:
        """Read every stream now; return the message for open pages (without history)."""
        readings = read_streams(self.registry)
        now = self._clock()
        with self._lock:
            present = {reading.name for reading in readings}
            for gone in [name for name in self._health if name not in present]:
                self._transitions.append(
                    {"time": now, "stream": gone, "kind": "gone", "old": self._health[gone]}
                )
                del self._health[gone]
                self._history.pop(gone, None)
                self._changed.pop(gone, None)
            for reading in readings:
                self._note(reading, now)
            self._latest = self._message(now, readings)
            return self._latest

    def _note(self, reading: StreamReading, now: float) -> None:
        health = reading.health.value
        before = self._health.get(reading.name)
        if before is None:
            self._transitions.append(
                {"time": now, "stream": reading.name, "kind": "appeared", "new": health}
            )
        elif before != health:
            self._transitions.append(
                {
                    "time": now,
                    "stream": reading.name,
                    "kind": "health",
                    "old": before,
                    "new": health,
                }
            )
            self._changed[reading.name] = (now, before)
        self._health[reading.name] = health
        history = self._history.setdefault(reading.name, deque(maxlen=self.points))
        history.append(_point(now, reading))

    def _message(self, now: float, readings: list[StreamReading]) -> dict[str, Any]:
        streams = []
        for reading in readings:
            item = reading.to_json()
            item["point"] = _point(now, reading)
            changed = self._changed.get(reading.name)
            if changed is not None:
                item["changed_at"], item["previous_health"] = changed
            streams.append(item)
        return {
            "time": now,
            "interval": self.interval,
            "points": self.points,
            "streams": streams,
            "transitions": list(self._transitions),
        }

    def latest(self, *, with_history: bool) -> dict[str, Any]:
        """The last message; with the kept history of every stream for a page just opened."""
        with self._lock:
            message = dict(self._latest)
            if with_history:
                message["history"] = {name: list(points) for name, points in self._history.items()}
            return message


def _point(now: float, reading: StreamReading) -> list[float | None]:
    """One history point: ``[time, emitted/s, received/s, dropped/s, buffer 0..1]``."""
    snapshot = reading.snapshot
    # recent drops / recent received x recent received / window = recent drops per second.
    dropped_per_s = snapshot.recent_drop_rate * snapshot.input_rate
    return [
        round(now, 3),
        _finite(snapshot.processing_rate),
        _finite(snapshot.input_rate),
        _finite(dropped_per_s),
        _finite(snapshot.buffer_utilization),
    ]


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
