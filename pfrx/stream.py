"""The stream runtime: an input you send into, the operators applied, results out.

[`Stream`][pfrx.Stream] is the Python counterpart of the guide's ``PacketFlow.Stream.start_link``
and ``send_event``: a hot pipeline, subscribed once when the stream is made, that any thread (or
an asyncio task, through [`Stream.asend`][pfrx.Stream.asend]) can send events into.
[`registry`][pfrx.registry] finds streams by name; [`stage`][pfrx.stage] and
[`connect`][pfrx.connect] compose operator sequences and streams.

How operators report: the stream subscribes its pipeline inside
[`pfrx.operators.reporting_into`][], so every operator built without ``metrics=`` or
``on_drop=`` counts its stage into the stream's one [`StreamMetrics`][pfrx.StreamMetrics] and
reports each lost item into the stream's one drop ledger ([`Stream.dropped`][pfrx.Stream.dropped]).
The stream itself counts the totals: one ``received`` per accepted send, one ``emitted`` per result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from loguru import logger
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.subject import Subject

from ._clock import clock_of
from ._model import BackpressureTimeout, Context, Dropped, Envelope, SendResult
from ._model.context import make_envelope
from .metrics import Health, MetricsSnapshot, StreamMetrics
from .operators._shared import pick_scheduler, reporting_into

__all__ = [
    "DuplicateStreamName",
    "StageError",
    "Stream",
    "StreamRegistry",
    "connect",
    "registry",
    "stage",
]

Operator = Callable[[Observable[Any]], Observable[Any]]

_ACCEPTED = SendResult(True)

# Reasons Stream.send gives when it refuses an event.
CLOSED = "closed"
FAILED = "failed"
TIMEOUT = "timeout"


# -- composition -----------------------------------------------------------------------------


class StageError(Exception):
    """An error raised or signalled inside a named stage, carrying the stage's name.

    Attributes:
        stage: the name given to [`stage`][pfrx.stage] (or the name of the upstream stream, for
            [`connect`][pfrx.connect]).
        error: the original exception (also the ``__cause__``).
    """

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"stage {stage!r} failed: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error
        self.__cause__ = error


def stage(name: str, *operators: Operator) -> Operator:
    """Reuse an operator sequence as one named operator whose failures carry ``name``.

    ```text
    source:   -a-b-c-|
    stage("parse", map(f))        f(b) raises ValueError
    result:   -A-#                StageError(stage="parse", error=ValueError)
    ```

    The operators are applied in order (as `reactivex.compose` does). An ``on_error``
    leaving the sequence becomes [`StageError`][pfrx.StageError] with ``stage=name`` (an error that
    already is a ``StageError`` from an inner stage keeps its name), and so does an exception
    raised synchronously out of the sequence's ``on_next`` (an operator bug); a
    [`Stream`][pfrx.Stream] turns that into a failed stream whose send reports the stage.

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


# -- the stream ------------------------------------------------------------------------------


