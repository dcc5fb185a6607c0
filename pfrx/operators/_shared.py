"""What every operator shares: where drops and counts go, and which scheduler to use.

An operator resolves its `Reporter` once per subscription. Explicit ``on_drop=`` and
``metrics=`` win; otherwise the operator reports into the *reporting scope* that was active
when it was subscribed (a [`pfrx.Stream`][] opens one around its pipeline's subscription);
otherwise drops are logged at debug level under ``pfrx``, nothing is counted, and the first
drop of each subscription issues a [`pfrx.UnobservedDropWarning`][]. A [`Dropped`][pfrx.Dropped]
record is built only when someone receives it (an ``on_drop`` handler, explicit or scoped).

Fusion: pfrx's synchronous operators are *links* of one chain of plain calls
(`FusedObservable`); a `Link` is one operator's per-subscription factory, returning its
`Prepared` wiring. The word is "link", not "stage", because a stage is something else in
pfrx: a named operator sequence whose errors name it ([`pfrx.stage`][]); per-operator counts
are *operator* counters (`Reporter.counters`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import attrs
from loguru import logger
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver
from reactivex.scheduler import CurrentThreadScheduler

from .._clock import Clock, clock_of
from .._logging import would_log
from .._model import Dropped, UnobservedDropWarning
from .._model.records import dropped_builder, make_dropped
from ..metrics import OperatorCounters, StreamMetrics

DropHandler = Callable[[Dropped], None]
_new_dropped, _set_item, _set_reason, _set_operator, _set_timestamp = dropped_builder
#: What every pfrx operator is: a function from an observable to an observable.
Operator = Callable[[Observable[Any]], Observable[Any]]


@attrs.frozen(slots=True)
class ReportScope:
    """Where operators without their own ``metrics=`` / ``on_drop=`` report."""

    metrics: StreamMetrics | None = None
    on_drop: DropHandler | None = None


_scope: ContextVar[ReportScope | None] = ContextVar("pfrx_report_scope", default=None)


@contextmanager
def reporting_into(
    metrics: StreamMetrics | None = None, on_drop: DropHandler | None = None
) -> Iterator[ReportScope]:
    """Operators subscribed inside this block report into ``metrics`` and ``on_drop``."""
    scope = ReportScope(metrics, on_drop)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def current_scope() -> ReportScope | None:
    """The reporting scope active now, if any."""
    return _scope.get()


def _log_drop(operator: str, reason: str) -> None:
    # Never the payload: items may carry data the log must not hold.
    if would_log(__name__):
        logger.debug("{} dropped an item: {}", operator, reason)


def pick_scheduler(
    *candidates: abc.SchedulerBase | None,
) -> abc.SchedulerBase:
    """The first scheduler given, else the current-thread trampoline (as RxPY does)."""
    for candidate in candidates:
        if candidate is not None:
            return candidate
    return CurrentThreadScheduler.singleton()


class Reporter:
    """Where one subscription of one operator reports drops, errors and counts.

    ``totals`` is true when the operator owns its metrics (``metrics=`` was given): then it
    counts received and emitted items into the metrics' totals too. Inside a stream it
    counts only its own operator counters, and the stream counts what enters and leaves it.
    ``observed`` is false when no ``on_drop=``, no ``metrics=`` and no reporting scope were
    found: the first drop then warns ([`pfrx.UnobservedDropWarning`][]).
    """

    __slots__ = (
        "_on_drop",
        "_warned",
        "counters",
        "metrics",
        "now",
        "observed",
        "operator",
        "totals",
    )

    def __init__(
        self,
        operator: str,
        now: Clock,
        on_drop: DropHandler | None,
        metrics: StreamMetrics | None,
        totals: bool,
        observed: bool = True,
    ) -> None:
        self.operator = operator
        self.now = now
        self._on_drop = on_drop
        self.metrics = metrics
        self.totals = totals
        self.observed = observed
        self._warned = False
        self.counters: OperatorCounters | None = metrics.operator(operator) if metrics else None

    @classmethod
    def resolve(
        cls,
        operator: str,
        *,
        on_drop: DropHandler | None,
        metrics: StreamMetrics | None,
        scheduler: abc.SchedulerBase | None,
    ) -> Reporter:
        """Resolve the reporting targets at subscribe time (see the module docstring)."""
        scope = _scope.get()
        observed = on_drop is not None or metrics is not None or scope is not None
        totals = metrics is not None
        if metrics is None and scope is not None:
            metrics = scope.metrics
        if on_drop is None and scope is not None:
            on_drop = scope.on_drop
        clock_source = scheduler or (metrics.scheduler if metrics else None)
        now = clock_of(clock_source) if clock_source else clock_of(pick_scheduler())
        return cls(operator, now, on_drop, metrics, totals, observed)

    @property
    def receives_drops(self) -> bool:
        """Whether a [`Dropped`][pfrx.Dropped] record would reach anyone (an ``on_drop``)."""
        return self._on_drop is not None

    @property
    def drop_handler(self) -> DropHandler | None:
        """The ``on_drop`` handler (explicit or scoped) `notify` calls, if any: for drop paths
        that build the record themselves (then `handler_failed` when it raises)."""
        return self._on_drop

    @property
    def quiet(self) -> bool:
        """True when `notify` has nobody to tell: drops are observed (counted in
        metrics), no ``on_drop`` receives them, and the debug log is off."""
        return self._on_drop is None and self.observed and not would_log(__name__)

    def drop(self, item: Any, reason: str) -> None:
        """Report ``item`` as lost, exactly once."""
        counters = self.counters
        if counters is not None:
            counters.dropped += 1
            self.metrics.record_drop(reason)  # type: ignore[union-attr]
        self.notify(item, reason)

    def drop_missed(self, item: Any, reason: str, windows: tuple[tuple[Any, Any], ...]) -> None:
        """`drop`, the record naming the windows the item missed (``Dropped.windows``)."""
        handler = self._on_drop
        if handler is None or not windows:
            self.drop(item, reason)
            return
        counters = self.counters
        if counters is not None:
            counters.dropped += 1
            self.metrics.record_drop(reason)  # type: ignore[union-attr]
        try:
            handler(Dropped(item, reason, self.operator, self.now(), windows))
        except Exception:
            logger.exception("on_drop handler of {} failed", self.operator)
            if self.metrics is not None:
                self.metrics.record_error()

    def count_drops(self, reason: str, n: int) -> None:
        """Count ``n`` drops with ``reason`` that `notify` already reported (for
        operators that count locally and flush)."""
        counters = self.counters
        if counters is not None:
            counters.dropped += n
            self.metrics.record_drop(reason, n)  # type: ignore[union-attr]

    def notify(self, item: Any, reason: str) -> None:
        """Tell whoever observes drops (without counting): the ``on_drop`` handler gets a
        [`Dropped`][pfrx.Dropped]; with nobody observing, the first drop warns."""
        handler = self._on_drop
        if handler is None:
            if not self._warned and not self.observed:
                self._warned = True
                warnings.warn(
                    f"{self.operator} dropped an item (reason {reason!r}) and nobody observes "
                    "its drops: pass on_drop= or metrics= to the operator, or run it inside "
                    "a pfrx.Stream (or pfrx.operators.reporting_into)",
                    UnobservedDropWarning,
                    stacklevel=3,
                )
            _log_drop(self.operator, reason)
            return
        if type(reason) is str and reason:
            # make_dropped without its __init__ frame (the reason is already what it checks).
            record = _new_dropped(Dropped)
            _set_item(record, item)
            _set_reason(record, reason)
            _set_operator(record, self.operator)
            _set_timestamp(record, self.now())
        else:
            record = make_dropped(item, reason, self.operator, self.now())
        try:
            handler(record)
        except Exception:
            self.handler_failed()

    def handler_failed(self) -> None:
        """The ``on_drop`` handler raised (call inside its ``except``): the drop is recorded;
        a failing handler must not take the stream down with it, so log and count it."""
        logger.exception("on_drop handler of {} failed", self.operator)
        if self.metrics is not None:
            self.metrics.record_error()

    def received(self, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.received += n
            if self.totals:
                self.metrics.record_received(n)  # type: ignore[union-attr]

    def emitted(self, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.emitted += n
            if self.totals:
                self.metrics.record_emitted(n)  # type: ignore[union-attr]

    def error(self, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.errors += n
        if self.metrics is not None:
            self.metrics.record_error(n)

    def processing_time(
        self, seconds: float, *, slow: bool = False, at: float | None = None
    ) -> None:
        if self.metrics is not None:
            self.metrics.record_processing_time(seconds, slow=slow, at=at)


# -- fusion of per-item links ----------------------------------------------------------------
OnNext = Callable[[Any], None]
OnBatch = Callable[[list[Any]], None]


class Prepared:
    """One link of a fused chain, ready for one subscription.

    ``wire(forward)`` returns the link's ``on_next`` given the next link's. The optional
    hooks see the terminal notifications on their way through, in pipeline order:
    ``on_completed`` may still emit through its ``forward`` (a window flushing), ``on_error``
    may report what it held; ``dispose`` runs when the subscription is disposed.
    ``wire_batch(forward_batch)``, when given, returns the link's batch entry: it takes a
    list of items and passes a list on (never an empty one), with the same effect as its
    ``on_next`` on each item in turn. A link is wired once, one way or the other.

    ``pass_batch(forward_batch)``, when given, is a batch entry of a link that passes every
    item on and reports nothing per item (no drop, no item held back), so a list through it
    has exactly the effects of its items one by one, in the same order with anything else
    the pipeline reports: it is wired *in addition to* ``wire`` (both share the link's
    state; the source calls one or the other, serialized) when the observer downstream takes
    lists too (see `subscribe_with_batches`).

    ``shape`` says what the link does to each item, for a stream that runs a ``send_many``
    batch through the links' batch entries (see `FusedObservable`): `FILTER` passes on
    the very items it takes, or reports them dropped; `MAP` passes on one new item per item
    it takes, or reports the item it took dropped; None: anything else (a window, effects,
    or drops that go to an ``on_drop=`` of the operator's own, past a stream's ordering).
    """

    __slots__ = (
        "dispose",
        "on_completed",
        "on_error",
        "pass_batch",
        "shape",
        "wire",
        "wire_batch",
    )

    def __init__(
        self,
        wire: Callable[[OnNext], OnNext],
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        dispose: Callable[[], None] | None = None,
        wire_batch: Callable[[OnBatch], OnBatch] | None = None,
        pass_batch: Callable[[OnBatch], OnBatch] | None = None,
        shape: str | None = None,
    ) -> None:
        self.wire = wire
        self.on_error = on_error
        self.on_completed = on_completed
        self.dispose = dispose
        self.wire_batch = wire_batch
        self.pass_batch = pass_batch
        self.shape = shape


#: `Prepared.shape` of a link that passes on the very items it takes (or drops them).
FILTER = "filter"
#: `Prepared.shape` of a link that passes on one new item per item (or drops the item).
MAP = "map"


#: One fused operator's factory: called once per subscription, it prepares the link.
Link = Callable[[abc.SchedulerBase | None], Prepared]


def collecting(wire: Callable[[OnNext], OnNext]) -> Callable[[OnBatch], OnBatch]:
    """A link's batch entry made from its per-item ``wire``: each item of a batch goes
    through the one ``on_next`` path; what it forwards is gathered and passed on as one list.

    For links whose ``on_next`` does not care how long its ``forward`` takes (not for one
    that times downstream work, as ``metrics_tap`` does).
    """

    def wire_batch(forward: OnBatch) -> OnBatch:
        out: list[Any] = []
        on_next = wire(out.append)

        def on_batch(items: list[Any]) -> None:
            for item in items:
                on_next(item)
            if out:
                kept = out[:]
                out.clear()
                forward(kept)

        return on_batch

    return wire_batch


class BatchSource(Observable[Any]):
    """A source that can hand a fused pipeline its items a list at a time.

    Subscribed like any observable it emits one item per ``on_next``; a fused pipeline
    calls ``subscribe_batches`` instead, and its leading links that can take lists
    (``Prepared.wire_batch``) run once per list. The items, their order and the ledger are
    the same either way.
    """

    def __init__(
        self,
        subscribe: Callable[..., abc.DisposableBase],
        subscribe_batches: Callable[..., abc.DisposableBase],
    ) -> None:
        super().__init__(subscribe)
        self._subscribe_batches = subscribe_batches

    def subscribe_batches(
        self,
        on_batch: OnBatch,
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Subscribe receiving lists of items (never empty)."""
        return self._subscribe_batches(on_batch, on_error, on_completed, scheduler)


