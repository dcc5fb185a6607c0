"""Live progress while the demo's load runs: a refreshing line on a terminal, plain lines
otherwise (a log file or a pipe gets one complete line every few seconds, no ``\\r``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from .. import Stream

#: How often the terminal line refreshes, seconds.
REFRESH = 0.25


class Progress:
    """Reports ``stream``'s progress on ``out`` from a daemon thread until `stop`.

    Args:
        out: where to write.
        stream: whose metrics to show.
        total: how many intents will be sent.
        sent: returns how many have been sent so far.
        live: refresh one line in place (a terminal) instead of printing lines.
        every: seconds between plain lines.
    """

    def __init__(
        self,
        out: TextIO,
        stream: Stream,
        total: int,
        sent: Callable[[], int],
        *,
        live: bool,
        every: float = 1.0,
    ) -> None:
        self.out = out
        self.stream = stream
        self.total = total
        self.sent = sent
        self.live = live
        self.every = REFRESH if live else every
        self.lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pfrx-demo-progress", daemon=True)
        self._last = (0, time.perf_counter())

    def start(self) -> Progress:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.live:
            self.out.write("\r" + " " * 110 + "\r")
            self.out.flush()

    def line(self) -> str:
        """One status line: sent, output rate, buffer use, drops, health."""
        snap = self.stream.metrics()
        now = time.perf_counter()
        emitted, then = self._last
        rate = (snap.emitted - emitted) / max(now - then, 1e-9)
        self._last = (snap.emitted, now)
        sent = self.sent()
        done = sent / self.total if self.total else 1.0
        return (
            f"  {done:4.0%} sent {sent:>8,}/{self.total:,}  out {rate:>8,.0f}/s  "
            f"buffer {snap.buffered:>6,} ({snap.buffer_utilization:4.0%})  "
            f"drops {snap.dropped:>8,}  health {self.stream.health().value}"
        )

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            text = self.line()
            if self.live:
                self.out.write("\r" + text.ljust(110))
            else:
                self.out.write("progress" + text[1:] + "\n")
            self.out.flush()
            self.lines += 1
