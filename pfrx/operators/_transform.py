"""transform: stateless event-to-event mapping that may reject, never dies of one bad item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from .._model import Context, Envelope, Reject, Watermark
from .._model.context import EnvelopeDraft, new_draft
from ..metrics import StreamMetrics
from ._checks import accepts, reporting
from ._shared import MAP, DropHandler, OnBatch, OnNext, Prepared, Reporter, fuse


def failure_reason(error: BaseException) -> str:
    """The reason recorded when a user function raises: its text, else its type's name.

    An exception whose ``str()`` itself raises (or returns a non-str) still gives a reason: one
    bad item must never take the stream down through its error message.
    """
    try:
        text = str(error)
    except Exception:
        return type(error).__name__
    if not isinstance(text, str) or not text:
        return type(error).__name__
    return text


def transform(
    fn: Callable[[Any, Context], Any],
    *,
    on_drop: DropHandler | None = None,
    metrics: StreamMetrics | None = None,
    name: str = "transform",
) -> Callable[[Observable[Envelope]], Observable[Envelope]]:
    if not callable(fn):
        raise TypeError(f"transform needs a callable (event, context) -> event, not {fn!r}")
    accepts(fn, 2, "transform calls fn(event, context)")
    reporting(on_drop, metrics, name)

    def link(scheduler: abc.SchedulerBase | None) -> Prepared:
        reporter = Reporter.resolve(name, on_drop=on_drop, metrics=metrics, scheduler=scheduler)
        return Prepared(
            lambda forward: _wire(forward, reporter),
            wire_batch=lambda forward: _wire_batch(forward, reporter),  # batched sources
            shape=MAP if on_drop is None else None,  # see Prepared.shape
        )

    def _wire_batch(forward: OnBatch, reporter: Reporter) -> OnBatch:
        # The per-item path below, run in one loop per list (one frame per list, not per item).
        drop = reporter.drop
        counting = reporter.counters is not None
        received, emitted, error = reporter.received, reporter.emitted, reporter.error

        def on_batch(items: list[Any]) -> None:
            kept: list[Any] = []
            keep = kept.append
            made = 0
            if counting:
                received(len(items))  # counted once per list, before any of its drops
            for envelope in items:
                try:
                    context = envelope.context
                    result = fn(envelope.event, context)
                except Exception as exc:
                    if not isinstance(envelope, Envelope):
                        if type(envelope) is Watermark:  # event-time progress: uncounted
                            if counting:
                                received(-1)  # the count taken on entry, given back
                            keep(envelope)
                            continue
                        drop(envelope, "not_an_envelope")
                        continue
                    error()
                    drop(envelope, failure_reason(exc))
                    continue
                if type(result) is Reject:
                    drop(envelope, result.reason)
                    continue
                made += 1
                out = new_draft(EnvelopeDraft)  # see EnvelopeDraft: an Envelope, cheaper
                out.event = result
                out.context = context
                out.timestamp = envelope.timestamp
                out.__class__ = Envelope  # type: ignore[assignment]
                keep(out)
            if made and counting:
                emitted(made)
            if kept:
                forward(kept)

        return on_batch

    def _wire(forward: OnNext, reporter: Reporter) -> OnNext:
        drop = reporter.drop
        counting = reporter.counters is not None
        received, emitted, error = reporter.received, reporter.emitted, reporter.error

        def on_next(envelope: Any) -> None:
            if counting:
                received()
            try:
                context = envelope.context
                result = fn(envelope.event, context)
            except Exception as exc:
                if not isinstance(envelope, Envelope):
                    if type(envelope) is Watermark:  # event-time progress: passed on, uncounted
                        if counting:
                            received(-1)  # the count taken on entry, given back
                        forward(envelope)
                        return
                    drop(envelope, "not_an_envelope")
                    return
                error()
                drop(envelope, failure_reason(exc))
                return
            if type(result) is Reject:
                drop(envelope, result.reason)
                return
            if counting:
                emitted()
            out = new_draft(EnvelopeDraft)  # see EnvelopeDraft: an Envelope, cheaper
            out.event = result
            out.context = context
            out.timestamp = envelope.timestamp
            out.__class__ = Envelope  # type: ignore[assignment]
            forward(out)

        return on_next

    return fuse(link)