class _Input(Observable[Envelope]):
    """The stream's input: exactly one subscriber, the pipeline, fed by `Stream.send`.

    Not a ``Subject``: the stream already serializes calls with its own lock, so a second
    lock per item would only cost time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.observer: abc.ObserverBase[Envelope] | None = None

    def _subscribe_core(
        self, observer: abc.ObserverBase[Envelope], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if self.observer is not None:
            raise RuntimeError("a stream's input is subscribed once, by its pipeline")
        self.observer = observer

        def detach() -> None:
            self.observer = None

        return Disposable(detach)


class Stream:
    """A running pipeline you send events into from any thread, with results out.

    Args:
        operators: applied in order to the envelopes sent in (as for ``pipe()``).
        name: a label for logs, metrics and errors (default ``"stream"``).
        scheduler: the pipeline is subscribed with it, so operators without their own
            scheduler use it (a ``backpressure`` drain, window timers...); also the clock
            for envelope timestamps and metrics. With a ``TestScheduler`` nothing buffered
            is drained until the scheduler advances. Default: none, so each operator picks
            its own default (``backpressure`` drains on a dedicated thread).
        metrics: the [`StreamMetrics`][pfrx.StreamMetrics] to count into (default: a new one on
            ``scheduler``'s clock).

    ``send`` serializes calls into the pipeline with a lock (the Rx grammar: one
    notification at a time), so any number of producer threads may share a stream. Results
    and drops are hot observables: subscribe before sending to see everything.

    Example:
        >>> import pfrx
        >>> from pfrx import operators as pf
        >>> with pfrx.Stream(pf.transform(lambda e, ctx: e.upper()), name="shout") as s:
        ...     seen = []
        ...     _ = s.results.subscribe(lambda env: seen.append(env.event))
        ...     s.send("hi", pfrx.Context("alice")).ok
        True
        >>> seen, s.send("late", pfrx.Context("alice")).reason
        (['HI'], 'closed')
    """

    def __init__(
        self,
        *operators: Operator,
        name: str | None = None,
        scheduler: abc.SchedulerBase | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        for operator in operators:
            if not callable(operator):
                raise TypeError(f"Stream operators must be callables, not {operator!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty str or None, not {name!r}")
        if metrics is not None and not isinstance(metrics, StreamMetrics):
            raise TypeError(f"metrics must be a pfrx.StreamMetrics, not {type(metrics).__name__}")
        self.name = name or "stream"
        self.scheduler = scheduler
        self._metrics = metrics or StreamMetrics(scheduler, name=self.name)
        self._now = clock_of(pick_scheduler(scheduler, self._metrics.scheduler))
        self._results: Subject[Any] = Subject()
        self._dropped: Subject[Dropped] = Subject()
        self._drop_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._closing = False
        self._input_completed = False
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._registrations: list[tuple[StreamRegistry, str]] = []
        self._executor: ThreadPoolExecutor | None = None

        self._input = _Input()
        pipeline: Observable[Any] = self._input
        for operator in operators:
            pipeline = operator(pipeline)
        record_emitted = self._metrics.record_emitted
        publish = self._results.on_next

        def on_result(value: Any) -> None:
            record_emitted()
            publish(value)

        with reporting_into(self._metrics, self._report_drop):
            self._subscription = pipeline.subscribe(
                on_result, self._on_pipeline_error, self._on_pipeline_completed, scheduler=scheduler
            )
        self._accept: Callable[[Envelope], None] = self._input_observer().on_next

    def _input_observer(self) -> abc.ObserverBase[Envelope]:
        observer = self._input.observer
        if observer is None:
            raise RuntimeError(f"stream {self.name!r}: the pipeline did not subscribe its input")
        return observer

    # -- what the pipeline reports ---------------------------------------------------------
    def _report_drop(self, record: Dropped) -> None:
        # Drops come from the producer's thread and from drains: serialize them.
        with self._drop_lock:
            self._dropped.on_next(record)

    def _on_pipeline_error(self, error: Exception) -> None:
        with self._state_lock:
            if self._done.is_set():
                return
            self._error = error
            self._closing = True
        logger.error("stream {} failed: {}", self.name, error)
        self._metrics.record_error()
        self._finish()
        self._results.on_error(error)

    def _on_pipeline_completed(self) -> None:
        with self._state_lock:
            if self._done.is_set():
                return
        self._finish()
        self._results.on_completed()

    def _finish(self) -> None:
        self._done.set()
        with self._drop_lock:
            self._dropped.on_completed()
        self._unregister_all()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # -- sending ---------------------------------------------------------------------------
    def send(self, event: Any, context: Context) -> SendResult:
        """Send ``event`` with its ``context`` into the pipeline; say whether it was accepted.

        Returns:
            ``SendResult(ok=True)`` once the pipeline took the event (it may still be dropped
            later: that is reported in [`dropped`][pfrx.Stream.dropped]). ``ok=False`` with reason
            ``"closed"`` after [`close`][pfrx.Stream.close], ``"timeout"`` when a ``block``
            backpressure gave up waiting for room, or ``"failed: ..."`` (naming the stage) once the
            pipeline has failed.

        Raises:
            TypeError: ``context`` is not a [`Context`][pfrx.Context].
        """
        if type(context) is not Context and not isinstance(context, Context):
            raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")
        return self._send(make_envelope(event, context, self._now()))

    def send_envelope(self, envelope: Envelope) -> SendResult:
        """Send a ready-made [`Envelope`][pfrx.Envelope] (its timestamp is kept)."""
        if not isinstance(envelope, Envelope):
            raise TypeError(f"expected a pfrx.Envelope, not {type(envelope).__name__}")
        return self._send(envelope)

    def _refusing(self) -> bool:
        # A call, not an attribute read: another thread may close the stream at any time.
        return self._closing

    def _refusal(self) -> SendResult:
        if self._error is not None:
            return SendResult(False, f"{FAILED}: {self._error}")
        return SendResult(False, CLOSED)

    def _send(self, envelope: Envelope) -> SendResult:
        if self._closing:
            return self._refusal()
        metrics = self._metrics
        result: SendResult | None = None
        with self._send_lock:
            if not self._refusing():
                metrics.record_received()
                try:
                    self._accept(envelope)
                except Exception as error:
                    # Not accepted after all. Only the stream counts totals, always under
                    # this lock, so taking the count back is safe.
                    metrics.received -= 1
                    if _is_timeout(error):
                        result = SendResult(False, TIMEOUT)
                    else:
                        self._fail_from_send(error)
                else:
                    result = _ACCEPTED
        # Every send that held the lock looks once more after releasing it: a close() that
        # found the lock taken left completing the input to us.
        if self._refusing():
            self._complete_input()
        return result if result is not None else self._refusal()

    def _fail_from_send(self, error: Exception) -> None:
        # An exception out of on_next means an operator broke; the stream cannot go on.
        failure = error if isinstance(error, StageError) else StageError(self.name, error)
        self._subscription.dispose()
        self._input_completed = True
        self._on_pipeline_error(failure)

    async def asend(self, event: Any, context: Context) -> SendResult:
        """[`send`][pfrx.Stream.send] for asyncio producers: waits for room, never blocks the loop.

        The send runs on a thread of this stream's own (one worker, so concurrent
        ``asend`` calls enter in the order they were awaited), so a ``block`` backpressure
        makes the awaiting task wait while the event loop keeps running.
        """
        if type(context) is not Context and not isinstance(context, Context):
            raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")
        if self._closing:
            return self._refusal()
        envelope = make_envelope(event, context, self._now())
        with self._state_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"pfrx-{self.name}")
            executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._send, envelope)
        except RuntimeError:
            # The executor was shut down: the stream ended meanwhile.
            return self._refusal()

    # -- ending ----------------------------------------------------------------------------
    def close(self) -> None:
        """Refuse further sends; ``results`` completes once what is buffered has drained.

        Never blocks and is idempotent. A send in progress finishes first (then completes
        the input). The stream leaves every registry it was registered in.
        """
        with self._state_lock:
            already = self._closing
            self._closing = True
        if not already:
            self._unregister_all()
        self._complete_input()

    def _complete_input(self) -> None:
        if not self._send_lock.acquire(blocking=False):
            return  # the send holding the lock completes the input when it is done
        try:
            if self._input_completed:
                return
            self._input_completed = True
            observer = self._input.observer
        finally:
            self._send_lock.release()
        if observer is not None:
            observer.on_completed()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until ``results`` has terminated; ``True`` if it has.

        On a virtual-time scheduler nothing happens while we wait, so this only reports.

        Raises:
            StageError: the pipeline failed (the error names the stage).
        """
        if not isinstance(self.scheduler, VirtualTimeScheduler):
            self._done.wait(timeout)
        if self._error is not None:
            raise self._error
        return self._done.is_set()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close, then (on real schedulers, without an exception in flight) wait for the drain."""
        self.close()
        if exc_type is None and not isinstance(self.scheduler, VirtualTimeScheduler):
            self._done.wait()

    # -- reading ---------------------------------------------------------------------------
    @property
    def results(self) -> Observable[Any]:
        """What leaves the pipeline (hot). Completes after [`close`][pfrx.Stream.close], drained."""
        return self._results

    @property
    def dropped(self) -> Observable[Dropped]:
        """Every item an operator of this stream lost, one [`Dropped`][pfrx.Dropped] each (hot)."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Whether the stream refuses sends (closed or failed)."""
        return self._closing

    @property
    def done(self) -> bool:
        """Whether ``results`` has terminated."""
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The error the pipeline failed with, if it did."""
        return self._error

    @property
    def stream_metrics(self) -> StreamMetrics:
        """The live [`StreamMetrics`][pfrx.StreamMetrics] every operator of this stream reports
        into."""
        return self._metrics

    def metrics(self) -> MetricsSnapshot:
        """A snapshot of the stream's metrics (the guide's ``get_metrics``)."""
        return self._metrics.snapshot()

    def health(self) -> Health:
        """The guide's ``health_check``: from the metrics, ``unhealthy`` once failed."""
        if self._error is not None:
            return Health.UNHEALTHY
        return self._metrics.health()

    def __repr__(self) -> str:
        state = (
            "failed"
            if self._error
            else "done"
            if self.done
            else "closed"
            if self._closing
            else "open"
        )
        return f"<pfrx.Stream {self.name!r} {state}>"

    def _refused(self, item: Any, reason: str) -> None:
        # An item handed to us that send() refused (see connect): received, then dropped.
        with self._send_lock:
            self._metrics.record_received()
        self._metrics.record_drop(reason)
        if self._done.is_set():
            # Our drop observable has completed: the count above and this log keep it.
            logger.warning("stream {} refused an item after it ended: {}", self.name, reason)
            return
        self._report_drop(Dropped(item, reason, "connect", self._now()))

    def _fail_from_upstream(self, failure: StageError) -> None:
        with self._send_lock:
            self._input_completed = True
        self._subscription.dispose()
        self._on_pipeline_error(failure)

    # -- registry bookkeeping ----------------------------------------------------------------
    def _registered(self, registry: StreamRegistry, name: str) -> None:
        with self._state_lock:
            self._registrations.append((registry, name))

    def _unregister_all(self) -> None:
        with self._state_lock:
            registrations, self._registrations = self._registrations, []
        for registry, name in registrations:
            registry._forget(name, self)


