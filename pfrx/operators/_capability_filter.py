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
            if needed is None:  # the requirement could not be computed: say why
                try:
                    _as_capabilities(compute(envelope.event))  # type: ignore[misc]
                except Exception as error:
                    _log_denial(envelope, None, f" (requirement failed: {error})")
                    reporter.error()
            elif len(needed) == 1:
                _log_denial(envelope, needed[0])
            else:
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
            needed: tuple[Capability, ...] | None
            try:
                need = compute(envelope.event)
                has = envelope.context.has_capability
                if type(need) is Capability:
                    needed = (need,)
                    ok = has(need)
                else:
                    needed = _as_capabilities(need)
                    ok = all(has(c) for c in needed)
            except Exception:
                needed, ok = None, False  # fail closed; deny() says why
            if ok:
                if counting:
                    emitted()
                forward(envelope)
            elif needed is not None and len(needed) == 1 and type(envelope) is Envelope:
                _log_denial(envelope, needed[0])  # the common denial, without the detour
                drop(envelope, REASON)
            else:
                deny(envelope, needed)

        return on_next_computed

    return fuse(stage)
