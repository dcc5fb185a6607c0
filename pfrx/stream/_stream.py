"""Stream: a running pipeline you send into — its lifecycle, send results and ledger.

Lifecycle: **open** (sends accepted) → **closing** (after `Stream.close`, or once the
pipeline can no longer take input: sends refused, what is inside drains) → **done**
(``results`` completed) or **failed** (``results`` ended with the pipeline's error).

Ledger: an accepted send is counted ``received`` once, when it is handed to the pipeline,
and ends exactly once: on ``results`` (``emitted``) or as one `Dropped` on
`Stream.dropped` (``dropped``), whatever fails afterwards. What the stream itself
cannot hand over is dropped with operator ``"stream"`` and reason ``"failed"``,
``"closed"`` or ``"timeout"``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from loguru import logger
from reactivex import Observable, abc
from reactivex.scheduler import VirtualTimeScheduler

from .._clock import clock_of
from .._model import Context, Dropped, Envelope, SendResult, Watermark
from .._model.context import EnvelopeDraft, make_envelope, new_draft
from .._model.records import make_dropped
from ..checkpoint import Checkpoint, CheckpointMismatch, CheckpointScope, checkpointing
from ..metrics import Health, MetricsSnapshot, StreamMetrics
from ..operators import Operator, reporting_into
from ..operators._shared import (
    FusedObservable,
    Gate,
    gathering_into,
    pick_scheduler,
    subscribe_with_batches,
)
from ._boundary import NOTHING, Boundary, Switch
from ._card import stream_card
from ._input import SerializedInput, refusal
from ._publish import Publisher
from .errors import CLOSED, FAILED, INVALID_CONTEXT, STREAM, StageError

R = TypeVar("R")

#: How many sends may wait behind the one in progress (see `Stream`).
DEFAULT_QUEUE_SIZE = 1024
#: The most results a ``send_many`` hand-off gathers before it publishes them.
GATHER_LIMIT = 1024
#: How long, in seconds, a failed stream waits at most for an operator past its failure
#: point that is handing an item on from another thread (see `Stream._in_flight_past`).
IN_FLIGHT_GRACE = 5.0
get_ident = threading.get_ident


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
        metrics: the `StreamMetrics` to count into (default: a new one on
            ``scheduler``'s clock).
        restore: a `pfrx.checkpoint.Checkpoint` taken by `Stream.checkpoint` of a stream
            built with the same operators: its stateful operators (windows, sessions,
            ``process``) start from the recorded state instead of empty.
        queue_size: how many sends may wait behind the one being handed to the pipeline
            (default 1024; a queued ``send_many`` batch counts as one). A producer that finds
            the queue full waits for room; a send from inside the stream (a subscriber, an
            operator function) is refused with reason ``"full"`` instead, since waiting could
            mean waiting on itself.

    Any number of threads may send: one send at a time is handed to the pipeline (the Rx
    grammar), the others queue behind it without waiting on a lock (see
    `pfrx.stream._input`). Results and drops are hot observables: subscribe before
    sending to see everything. A subscriber that raises is logged and counted in the
    metrics' ``errors``; everybody, itself included, still gets the other items.

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

    # A failed stream's wait for hand-overs past its failure point (see `_in_flight_past`).
    _grace_timer: threading.Timer | None = None
    _grace_over = False

    def __init__(
        self,
        *operators: Operator,
        name: str | None = None,
        scheduler: abc.SchedulerBase | None = None,
        metrics: StreamMetrics | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        restore: Checkpoint | None = None,
    ) -> None:
        for operator in operators:
            if not callable(operator):
                raise TypeError(f"Stream operators must be callables, not {operator!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty str or None, not {name!r}")
        if metrics is not None and not isinstance(metrics, StreamMetrics):
            raise TypeError(f"metrics must be a pfrx.StreamMetrics, not {type(metrics).__name__}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int):
            raise TypeError(f"queue_size must be an int, not {queue_size!r}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size!r}")
        if restore is not None and not isinstance(restore, Checkpoint):
            raise TypeError(f"restore must be a pfrx.checkpoint.Checkpoint, not {restore!r}")
        self.name = name or "stream"
        self.scheduler = scheduler
        self._metrics = metrics or StreamMetrics(scheduler, name=self.name)
        self._now = clock_of(pick_scheduler(scheduler, self._metrics.scheduler))
        self._results: Publisher[Any] = Publisher("results", self._subscriber_failed)
        self._dropped: Publisher[Dropped] = Publisher("dropped", self._subscriber_failed)
        self._state_lock = threading.Lock()
        self._switch = Switch()
        self._error: BaseException | None = None
        self._ended = False  # the pipeline terminated, or the stream failed
        self._failure_point: int | None = None  # boundaries up to here must end first
        self._finished = False
        self._done = threading.Event()
        self._close_callbacks: list[Callable[[], None]] = []
        self._closing_notified = False
        self._executor: ThreadPoolExecutor | None = None

        self._input = SerializedInput(
            queue_size,
            accepted=self._metrics.record_received,
            lost=self._lost,
            broke=self._broke,
            inside=self._inside,
            changed=self._check_finish,
        )
        self._boundaries: list[Boundary] = []
        pipeline: Observable[Any] = self._input
        for operator in operators:
            pipeline = operator(pipeline)
            if not isinstance(pipeline, Observable):
                raise TypeError(f"operator {operator!r} did not return an Observable")
            if not isinstance(pipeline, FusedObservable):
                pipeline = Boundary(
                    pipeline,
                    len(self._boundaries),
                    self._switch,
                    self._lost_in_pipeline,
                    self._raised,
                    self._check_finish,
                )
                self._boundaries.append(pipeline)
        record_emitted = self._metrics.record_emitted
        publish = self._results.emit
        publish_many = self._results.emit_many
        switch = self._switch
        # While a thread hands a send_many batch over, the results the pipeline gives back on
        # that same thread are gathered and published as one list when the batch is in
        # (counted once): see `gather`. So are the items a ``backpressure`` buffer takes from
        # that thread (taken in one go when flushed): see `Gate`.
        gathered: list[Any] | None = None
        gathering = 0
        gate = Gate()

        boundaries = self._boundaries

        def settle(item: Any = NOTHING) -> None:
            # Something came of what the boundaries on this thread hand over (a result, or
            # ``item`` dropped): no longer theirs to report if the stream finishes meanwhile.
            me = get_ident()
            for boundary in boundaries:
                if boundary.thread == me and (item is NOTHING or boundary.current is item):
                    boundary.current = NOTHING
                    if boundary.batch and item is NOTHING:
                        boundary.batch = []

        def on_result(value: Any) -> None:
            if boundaries:
                settle()
            if type(value) is Watermark:
                return  # no window operator took it: event time ends here
            if switch.stopped:
                if not self._finished:  # else what it came of was reported at the finish
                    self._lost_in_pipeline(value)
                return
            if gathered is not None and get_ident() == gathering:
                gathered.append(value)
                if len(gathered) >= GATHER_LIMIT:
                    publish_gathered()
                return
            record_emitted()
            publish(value)

        def on_results(values: list[Any]) -> None:
            # A list at once (a backpressure drain's turn; items only): as on_result each.
            if boundaries:
                settle()
            if switch.stopped:
                if not self._finished:  # else they were reported at the finish
                    for value in values:
                        self._lost_in_pipeline(value)
                return
            if gathered is not None and get_ident() == gathering:
                gathered.extend(values)
                if len(gathered) >= GATHER_LIMIT:
                    publish_gathered()
                return
            record_emitted(len(values))
            publish_many(values)

        def flush_gate() -> None:
            # What buffers gathered from this thread goes in before what comes next; a
            # buffer that broke taking it fails the stream (each item it lost is reported).
            try:
                gate.flush()
            except Exception as error:
                self._broke(error)

        def publish_gathered() -> None:
            nonlocal gathered
            values = gathered
            if values:
                gathered = []
                record_emitted(len(values))
                publish_many(values)

        def gather(start: bool) -> None:
            nonlocal gathered, gathering
            if start:
                gathering = get_ident()
                gathered = []
                gate.thread = gathering
            else:
                try:
                    flush_gate()
                    publish_gathered()
                finally:
                    gate.thread = None
                    gathered = None

        def flush() -> None:
            flush_gate()
            if gathered:
                publish_gathered()

        self._input.gather = gather
        self._input.flush = flush
        emit_dropped = self._dropped.emit
        emit_dropped_many = self._dropped.emit_many
        # A send_many batch taken whole (see SerializedInput._take_whole): each link runs
        # over the whole list in turn, so the drops it causes are held, then published in
        # the order of the items they name, which is the order one by one.
        ordering: list[Any] | None = None
        held: list[Dropped] = []

        def order(items: list[Any] | None, broken: bool) -> None:
            nonlocal ordering
            if items is not None:
                ordering = items
                return
            batch = ordering
            assert batch is not None
            if broken:
                reported = {id(record.item) for record in held}
                for item in batch:
                    if id(item) not in reported:
                        self._lost(item, FAILED)  # held too, then placed like the others
            ordering = None
            if not held:
                return
            records = held[:]
            held.clear()
            if len(records) > 1:
                place = {id(item): index for index, item in enumerate(batch)}
                last = len(batch)
                records.sort(key=lambda record: place.get(id(record.item), last))
            flush()  # what this thread gathered before the batch comes first
            emit_dropped_many(records)

        self._input.order = order

        def dropped(record: Dropped) -> None:
            if boundaries:
                settle(record.item)
            if ordering is not None and get_ident() == gathering:
                held.append(record)
                return
            # A drop on the thread gathering results comes after the results gathered so
            # far, as it would without gathering: subscribers of both see the same order.
            # So do the items buffers gathered from that thread: taken first, their effects
            # (results delivered inline, items they evict) come before this drop.
            if gate.thread is not None and get_ident() == gate.thread:
                flush_gate()
                if gathered:
                    publish_gathered()
            emit_dropped(record)

        self._emit_dropped = dropped

        with (
            reporting_into(self._metrics, dropped),
            gathering_into(gate),
            checkpointing(restore) as members,
        ):
            self._subscription = subscribe_with_batches(
                pipeline,
                on_result,
                self._on_pipeline_error,
                self._on_pipeline_completed,
                scheduler,
                on_results,
            )
        self._members: CheckpointScope = members
        if restore is not None and len(restore.states) != len(members.names):
            self._subscription.dispose()
            raise CheckpointMismatch(
                f"the checkpoint holds {len(restore.states)} operator states; this stream's "
                f"pipeline has {len(members.names)} stateful operators ({', '.join(members.names)})"
            )

    # -- sending ---------------------------------------------------------------------------
    def send(self, event: Any, context: Context) -> SendResult:
        """Send ``event`` with its ``context`` into the pipeline; say whether it was accepted.

        Returns:
            ``SendResult(ok=True)`` once the stream took the event: from then on it ends
            exactly once, on `results` or as one `Dropped` on
            `dropped`. ``ok=False`` with reason ``"closed"`` after `close`,
            ``"failed"`` once the pipeline can no longer take input (`error` says
            why), ``"timeout"`` when a ``block`` backpressure gave up waiting for room for
            this very send, ``"full"`` for a send from inside the stream that found the
            queue full.

        Raises:
            TypeError: ``context`` is not a `Context`.
        """
        if type(context) is not Context and not isinstance(context, Context):
            raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")
        return self._input.offer(make_envelope(event, context, self._now()))

    def send_many(self, events: Iterable[Any], context: Context) -> list[SendResult]:
        """Send each of ``events`` with ``context``, in order; one `SendResult` each.

        Cheaper per event than `send`: the batch enters the stream in one hand-off. If
        nobody is handing items to the pipeline, this thread hands the whole batch over in
        one loop, and each result means what it means for `send` (a ``block`` backpressure
        timeout refuses that event only; once the stream stops taking input, the rest are
        refused). If another thread is handing items over, the batch is queued as one
        entry (it counts as one send against ``queue_size``) and every event is accepted:
        each then ends on `results` or as one `Dropped` (reason ``"timeout"`` for one
        that a ``block`` buffer had no room for in time). Never half-accepted by mistake:
        ``events`` is read in full (and each envelope built) before anything is sent, so
        an iterator that raises sends nothing.

        The results the pipeline gives back on the thread handing the batch over (no
        thread boundary such as ``backpressure`` in between) are gathered and published
        on `results` together when the batch is in (at most `GATHER_LIMIT` at a time),
        in order and counted once, and before any drop reported on that thread, so a
        subscriber of both `results` and `dropped` sees the order `send` would give.
        Subscribers see them a little later, and a ``metrics_tap`` does not time them.

        Where the pipeline starts with ``capability_filter`` links, at most one
        ``transform`` and links that pass lists on (``metrics_tap``), then a
        ``backpressure`` stage with room for the whole batch, the batch runs through those
        links as one list (one call each) and into the buffer under one lock: the drops
        they report meanwhile are published in the order of their events, as one by one
        (so an operator given its own ``on_drop=`` keeps the per-event path). A buffer without
        room for it all takes what fits in one go and the rest one event at a time, with
        every effect its strategy has (an eviction, a wait, a ``block`` timeout, failing
        on overflow) at the event that causes it. Sends from inside the stream made
        meanwhile come after the whole batch.

        Raises:
            TypeError: ``context`` is not a `Context`, or ``events`` is not iterable.
        """
        if type(context) is not Context and not isinstance(context, Context):
            raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")
        now = self._now()
        envelopes: list[Any] = []
        keep = envelopes.append
        for event in events:
            envelope = new_draft(EnvelopeDraft)  # see EnvelopeDraft: an Envelope, cheaper
            envelope.event = event
            envelope.context = context
            envelope.timestamp = now
            envelope.__class__ = Envelope  # type: ignore[assignment]
            keep(envelope)
        return self._input.offer_many(envelopes)

    def send_envelope(self, envelope: Envelope) -> SendResult:
        """Send a ready-made `Envelope` (its timestamp is kept).

        An envelope whose context is not a `Context` is refused with reason
        ``"invalid_context"`` (nothing is counted): no operator ever sees it.

        Raises:
            TypeError: ``envelope`` is not an `Envelope`.
        """
        if not isinstance(envelope, Envelope):
            raise TypeError(f"expected a pfrx.Envelope, not {type(envelope).__name__}")
        context: Any = envelope.context  # an Envelope does not check what it is given
        if not isinstance(context, Context):
            return refusal(INVALID_CONTEXT)
        return self._input.offer(envelope)

    async def asend(self, event: Any, context: Context) -> SendResult:
        """`send` for asyncio producers: waits for room without blocking the loop.

        The send runs on a thread of this stream's own (one worker, so concurrent
        ``asend`` calls enter in the order they were awaited), so a ``block`` backpressure
        makes the awaiting task wait while the event loop keeps running.
        """
        if type(context) is not Context and not isinstance(context, Context):
            raise TypeError(f"context must be a pfrx.Context, not {type(context).__name__}")
        if self._input.refusing is not None:
            return refusal(self._input.refusing)
        envelope = make_envelope(event, context, self._now())
        with self._state_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"pfrx-{self.name}")
            executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._input.offer, envelope)
        except RuntimeError:
            # The executor was shut down: the stream ended meanwhile.
            return refusal(self._input.refusing or CLOSED)

    def send_watermark(
        self, time: Any, source: Hashable | None = None, *, idle: bool = False
    ) -> SendResult:
        """Advance event time: send ``pfrx.Watermark(time, source, idle)`` into the pipeline.

        It goes in order with the sends (behind those made before it) and is no item: it is
        never counted as received, emitted or dropped. The per-item pfrx operators pass it
        on untouched (``window_count`` would count it: keep it out of such a pipeline);
        ``window_time`` and ``window_session`` consume it: in event time (``timestamp=``)
        their watermark becomes at least ``time`` (with ``source``, the minimum over the
        named sources; ``idle=True`` stops that source holding the others back). If none
        takes it, it ends at the stream's end (never on `results`); if the pipeline fails
        first, it is forgotten.

        Returns:
            ``SendResult(ok=True)`` once queued; ``ok=False`` with reason ``"closed"`` after
            `close`, ``"failed"`` once the pipeline can no longer take input.

        Raises:
            TypeError, ValueError: ``time`` is not seconds nor an aware datetime, or is NaN.
        """
        return self._input.offer_passing(Watermark(time, source, idle))

    def refused(self, item: Any, reason: str, operator: str = "connect") -> None:
        """Count ``item``, refused on its way into this stream, as received and dropped.

        For whoever forwards into this stream and got a refusal (`pfrx.connect`), so
        the ledgers of both streams balance: one ``Dropped(item, reason, operator)``.
        """
        self._input.refuse(item, reason, operator)

    def quiescent(self, action: Callable[[], R]) -> R:
        """Run ``action`` while no send is being handed to the pipeline; return its result.

        The consistent point a checkpoint needs: the synchronous part of the pipeline holds
        no item in flight while ``action`` runs, and sends made meanwhile wait in the queue
        (in order). Operators running on threads of their own (a ``backpressure`` drain,
        window timers) keep running; what they hold must be read under their own locks.

        Raises:
            RuntimeError: called from inside the stream (a subscriber, an operator).
        """
        return self._input.quiescent(action)

    def checkpoint(self, meta: dict[str, Any] | None = None) -> Checkpoint:
        """The state of every stateful operator in the pipeline, at a point where no send is
        being handed over.

        Restore it with ``Stream(*same_operators, restore=checkpoint)``: the new stream
        carries on with the open windows, sessions and processor states, so what it emits
        afterwards is what this one would have emitted (windows completed before the
        checkpoint are not emitted again). ``meta`` is stored beside the states (e.g. how
        far the producer had got, so it resumes from there); `pfrx.checkpoint.save` and
        `pfrx.checkpoint.load` keep a checkpoint in a file.

        A ``backpressure`` stage records the items waiting in its buffer (a restored stream
        delivers them first), and with them the batch its drain is delivering at that moment,
        some of which may already be downstream: on real threads, take the checkpoint while
        the drain is idle (on a ``TestScheduler``, between advances) so nothing is delivered
        twice.

        Raises:
            RuntimeError: called from inside the stream (a subscriber, an operator).
        """
        return self.quiescent(lambda: self._members.snapshot(meta))

    # -- ending ----------------------------------------------------------------------------
    def close(self) -> None:
        """Refuse further sends; ``results`` completes once what is inside has drained.

        Never blocks and is idempotent; may be called from anywhere, a subscriber included.
        The stream leaves every registry it was registered in.
        """
        self._input.close()
        self._notify_closing()

    def fail(self, error: Exception) -> None:
        """Fail the stream from outside (an upstream stream's error, see `pfrx.connect`).

        Sends are refused from now on; what is inside the pipeline is dropped (reason
        ``"failed"`` or the operators' own); ``results`` ends with ``error`` once every
        operator still handing an item on (from another thread, or from the very callback
        calling this) has done so (`IN_FLIGHT_GRACE` seconds at most); this call does not
        wait for them.
        """
        # Stop first: a drain that hands an item on while the operators after it are being
        # disposed (deaf, once disposed) has it reported at the boundary instead. Then let go
        # of the pipeline: its buffers report their items as they are disposed, and those
        # drops must reach ``dropped`` before the stream finishes and closes it.
        self._switch.stopped = True
        self._subscription.dispose()
        self._fail(error, -1)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until ``results`` has terminated; ``True`` if it has.

        On a virtual-time scheduler nothing happens while we wait, and from inside the
        stream (a subscriber) waiting would wait on itself: then this only reports.

        Raises:
            StageError: the pipeline failed (the error names the stage); or whatever
                error the pipeline failed with.
        """
        if not isinstance(self.scheduler, VirtualTimeScheduler) and not self._inside_now():
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
        if (
            exc_type is None
            and not isinstance(self.scheduler, VirtualTimeScheduler)
            and not self._inside_now()
        ):
            self._done.wait()

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the stream stops accepting sends (now, if it has)."""
        with self._state_lock:
            if not self._closing_notified:
                self._close_callbacks.append(callback)
                return
        callback()

    # -- reading ---------------------------------------------------------------------------
    @property
    def results(self) -> Observable[Any]:
        """What leaves the pipeline (hot). Completes after `close` and the drain."""
        return self._results

    @property
    def dropped(self) -> Observable[Dropped]:
        """Every item an operator of this stream (or the stream) lost, one Dropped each (hot)."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Whether the stream refuses sends (closed or failed)."""
        return self._input.refusing is not None

    @property
    def done(self) -> bool:
        """Whether ``results`` has terminated."""
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The error the pipeline failed with, if it did."""
        return self._error

    @property
    def state(self) -> str:
        """``"open"``, ``"closing"``, ``"done"`` or ``"failed"``."""
        if self._error is not None:
            return "failed"
        if self._done.is_set():
            return "done"
        return "open" if self._input.refusing is None else "closing"

    @property
    def stream_metrics(self) -> StreamMetrics:
        """The live `StreamMetrics` every operator of this stream reports into (read by
        `pfrx.observe` for its clock)."""
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
        return f"<pfrx.Stream {self.name!r} {self.state}>"

    def _repr_html_(self) -> str:
        """A card for notebooks: state, health, totals and drops by reason (no payloads)."""
        return stream_card(self.name, self.state, self.health(), self.metrics())

    # -- what the pipeline reports -------------------------------------------------------------
    def _subscriber_failed(self) -> None:
        self._metrics.record_error()

    def _lost(self, item: Any, reason: str, operator: str = STREAM) -> None:
        """An accepted item the stream itself could not deliver: one Dropped."""
        if type(item) is Watermark:
            return  # no item (see send_watermark): nothing lost
        self._metrics.record_drop(reason)
        self._emit_dropped(make_dropped(item, reason, operator, self._now()))

    def _lost_in_pipeline(self, item: Any) -> None:
        self._lost(item, FAILED)

    def _inside(self, thread: int) -> bool:
        if thread == self._results.thread or thread == self._dropped.thread:
            return True
        return any(boundary.thread == thread for boundary in self._boundaries)

    def _inside_now(self) -> bool:
        me = threading.get_ident()
        return me == self._input.thread or self._inside(me)

    def _broke(self, error: Exception) -> None:
        # An exception escaped the pipeline's on_next on the sending thread: an operator
        # broke. The stream fails and lets go of the pipeline, whose buffers report their
        # items as dropped as they are disposed.
        failure = error if isinstance(error, StageError) else StageError(self.name, error)
        self._fail(failure, -1)
        self._subscription.dispose()

    def _raised(self, boundary: Boundary, item: Any, error: Exception) -> Exception:
        # An operator after ``boundary`` raised on a thread of the pipeline's own.
        failure = error if isinstance(error, StageError) else StageError(self.name, error)
        if item is not NOTHING:
            self._lost(item, FAILED)
        self._fail(failure, boundary.index)
        # Let go of the pipeline before the stream finishes (which waits for this boundary
        # only): a buffer past this point, drained by a thread of its own, reports what it
        # still holds, and a window there what it has absorbed, while ``dropped`` is open.
        self._subscription.dispose()
        return failure

    def _on_pipeline_error(self, error: Exception) -> None:
        with self._state_lock:
            first = self._error is None and not self._ended
        if first:
            # The item being handed over on this thread when the error came is lost with it.
            item = self._blame(threading.get_ident())
            if item is not NOTHING:
                self._lost(item, FAILED)
        self._fail(error, len(self._boundaries) - 1)

    def _blame(self, thread: int) -> Any:
        for boundary in reversed(self._boundaries):
            if boundary.thread == thread:
                return boundary.take_current()
        if self._input.thread == thread:
            return self._input.take_current()
        return NOTHING

    def _on_pipeline_completed(self) -> None:
        self._input.stop(CLOSED)
        with self._state_lock:
            if not self._ended:
                self._ended = True
                self._failure_point = len(self._boundaries) - 1
        self._notify_closing()
        self._check_finish()

    def _fail(self, error: BaseException, point: int) -> None:
        with self._state_lock:
            first = self._error is None and not self._finished
            if first:
                self._error = error
            self._ended = True
            if self._failure_point is None or point < self._failure_point:
                self._failure_point = point
        self._switch.stopped = True
        if first:
            logger.error("stream {} failed: {}", self.name, error)
            self._metrics.record_error()
        self._input.stop(FAILED)
        self._notify_closing()
        self._check_finish()

    def _check_finish(self) -> None:
        with self._state_lock:
            if self._finished or not self._ended:
                return
            point = self._failure_point if self._failure_point is not None else -1
            for boundary in self._boundaries[: point + 1]:
                if not boundary.ended or boundary.thread is not None:
                    return
            if not self._input.idle or self._in_flight_past(point):
                return
            self._finished = True
            error = self._error
            # What a boundary past the failure point still hands downstream once the wait
            # for it is over, with nothing come of it yet (see ``settle``), would meet the
            # stop after ``dropped`` ends: reported here, once.
            held = [
                item
                for boundary in self._boundaries[point + 1 :]
                if boundary.thread is not None
                for item in (boundary.take_current(), *boundary.take_batch())
                if item is not NOTHING
            ]
        for item in held:
            self._lost(item, FAILED)
        self._switch.stopped = True
        if error is not None and isinstance(error, Exception):
            self._results.fail(error)
        else:
            self._results.complete()
        self._dropped.complete()
        self._done.set()
        self._notify_closing()
        with self._state_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    def _in_flight_past(self, point: int) -> bool:
        """Whether the finish waits for a boundary past the failure point ``point`` (under
        the state lock): one handing an item (or a list) on with nothing come of it yet
        (see ``settle``). What it becomes downstream (a result, a drop, a window carrying
        earlier items too) meets the stop there and is reported before ``dropped`` ends; the
        boundary's end calls the finish again. Nobody blocks: a hand-over on this very
        thread (a failure from inside an operator) ends when this call returns up to it;
        one on another thread is waited for `IN_FLIGHT_GRACE` seconds at most (a timer then
        finishes the stream, reporting what it still holds)."""
        waiting = elsewhere = False
        if not self._grace_over:
            me = get_ident()
            for boundary in self._boundaries[point + 1 :]:
                thread = boundary.thread
                if thread is not None and (boundary.current is not NOTHING or boundary.batch):
                    waiting = True
                    elsewhere = elsewhere or thread != me
        timer = self._grace_timer
        if waiting:
            if elsewhere and timer is None:
                timer = self._grace_timer = threading.Timer(IN_FLIGHT_GRACE, self._end_grace)
                timer.daemon = True
                timer.start()
            return True
        if timer is not None:
            self._grace_timer = None
            timer.cancel()
        return False

    def _end_grace(self) -> None:
        with self._state_lock:
            self._grace_over = True
        self._check_finish()

    def _notify_closing(self) -> None:
        with self._state_lock:
            if self._closing_notified:
                return
            self._closing_notified = True
            callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("stream {}: a close callback failed", self.name)