def ignore_after_stop(_: Any) -> None:
    """What a `DirectObserver` calls for an item once its sequence stopped: nothing. A
    source that must account for every item it hands over (a stream's input) compares the
    entry it is about to call with this one."""


class DirectObserver(AutoDetachObserver[Any]):
    """RxPY's auto-detaching observer, minus its per-item frame: until the sequence stops,
    ``on_next`` *is* the fused pipeline's first function (an instance attribute shadowing
    the guarded method); stopping swaps in a function that ignores items, so nothing passes
    after a terminal notification or a dispose, as with the plain observer.

    ``on_batch`` (None unless the subscriber takes lists, see `subscribe_with_batches`) is
    guarded the same way."""

    def __init__(
        self,
        on_next: OnNext,
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        on_batch: OnBatch | None = None,
        batch_room: Callable[[int], bool] | None = None,
    ) -> None:
        super().__init__(on_next, on_error, on_completed)
        self.on_next = on_next  # type: ignore[method-assign,assignment]
        self.on_batch = on_batch
        self.batch_room = batch_room

    def _stop(self) -> None:
        self.on_next = ignore_after_stop  # type: ignore[method-assign,assignment]
        if self.on_batch is not None:
            self.on_batch = ignore_after_stop
            self.batch_room = None

    def on_error(self, error: Exception) -> None:
        self._stop()
        super().on_error(error)

    def on_completed(self) -> None:
        self._stop()
        super().on_completed()

    def dispose(self) -> None:
        self._stop()
        super().dispose()

    def fail(self, exn: Exception) -> bool:
        self._stop()
        return super().fail(exn)


