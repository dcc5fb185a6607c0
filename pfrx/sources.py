"""Observables of envelopes made from plain events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import CurrentThreadScheduler

from ._clock import clock_of
from ._model import Context, Envelope
from ._model.context import make_envelope
from .operators._checks import positive_int
from .operators._shared import BatchSource

# Builds the lists one read of the source yields: (iterator, clock reading) -> list.
_Chunk = Callable[[Iterator[Any], float], list[Any]]


def _source(
    items: Iterable[Any], chunk: _Chunk, scheduler: abc.SchedulerBase | None
) -> Observable[Any]:
    """What `envelopes` and `batches` share: read ``items`` lazily once per
    subscription on the chosen scheduler, a list at a time, emitting each list whole (to a
    fused pipeline) or item by item (to anything else)."""

    def run(
        emit: Callable[[list[Any]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        subscribe_scheduler: abc.SchedulerBase | None,
    ) -> abc.DisposableBase:
        sched = scheduler or subscribe_scheduler or CurrentThreadScheduler.singleton()
        now = clock_of(sched)
        disposed = False

        def dispose() -> None:
            nonlocal disposed
            disposed = True

        def emit_all(_: abc.SchedulerBase, __: Any = None) -> None:
            try:
                iterator = iter(items)
                while not disposed:
                    chunk = chunk_of(iterator, now())
                    if not chunk:
                        break
                    emit(chunk)
            except Exception as error:  # the iterable failed: that ends the sequence
                if not disposed:
                    on_error(error)
                return
            if not disposed:
                on_completed()

        chunk_of = chunk
        return CompositeDisposable(sched.schedule(emit_all), Disposable(dispose))

    def subscribe(
        observer: abc.ObserverBase[Any], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        on_next = observer.on_next
        holder: list[bool] = []

        def each(chunk: list[Any]) -> None:
            for item in chunk:
                if holder:
                    return
                on_next(item)

        subscription = run(each, observer.on_error, observer.on_completed, subscribe_scheduler)

        def stop() -> None:
            holder.append(True)
            subscription.dispose()

        return Disposable(stop)

    def subscribe_batches(
        on_batch: Callable[[list[Any]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        subscribe_scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        return run(on_batch, on_error, on_completed, subscribe_scheduler)

    return BatchSource(subscribe, subscribe_batches)


def envelopes(
    events: Iterable[Any],
    context: Context,
    scheduler: abc.SchedulerBase | None = None,
    *,
    batch: int = 1,
) -> Observable[Envelope]:
    """An observable that wraps each event in an [`Envelope`][pfrx.Envelope] with ``context``.

    Items are emitted on ``scheduler`` (else the subscribe scheduler, else the current
    thread), each stamped with that scheduler's clock. The iterable is read lazily, once per
    subscription; an exception while iterating becomes ``on_error``.

    With ``batch=N`` the events are read ``N`` at a time (all ``N`` stamped with one clock
    reading), and pfrx's fused operators that follow take each group as one list: one call
    per operator per batch instead of one per item. What comes out, in what order, and every
    drop, are the same as without it; any other subscriber still gets one envelope per
    ``on_next``.

    Raises:
        TypeError: ``context`` is not a [`Context`][pfrx.Context], or ``batch`` is not an int.
        ValueError: ``batch`` is less than 1.

    Example:
        >>> import pfrx
        >>> ctx = pfrx.Context("alice")
        >>> pfrx.envelopes(["a", "b"], ctx).pipe().run().event
        'b'
    """
    if not isinstance(context, Context):
        raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")
    size = positive_int(batch, "batch")

    def chunk(iterator: Iterator[Any], at: float) -> list[Envelope]:
        return [make_envelope(event, context, at) for event in islice(iterator, size)]

    return _source(events, chunk, scheduler)


def batches(
    items: Iterable[Any], size: int, scheduler: abc.SchedulerBase | None = None
) -> Observable[Any]:
    """An observable of ``items`` as they are (envelopes made elsewhere, say), read ``size``
    at a time: pfrx's fused operators that follow take each group as one list, anything
    else gets one item per ``on_next`` (see `envelopes` with ``batch=``).

    Raises:
        TypeError: ``size`` is not an int.
        ValueError: ``size`` is less than 1.
    """
    size = positive_int(size, "size")

    def chunk(iterator: Iterator[Any], _at: float) -> list[Any]:
        return list(islice(iterator, size))

    return _source(items, chunk, scheduler)
