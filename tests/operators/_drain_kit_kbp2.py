"""Test doubles for the backpressure drain tests (kbp2): a scheduler that holds every
action until the test runs it, a recording observer, and bounded runs on a helper thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.internal.constants import UTC_ZERO
from reactivex.scheduler.scheduler import Scheduler


class Manual(Scheduler):
    """Holds every scheduled action until the test runs it, on the thread it picks.

    ``most``: how many actions may wait at once; one more is refused (``schedule``
    raises), so an operator scheduling without end fails instead of looping forever.
    ``clock``: seconds for ``now`` (default: the system clock).
    """

    def __init__(self, *, most: int = 4, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.pending: list[tuple[Any, Any]] = []
        self.scheduled_on: list[int] = []
        self.most = most
        self.clock = clock
        self._guard = threading.Lock()

    @property
    def now(self) -> datetime:
        if self.clock is None:
            return datetime.now(UTC)
        return UTC_ZERO + timedelta(seconds=self.clock())

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        with self._guard:
            if len(self.pending) >= self.most:
                raise RuntimeError(f"{len(self.pending)} actions already wait")
            self.pending.append((action, state))
            self.scheduled_on.append(threading.get_ident())
        return Disposable()

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule(action, state)

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule(action, state)

    def run_one(self) -> bool:
        """Run the oldest waiting action here; False if none waited."""
        with self._guard:
            if not self.pending:
                return False
            action, state = self.pending.pop(0)
        action(self, state)
        return True

    def run_all(self) -> int:
        """Run waiting actions here (those they schedule too) until none is left."""
        count = 0
        while self.run_one():
            count += 1
        return count


class Recorder:
    """Downstream: logs the start and the end of each ``on_next`` (nesting shows), and runs
    the hook registered for an item while it is being delivered."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.hooks: dict[Any, Callable[[], None]] = {}
        self.ends: list[str] = []

    def on_next(self, item: Any) -> None:
        self.log.append(("start", item))
        hook = self.hooks.pop(item, None)
        if hook is not None:
            hook()
        self.log.append(("end", item))

    def on_error(self, error: Exception) -> None:
        self.ends.append(f"error:{type(error).__name__}")

    def on_completed(self) -> None:
        self.ends.append("completed")

    @property
    def items(self) -> list[Any]:
        return [item for what, item in self.log if what == "start"]

    @staticmethod
    def flat(items: list[Any]) -> list[tuple[str, Any]]:
        """The log of ``items`` delivered one after the other, none inside another."""
        return [entry for item in items for entry in (("start", item), ("end", item))]


def bounded(fn: Callable[[], Any], seconds: float = 2.0) -> Any:
    """Run ``fn`` on a helper thread; fail if it does not return within ``seconds``.

    Returns what ``fn`` returned; re-raises what it raised."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn!r} did not return within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


class Outcome:
    """What a producer thread's call did: returned, or raised (bounded by ``join``)."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.error: BaseException | None = None
        self.returned = False
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
            self.returned = True
        except BaseException as error:
            self.error = error

    def join(self, seconds: float = 5.0) -> bool:
        """Whether the call ended within ``seconds``."""
        self.thread.join(seconds)
        return not self.thread.is_alive()
