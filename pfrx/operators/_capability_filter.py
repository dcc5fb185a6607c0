"""capability_filter: per-event authorisation from the context that travels with the event.

The requirement is compiled once, at construction, into ``check(context, event)``: it
returns ``True`` when the context holds what the event needs, else what is missing (for the
denial's log line). Each form answers from the context's compiled coverage for one
(family, action): a prefix test and a set lookup, with no object made per event. One
``judge`` serves both the per-item and the per-batch entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger
from reactivex import Observable, abc

from .._logging import would_log
from .._model import Capability, Context, Envelope
from .._model.capability import family_action
from .._model.resources import normalize_resource
from ..metrics import StreamMetrics
from ._shared import DropHandler, OnBatch, OnNext, Prepared, Reporter, fuse
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
    family, action = required.family, required.action
    resource = required.normalized_resource

    def check(context: Context, _event: Any) -> Verdict:
        return context.allows(family, action, resource) or required

    return check


def _resource_check(family: str, action: str, resource_of: Callable[[Any], Any]) -> Check:
    normalize = normalize_resource

    def check(context: Context, event: Any) -> Verdict:
        resource = resource_of(event)
        # normalize_resource judges a str subclass by its characters; anything else raises.
        if context.allows(family, action, normalize(resource)):
            return True
        return (family, action, resource)

    return check


def _computed_check(compute: Callable[[Any], Any]) -> Check:
    def check(context: Context, event: Any) -> Verdict:
        need = compute(event)  # once per item, whatever the outcome
        if type(need) is Capability:  # the common case: one capability per event
            return (
                context.coverage(need.family, need.action).covers(need.normalized_resource) or need
            )
        if isinstance(need, Capability):
            return context.has_capability(need) or need
        if isinstance(need, str | bytes) or not isinstance(need, Iterable):
            raise TypeError(f"requirement produced {type(need).__name__}, not a Capability")
        needed = tuple(need)
        if not needed:
            return _EMPTY
        for capability in needed:
            if not isinstance(capability, Capability):
                raise TypeError(
                    f"requirement produced {type(capability).__name__}, not a Capability"
                )
        has = context.has_capability
        for capability in needed:
            if not has(capability):
                return capability
        return True

    return check


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
        return _resource_check(family.name, action, resource or (lambda event: event))
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
    check = compile_requirement(required, resource)

    def stage(scheduler: abc.SchedulerBase | None) -> Prepared:
        reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
        judge = _judge(check, reporter)
        if reporter.stage is None:
            return Prepared(lambda forward: _uncounted(judge, forward), wire_batch=_batch(judge))
        return _counted(judge, reporter)

    return fuse(stage)


def _uncounted(judge: Callable[[Any], bool], forward: OnNext) -> OnNext:
    def on_next(envelope: Any) -> None:
        if judge(envelope):
            forward(envelope)  # outside judge: downstream errors are not denials

    return on_next


def _batch(
    judge: Callable[[Any], bool], reporter: Reporter | None = None
) -> Callable[[OnBatch], OnBatch]:
    def wire_batch(forward: OnBatch) -> OnBatch:
        def on_batch(envelopes: list[Any]) -> None:
            if reporter is not None:
                reporter.received(len(envelopes))
            kept = [envelope for envelope in envelopes if judge(envelope)]
            if kept:
                if reporter is not None:
                    reporter.emitted(len(kept))
                forward(kept)

        return on_batch

    return wire_batch


# Items counted in closure variables are pushed into the metrics every this many items, and
# whenever the metrics are read, and when the subscription ends: exact figures for a
# handful of local updates per item.
FLUSH_EVERY = 64


def _counted(judge: Callable[[Any], bool], reporter: Reporter) -> Prepared:
    lock = threading.Lock()
    seen = passed = 0
    flushed_seen = flushed_passed = 0

    def flush() -> None:
        nonlocal flushed_seen, flushed_passed
        with lock:
            # Only this function moves the flushed marks; on_next only adds to the counts.
            now_seen, now_passed = seen, passed
            if now_seen != flushed_seen:
                reporter.received(now_seen - flushed_seen)
                flushed_seen = now_seen
            if now_passed != flushed_passed:
                reporter.emitted(now_passed - flushed_passed)
                flushed_passed = now_passed

    def wire(forward: OnNext) -> OnNext:
        def on_next(envelope: Any) -> None:
            nonlocal seen, passed
            seen += 1
            if not seen % FLUSH_EVERY:
                flush()
            if judge(envelope):
                passed += 1
                forward(envelope)  # outside judge: downstream errors are not denials

        return on_next

    source = reporter.metrics.register_source(flush)  # type: ignore[union-attr]

    def on_error(_error: Exception) -> None:
        flush()

    def dispose() -> None:
        flush()
        source.dispose()

    return Prepared(wire, on_error, flush, dispose, wire_batch=_batch(judge, reporter))


def _judge(check: Check, reporter: Reporter) -> Callable[[Any], bool]:
    """``judge(item)``: True when the item may pass; otherwise it is reported, once."""
    drop = reporter.drop

    def refuse(item: Any, error: Exception) -> None:
        if not isinstance(item, Envelope):
            drop(item, "not_an_envelope")
            return
        context: Any = item.context  # typed as a Context, but items come from outside
        if not isinstance(context, Context):
            drop(item, "invalid_context")
            return
        # The requirement raised or produced something that is not a capability: fail
        # closed, and say why in the log (its text, even when its str() itself fails).
        reporter.error()
        if would_log(__name__):
            _log_denial(item, None, f" (requirement failed: {failure_reason(error)})")
        drop(item, REASON)

    def judge(envelope: Any) -> bool:
        try:
            if type(envelope) is not Envelope and not isinstance(envelope, Envelope):
                raise TypeError("not an envelope")
            context = envelope.context
            if type(context) is not Context and not isinstance(context, Context):
                raise TypeError("not a context")
            verdict = check(context, envelope.event)
        except Exception as error:
            refuse(envelope, error)
            return False
        if verdict is True:
            return True
        if verdict is _EMPTY:
            if would_log(__name__):
                _log_denial(envelope, None, " (the requirement named no capability)")
            drop(envelope, EMPTY)
            return False
        if would_log(__name__):
            _log_denial(envelope, verdict)
        drop(envelope, REASON)
        return False

    return judge