_OBSERVABLE_SUBSCRIBE = Observable.subscribe


def _subscribe_direct(
    source: Observable[Any],
    on_next: OnNext,
    on_error: Callable[[Exception], None],
    on_completed: Callable[[], None],
    scheduler: abc.SchedulerBase | None,
    on_batch: OnBatch | None = None,
    batch_room: Callable[[int], bool] | None = None,
) -> abc.DisposableBase:
    """``source.subscribe(on_next, on_error, on_completed)`` as RxPY's ``Observable.subscribe``
    does it (trampoline first, a failing subscribe reported once), with a `DirectObserver`."""
    observer = DirectObserver(on_next, on_error, on_completed, on_batch, batch_room)
    return subscribe_observer(source, observer, scheduler)


def subscribe_observer(
    source: Observable[Any], observer: Any, scheduler: abc.SchedulerBase | None
) -> abc.DisposableBase:
    """Subscribe ``observer`` (an `AutoDetachObserver` with ``fail``) to ``source``'s own
    ``_subscribe_core``, as RxPY's ``Observable.subscribe`` does: on the current thread's
    trampoline, a subscribe that raises reported to the observer once (re-raised when it
    had already ended), the subscription kept by the observer to dispose with it."""

    def set_disposable(_: abc.SchedulerBase | None = None, __: Any = None) -> None:
        try:
            subscriber: Any = source._subscribe_core(observer, scheduler)
        except Exception as error:
            if not observer.fail(error):
                raise
        else:
            if not (isinstance(subscriber, abc.DisposableBase) or hasattr(subscriber, "dispose")):
                subscriber = Disposable(subscriber)
            observer.subscription = subscriber

    trampoline = CurrentThreadScheduler.singleton()
    if trampoline.schedule_required():
        trampoline.schedule(set_disposable)
    else:
        set_disposable()
    return Disposable(observer.dispose)


