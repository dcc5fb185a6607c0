"""Boundaries: where the stream watches its pipeline between operators.

An exception raised by an operator's ``on_next`` travels back up the chain of synchronous
calls to whoever made the call: the stream's input on the sending thread, or an operator
that calls from a thread of its own (a ``backpressure`` drain, a window timer,
``observe_on``) and cannot know what to do with it. The stream puts a `Boundary`
after each such operator (after every operator that is not a fused pfrx step, whose calls
stay synchronous), so every exception is caught next to the item that caused it: that item
becomes one ``Dropped`` and the stream fails instead of hanging.

A boundary also remembers what it is handing over and on which thread, so when the pipeline
signals an error synchronously the stream knows which item was lost with it; and once the
stream has failed, a boundary drops what still reaches it instead of feeding operators that
have terminated.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver

from ..operators._shared import (
    DirectObserver,
    batch_entry,
    subscribe_observer,
    subscribe_with_batches,
)

#: No item in hand.
NOTHING: Any = object()


class Switch:
    """Shared by the stream and its boundaries: whether the stream has stopped for good."""

    __slots__ = ("stopped",)

    def __init__(self) -> None:
        self.stopped = False


class Boundary(Observable[Any]):
    """A pass-through that catches what downstream raises and tracks the item in hand.

    Args:
        source: the operator's output.
        index: position among the stream's boundaries (0 is nearest the input).
        switch: the stream's stop switch.
        lost: reports an item the stream could not hand over (it has stopped).
        raised: ``raised(boundary, item, error)``: downstream raised while taking ``item``
            (`NOTHING` if the stream already blamed it); returns the error to signal
            downstream.
        changed: called when the boundary ends or goes idle after ending.
    """

    def __init__(
        self,
        source: Observable[Any],
        index: int,
        switch: Switch,
        lost: Callable[[Any], None],
        raised: Callable[[Boundary, Any, Exception], Exception],
        changed: Callable[[], None],
    ) -> None:
        super().__init__()
        self.source = source
        self.index = index
        self._switch = switch
        self._lost = lost
        self._raised = raised
        self._changed = changed
        #: The thread handing an item downstream now, else None.
        self.thread: int | None = None
        #: The item being handed downstream (NOTHING when idle or once blamed).
        self.current: Any = NOTHING
        #: The list being handed downstream at once (empty when none or once blamed).
        self.batch: list[Any] = []
        #: Upstream has terminated, or the subscription was disposed.
        self.ended = False

    def take_current(self) -> Any:
        """The item in hand (then forgotten, so it is reported once), or NOTHING."""
        item, self.current = self.current, NOTHING
        return item

    def take_batch(self) -> list[Any]:
        """The list in hand (then forgotten, so it is reported once), or an empty list."""
        items, self.batch = self.batch, []
        return items

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        forward = observer.on_next
        switch = self._switch
        get_ident = threading.get_ident

        def on_next(value: Any) -> None:
            if switch.stopped:
                self._lost(value)
                return
            self.thread = get_ident()
            self.current = value
            try:
                forward(value)
            except Exception as error:
                failure = self._raised(self, self.take_current(), error)
                with contextlib.suppress(Exception):  # a broken operator; the stream has failed
                    observer.on_error(failure)
            finally:
                self.current = NOTHING
                self.thread = None
                if self.ended:
                    self._changed()

        def on_error(error: Exception) -> None:
            self.ended = True
            try:
                observer.on_error(error)
            finally:
                self._changed()

        def on_completed() -> None:
            self.ended = True
            try:
                observer.on_completed()
            finally:
                self._changed()

        forward_batch = batch_entry(observer)

        def on_batch(values: list[Any]) -> None:
            # A list from a drain, for a downstream that takes lists: held as one, each of
            # its items reported on its own if downstream raises (see on_next).
            if switch.stopped:
                for value in values:
                    self._lost(value)
                return
            self.thread = get_ident()
            self.batch = values
            try:
                forward_batch(values)  # type: ignore[misc]
            except Exception as error:
                for value in self.take_batch():
                    self._lost(value)
                failure = self._raised(self, NOTHING, error)
                with contextlib.suppress(Exception):  # a broken operator; the stream has failed
                    observer.on_error(failure)
            finally:
                self.batch = []
                self.thread = None
                if self.ended:
                    self._changed()

        subscription = self._listen(
            self.source,
            on_next,
            on_error,
            on_completed,
            scheduler,
            on_batch if forward_batch is not None else None,
        )

        def dispose() -> None:
            subscription.dispose()
            self.ended = True
            self._changed()

        return Disposable(dispose)

    def _listen(
        self,
        source: Observable[Any],
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        scheduler: abc.SchedulerBase | None,
        on_batch: Callable[[list[Any]], None] | None,
    ) -> abc.DisposableBase:
        """Subscribe to the operator before this boundary as `subscribe_with_batches` does,
        with a `_Listener`: once the stream lets go of its pipeline, what that operator still
        hands on (a window it completed from another thread as the stream failed) is
        reported lost here, not swallowed by a deaf observer."""
        if not (isinstance(source, Observable) and type(source).subscribe is _SUBSCRIBE):
            return subscribe_with_batches(
                source, on_next, on_error, on_completed, scheduler, on_batch
            )
        listener = _Listener(on_next, on_error, on_completed, on_batch, self._lost)
        return subscribe_observer(source, listener, scheduler)


_SUBSCRIBE = Observable.subscribe


class _Listener(DirectObserver):
    """A boundary's observer of the operator before it: a `DirectObserver` (RxPY's
    auto-detaching observer minus its per-item frame: nothing passes after a terminal
    notification, disposing it disposes the subscription), but not deaf once disposed. A
    stream lets go of its pipeline when it fails while other threads may still be inside
    operators: an item (or a window holding items) that one of them hands on afterwards is
    reported lost (``lost``), so it ends as one ``Dropped``, never as nothing. ``on_batch``
    is guarded the same way."""

    def __init__(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        on_batch: Callable[[list[Any]], None] | None,
        lost: Callable[[Any], None],
    ) -> None:
        super().__init__(on_next, on_error, on_completed, on_batch)
        self._lost = lost

    def _lose_all(self, values: list[Any]) -> None:
        for value in values:
            self._lost(value)

    def dispose(self) -> None:
        if not self.is_stopped:
            self.on_next = self._lost  # type: ignore[method-assign,assignment]
            if self.on_batch is not None:
                self.on_batch = self._lose_all
        AutoDetachObserver.dispose(self)  # not DirectObserver's: it would make it deaf
