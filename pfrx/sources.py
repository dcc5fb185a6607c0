"""Observables of envelopes made from plain events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import CurrentThreadScheduler

from ._clock import clock_of
from ._model import Context, Envelope


def envelopes(
    events: Iterable[Any],
    context: Context,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Envelope]:
    """An observable that wraps each event in an [`Envelope`][pfrx.Envelope] with ``context``.

    Items are emitted on ``scheduler`` (else the subscribe scheduler, else the current
    thread), each stamped with that scheduler's clock. The iterable is read lazily, once per
    subscription; an exception while iterating becomes ``on_error``.

    Example:
        >>> import pfrx
        >>> ctx = pfrx.Context("alice")
        >>> pfrx.envelopes(["a", "b"], ctx).pipe().run().event
        'b'
    """
    if not isinstance(context, Context):
        raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")

    def subscribe(
        observer: abc.ObserverBase[Envelope], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sched = scheduler or subscribe_scheduler or CurrentThreadScheduler.singleton()
        now = clock_of(sched)
        disposed = False

        def dispose() -> None:
            nonlocal disposed
            disposed = True

        def emit_all(_: abc.SchedulerBase, __: Any = None) -> None:
            try:
                for event in events:
                    if disposed:
                        return
                    observer.on_next(Envelope(event, context, now()))
            except Exception as error:  # the iterable failed: that ends the sequence
                if not disposed:
                    observer.on_error(error)
                return
            if not disposed:
                observer.on_completed()

        return CompositeDisposable(sched.schedule(emit_all), Disposable(dispose))

    return Observable(subscribe)