def subscribe_with_batches(
    source: Observable[Any],
    on_next: OnNext,
    on_error: Callable[[Exception], None],
    on_completed: Callable[[], None],
    scheduler: abc.SchedulerBase | None,
    on_batch: OnBatch | None,
    batch_room: Callable[[int], bool] | None = None,
) -> abc.DisposableBase:
    """Subscribe ``source`` as ``source.subscribe`` would, offering it ``on_batch`` too.

    The observer ``source`` receives then has an ``on_batch`` attribute (None when not
    offered): a source that can hand over a list of items at once may call it instead of
    ``on_next`` for each (serialized with every other notification). A list has exactly the
    effect of its items one by one; it is never empty and holds items only (a watermark is
    handed over on its own with ``on_next``). A source that knows nothing of it calls
    ``on_next`` as usual. Offered by a `pfrx.Stream` to its pipeline's end, and passed up
    through the links that can pass lists on (``Prepared.pass_batch``) and the stream's
    boundaries, to a ``backpressure`` drain.

    ``batch_room`` (offered by a ``backpressure`` buffer with ``on_batch``, passed up through
    the links with it): ``batch_room(n)`` is True when a list of up to ``n`` items handed
    to ``on_batch`` now would all go in at once, with no other effect (no item waits, is
    evicted or dropped, nothing is delivered on the calling thread), provided nothing else
    feeds the buffer meanwhile. A stream's input asks it before it runs a ``send_many``
    batch through the links' batch entries (see `FusedObservable`).
    """
    if isinstance(source, Observable) and type(source).subscribe is _OBSERVABLE_SUBSCRIBE:
        return _subscribe_direct(
            source, on_next, on_error, on_completed, scheduler, on_batch, batch_room
        )
    return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)


