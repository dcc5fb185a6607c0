"""The stream's serialized entry: many producers, re-entrant sends, one item at a time in.

The pipeline must see one ``on_next`` at a time (the Rx grammar). A lock held around each
call would make producers queue on it (and a producer that waits for room in a ``block``
buffer would hold everybody up), and a send from inside the stream (a subscriber, an
operator function, a drain thread) would wait on itself. Instead this is RxJava's
*queue-drain* (serialized emitter) pattern:

- a send that finds nobody emitting takes the **emitter role** (a non-blocking try of a
  lock) and hands its item to the pipeline itself: its result is the pipeline's answer
  (accepted, refused on a ``block`` timeout, refused because the pipeline broke);
- a send that finds the role taken puts its item in a bounded queue and returns accepted:
  the emitter hands queued items over, in order, after the item in progress. An accepted
  item that cannot be handed over after all (the pipeline failed or timed out meanwhile)
  is reported lost, exactly once, so the stream makes it one ``Dropped``;
- nobody ever waits on the role. Only a producer outside the stream that finds the queue
  full waits, without holding anything, for the emitter to make room; a send from inside
  the stream never waits: it is queued, or refused with reason ``"full"``;
- the emitter takes everything queued at once and counts it in one go, so producers that
  wait for room are woken once per run, not once per item;
- a ``send_many`` batch is one hand-off: handed over in one loop by a thread that takes
  the role (each item keeps its own result, and the results the pipeline gives back on
  that thread are published as one list, see ``gather``), or queued as **one** entry.

`SerializedInput.quiescent` runs a callable while no item is being handed over,
which is the consistent point a checkpoint needs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._model import BackpressureTimeout, SendResult
from ..operators._shared import BatchBroken, ignore_after_stop
from ._boundary import NOTHING
from .errors import CLOSED, FAILED, FULL, STREAM, TIMEOUT

R = TypeVar("R")

ACCEPTED = SendResult(True)
_REFUSALS: dict[str, SendResult] = {}


def refusal(reason: str) -> SendResult:
    """``SendResult(False, reason)``, shared for the stream's fixed reasons."""
    result = _REFUSALS.get(reason)
    if result is None:
        result = SendResult(False, reason)
        if len(_REFUSALS) < 64:
            _REFUSALS[reason] = result
    return result


class Refusal:
    """An item refused on its way in that must still be counted (see ``Stream.refused``)."""

    __slots__ = ("item", "operator", "reason")

    def __init__(self, item: Any, reason: str, operator: str) -> None:
        self.item = item
        self.reason = reason
        self.operator = operator


class Passing:
    """Something that is no send (a watermark): handed over in order with the sends, but
    never counted nor reported lost (see `SerializedInput.offer_passing`)."""

    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item


