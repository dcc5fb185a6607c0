"""Composition: `stage` names an operator sequence, `connect` chains streams."""

from __future__ import annotations

from typing import Any

from reactivex import Observable, abc

from .._model import Context, Envelope
from ..operators import Operator
from ._stream import Stream
from .errors import StageError


def stage(name: str, *operators: Operator) -> Operator:
    """Reuse an operator sequence as one named operator whose failures carry ``name``.

    ```text
    source:   -a-b-c-|
    stage("parse", map(f))        f(b) raises ValueError
    result:   -A-#                StageError(stage="parse", error=ValueError)
    ```

    The operators are applied in order (as `reactivex.compose` does). An ``on_error``
    leaving the sequence becomes `StageError` with ``stage=name`` (an error that
    already is a ``StageError`` from an inner stage keeps its name), and so does an exception
    raised synchronously out of the sequence's ``on_next`` (an operator bug); a
    `Stream` turns that into a failed stream whose error names the stage.

    Args:
        name: the stage's name, in errors.
        operators: the sequence, as for ``pipe()``.

    Example:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> from pfrx.stream import StageError, stage
        >>> double = stage("double", ops.map(lambda x: 2 * x))
        >>> reactivex.of(1, 2).pipe(double, ops.to_list()).run()
        [2, 4]
        >>> failing = stage("parse", ops.map(int))
        >>> try:
        ...     reactivex.of("1", "x").pipe(failing).run()
        ... except StageError as error:
        ...     error.stage
        'parse'
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a stage needs a non-empty str name, not {name!r}")
    for candidate in operators:
        if not callable(candidate):
            raise TypeError(f"stage {name!r}: {candidate!r} is not an operator")

    def wrap(error: BaseException) -> StageError:
        return error if isinstance(error, StageError) else StageError(name, error)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def entry_subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            forward = observer.on_next

            def on_next(value: Any) -> None:
                try:
                    forward(value)
                except StageError:
                    raise
                except Exception as error:
                    raise StageError(name, error) from error

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        inner: Observable[Any] = Observable(entry_subscribe)
        for op in operators:
            inner = op(inner)

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return inner.subscribe(
                observer.on_next,
                lambda error: observer.on_error(wrap(error)),
                observer.on_completed,
                scheduler=scheduler,
            )

        return Observable(subscribe)

    return operator


def connect(upstream: Stream, downstream: Stream) -> abc.DisposableBase:
    """Feed ``upstream``'s results into ``downstream`` (the guide's ``defcompose``).

    Each result envelope is sent on with `Stream.send_envelope` (a plain value is sent
    with the context ``Context(upstream.name)``). A send the downstream refuses is counted
    there as received and dropped (`Stream.refused`), with reason
    ``"refused: <why>"`` and operator ``"connect"``, so both streams' ledgers balance.
    Completion of ``upstream`` closes ``downstream``; an error fails it
    (`Stream.fail`) with a `StageError` naming ``upstream``.

    Returns:
        A disposable that stops the forwarding.
    """
    if not isinstance(upstream, Stream) or not isinstance(downstream, Stream):
        raise TypeError("connect() takes two pfrx.Stream instances")
    fallback = Context(upstream.name)

    def forward(value: Any) -> None:
        envelope = value if isinstance(value, Envelope) else Envelope(value, fallback, 0.0)
        result = downstream.send_envelope(envelope)
        if not result.ok:
            downstream.refused(envelope, f"refused: {result.reason}", "connect")

    def on_error(error: Exception) -> None:
        failure = error if isinstance(error, StageError) else StageError(upstream.name, error)
        downstream.fail(failure)

    return upstream.results.subscribe(forward, on_error, downstream.close)
