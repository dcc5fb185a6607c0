"""capability_filter: per-event authorisation from the context that travels with the event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger
from reactivex import Observable, abc

from .._logging import would_log
from .._model import Capability, Envelope
from ..metrics import StreamMetrics
from ._shared import DropHandler, OnNext, Prepared, Reporter, fuse

REASON = "insufficient_capabilities"
Requirement = Capability | Callable[[Any], Capability | Iterable[Capability]]


def _log_denial(envelope: Envelope, capability: Capability | None, why: str = "") -> None:
    # Who, what and where; never the payload.
    if not would_log(__name__):
        return
    ctx = envelope.context
    logger.warning(
        "capability denied: user={} session={} capability={}.{} resource={}{}",
        ctx.user_id,
        ctx.session_id,
        capability.family if capability else "?",
        capability.action if capability else "?",
        capability.resource if capability else "?",
        why,
    )


def _as_capabilities(needed: Capability | Iterable[Capability]) -> tuple[Capability, ...]:
    if isinstance(needed, Capability):
        return (needed,)
    caps = tuple(needed)
    for cap in caps:
        if not isinstance(cap, Capability):
            raise TypeError(f"requirement produced {type(cap).__name__}, not a Capability")
    return caps


def capability_filter(
    required: Requirement,
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "capability_filter",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    if isinstance(required, Capability):
        static: Capability | None = required
        compute: Callable[[Any], Capability | Iterable[Capability]] | None = None
    elif callable(required):
        static, compute = None, required
    else:
        raise TypeError(
            "required must be a Capability or a callable event -> Capability | Iterable, "
            f"not {type(required).__name__}"
        )

    def stage(scheduler: abc.SchedulerBase | None) -> Prepared:
        reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
        return Prepared(lambda forward: _wire(forward, reporter))

    def _wire(forward: OnNext, reporter: Reporter) -> OnNext:
        drop = reporter.drop
        counting = reporter.stage is not None
        received, emitted = reporter.received, reporter.emitted

        def deny(envelope: Any, needed: tuple[Capability, ...] | None) -> None:
            if not isinstance(envelope, Envelope):
                drop(envelope, "not_an_envelope")
                return
            if needed is None:  # computed again, to say why (and which one is missing)
                try:
                    needed = _as_capabilities(compute(envelope.event))  # type: ignore[misc]
                except Exception as error:
                    _log_denial(envelope, None, f" (requirement failed: {error})")
                    reporter.error()
            if needed is not None:
                has = envelope.context.has_capability
                _log_denial(envelope, next((c for c in needed if not has(c)), None))
            drop(envelope, REASON)

        if static is not None:
            only = (static,)

            def on_next(envelope: Any) -> None:
                if counting:
                    received()
                try:
                    ok = envelope.context.has_capability(static)
                except AttributeError:
                    ok = False
                if ok:
                    if counting:
                        emitted()
                    forward(envelope)
                else:
                    deny(envelope, only)

            return on_next

        assert compute is not None

        def on_next_computed(envelope: Any) -> None:
            if counting:
                received()
            needed: tuple[Capability, ...] | None = None
            try:
                need = compute(envelope.event)
                if type(need) is Capability:  # the common case: one capability per event
                    ok = envelope.context.has_capability(need)
                else:
                    needed = _as_capabilities(need)
                    has = envelope.context.has_capability
                    ok = all(has(c) for c in needed)
            except Exception:
                need, ok = None, False  # fail closed; deny() says why
            if ok:
                if counting:
                    emitted()
                forward(envelope)  # outside the try: downstream errors are not denials
            elif type(need) is Capability and type(envelope) is Envelope:
                if would_log(__name__):
                    _log_denial(envelope, need)
                drop(envelope, REASON)
            else:
                deny(envelope, needed)

        return on_next_computed

    return fuse(stage)