class Batch:
    """The items of one ``send_many`` call waiting in the queue: one entry, handed over in
    order. A queued batch counts as one queued send against ``capacity``."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class SerializedInput(Observable[Any]):
    """The observable a stream's pipeline subscribes to (once), fed by `offer`.

    A ``send_many`` batch goes through the pipeline's first links as one list when they
    end at a ``backpressure`` buffer that can take it whole (see `_take_whole`): the
    stream then holds the drops the links report meanwhile and publishes them in the order
    of the items they name (``orders_batch_drops``), which is the order one by one.

    Args:
        capacity: how many items may wait in the queue behind the item in progress.
        accepted: ``accepted(n)`` counts ``n`` items into the pipeline (called by the
            emitter only, so the count needs no lock; never before they are accepted).
        lost: ``lost(item, reason, operator)``: an accepted item will never be handed over.
        broke: an exception other than a ``block`` timeout escaped the pipeline's
            ``on_next``; the stream fails.
        inside: ``inside(thread)`` is true when that thread is running inside the stream
            elsewhere (delivering results or drops, inside an operator after a boundary).
        changed: called when the input stops (the pipeline let go of it) or goes idle while
            ending.
    """

    #: The stream orders the drops of a batch taken whole by the item each names (see
    #: ``FusedObservable``: only then may a batch run through the links' batch entries).
    orders_batch_drops = True

    def __init__(
        self,
        capacity: int,
        *,
        accepted: Callable[[int], None],
        lost: Callable[[Any, str, str], None],
        broke: Callable[[Exception], None],
        inside: Callable[[int], bool],
        changed: Callable[[], None],
    ) -> None:
        super().__init__()
        self.capacity = capacity
        self._accepted = accepted
        self._lost = lost
        self._broke = broke
        self._inside = inside
        self._changed = changed
        self._observer: abc.ObserverBase[Any] | None = None
        self._queue: deque[Any] = deque()
        self._role = threading.Lock()
        self._room = threading.Condition(threading.Lock())
        self._waiters = 0
        self._paused = 0
        #: The thread holding the emitter role, else None.
        self.thread: int | None = None
        #: The item being handed over (NOTHING when idle or once blamed).
        self.current: Any = NOTHING
        # Why new sends are refused (None while open); whether queued items are lost
        # (``_dropping``, a reason) rather than handed over; whether the pipeline's input
        # has been completed (or cut).
        self._refusing: str | None = None
        self._dropping: str | None = None
        self._ending = False
        self._completed = False
        self._subscribed = False
        #: ``gather(True)``: results given back on this thread are gathered from now on;
        #: ``gather(False)``: publish them (the stream's, set once it has its pipeline).
        self.gather: Callable[[bool], None] | None = None
        #: Hand on what is gathered so far, gathering on (the stream's, with ``gather``).
        self.flush: Callable[[], None] | None = None
        #: ``order(items)``: hold the drops reported on this thread from now on;
        #: ``order(None, broken)``: publish them in the order of ``items`` (first reporting
        #: lost, when ``broken``, each item not reported). The stream's.
        self.order: Callable[[list[Any] | None, bool], None] | None = None
        self._gathering = False

    # -- the pipeline's side -----------------------------------------------------------------
    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if self._subscribed:
            raise RuntimeError("a stream's input is subscribed once, by its pipeline")
        self._subscribed = True
        self._observer = observer

        def detach() -> None:
            # The pipeline let go (an operator disposed its upstream, or the stream ended):
            # it can no longer take input, so nothing may be accepted any more.
            self._observer = None
            if not self._completed:
                self._completed = True
                self.stop(FAILED)
            self._changed()

        return Disposable(detach)

    # -- state ---------------------------------------------------------------------------------
    @property
    def refusing(self) -> str | None:
        """Why sends are refused now (``"closed"``, ``"failed"``), or None while open."""
        return self._refusing

    @property
    def idle(self) -> bool:
        """Nothing queued and nobody handing an item over."""
        return not self._queue and self.thread is None and not self._role.locked()

    def take_current(self) -> Any:
        """The item being handed over (then forgotten, so it is reported once), or NOTHING."""
        item, self.current = self.current, NOTHING
        return item

    def close(self) -> None:
        """Refuse new sends; hand over what is queued, then complete the pipeline's input."""
        if self._refusing is None:
            self._refusing = CLOSED
        self._ending = True
        self._wake_waiters()
        if self._queue:
            # Whoever queued an item is about to hand it over (or the emitter is): they
            # complete the input after it. Handing items over here could wait for room in a
            # ``block`` buffer, and close() never blocks.
            return
        self._after_release()

    def stop(self, reason: str) -> None:
        """Refuse new sends with ``reason``; report what is queued as lost, complete input."""
        if self._refusing is None:
            self._refusing = reason
        if self._dropping is None:
            self._dropping = reason
        self._ending = True
        self._wake_waiters()
        self._after_release()

    # -- producers -----------------------------------------------------------------------------
    def offer(self, item: Any) -> SendResult:
        """Hand ``item`` over or queue it; the result says whether it was accepted."""
        if self._refusing is not None:
            return refusal(self._refusing)
        if not self._queue and not self._paused and self._role.acquire(False):
            self.thread = threading.get_ident()
            try:
                result = self._hand_over(item)
                if self._queue or self._ending:
                    self._drain()
            finally:
                self.thread = None
                self._role.release()
            if self._queue or self._ending:  # queued after our drain, or ending: see there
                self._after_release()
            return result
        return self._enqueue(item)

    def offer_many(self, items: list[Any]) -> list[SendResult]:
        """`offer` for each item, in order, with one hand-off for the whole list.

        If nobody is emitting, this thread takes the emitter role once and hands the items
        over in one tight loop, counted once (or before re-entrant sends queued meanwhile
        are handed over): each item gets its own result, as from `offer` (a ``block``
        timeout refuses that item only; once the input stops, the rest are refused).
        Otherwise the list is queued as **one** entry (one queue operation, one wait for
        room at most) and every item is accepted: the emitter hands them over in order
        later, and reports any it cannot hand over as lost, one by one.
        """
        if not items:
            return []
        if self._refusing is not None:
            return [refusal(self._refusing)] * len(items)
        if self._queue or self._paused or not self._role.acquire(False):
            return [self._enqueue(Batch(items))] * len(items)
        self.thread = threading.get_ident()
        try:
            results = self._hand_over_many(items)
            if self._queue or self._ending:
                self._drain()
        finally:
            self.thread = None
            self._role.release()
        self._after_release()
        return results

    def _hand_over_many(self, items: list[Any]) -> list[SendResult]:
        """Hand ``items`` over directly (holding the role); one result each."""
        results = [ACCEPTED] * len(items)
        observer = self._observer
        if observer is None:
            return [refusal(self._dropping or self._refusing or FAILED)] * len(items)
        if self._whole(observer, len(items)):
            gather = self._start_gathering()
            try:
                self._accepted(len(items))
                self._take_whole(observer, items)
            finally:
                if gather is not None:
                    self._gathering = False
                    gather(False)
            return results
        on_next = observer.on_next
        if on_next is ignore_after_stop:  # the pipeline let go just now (see _hand_over)
            return [refusal(self._dropping or self._refusing or FAILED)] * len(items)
        queue = self._queue
        counted = 0
        gather = self._start_gathering()
        try:
            for index, item in enumerate(items):
                if self._refusing is not None:  # closed, or the pipeline let go, meanwhile
                    rest = refusal(self._dropping or self._refusing)
                    results[index:] = [rest] * (len(items) - index)
                    break
                self.current = item
                try:
                    on_next(item)
                except BackpressureTimeout:
                    self.current = NOTHING
                    results[index] = refusal(TIMEOUT)
                    continue
                except Exception as error:
                    self.current = NOTHING
                    self._broke(error)  # the input stops: the next item finds it refusing
                    results[index] = refusal(FAILED)
                    continue
                self.current = NOTHING
                counted += 1
                if queue:  # re-entrant sends go after the item in progress
                    self._accepted(counted)
                    counted = 0
                    self._drain()
        finally:
            if counted:
                self._accepted(counted)
            if gather is not None:
                self._gathering = False
                gather(False)
        return results

    def _whole(self, observer: Any, size: int) -> bool:
        """Whether a batch of ``size`` items can go through as one list now: the pipeline's
        first links take lists and end at a buffer with room for it all (the only effects
        of the batch are then the links' own, each item's in its turn)."""
        room = getattr(observer, "batch_room", None)
        return (
            room is not None
            and self.order is not None
            and not self._completed
            and self._dropping is None
            and room(size)
        )

    def _take_whole(self, observer: Any, items: list[Any]) -> None:
        """Hand ``items`` (accepted and counted) over as one list; the drops reported meanwhile
        are published in the order of the items they name. If a link breaks, the stream fails
        and each item not reported yet is reported lost (the buffer took none); if the buffer
        breaks, it has reported each item it did not take."""
        order = self.order
        assert order is not None
        order(items, False)
        broken = False
        try:
            entry = observer.on_batch
            if entry is ignore_after_stop:  # the pipeline let go just now: none went in,
                broken = True  # each is reported lost below
            else:
                entry(items)
        except BatchBroken as error:
            cause = error.__cause__
            self._broke(cause if isinstance(cause, Exception) else error)
        except Exception as error:
            broken = True
            self._broke(error)
        finally:
            order(None, broken)

    def offer_passing(self, item: Any) -> SendResult:
        """Queue ``item``, which is no send, behind the sends made before it: handed over in
        order, uncounted; if the pipeline can no longer take it, it is forgotten."""
        if self._refusing is not None:
            return refusal(self._refusing)
        self._queue.append(Passing(item))
        self._after_release()
        return ACCEPTED

    def _pass(self, item: Any) -> None:
        observer = self._observer
        if observer is None or self._completed or self._dropping is not None:
            return
        try:
            observer.on_next(item)
        except BackpressureTimeout:
            pass  # a blocked buffer gave up on it: event time moves on with what follows
        except Exception as error:
            self._broke(error)

    def _start_gathering(self) -> Callable[[bool], None] | None:
        """Gather the results of a batch (unless an outer batch on this thread does)."""
        gather = self.gather
        if gather is None or self._gathering:
            return None
        self._gathering = True
        gather(True)
        return gather

    def _hand_over_batch(self, items: list[Any]) -> None:
        """Hand over a queued batch (holding the role; counted by `_drain`), its results
        gathered; an item that cannot be handed over is reported lost on its own."""
        gather = self._start_gathering()
        try:
            observer = self._observer
            if observer is not None and self._whole(observer, len(items)):
                self._take_whole(observer, items)
                return
            self._hand_over_queued(items)
        finally:
            if gather is not None:
                self._gathering = False
                gather(False)

    def _hand_over_queued(self, items: Sequence[Any]) -> None:
        """Hand over queued items (accepted and counted already); report each one that
        cannot be handed over as lost."""
        for item in items:
            observer = self._observer
            if observer is None or self._completed or self._dropping is not None:
                self._lost(item, self._dropping or self._refusing or FAILED, STREAM)
                continue
            on_next = observer.on_next
            if on_next is ignore_after_stop:  # the pipeline let go just now
                self._lost(item, self._dropping or self._refusing or FAILED, STREAM)
                continue
            self.current = item
            try:
                on_next(item)
            except BackpressureTimeout:
                self.current = NOTHING
                self._lost(item, TIMEOUT, STREAM)
                continue
            except Exception as error:
                self.current = NOTHING
                self._broke(error)
                self._lost(item, FAILED, STREAM)
                continue
            self.current = NOTHING

    def refuse(self, item: Any, reason: str, operator: str) -> None:
        """Count ``item`` as received and lost with ``reason``, in line with the sends."""
        self._queue.append(Refusal(item, reason, operator))
        self._after_release()

    def _enqueue(self, item: Any) -> SendResult:
        queue = self._queue
        if len(queue) >= self.capacity:
            me = threading.get_ident()
            if me == self.thread or self._inside(me):
                return refusal(FULL)  # waiting here could wait on ourselves
            if not self._wait_for_room():
                return refusal(self._refusing or CLOSED)
        elif self._refusing is not None:
            return refusal(self._refusing)
        queue.append(item)
        self._after_release()
        return ACCEPTED

    def _wait_for_room(self) -> bool:
        """Wait (holding nothing) until the queue has room; False if the input stopped."""
        queue = self._queue
        room = self._room
        while True:
            if self._refusing is not None:
                # The input ended meanwhile (perhaps closed while we handed the queue over
                # ourselves): make sure somebody completes it before we are refused.
                self._after_release()
                return False
            if len(queue) < self.capacity:
                return True
            # Nobody may be emitting (the emitter just let go): then drain ourselves.
            if not self._paused and self._role.acquire(False):
                self.thread = threading.get_ident()
                try:
                    self._drain()
                finally:
                    self.thread = None
                    self._role.release()
                continue
            with room:
                self._waiters += 1
                try:
                    if len(queue) >= self.capacity and self._refusing is None:
                        room.wait(0.1)  # notified when room is made; the bound is a backstop
                finally:
                    self._waiters -= 1

    def _wake_waiters(self) -> None:
        if self._waiters:
            with self._room:
                self._room.notify_all()

    # -- the emitter ---------------------------------------------------------------------------
    def _hand_over(self, item: Any) -> SendResult:
        """Hand a send's own item over (holding the role); the result is the pipeline's."""
        observer = self._observer
        if observer is None or self._completed or self._dropping is not None:
            return refusal(self._dropping or self._refusing or FAILED)
        on_next = observer.on_next
        if on_next is ignore_after_stop:
            # The pipeline let go of its input (disposed on another thread) and is about to
            # say so: an item handed over now would vanish, counted. Refused instead.
            return refusal(self._dropping or self._refusing or FAILED)
        self.current = item
        try:
            on_next(item)
        except BackpressureTimeout:
            self.current = NOTHING
            return refusal(TIMEOUT)
        except Exception as error:
            self.current = NOTHING
            self._broke(error)
            return refusal(FAILED)
        self.current = NOTHING
        self._accepted(1)
        return ACCEPTED

    def _drain(self) -> None:
        """Hand over what is queued (holding the emitter role), then complete if ending.

        Everything queued is taken at once and counted in one go (queued sends were
        accepted already), so producers waiting for room are woken once per run and refill
        the queue while the run is handed over. A `quiescent` caller waits for the run.
        """
        queue = self._queue
        popleft = queue.popleft
        while queue and not self._paused:
            taken = [popleft() for _ in range(len(queue))]
            if self._waiters:
                self._wake_waiters()
            count = 0
            for entry in taken:
                kind = type(entry)
                if kind is Batch:
                    count += len(entry.items)
                elif kind is not Passing:  # a watermark is no send: never counted
                    count += 1
            self._accepted(count)
            for entry in taken:
                kind = type(entry)
                if kind is Batch:
                    self._hand_over_batch(entry.items)
                elif kind is Refusal:
                    self._lost(entry.item, entry.reason, entry.operator)
                elif kind is Passing:
                    self._pass(entry.item)
                else:
                    self._hand_over_queued((entry,))
        if self._ending and not self._completed and not queue and not self._paused:
            if self._gathering and self.flush is not None:
                self.flush()  # what a batch in progress gave buffers goes in before the end
            self._completed = True
            observer = self._observer
            if observer is not None:
                try:
                    observer.on_completed()
                except Exception as error:
                    self._broke(error)

    def _after_release(self) -> None:
        # Queue-drain: whatever was queued while the role was taken is handed over by the
        # holder, or (if it let go meanwhile) by whoever gets here next; nobody waits.
        queue = self._queue
        if not queue and not self._ending:
            return
        role = self._role
        while (queue or (self._ending and not self._completed)) and not self._paused:
            if not role.acquire(False):
                return
            self.thread = threading.get_ident()
            try:
                self._drain()
            finally:
                self.thread = None
                role.release()
        if self._ending:
            self._changed()

    # -- a consistent point ----------------------------------------------------------------------
    def quiescent(self, action: Callable[[], R]) -> R:
        """Run ``action`` while no item is being handed to the pipeline, and return its result.

        Sends made meanwhile are queued (or wait for room) and handed over afterwards, in
        order. Operators that run on threads of their own (a ``backpressure`` drain, window
        timers) keep running: what they hold must be read under their own locks.

        Raises:
            RuntimeError: called from inside the stream (it would wait on itself).
        """
        me = threading.get_ident()
        if me == self.thread or self._inside(me):
            raise RuntimeError("quiescent() cannot be called from inside the stream")
        with self._room:
            self._paused += 1
        try:
            self._role.acquire()
        except BaseException:
            with self._room:
                self._paused -= 1
            raise
        self.thread = me
        try:
            return action()
        finally:
            with self._room:
                self._paused -= 1
            try:
                self._drain()
            finally:
                self.thread = None
                self._role.release()
            self._after_release()