def batch_entry(observer: Any) -> OnBatch | None:
    """The ``on_batch`` an observer offers (see `subscribe_with_batches`), else None."""
    entry = getattr(observer, "on_batch", None)
    return entry if callable(entry) else None


def batch_room_of(observer: Any) -> Callable[[int], bool] | None:
    """The ``batch_room`` an observer offers (see `subscribe_with_batches`), else None."""
    room = getattr(observer, "batch_room", None)
    return room if callable(room) else None


class BatchBroken(Exception):
    """Raised by a batch entry that broke after it reported, each on its own, every item of
    the list it did not take (so whoever handed the list over must not report them)."""


class Gate:
    """A stream's batch gate: while one thread hands a ``send_many`` batch over, operators
    that can take the batch's items in one go (a ``backpressure`` buffer) gather what that
    thread gives them, and hand it on when the stream flushes (see ``Stream.send_many``).

    ``thread`` is the gathering thread (None when no batch is being handed over); each
    gatherer registers its ``flush`` at subscribe time (`gathering_into`): it hands on what
    it holds and says whether it held anything.
    """

    __slots__ = ("flushers", "thread")

    def __init__(self) -> None:
        self.thread: int | None = None
        self.flushers: list[Callable[[], bool]] = []

    def flush(self) -> None:
        """Hand on what every gatherer holds, until none holds anything: what one hands on
        may reach another gatherer downstream on this thread (a buffer delivering inline)."""
        flushers = self.flushers
        while True:
            moved = False
            # Subscribed from the last operator back: upstream ones registered last.
            for flush in reversed(flushers):
                moved = flush() or moved
            if not moved:
                return


_gate: ContextVar[Gate | None] = ContextVar("pfrx_batch_gate", default=None)


@contextmanager
def gathering_into(gate: Gate) -> Iterator[Gate]:
    """Operators subscribed inside this block may gather into ``gate`` (see `Gate`)."""
    token = _gate.set(gate)
    try:
        yield gate
    finally:
        _gate.reset(token)


def current_gate() -> Gate | None:
    """The batch gate active now, if any."""
    return _gate.get()


