"""backpressure: a bounded buffer between a producer and a drain running on a scheduler.

This module is the buffer and its drain; what each strategy does when the buffer is full is a
`Strategy` object (``_backpressure_policy.py``), asked under
the lock.

One `_Run` per subscription holds the buffer (a ``deque``) and one lock. There is one
producer path for every strategy: under the lock, an item that finds room is appended (the
adaptive strategy may shed the oldest first); one that finds the buffer full does what the
strategy's `Full` says (evict the oldest, drop the incoming,
fail, or wait). When no drain is pending or running, the producer schedules exactly one drain
action; the drain takes up to a batch per turn under the lock and delivers it outside, then
schedules its next turn only if items remain. Delivery is serialized by an *owner* token:
whoever delivers (the scheduled drain, or a ``block`` producer draining inline) holds it, so
downstream never sees overlapping calls and order is preserved.

A ``block`` producer waits on a ``threading.Condition`` for room only when waiting cannot
deadlock: never on a virtual-time, trampoline or immediate scheduler, never on the drain's own
thread (an event loop's thread, the drain thread of an earlier turn). There it delivers the
oldest items itself until there is room.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from itertools import repeat, starmap
from typing import Any

from loguru import logger
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.scheduler import (
    CurrentThreadScheduler,
    EventLoopScheduler,
    ImmediateScheduler,
    NewThreadScheduler,
    TrampolineScheduler,
    VirtualTimeScheduler,
)
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._clock import positive_seconds
from .._model import BackpressureOverflow, BackpressureTimeout, Watermark
from ..checkpoint import CheckpointMismatch, current_scope
from ..metrics import BufferGauge, StreamMetrics
from ._backpressure_policy import (
    OVERFLOW,
    SHED,
    STRATEGIES,
    AdaptivePolicy,
    Full,
    Strategy,
    Switch,
    make_strategy,
)
from ._checks import an_int, optional_scheduler, positive_int, reporting
from ._shared import (
    BatchBroken,
    DropHandler,
    Gate,
    Reporter,
    batch_entry,
    current_gate,
    subscribe_with_batches,
)

DISPOSED = "disposed"
DOWNSTREAM_ERROR = "downstream_error"
SCHEDULER_ERROR = "scheduler_error"

# Schedulers that may run the drain on the producer's thread inside ``schedule``.
_SYNCHRONOUS = (TrampolineScheduler, CurrentThreadScheduler, ImmediateScheduler)
_NEVER_WAIT = (
    VirtualTimeScheduler,
    TrampolineScheduler,
    CurrentThreadScheduler,
    ImmediateScheduler,
)


def backpressure(
    strategy: str = "drop_oldest",
    *,
    buffer_size: int = 10_000,
    batch_size: int = 100,
    scheduler: abc.SchedulerBase | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    timeout: float | timedelta | None = None,
    adaptive: AdaptivePolicy | None = None,
    name: str = "backpressure",
) -> Callable[[Observable[Any]], Observable[Any]]:
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown backpressure strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    if strategy == "latest":  # latest holds one pending item: only buffer_size's type matters
        an_int(buffer_size, "buffer_size")
    else:
        positive_int(buffer_size, "buffer_size")
    positive_int(batch_size, "batch_size")
    optional_scheduler(scheduler)
    reporting(on_drop, metrics, name)
    wait_limit: float | None = None
    if timeout is not None:
        wait_limit = positive_seconds(timeout, "timeout")
        if strategy != "block":
            raise ValueError(f"timeout applies to the 'block' strategy only, not {strategy!r}")
    if adaptive is not None:
        if not isinstance(adaptive, AdaptivePolicy):
            raise TypeError(f"adaptive must be an AdaptivePolicy, not {type(adaptive).__name__}")
        if strategy != "adaptive":
            raise ValueError(f"adaptive= applies to the 'adaptive' strategy only, not {strategy!r}")
    policy = adaptive or AdaptivePolicy()

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            chosen = scheduler or subscribe_scheduler
            owned: EventLoopScheduler | None = None
            if chosen is None or type(chosen) is NewThreadScheduler:
                # A dedicated drain thread: one for the whole subscription, not one per turn.
                owned = EventLoopScheduler()
                chosen = owned
            reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=chosen)
            # Inside a stream, a send_many batch is gathered (or comes as one list) where the
            # buffer takes items with no other effect: never where the drain runs inside
            # ``schedule``, on the producer's thread (see _Run.gather).
            gate = None if isinstance(chosen, _SYNCHRONOUS) else current_gate()
            run = _Run(
                make_strategy(strategy, buffer_size, batch_size, policy),
                buffer_size,
                batch_size,
                wait_limit,
                name,
                observer,
                chosen,
                owned,
                reporter,
                batch_entry(observer),
                gate,
            )
            scope = current_scope()  # checkpoints: the buffered items (see pfrx.checkpoint)
            if scope is not None:
                scope.register(name, run)
            whole = gate is not None  # see _Run.take_batch
            run.upstream.disposable = subscribe_with_batches(
                source,
                run.on_next if gate is not None else run.take,
                run.on_error,
                run.on_completed,
                subscribe_scheduler,
                run.take_batch if whole else None,
                run.batch_room if whole else None,
            )
            return Disposable(run.dispose)

        return Observable(subscribe)

    return operator


class _Waiting:
    """Producers of ``block`` waiting for room: the condition they wait on (over the
    buffer's lock), how many wait, how long they may, and whether a thread may wait at all."""

    __slots__ = ("drain_thread", "limit", "never", "room", "scheduler", "waiters")

    def __init__(
        self, lock: threading.Lock, scheduler: abc.SchedulerBase, limit: float | None
    ) -> None:
        self.room = threading.Condition(lock)
        self.scheduler = scheduler
        self.limit = limit
        self.never = isinstance(scheduler, _NEVER_WAIT)
        self.drain_thread: int | None = None
        self.waiters = 0

    def wait(self, timeout: float | None) -> None:
        """Wait for room (the buffer's lock held), at most ``timeout`` seconds."""
        self.waiters += 1
        try:
            self.room.wait(timeout)
        finally:
            self.waiters -= 1

    def notify(self) -> None:
        """Wake every waiting producer (the buffer's lock held)."""
        if self.waiters:
            self.room.notify_all()

    def may_wait(self, me: int) -> bool:
        """Whether a producer on thread ``me`` can wait for the drain without deadlock."""
        if self.never or me == self.drain_thread:
            return False
        sched = self.scheduler
        if isinstance(sched, EventLoopScheduler):
            thread = getattr(sched, "_thread", None)
            if getattr(thread, "ident", None) == me:
                return False
        if isinstance(sched, AsyncIOScheduler):
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                return True
            return running is not getattr(sched, "_loop", None)
        return True


class _DrainStats:
    """What the drain publishes in the metrics' ``info`` after each turn."""

    __slots__ = ("delivered", "largest", "turns")

    def __init__(self) -> None:
        self.turns = 0
        self.delivered = 0
        self.largest = 0

    def turn(self, count: int, peak: int) -> dict[str, float]:
        self.turns += 1
        self.delivered += count
        if count > self.largest:
            self.largest = count
        return {
            "turns": self.turns,
            "items": self.delivered,
            "last_batch": count,
            "max_batch": self.largest,
            "mean_batch": self.delivered / self.turns,
            "peak_buffered": peak,
        }


class _Run:
    """One subscription of ``backpressure``: the buffer, its drain and the owner token."""

    __slots__ = (
        "arrival",
        "batch",
        "buf",
        "capacity",
        "closed_reason",
        "done",
        "error",
        "evicts",
        "fails",
        "finished",
        "forward_batch",
        "full",
        "gate",
        "gathered",
        "gauge",
        "inflight",
        "label",
        "lock",
        "marks",
        "metrics",
        "name",
        "observer",
        "owned",
        "owner",
        "peak",
        "reason",
        "received",
        "report_lock",
        "reporter",
        "scheduled",
        "scheduler",
        "stats",
        "stopped",
        "strategy",
        "upstream",
        "waiting",
    )

    def __init__(
        self,
        strategy: Strategy,
        buffer_size: int,
        batch_size: int,
        wait_limit: float | None,
        name: str,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        owned: EventLoopScheduler | None,
        reporter: Reporter,
        forward_batch: Callable[[list[Any]], None] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.strategy = strategy
        # Downstream's list entry (a stream's boundary): a drain turn is delivered as one list.
        self.forward_batch = forward_batch
        # A stream's batch gate, and what this subscription gathered from the thread
        # handing a send_many batch over (see gather).
        self.gate = gate
        self.gathered: list[Any] = []
        if gate is not None:
            gate.flushers.append(self.flush_gathered)
        # Read once: the producer path asks these per item.
        self.full = strategy.full
        self.evicts = strategy.full is Full.EVICT_OLDEST
        self.fails = strategy.full is Full.FAIL
        self.reason = strategy.reason
        self.arrival = strategy.arrivals()
        self.lock = threading.Lock()
        self.report_lock = threading.RLock()
        self.received = reporter.received
        self.buf: deque[Any] = deque()
        self.inflight: deque[Any] = deque()
        # Watermarks waiting in buf / inflight (an upper bound): while any, the drain counts
        # what it delivers one by one, leaving them out.
        self.marks = 0
        self.capacity = strategy.capacity(buffer_size)
        self.batch = batch_size
        self.name = name
        self.observer = observer
        self.scheduler = scheduler
        self.owned = owned
        self.reporter = reporter
        self.metrics = reporter.metrics
        self.label = reporter.counters.name if reporter.counters is not None else name
        self.scheduled = False
        self.owner: int | None = None
        self.done = False
        self.error: Exception | None = None
        self.finished = False
        self.stopped = False
        self.closed_reason: str | None = None
        self.waiting = _Waiting(self.lock, scheduler, wait_limit)
        self.peak = 0
        self.stats = _DrainStats()
        self.upstream = SingleAssignmentDisposable()
        self.gauge: abc.DisposableBase | None = None
        if self.metrics is not None:
            self.gauge = self.metrics.register_buffer(self.label, self._gauge)
            self._publish_strategy()

    # -- reporting -----------------------------------------------------------------------
    def _gauge(self) -> BufferGauge:
        return BufferGauge(len(self.buf), self.capacity, self.peak)

    def _publish_strategy(self) -> None:
        metrics = self.metrics
        if metrics is not None:
            for key, value in self.strategy.info().items():
                metrics.set_info(f"{self.label}.{key}", value)

    def _lost(self, item: Any, reason: str, *, event: bool) -> None:
        """Report one item that will never leave; ``event``: it found the buffer full.

        Under the reporting lock: counters stay exact with many producer threads, and
        ``on_drop`` is never called concurrently (re-entrant, so it may send again).
        """
        if type(item) is Watermark:
            with self.lock:
                self.marks -= 1
            return  # no item: nothing lost (a later watermark or item moves event time on)
        with self.report_lock:
            if event and self.metrics is not None:
                self.metrics.record_backpressure()
            self.reporter.drop(item, reason)

    def _switched(self, changes: list[Switch]) -> None:
        for change in changes:
            logger.info(
                "{}: adaptive {} {} -> {} ({})",
                self.name,
                change.what,
                change.old,
                change.new,
                change.why,
            )
        self._publish_strategy()

    def _wake(self) -> None:
        try:
            self.scheduler.schedule(self._drain)
        except Exception:
            logger.exception("{}: could not schedule the drain", self.name)
            self._fail_downstream()

    def _closed(self, item: Any) -> None:
        """An item arrived after the operator closed (disposed, or failed on overflow)."""
        with self.lock:
            self.received()
        self._lost(item, self.closed_reason or DISPOSED, event=False)

    # -- the producer: one path for every strategy -------------------------------------------
    def on_next(self, item: Any) -> None:
        gate = self.gate
        if (
            gate is not None
            and gate.thread is not None
            and gate.thread == get_ident()
            and self.gather(item)
        ):
            return
        self.take(item)

    def take(self, item: Any) -> None:
        """One item from upstream, whatever the strategy says (see the module docstring)."""
        if type(item) is Watermark:
            self._watermark(item)
            return
        lost: Any = _NOTHING
        switch: Switch | None = None
        wake = False
        with self.lock:
            if self.closed_reason is not None:
                closed = True
            else:
                closed = False
                buf = self.buf
                if len(buf) < self.capacity or (
                    self.marks and len(buf) - self.marks < self.capacity
                ):
                    arrival = self.arrival
                    if arrival is not None:
                        shed, switch = arrival(len(buf))
                        if shed:
                            lost, reason = buf.popleft(), SHED
                    self.received()
                    buf.append(item)
                    wake = self._accepted(buf)
                elif self.evicts:
                    lost, reason = self._oldest_item(buf), self.reason
                    self.received()
                    buf.append(item)
                    wake = self._accepted(buf)
                elif (full := self.full) is _DROP_INCOMING:
                    lost, reason = item, self.reason
                    self.received()
                elif full is _FAIL:
                    lost, reason = item, self.reason
                    self.received()
                    self.closed_reason = OVERFLOW
                    self.done = True
                    self.error = BackpressureOverflow(self.capacity, item)
                    wake = not self.scheduled and self.owner is None
                    if wake:
                        self.scheduled = True
                else:  # Full.WAIT: nothing is lost; an item that times out is not received
                    self._wait_for_room(item)
                    closed = self.closed_reason is not None
                    if not closed:
                        self.received()
                        buf = self.buf
                        buf.append(item)
                        wake = self._accepted(buf)
        if closed:
            self._closed(item)
            return
        if switch is not None:
            self._switched([switch])
        if lost is not _NOTHING:
            self._lost(lost, reason, event=reason != SHED)
            if self.fails:  # error loses an item only when it fails
                self.upstream.dispose()
                logger.warning("{}: buffer full ({} items), failing", self.name, self.capacity)
        if wake:
            self._wake()

    # -- send_many batches: gathered, then taken in one go ---------------------------------
    def gather(self, item: Any) -> bool:
        """On the thread handing a stream's ``send_many`` batch over: keep ``item`` for
        `on_batch` (True) when all it would do now is wait in the buffer; else hand on
        what was kept first and say False: the caller takes ``item`` itself, in its place,
        with every effect of the strategy (an eviction, an overflow, a wait and its timeout,
        an inline delivery), so the sender learns of them exactly as one by one.

        What is kept goes in silently later, in order: only the drain takes items out
        meanwhile (the stream's input is held), so the room it found stays. The stream
        flushes (`flush_gathered`) before any drop it reports on that thread and at the
        batch's end.
        """
        gathered = self.gathered
        if (
            type(item) is not Watermark
            and self.arrival is None
            and self.closed_reason is None
            and not self.marks  # a watermark delivered meanwhile would take its room back
            and self.capacity - len(self.buf) > len(gathered)
        ):
            gathered.append(item)
            if len(gathered) >= _GATHER_LIMIT:
                self.flush_gathered()
            return True
        if gathered:
            self.flush_gathered()
        return False

    def flush_gathered(self) -> bool:
        """Take what `gather` kept (on the gathering thread); whether there was anything."""
        items = self.gathered
        if not items:
            return False
        self.gathered = []
        self.on_batch(items)
        return True

    def on_batch(self, items: list[Any]) -> None:
        """`take` for each of ``items`` (no watermark among them), in order: those that
        find room go in under one lock, counted once, with one wake of the drain; the first
        that finds the buffer full (or arrives at an ``adaptive`` buffer) and those after it
        take `take` one by one, with every effect of the strategy.

        Raises:
            Exception: whatever broke, once each item that did not get in is reported lost.
        """
        entered = 0
        wake = False
        try:
            with self.lock:
                buf = self.buf
                room = self.capacity - len(buf) + self.marks
                if self.closed_reason is None and self.arrival is None and room > 0:
                    if room >= len(items):
                        self.received(len(items))
                        buf.extend(items)
                        entered = len(items)
                    else:
                        self.received(room)
                        buf.extend(items[:room])
                        entered = room
                    wake = self._accepted(buf)
            if wake:
                wake = False
                self._wake()
            take = self.take
            while entered < len(items):
                take(items[entered])
                entered += 1
        except Exception:
            self._lose_rest(items, entered)
            raise

    def batch_room(self, size: int) -> bool:
        """Whether ``size`` items handed to `take_batch` now would all go in at once, with
        no effect but being buffered (see ``subscribe_with_batches``): only the drain takes
        items out meanwhile, so the room can only grow until they come. What this thread
        gathered goes in first (see `take_batch`): it takes its room."""
        return (
            self.closed_reason is None
            and self.arrival is None
            and not self.marks  # see gather
            and self.capacity - len(self.buf) - len(self.gathered) >= size
        )

    def take_batch(self, items: list[Any]) -> None:
        """A stream's ``send_many`` batch, as one list after the links (see `batch_room`).

        Raises:
            BatchBroken: the buffer broke, once each item it did not take is reported lost.
        """
        try:
            if self.gathered:  # what this thread gave before goes in first
                self.flush_gathered()
        except Exception as error:
            for item in items:
                self._lost(item, BROKEN, event=False)
            raise BatchBroken(str(error)) from error
        try:
            self.on_batch(items)
        except Exception as error:
            raise BatchBroken(str(error)) from error

    def _lose_rest(self, items: list[Any], entered: int) -> None:
        """``on_batch`` broke at ``items[entered]``: report each item that did not get in."""
        if entered >= len(items):
            return
        with self.lock:
            held = {id(item) for item in (*self.buf, *self.inflight)}
        first = items[entered]
        rest = items[entered + 1 :] if id(first) in held else items[entered:]
        for item in rest:
            self._lost(item, BROKEN, event=False)

    def _watermark(self, mark: Watermark) -> None:
        """Event-time progress: it queues in order with the items but is none. It takes no
        room (never waits, evicts nor overflows), is never counted nor reported lost, and
        replaces a watermark of the same source waiting behind the last item (so at most
        one per source waits between two items)."""
        with self.lock:
            if self.closed_reason is not None:
                return
            buf = self.buf
            for i in range(len(buf) - 1, -1, -1):
                waiting = buf[i]
                if type(waiting) is not Watermark:
                    break
                if waiting.source == mark.source:
                    try:
                        later = mark.time >= waiting.time
                    except TypeError:  # a datetime after seconds: the clock will judge
                        break
                    buf[i] = mark if later else Watermark(waiting.time, mark.source, mark.idle)
                    return
            self.marks += 1
            buf.append(mark)
            wake = self._accepted(buf)
        if wake:
            self._wake()

    def _oldest_item(self, buf: deque[Any]) -> Any:
        """Evict the oldest item (under the lock), never a watermark."""
        if not self.marks or type(buf[0]) is not Watermark:
            return buf.popleft()
        for i, item in enumerate(buf):
            if type(item) is not Watermark:
                del buf[i]
                return item
        return buf.popleft()  # only watermarks: cannot be (the buffer is full of items)

    def _accepted(self, buf: deque[Any]) -> bool:
        """Bookkeeping after an append, under the lock; True if a drain must be scheduled."""
        size = len(buf)
        if size > self.peak:
            self.peak = size
        if self.scheduled or self.owner is not None:
            return False
        self.scheduled = True
        return True

    def _wait_for_room(self, item: Any) -> None:
        """``block``: under the lock, until there is room or the operator closed. A producer
        that may not wait delivers the oldest items itself (taking the owner token)."""
        me = threading.get_ident()
        lock = self.lock
        waiting = self.waiting
        if self.metrics is not None:
            self.metrics.record_backpressure()
        deadline: float | None = None
        while self.closed_reason is None and len(self.buf) >= self.capacity:
            owner = self.owner
            if owner == me or (owner is None and not waiting.may_wait(me)):
                # Deliver the oldest item ourselves (inflight items are older).
                took = owner is None
                if took:
                    self.owner = me
                oldest = self.inflight.popleft() if self.inflight else self.buf.popleft()
                lock.release()
                try:
                    ok = self._deliver_one(oldest)
                finally:
                    lock.acquire()
                    if took:
                        self.owner = None
                if not ok:
                    return
                continue
            if owner is None and not self.scheduled:
                # Inline delivery left items and no drain pending: schedule one.
                self.scheduled = True
                lock.release()
                try:
                    self._wake()
                finally:
                    lock.acquire()
                continue
            limit = waiting.limit
            if limit is not None and deadline is None:
                deadline = self.reporter.now() + limit
            remaining = None if deadline is None else deadline - self.reporter.now()
            if remaining is not None and remaining <= 0:
                raise BackpressureTimeout(limit or 0.0, item)
            waiting.wait(remaining)

    # -- upstream terminal notifications -------------------------------------------------------
    def on_completed(self) -> None:
        self._finish(None)

    def on_error(self, error: Exception) -> None:
        self._finish(error)

    def _finish(self, error: Exception | None) -> None:
        with self.lock:
            if self.done or self.stopped:
                if error is not None and self.closed_reason == OVERFLOW:
                    logger.warning("{}: upstream error after overflow: {!r}", self.name, error)
                return
            self.done = True
            self.error = error
            wake = not self.scheduled and self.owner is None
            if wake:
                self.scheduled = True
        if wake:
            self._wake()

    # -- the drain -----------------------------------------------------------------------------
    def _drain(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        # On a dedicated drain thread nobody else waits for the scheduler: the next turn
        # runs here at once instead of being scheduled (see _end_turn).
        while self._turn():
            pass

    def _turn(self) -> bool:
        """One drain turn; True when the next one is due and may run here at once."""
        me = threading.get_ident()
        strategy = self.strategy
        switches: list[Switch] = []
        with self.lock:
            self.scheduled = False
            if self.owner is not None or self.finished or self.stopped:
                return False
            self.owner = me
            self.waiting.drain_thread = me
            buf = self.buf
            limit, switch = strategy.turn_start(len(buf), self.batch)
            if switch is not None:
                switches.append(switch)
            if len(buf) <= limit and not self.inflight:
                self.buf, self.inflight = self.inflight, buf
            else:  # the oldest ``limit`` items, moved in one C loop (no frame per item)
                self.inflight.extend(starmap(buf.popleft, repeat((), min(limit, len(buf)))))
            self.waiting.notify()
        if not strategy.timed:
            return self._end_turn(self._deliver_inflight(), switches, 0.0)
        started = self.reporter.now()
        count = self._deliver_inflight()
        return self._end_turn(count, switches, self.reporter.now() - started)

    def _deliver_one(self, item: Any) -> bool:
        """Deliver one item taken by an inline ``block`` producer; False if delivery failed."""
        try:
            self.observer.on_next(item)
        except Exception:
            self._downstream_failed()
            return False
        if type(item) is Watermark:
            with self.lock:
                self.marks -= 1
        else:
            self.reporter.emitted()
        return True

    def _deliver_inflight(self) -> int:
        inflight = self.inflight
        forward = self.observer.on_next
        count = 0
        if self.forward_batch is not None and not self.marks and len(inflight) > 1:
            return self._deliver_batch(self.forward_batch)
        try:
            if self.marks:
                count = self._deliver_counting(inflight, forward)
            else:
                while inflight and not self.stopped:
                    forward(inflight.popleft())
                    count += 1
        except Exception:
            self._downstream_failed()
        if count:
            self.reporter.emitted(count)
        if self.stopped and inflight:
            left = list(inflight)
            inflight.clear()
            reason = self.closed_reason or DISPOSED
            for item in left:
                self._lost(item, reason, event=False)
        return count

    def _deliver_batch(self, forward_batch: Callable[[list[Any]], None]) -> int:
        """The drain's turn as one list, to a downstream that takes lists (a stream's
        boundary, which reports each item itself if it cannot deliver them)."""
        with self.lock:  # taken from inflight at once: a close reports what is left there
            items = list(self.inflight)
            self.inflight.clear()
            stopped = self.stopped
        if stopped:
            reason = self.closed_reason or DISPOSED
            for item in items:
                self._lost(item, reason, event=False)
            return 0
        try:
            forward_batch(items)
        except Exception:
            self._downstream_failed()
            return 0
        self.reporter.emitted(len(items))
        return len(items)

    def _deliver_counting(self, inflight: deque[Any], forward: Callable[[Any], None]) -> int:
        """The drain's loop while watermarks wait: they pass uncounted."""
        count = marks = 0
        try:
            while inflight and not self.stopped:
                item = inflight.popleft()
                forward(item)
                if type(item) is Watermark:
                    marks += 1
                else:
                    count += 1
        except Exception:
            if count:  # the caller counts what a completed loop returns
                self.reporter.emitted(count)
            raise
        finally:
            if marks:
                with self.lock:
                    self.marks -= marks
        return count

    def _end_turn(self, count: int, switches: list[Switch], elapsed: float) -> bool:
        """Close a turn; True when the next turn is due and the drain thread is our own."""
        wake = terminal = False
        with self.lock:
            self.owner = None
            if not self.stopped:
                switches.extend(self.strategy.turn_end(len(self.buf), count, elapsed))
            self.waiting.notify()
            if not self.stopped:
                if self.buf or self.inflight:
                    if not self.scheduled:
                        self.scheduled = wake = True
                elif self.done and not self.finished:
                    self.finished = terminal = True
        if switches:
            self._switched(switches)
        if count and self.metrics is not None:
            self.metrics.set_info(f"{self.label}.drain", self.stats.turn(count, self.peak))
        if terminal:
            try:
                if self.error is not None:
                    self.observer.on_error(self.error)
                else:
                    self.observer.on_completed()
            finally:
                self._release_resources()
        elif wake:
            if self.owned is not None:
                return True
            self._wake()
        return False

    # -- checkpoints (pfrx.checkpoint) ------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The items waiting (oldest first, those the drain holds for its turn included) and
        the strategy's state: a restored subscription delivers them first."""
        with self.lock:
            return {
                "strategy": self.strategy.name,
                "capacity": self.capacity,
                "items": [*self.inflight, *self.buf],
                "peak": self.peak,
                "policy": self.strategy.snapshot(),
            }

    def restore(self, state: dict[str, Any]) -> None:
        strategy = self.strategy
        if (state.get("strategy"), state.get("capacity")) != (strategy.name, self.capacity):
            raise CheckpointMismatch(
                f"backpressure({strategy.name!r}, capacity {self.capacity}) cannot restore "
                f"{state!r:.80}"
            )
        items = list(state["items"])
        strategy.restore(state["policy"])
        with self.lock:
            self.buf.extend(items)
            self.peak = max(self.peak, state["peak"], len(self.buf))
            wake = bool(self.buf) and self._accepted(self.buf)
            marks = sum(type(item) is Watermark for item in items)
            self.marks += marks
            if len(items) > marks:  # this subscription delivers them: its ledger
                self.received(len(items) - marks)
        self._publish_strategy()
        if wake:
            self._wake()

    # -- failure and disposal ------------------------------------------------------------------
    def _downstream_failed(self) -> None:
        logger.exception("{}: downstream on_next raised; the subscription is closed", self.name)
        self.reporter.error()
        self._close(DOWNSTREAM_ERROR)

    def _fail_downstream(self) -> None:
        self.reporter.error()
        self._close(SCHEDULER_ERROR)

    def _close(self, reason: str) -> None:
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
            self.closed_reason = reason
            left = list(self.buf)
            self.buf.clear()
            if self.inflight:  # also mid-delivery: report now, before the stream ends
                left = list(self.inflight) + left
                self.inflight.clear()
            self.waiting.notify()
        self.upstream.dispose()
        for item in left:
            self._lost(item, reason, event=False)
        self._release_resources()

    def dispose(self) -> None:
        """Stop the drain, release the buffer, report what is left as dropped (``disposed``)."""
        self._close(DISPOSED)

    def _release_resources(self) -> None:
        with self.lock:
            gauge, self.gauge = self.gauge, None
            owned, self.owned = self.owned, None
        if gauge is not None:
            gauge.dispose()
        if owned is not None:
            # RxPY's loop checks for a dispose only before it runs what is due: disposed from
            # inside an action (the drain ending the subscription) it would then wait for
            # work forever, a parked thread per subscription. Told to exit once nothing is
            # left to run, it ends either way.
            if hasattr(owned, "_exit_if_empty"):
                owned._exit_if_empty = True
            owned.dispose()


_NOTHING: Any = object()
#: The reason of an item a broken buffer lost while taking a batch (see _Run.on_batch).
BROKEN = "failed"
#: The most items `_Run.gather` keeps before handing them on.
_GATHER_LIMIT = 1024
get_ident = threading.get_ident
# Module constants: cheaper per item than looking members up on the enum class.
_DROP_INCOMING, _FAIL = Full.DROP_INCOMING, Full.FAIL