def _is_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a ``block`` backpressure giving up: a refusal, not a failure."""
    return isinstance(error, BackpressureTimeout)


# -- the registry ----------------------------------------------------------------------------


class DuplicateStreamName(ValueError):
    """[`StreamRegistry.register`][pfrx.StreamRegistry.register] was given a name that is already
    taken."""


class StreamRegistry:
    """Streams by name (the guide's ``PacketFlow.Registry.register_stream``).

    Thread-safe. A stream leaves the registry when it is closed (or fails).

    Example:
        >>> import pfrx
        >>> reg = pfrx.StreamRegistry()
        >>> s = pfrx.Stream(name="files")
        >>> reg.register("file_stream", s)
        >>> reg.lookup("file_stream") is s
        True
        >>> s.close()
        >>> "file_stream" in reg
        False
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, Stream] = {}

    def register(self, name: str, stream: Stream) -> None:
        """Register ``stream`` under ``name``.

        Raises:
            TypeError: ``name`` is not a non-empty str, or ``stream`` is not a Stream.
            DuplicateStreamName: ``name`` is taken.
            ValueError: ``stream`` is closed.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"a stream name must be a non-empty str, not {name!r}")
        if not isinstance(stream, Stream):
            raise TypeError(f"can only register a pfrx.Stream, not {type(stream).__name__}")
        with self._lock:
            if name in self._streams:
                raise DuplicateStreamName(
                    f"a stream is already registered as {name!r}: {self._streams[name]!r}"
                )
            if stream.closed:
                raise ValueError(f"cannot register {stream!r}: it is closed")
            self._streams[name] = stream
        stream._registered(self, name)
        if stream._refusing():  # closed while we registered it
            self._forget(name, stream)

    def lookup(self, name: str) -> Stream:
        """The stream registered as ``name``.

        Raises:
            KeyError: no stream has that name (registered streams are listed).
        """
        with self._lock:
            stream = self._streams.get(name)
            if stream is None:
                known = ", ".join(sorted(self._streams)) or "none"
                raise KeyError(f"no stream registered as {name!r} (registered: {known})")
            return stream

    def get(self, name: str, default: Stream | None = None) -> Stream | None:
        """The stream registered as ``name``, else ``default``."""
        with self._lock:
            return self._streams.get(name, default)

    def unregister(self, name: str) -> Stream:
        """Remove ``name`` and return its stream (the stream keeps running).

        Raises:
            KeyError: no stream has that name.
        """
        with self._lock:
            try:
                return self._streams.pop(name)
            except KeyError:
                raise KeyError(f"no stream registered as {name!r}") from None

    def _forget(self, name: str, stream: Stream) -> None:
        with self._lock:
            if self._streams.get(name) is stream:
                del self._streams[name]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        with self._lock:
            return sorted(self._streams)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._streams

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)


registry = StreamRegistry()
"""The process-wide [`StreamRegistry`][pfrx.StreamRegistry]: streams by name."""


# -- chaining streams ------------------------------------------------------------------------


def connect(upstream: Stream, downstream: Stream) -> abc.DisposableBase:
    """Feed ``upstream``'s results into ``downstream`` (the guide's ``defcompose``).

    Each result envelope is sent on with [`Stream.send_envelope`][pfrx.Stream.send_envelope] (a
    plain value is sent with the context ``Context(upstream.name)``). A send the downstream refuses
    is counted there as received and dropped, with reason ``"refused: <why>"`` and operator
    ``"connect"``, so both streams' ledgers balance. Completion of ``upstream`` closes
    ``downstream``; an error fails it with a [`StageError`][pfrx.StageError] naming ``upstream``.

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
            downstream._refused(envelope, f"refused: {result.reason}")

    def on_error(error: Exception) -> None:
        failure = error if isinstance(error, StageError) else StageError(upstream.name, error)
        downstream._fail_from_upstream(failure)

    return upstream.results.subscribe(forward, on_error, downstream.close)