class FusedObservable(Observable[Any]):
    """A source followed by per-item links that run as one chain of plain calls.

    pfrx's synchronous operators (capability_filter, transform, process, metrics_tap,
    window_count) compose into one of these instead of one RxPY observable each: the same
    semantics with one subscription and no per-operator observer wrapper, so an item costs
    fewer calls. When the source is a `BatchSource`, the leading links that take
    lists run once per list, and the first link that does not gets the items one by one.
    """

    def __init__(self, source: Observable[Any], links: tuple[Link, ...]) -> None:
        self._fused_source = source
        self._links = links
        super().__init__(self._subscribe_fused)

    def _subscribe_fused(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # Prepare from the last link back, as RxPY subscribes unfused operators (metrics list
        # operators in pipeline order that way); then wire from the last link back.
        prepared = [link(scheduler) for link in reversed(self._links)][::-1]
        source = self._fused_source
        batched = 0
        if isinstance(source, BatchSource):
            while batched < len(prepared) and prepared[batched].wire_batch is not None:
                batched += 1
        on_next: OnNext = observer.on_next
        for link in reversed(prepared[batched:]):
            on_next = link.wire(on_next)
        # Lists from the source pass through as lists when every link can pass them on
        # and the observer takes them (see subscribe_with_batches).
        passing = batch_entry(observer)
        room = batch_room_of(observer)
        if passing is not None and not isinstance(source, BatchSource):
            if all(link.pass_batch is not None for link in prepared):
                for link in reversed(prepared):
                    passing = link.pass_batch(passing)  # type: ignore[misc]
            elif (
                room is not None
                and getattr(source, "orders_batch_drops", False)
                and _batch_exact(prepared)
            ):
                for link in reversed(prepared):
                    wire_list = link.pass_batch or link.wire_batch
                    passing = wire_list(passing)  # type: ignore[misc]
            else:
                passing = room = None
        else:
            room = None
        error_hooks = [link.on_error for link in prepared if link.on_error is not None]
        on_error: Callable[[Exception], None] = observer.on_error
        if error_hooks:

            def on_error(error: Exception) -> None:
                for hook in error_hooks:
                    hook(error)
                observer.on_error(error)

        completion_hooks = [s.on_completed for s in prepared if s.on_completed is not None]
        on_completed: Callable[[], None] = observer.on_completed
        if completion_hooks:

            def on_completed() -> None:
                # In pipeline order: what a link flushes passes through the links after it.
                for hook in completion_hooks:
                    hook()
                observer.on_completed()

        if isinstance(source, BatchSource):
            each = on_next

            def one_by_one(items: list[Any]) -> None:
                for item in items:
                    each(item)

            on_batch: OnBatch = one_by_one
            for link in reversed(prepared[:batched]):
                assert link.wire_batch is not None
                on_batch = link.wire_batch(on_batch)
            subscription = source.subscribe_batches(on_batch, on_error, on_completed, scheduler)
        else:
            subscription = subscribe_with_batches(
                source, on_next, on_error, on_completed, scheduler, passing, room
            )
        disposers = [Disposable(s.dispose) for s in prepared if s.dispose is not None]
        if not disposers:
            return subscription
        return CompositeDisposable(subscription, *disposers)


def _batch_exact(prepared: list[Prepared]) -> bool:
    """Whether a source that orders the drops a batch causes by the item each names (a
    stream's input, ``orders_batch_drops``) may run a batch through these links' batch
    entries and get the drops and items of one-by-one, in the same order.

    Every item a link reports dropped must be one the source handed over (found by identity):
    so links up to the first `MAP` are `FILTER`s (or pass lists on whole), and after it
    only links that pass lists on whole and report nothing (``pass_batch``).
    """
    mapped = False
    for link in prepared:
        if link.pass_batch is not None:
            continue
        if link.wire_batch is None or mapped or link.shape not in (FILTER, MAP):
            return False
        mapped = link.shape == MAP
    return True


def fuse(link: Link) -> Callable[[Observable[Any]], Observable[Any]]:
    """An operator that appends ``link`` to a fused chain (or starts one)."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        if type(source) is FusedObservable:
            return FusedObservable(source._fused_source, (*source._links, link))
        return FusedObservable(source, (link,))

    return operator
