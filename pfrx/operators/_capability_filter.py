"""capability_filter: per-event authorisation from the context that travels with the event.

The requirement is compiled once, at construction, into ``check(context, event)``: it
returns ``True`` when the context holds what the event needs, else what is missing (for the
denial's log line). Each form answers from the context's compiled coverage for one
(family, action): a prefix test and a set lookup, with no object made per event. One
``on_next`` judges every item; a batch runs the same judgement over the list and passes on
what it kept (the resource form's batch loop inlines its check).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger
from reactivex import Observable, abc

from .._logging import log_settings, would_log
from .._model import Capability, Context, Dropped, Envelope, Watermark
from .._model.capability import action_key, family_action
from .._model.records import DroppedDraft
from .._model.resources import cached_normal_form, normalize_resource
from ..metrics import StreamMetrics
from ._checks import reporting
from ._shared import (
    FILTER,
    DropHandler,
    OnBatch,
    OnNext,
    Prepared,
    Reporter,
    fuse,
)
from ._transform import failure_reason

REASON = "insufficient_capabilities"
EMPTY = "empty_requirement"
Requirement = Capability | Callable[[Any], Capability | Iterable[Capability]]
# What a check returns: True, or what was missing (a capability, or family/action/resource).
Verdict = Any
Check = Callable[[Context, Any], Verdict]


class _Empty:
    """The verdict of a requirement that names no capability at all: denied (fail closed)."""

    __slots__ = ()


_EMPTY = _Empty()


def _describe(missing: Verdict) -> tuple[str, str, str]:
    if isinstance(missing, Capability):
        return missing.family, missing.action, missing.resource
    if isinstance(missing, tuple) and len(missing) == 3:
        return missing
    return "?", "?", "?"


def _log_denial(envelope: Envelope, missing: Verdict, why: str = "") -> None:
    # Who, what and where; never the payload.
    if not would_log(__name__):
        return
    ctx = envelope.context
    family, action, resource = _describe(missing)
    logger.warning(
        "capability denied: user={} session={} capability={}.{} resource={}{}",
        ctx.user_id,
        ctx.session_id,
        family,
        action,
        resource,
        why,
    )


def _static_check(required: Capability) -> Check:
    key, resource = required.action_key, required.normalized_resource

    def check(context: Context, _event: Any) -> Verdict:
        compiled = context.compiled_coverage(key) if type(context) is Context else None
        if compiled is None:  # not compiled yet, or a Context subclass: ask it
            return context.covered(key, resource) or required
        if resource is not None and (resource in compiled[0] or resource.startswith(compiled[1])):
            return True
        return required

    return check


def _resource_check(family: str, action: str, resource_of: Callable[[Any], Any]) -> Check:
    normalize, normal_form = normalize_resource, cached_normal_form
    key = action_key(family, action)
    missing = object()

    def check(context: Context, event: Any) -> Verdict:
        resource = resource_of(event)
        if type(resource) is str:  # an exact str may meet the cache
            normal = normal_form(resource, missing)
            if normal is missing:
                normal = normalize(resource)
        else:  # judged by its characters, or TypeError: never granted
            normal = normalize(resource)
        compiled = context.compiled_coverage(key) if type(context) is Context else None
        if compiled is None:  # not compiled yet, or a Context subclass: ask it
            if context.covered(key, normal):
                return True
        elif normal is not None and (normal in compiled[0] or normal.startswith(compiled[1])):
            return True
        return (family, action, resource)

    return check


def _judge(context: Context, need: Any) -> Verdict:
    """The verdict on what a computed requirement produced, the general way."""
    if type(need) is Capability:
        return context.covered(need.action_key, need.normalized_resource) or need
    if isinstance(need, Capability):
        return context.has_capability(need) or need
    if isinstance(need, str | bytes) or not isinstance(need, Iterable):
        raise TypeError(f"requirement produced {type(need).__name__}, not a Capability")
    needed = tuple(need)
    if not needed:
        return _EMPTY
    for capability in needed:
        if not isinstance(capability, Capability):
            raise TypeError(f"requirement produced {type(capability).__name__}, not a Capability")
    has = context.has_capability
    for capability in needed:
        if not has(capability):
            return capability
    return True


def _computed_check(compute: Callable[[Any], Any]) -> Check:

    def check(context: Context, event: Any) -> Verdict:
        need = compute(event)  # once per item, whatever the outcome
        # The common case, answered from the compiled coverage: one capability per event.
        if type(need) is Capability and type(context) is Context:
            compiled = context.compiled_coverage(need.action_key)
            if compiled is not None:
                resource = need.normalized_resource
                if resource is not None and (
                    resource in compiled[0] or resource.startswith(compiled[1])
                ):
                    return True
                return need
        return _judge(context, need)

    return check


def _itself(event: Any) -> Any:
    return event


def compile_requirement(required: Any, resource: Callable[[Any], Any] | None) -> Check:
    """The ``check(context, event)`` for a requirement in any of its forms.

    Raises:
        TypeError: the requirement (or ``resource=``) has the wrong type.
    """
    if resource is not None and not callable(resource):
        raise TypeError(f"resource must be a callable event -> str, not {resource!r}")
    if isinstance(required, Capability):
        if resource is not None:
            raise TypeError("resource= needs a family action (e.g. FileCap.read), not a Capability")
        return _static_check(required)
    made_by = family_action(required)
    if made_by is not None:
        family, action = made_by
        return _resource_check(family.name, action, resource or _itself)
    if resource is not None:
        raise TypeError(
            "resource= needs a family action (e.g. FileCap.read) as the requirement, "
            f"not {type(required).__name__}"
        )
    if callable(required):
        return _computed_check(required)
    raise TypeError(
        "required must be a Capability or a callable event -> Capability | Iterable "
        f"(or a family action such as FileCap.read), not {type(required).__name__}"
    )


def capability_filter(
    required: Requirement,
    *,
    resource: Callable[[Any], Any] | None = None,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "capability_filter",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    reporting(on_drop, metrics, name)
    check = compile_requirement(required, resource)
    # The computed form (a function event -> capability) gets its check inlined per item.
    made_by = None if isinstance(required, Capability) else family_action(required)
    computed = required if made_by is None and not isinstance(required, Capability) else None
    # The resource form gets its check inlined into the batch loop.
    resource_form = (
        (made_by[0].name, made_by[1], resource or _itself) if made_by is not None else None
    )

    def link(scheduler: abc.SchedulerBase | None) -> Prepared:
        reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
        prepared = _Filter(check, reporter, computed, resource_form).prepared()
        if on_drop is not None:  # its drops bypass a stream's ordering of batch drops
            prepared.shape = None
        return prepared

    return fuse(link)


# With metrics, what passed and what was denied is counted in plain variables and pushed
# into the metrics every this many passed items, whenever the metrics are read, and when the
# subscription ends: exact figures for one local update per item. A flush costs a few
# microseconds (clock readings, the metrics' lock): every 256 passed items it is a few
# nanoseconds per item, and a reader never sees stale totals (reading flushes first); only
# the rate buckets place up to 256 items in the bucket of their flush, not of their arrival.
FLUSH_EVERY = 256


def _context_of(envelope: Envelope) -> Any:
    # Typed as a Context, but envelopes come from outside: the caller checks.
    return envelope.context


class _Filter:
    """One subscription of the operator: one ``on_next`` path, per item or per batch."""

    #: Set when the subscription is disposed: a denial after it is flushed at once.
    disposed = False

    def __init__(
        self,
        check: Check,
        reporter: Reporter,
        compute: Callable[[Any], Any] | None = None,
        resource_form: tuple[str, str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.check = check
        # The resource form's (family, action, resource function): inlined into batches.
        self.resource_form = resource_form
        # The computed form's requirement: ``check`` is then inlined into on_next.
        self.compute = compute
        # The loguru settings (see log_settings) under which this subscription found nobody
        # to tell of a denial but the metrics: while they stand, a denial is one count.
        self.quiet_in: object = None
        self.reporter = reporter
        self.lock = threading.Lock()
        # Moved by on_next only: items passed, denials for lack of capabilities counted on
        # the quiet path, other denials by reason (every item is one or the other, so what
        # was received is their sum).
        self.passed = 0
        self.refused = 0
        self.denied: dict[str, int] = {}
        # Moved by flush only, under the lock: what the metrics already hold.
        self.flushed_seen = 0
        self.flushed_passed = 0
        self.flushed_denied: dict[str, int] = {}

    def prepared(self) -> Prepared:
        reporter = self.reporter
        if reporter.counters is None:
            return Prepared(self.wire, wire_batch=self.wire_batch, shape=FILTER)
        source = reporter.metrics.register_source(self.flush)  # type: ignore[union-attr]

        def on_error(_error: Exception) -> None:
            self.flush()

        def dispose() -> None:
            # An item still on its way in (a stream failing while another thread hands it
            # on) may be denied after this: nobody reads the local counts then (see _deny).
            self.disposed = True
            self.flush()
            source.dispose()

        return Prepared(
            self.wire, on_error, self.flush, dispose, wire_batch=self.wire_batch, shape=FILTER
        )

    def flush(self) -> None:
        reporter = self.reporter
        with self.lock:
            # Each count on its own: an item may be seen in one flush and pass in the next.
            passed, denied = self.passed, dict(self.denied)  # one copy: on_next may add
            refused = self.refused
            if refused:
                denied[REASON] = denied.get(REASON, 0) + refused
            seen = passed + sum(denied.values())
            if seen != self.flushed_seen:
                reporter.received(seen - self.flushed_seen)
            if passed != self.flushed_passed:
                reporter.emitted(passed - self.flushed_passed)
            for reason, count in denied.items():
                before = self.flushed_denied.get(reason, 0)
                if count != before:
                    reporter.count_drops(reason, count - before)
                    self.flushed_denied[reason] = count
            self.flushed_seen, self.flushed_passed = seen, passed

    def _deny(self) -> Callable[[Any, Verdict, Exception | None], None]:
        reporter = self.reporter
        notify = reporter.notify
        handler = reporter.drop_handler
        operator, now = reporter.operator, reporter.now
        new = object.__new__
        counting = reporter.counters is not None
        # Only a log can keep the subscription from being quiet (see quiet_in).
        may_quiet = counting and handler is None and reporter.observed
        denied = self.denied
        # The loguru settings under which the denial log was found off: asked again only
        # when logger.enable/disable has changed them.
        unlogged_in: object = None

        def deny(envelope: Any, verdict: Verdict, error: Exception | None) -> None:
            nonlocal unlogged_in
            if error is None:
                reason = EMPTY if verdict is _EMPTY else REASON
                if unlogged_in is not log_settings():
                    settings = log_settings()
                    if would_log(__name__):
                        why = " (the requirement named no capability)" if verdict is _EMPTY else ""
                        _log_denial(envelope, verdict, why)
                    else:
                        unlogged_in = settings
            elif not isinstance(envelope, Envelope):
                reason = "not_an_envelope"
            elif not isinstance(_context_of(envelope), Context):
                reason = "invalid_context"
            else:
                # The requirement raised or produced something that is not a capability:
                # fail closed, and say why in the log (even when its str() itself fails).
                reason = REASON
                reporter.error()
                if would_log(__name__):
                    _log_denial(envelope, None, f" (requirement failed: {failure_reason(error)})")
            if counting:
                denied[reason] = denied.get(reason, 0) + 1
                if self.disposed:
                    self.flush()
            if handler is not None:
                # Reporter.notify's record, built here: one frame less per denial.
                record: Any = new(DroppedDraft)  # see DroppedDraft: a Dropped, cheaper
                record.item = envelope
                record.reason = reason
                record.operator = operator
                record.timestamp = now()
                record.__class__ = Dropped
                try:
                    handler(record)
                except Exception:
                    reporter.handler_failed()
                return
            notify(envelope, reason)
            if may_quiet:
                # loguru settles whether it logs a module at that module's first record: the
                # drop just told may have made the rest of the subscription quiet.
                settings = log_settings()
                if reporter.quiet and not would_log(__name__):
                    self.quiet_in = settings

        return deny

    def wire(self, forward: OnNext) -> OnNext:
        reporter = self.reporter
        counting = reporter.counters is not None
        deny = self._deny()
        flush_at = FLUSH_EVERY
        compute, check, judge = self.compute, self.check, _judge
        settings = log_settings

        def on_next(envelope: Any) -> None:
            nonlocal flush_at
            try:
                if type(envelope) is not Envelope and not isinstance(envelope, Envelope):
                    raise TypeError("not an envelope")
                context = envelope.context
                if compute is not None and type(context) is Context:
                    # The computed form (the README's) with `_computed_check` inlined: one
                    # frame less per item.
                    need = compute(envelope.event)  # the requirement: once per item
                    compiled = (
                        context.compiled_coverage(need.action_key)
                        if type(need) is Capability
                        else None
                    )
                    if compiled is None:
                        verdict = judge(context, need)
                    else:
                        resource = need.normalized_resource
                        if resource is not None and (
                            resource in compiled[0] or resource.startswith(compiled[1])
                        ):
                            verdict = True
                        else:
                            verdict = need
                elif type(context) is Context or isinstance(context, Context):
                    verdict = check(context, envelope.event)  # the requirement: once per item
                else:
                    raise TypeError("not a context")
            except Exception as error:
                if type(envelope) is Watermark:  # event-time progress: passed on, uncounted
                    forward(envelope)
                    return
                deny(envelope, None, error)
                return
            if verdict is True:
                if counting:
                    self.passed = n = self.passed + 1
                    if n >= flush_at:
                        flush_at += FLUSH_EVERY
                        self.flush()
                forward(envelope)  # outside the try: downstream errors are not denials
            elif self.quiet_in is settings() and verdict is not _EMPTY:
                self.refused += 1  # all deny would do
            else:
                deny(envelope, verdict, None)

        return on_next

    def _counted(self, kept: int) -> None:
        """A batch passed ``kept`` items: count them, flushing every FLUSH_EVERY."""
        before = self.passed
        self.passed = after = before + kept
        if after // FLUSH_EVERY != before // FLUSH_EVERY:
            self.flush()

    def wire_batch(self, forward: OnBatch) -> OnBatch:
        """One call per list: the per-item path, run in a loop, with what passed forwarded as
        one list after it (never an empty one)."""
        if self.resource_form is not None:
            return self._wire_resource_batch(forward, *self.resource_form)
        counting = self.reporter.counters is not None
        deny = self._deny()
        check = self.check

        def on_batch(items: list[Any]) -> None:
            kept: list[Any] = []
            keep = kept.append
            marks = refused = 0
            for envelope in items:
                try:
                    if type(envelope) is not Envelope and not isinstance(envelope, Envelope):
                        raise TypeError("not an envelope")
                    context = envelope.context
                    if type(context) is not Context and not isinstance(context, Context):
                        raise TypeError("not a context")
                    verdict = check(context, envelope.event)  # the requirement: once per item
                except Exception as error:
                    if type(envelope) is Watermark:  # event-time progress: passed on, uncounted
                        keep(envelope)
                        marks += 1
                        continue
                    deny(envelope, None, error)
                    continue
                if verdict is True:
                    keep(envelope)
                # Asked per denial, as per item: a logger.enable is heard from the next one.
                elif self.quiet_in is log_settings() and verdict is not _EMPTY:
                    refused += 1  # all deny would do
                else:
                    deny(envelope, verdict, None)
            if refused:
                self.refused += refused
            if kept:
                if counting and len(kept) > marks:
                    self._counted(len(kept) - marks)  # watermarks pass uncounted
                forward(kept)

        return on_batch

    def _wire_resource_batch(
        self, forward: OnBatch, family: str, action: str, resource_of: Callable[[Any], Any]
    ) -> OnBatch:
        """`wire_batch` for the resource form, with `_resource_check` inlined in the loop."""
        counting = self.reporter.counters is not None
        deny = self._deny()
        normalize, normal_form = normalize_resource, cached_normal_form
        key = action_key(family, action)
        missing = object()

        def on_batch(items: list[Any]) -> None:
            kept: list[Any] = []
            keep = kept.append
            marks = 0
            refused = 0
            # Asked once per batch: a logger.enable is noticed from the next batch on.
            quiet = self.quiet_in is log_settings()
            for envelope in items:
                try:
                    if type(envelope) is not Envelope and not isinstance(envelope, Envelope):
                        raise TypeError("not an envelope")
                    context = envelope.context
                    if type(context) is not Context and not isinstance(context, Context):
                        raise TypeError("not a context")
                    resource = resource_of(envelope.event)  # once per item
                    if type(resource) is str:  # an exact str may meet the cache
                        normal = normal_form(resource, missing)
                        if normal is missing:
                            normal = normalize(resource)
                    else:  # judged by its characters, or TypeError: never granted
                        normal = normalize(resource)
                    compiled = context.compiled_coverage(key) if type(context) is Context else None
                    if compiled is None:  # not compiled yet, or a Context subclass: ask it
                        granted = context.covered(key, normal)
                    else:
                        granted = normal is not None and (
                            normal in compiled[0] or normal.startswith(compiled[1])
                        )
                except Exception as error:
                    if type(envelope) is Watermark:  # event-time progress: passed on, uncounted
                        keep(envelope)
                        marks += 1
                        continue
                    deny(envelope, None, error)
                    continue
                if granted:
                    keep(envelope)
                elif quiet:
                    refused += 1  # all deny would do
                else:
                    deny(envelope, (family, action, resource), None)
            if refused:
                self.refused += refused
            if kept:
                if counting and len(kept) > marks:
                    self._counted(len(kept) - marks)  # watermarks pass uncounted
                forward(kept)

        return on_batch
