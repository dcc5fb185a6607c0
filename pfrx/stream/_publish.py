"""A hot, serialized fan-out that survives its subscribers: ``Stream.results`` and ``dropped``.

Unlike ``reactivex.Subject``:

- a subscriber that raises is logged and counted (``on_error`` of the owner), and every other
  subscriber still gets the item, and so does that subscriber with the next one;
- notifications may come from several threads at once (drops do) or re-entrantly from a
  subscriber (a subscriber that sends again): they are queued and delivered one at a time,
  in order, by whichever thread is delivering already (the queue-drain pattern), so a
  subscriber never sees overlapping or nested calls and nobody waits on a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from loguru import logger
from reactivex import Observable, abc
from reactivex.disposable import Disposable

T = TypeVar("T")

_NEXT, _ERROR, _COMPLETED = 0, 1, 2
#: See `Publisher.limit`.
QUEUE_LIMIT = 10_000
get_ident = threading.get_ident
#: The longest a notifying thread waits for room, in seconds (see ``_wait_for_room``).
MAX_WAIT = 1.0


class _Sink:
    """One subscriber's three callbacks."""

    __slots__ = ("on_completed", "on_error", "on_next")

    def __init__(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.on_next = on_next
        self.on_error = on_error
        self.on_completed = on_completed


def _ignore(_value: Any) -> None:
    pass


def _nothing() -> None:
    pass


def _reraise(error: Exception) -> None:
    # What RxPY does for a subscriber without on_error; the fan-out logs nothing for it.
    raise error


class Publisher(Observable[T], Generic[T]):
    """Hot observable fed by `emit`, `fail` and `complete`.

    Args:
        what: a label for the log (``"results"``, ``"dropped"``).
        subscriber_failed: called once for each exception a subscriber raised.
    """

    def __init__(self, what: str, subscriber_failed: Callable[[], None]) -> None:
        super().__init__()
        self._what = what
        self._subscriber_failed = subscriber_failed
        self._observers: tuple[_Sink, ...] = ()
        # Their ``on_next`` callables, changed with ``_observers`` (one lookup less per item).
        self._on_nexts: tuple[Callable[[Any], None], ...] = ()
        self._subscribe_lock = threading.Lock()
        self._delivering = threading.Lock()
        self._queue: deque[tuple[int, Any]] = deque()
        self._terminal: tuple[int, Any] | None = None
        #: The thread delivering right now (None when idle): a send from it is re-entrant.
        self.thread: int | None = None
        #: How many notifications may wait before a notifying thread waits for room.
        self.limit = QUEUE_LIMIT
        self._room = threading.Condition(threading.Lock())
        self._waiters = 0

    # -- subscribers -------------------------------------------------------------------------
    def subscribe(
        self,
        on_next: abc.ObserverBase[T] | abc.OnNext[T] | None = None,
        on_error: abc.OnError | None = None,
        on_completed: abc.OnCompleted | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Subscribe an observer or callbacks, as ``Observable.subscribe`` does.

        Hot: no subscription side effects to schedule, so the callbacks are kept as they are
        (no ``AutoDetachObserver`` around them), one call less per item and subscriber.
        """
        if isinstance(on_next, abc.ObserverBase) or callable(getattr(on_next, "on_next", None)):
            observer: Any = on_next
            sink = _Sink(observer.on_next, observer.on_error, observer.on_completed)
        else:
            sink = _Sink(on_next or _ignore, on_error or _reraise, on_completed or _nothing)
        return self._add(sink)

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self._add(_Sink(observer.on_next, observer.on_error, observer.on_completed))

    def _add(self, sink: _Sink) -> abc.DisposableBase:
        with self._subscribe_lock:
            terminal = self._terminal
            if terminal is None:
                self._set_observers((*self._observers, sink))
        if terminal is not None:
            self._deliver_terminal((sink,), terminal)
            return Disposable()

        def unsubscribe() -> None:
            with self._subscribe_lock:
                self._set_observers(tuple(o for o in self._observers if o is not sink))

        return Disposable(unsubscribe)

    def _set_observers(self, observers: tuple[_Sink, ...]) -> None:
        # Under the subscribe lock. A delivery reads one tuple or the other, never a mix.
        self._observers = observers
        self._on_nexts = tuple(sink.on_next for sink in observers)

    @property
    def has_observers(self) -> bool:
        return bool(self._observers)

    # -- notifications -------------------------------------------------------------------------
    def emit(self, value: T) -> None:
        """Deliver ``value`` to every subscriber (after whatever is being delivered now)."""
        queue = self._queue
        delivering = self._delivering
        if not queue and delivering.acquire(False):
            self.thread = get_ident()
            try:
                # After the terminal notification the tuple is empty: nothing is delivered.
                for on_next in self._on_nexts:
                    try:
                        on_next(value)
                    except Exception:
                        self._raised()
                if queue:
                    self._drain()
            finally:
                self.thread = None
                delivering.release()
            if queue:
                self._after_release()
            return
        queue.append((_NEXT, value))
        self._after_release()
        if len(queue) > self.limit and get_ident() != self.thread:
            self._wait_for_room()

    def emit_many(self, values: list[T]) -> None:
        """`emit` each of ``values``, in order, entering the fan-out once."""
        queue = self._queue
        delivering = self._delivering
        if not queue and delivering.acquire(False):
            self.thread = get_ident()
            try:
                on_nexts = self._on_nexts
                done = 0
                if len(on_nexts) == 1:  # the common case: no inner loop, while it lasts
                    only = on_nexts[0]
                    for value in values:
                        if self._on_nexts is not on_nexts:
                            break  # (un)subscribed meanwhile: read for each value, below
                        try:
                            only(value)
                        except Exception:
                            self._raised()
                        done += 1
                # Who subscribes is read for each value, as `emit` reads it.
                for value in values[done:] if done else values:
                    for on_next in self._on_nexts:
                        try:
                            on_next(value)
                        except Exception:
                            self._raised()
            finally:
                self.thread = None
                delivering.release()
            if queue:  # notified from elsewhere meanwhile: delivered after these
                self._after_release()
            return
        queue.extend([(_NEXT, value) for value in values])
        self._after_release()
        if len(queue) > self.limit and get_ident() != self.thread:
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        # Notifications from many threads (drops) faster than a slow subscriber takes them
        # must not grow memory without bound: a thread other than the delivering one waits
        # until the queue is down to half. The delivering thread itself never waits here, so
        # a subscriber that causes notifications cannot wait on itself; and no wait lasts
        # more than a second, because the waiting thread may hold a lock of an operator
        # (a drop is reported under it) that the delivering thread's subscriber needs.
        # A thread that gives up has added one item: the queue still grows only that slowly.
        queue = self._queue
        deadline = time.monotonic() + MAX_WAIT
        with self._room:
            self._waiters += 1
            try:
                while len(queue) > self.limit // 2 and self._terminal is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._delivering.locked():
                        break  # gave up, or nobody is delivering: we will (below)
                    self._room.wait(min(remaining, 0.1))
            finally:
                self._waiters -= 1
        self._after_release()

    def fail(self, error: Exception) -> None:
        """Terminate every subscriber with ``error`` (once; later notifications are ignored)."""
        self._queue.append((_ERROR, error))
        self._after_release()

    def complete(self) -> None:
        """Complete every subscriber (once; later notifications are ignored)."""
        self._queue.append((_COMPLETED, None))
        self._after_release()

    @property
    def terminated(self) -> bool:
        return self._terminal is not None

    def _after_release(self) -> None:
        # Queue-drain: an item appended while another thread was delivering is taken by that
        # thread, or (if it let go meanwhile) by us; nobody ever waits for the lock.
        while self._queue and self._delivering.acquire(False):
            self.thread = threading.get_ident()
            try:
                self._drain()
            finally:
                self.thread = None
                self._delivering.release()

    def _drain(self) -> None:
        queue = self._queue
        half = self.limit // 2
        while queue:
            kind, value = queue.popleft()
            if self._waiters and len(queue) <= half:
                with self._room:
                    self._room.notify_all()
            if self._terminal is not None:
                continue
            if kind == _NEXT:
                self._deliver_next(value)
            else:
                with self._subscribe_lock:
                    self._terminal = (kind, value)
                    observers = self._observers
                    self._set_observers(())
                self._deliver_terminal(observers, (kind, value))

    def _deliver_next(self, value: T) -> None:
        for on_next in self._on_nexts:
            try:
                on_next(value)
            except Exception:
                self._raised()

    def _raised(self) -> None:
        logger.exception("a subscriber of {} raised; the stream goes on", self._what)
        self._subscriber_failed()

    def _deliver_terminal(self, observers: tuple[_Sink, ...], terminal: tuple[int, Any]) -> None:
        kind, error = terminal
        for observer in observers:
            try:
                if kind == _ERROR:
                    observer.on_error(error)
                else:
                    observer.on_completed()
            except Exception as raised:
                if raised is error:
                    continue  # a subscriber without on_error: RxPY re-raises the error itself
                logger.exception("a subscriber of {} raised at the end", self._what)
                self._subscriber_failed()
