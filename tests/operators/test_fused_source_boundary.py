"""The fused pipeline's boundary with an RxPY source: nothing passes after a terminal
notification or a dispose, even from a source that misbehaves."""

from __future__ import annotations

from typing import Any

import reactivex

import pfrx
from pfrx import operators as pf

ctx = pfrx.Context("alice", capabilities=[pfrx.Capability("file", "read", "/docs")])


def _env(path: str) -> pfrx.Envelope:
    return pfrx.Envelope(path, ctx, 0.0)


def _pipeline(source: reactivex.Observable[Any]) -> tuple[list[Any], pfrx.StreamMetrics]:
    metrics = pfrx.StreamMetrics()
    seen: list[Any] = []
    source.pipe(
        pf.capability_filter(pfrx.Capability("file", "read", "/docs"), metrics=metrics),
        pf.transform(lambda event, _ctx: event.upper()),
    ).subscribe(seen.append, seen.append, lambda: seen.append("done"))
    return seen, metrics


def test_items_after_completion_are_ignored() -> None:
    def misbehave(observer: Any, _scheduler: Any = None) -> None:
        observer.on_next(_env("/docs/a"))
        observer.on_completed()
        observer.on_next(_env("/docs/b"))
        observer.on_error(RuntimeError("late"))

    seen, metrics = _pipeline(reactivex.create(misbehave))
    assert [getattr(x, "event", x) for x in seen] == ["/DOCS/A", "done"]
    assert metrics.snapshot().received == 1


def test_items_after_an_error_are_ignored() -> None:
    error = RuntimeError("boom")

    def misbehave(observer: Any, _scheduler: Any = None) -> None:
        observer.on_error(error)
        observer.on_next(_env("/docs/a"))
        observer.on_completed()

    seen, metrics = _pipeline(reactivex.create(misbehave))
    assert seen == [error]
    assert metrics.snapshot().received == 0


def test_items_after_dispose_are_ignored() -> None:
    subject: reactivex.subject.Subject[Any] = reactivex.subject.Subject()
    metrics = pfrx.StreamMetrics()
    seen: list[Any] = []
    subscription = subject.pipe(
        pf.capability_filter(pfrx.Capability("file", "read", "/docs"), metrics=metrics)
    ).subscribe(seen.append)
    subject.on_next(_env("/docs/a"))
    subscription.dispose()
    subject.on_next(_env("/docs/b"))
    assert [x.event for x in seen] == ["/docs/a"]
    assert metrics.snapshot().received == 1


def test_a_failing_subscribe_becomes_on_error() -> None:
    def broken(_observer: Any, _scheduler: Any = None) -> None:
        raise ValueError("cannot subscribe")

    seen, _ = _pipeline(reactivex.create(broken))
    assert len(seen) == 1 and isinstance(seen[0], ValueError)
