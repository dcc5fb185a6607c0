"""What the runtime tests share: a ledger by identity and bounded waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pfrx
from pfrx.stream import Stream

CTX = pfrx.Context("alice", "s1", [pfrx.Capability("file", "read", "/docs")])


class Ledger:
    """Everything a stream delivered and dropped, keyed by the event's identity token."""

    def __init__(self, stream: Stream) -> None:
        self.lock = threading.Lock()
        self.delivered: list[Any] = []
        self.dropped: list[pfrx.Dropped] = []
        self.ends: list[str] = []
        stream.results.subscribe(self._result, self._error, self._completed)
        stream.dropped.subscribe(self._drop)

    def _result(self, value: Any) -> None:
        with self.lock:
            self.delivered.append(value.event if isinstance(value, pfrx.Envelope) else value)

    def _drop(self, record: pfrx.Dropped) -> None:
        with self.lock:
            self.dropped.append(record)

    def _error(self, error: Exception) -> None:
        self.ends.append(f"error:{type(error).__name__}")

    def _completed(self) -> None:
        self.ends.append("completed")

    def dropped_events(self) -> list[Any]:
        return [d.item.event if isinstance(d.item, pfrx.Envelope) else d.item for d in self.dropped]

    def assert_exactly_once(self, accepted: list[Any]) -> None:
        """Each accepted event is delivered or dropped, once, and nothing else appears."""
        with self.lock:
            seen = self.delivered + self.dropped_events()
        assert sorted(map(repr, seen)) == sorted(map(repr, accepted))


def bounded(action: Callable[[], Any], seconds: float = 10.0) -> Any:
    """Run ``action`` on a thread; fail the test (instead of hanging) if it takes too long."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = action()
        except BaseException as error:  # re-raised on the test's thread
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a hang"
    if "error" in box:
        raise box["error"]
    return box.get("value")
