"""capability_filter: per-event authorisation from the context that travels with the event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger
from reactivex import Observable, abc

from .._model import Capability, Envelope
from ..metrics import StreamMetrics
from ._shared import DropHandler, Reporter

REASON = "insufficient_capabilities"
Requirement = Capability | Callable[[Any], Capability | Iterable[Capability]]


def _log_denial(envelope: Envelope, capability: Capability | None, why: str = "") -> None:
    # Who, what and where; never the payload.
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


def _requirements(required: Requirement, event: Any) -> tuple[Capability, ...]:
    needed = required(event) if callable(required) else required
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
    if not isinstance(required, Capability) and not callable(required):
        raise TypeError(
            "required must be a Capability or a callable event -> Capability | Iterable, "
            f"not {type(required).__name__}"
        )
    static = required if isinstance(required, Capability) else None

    def operator(source: Observable[Envelope]) -> Observable[Envelope]:
        def subscribe(
            observer: abc.ObserverBase[Envelope], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
            forward = observer.on_next
            drop = reporter.drop

            def deny(envelope: Any) -> None:
                if not isinstance(envelope, Envelope):
                    drop(envelope, "not_an_envelope")
                    return
                try:
                    missing = next(
                        (
                            c
                            for c in _requirements(required, envelope.event)
                            if not envelope.context.has_capability(c)
                        ),
                        None,
                    )
                    _log_denial(envelope, missing)
                except Exception as error:
                    _log_denial(envelope, None, f" (requirement failed: {error})")
                    reporter.error()
                drop(envelope, REASON)

            if static is not None:

                def allowed(envelope: Any) -> bool:
                    try:
                        return bool(envelope.context.has_capability(static))
                    except AttributeError:
                        return False
            else:

                def allowed(envelope: Any) -> bool:
                    try:
                        has = envelope.context.has_capability
                        return all(has(c) for c in _requirements(required, envelope.event))
                    except Exception:
                        return False  # fail closed; deny() says why

            stage = reporter.stage
            if stage is None:

                def on_next(envelope: Envelope) -> None:
                    if allowed(envelope):
                        forward(envelope)
                    else:
                        deny(envelope)
            else:
                received, emitted = reporter.received, reporter.emitted

                def on_next(envelope: Envelope) -> None:
                    received()
                    if allowed(envelope):
                        emitted()
                        forward(envelope)
                    else:
                        deny(envelope)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator
