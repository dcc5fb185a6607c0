"""Explicit watermarks in a Stream (`Stream.send_watermark`) and through every pfrx operator:
a `Watermark` passes unchanged, in order, never counted as received, emitted or dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import reactivex
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.sources import batches

FileCap = pfrx.CapabilityFamily("file", actions=("read",))
CTX = pfrx.Context("alice", "s1", [FileCap.read("/docs")])
NOBODY = pfrx.Context("mallory", "s2")
MARK = pfrx.Watermark(5.0, source="a")


def env(event: Any, ctx: pfrx.Context = CTX) -> pfrx.Envelope:
    return pfrx.Envelope(event, ctx, 0.0)


def at(envelope: pfrx.Envelope) -> float:
    return float(envelope.event)


def run(
    op: Any, items: list[Any], batch: int | None = None
) -> tuple[list[Any], list[pfrx.Dropped]]:
    out: list[Any] = []
    dropped: list[pfrx.Dropped] = []
    source = reactivex.from_iterable(items) if batch is None else batches(items, batch)
    with pf.reporting_into(on_drop=dropped.append):
        source.pipe(op).subscribe(out.append)
    return out, dropped


def events(out: list[Any]) -> list[Any]:
    return [x if type(x) is pfrx.Watermark else x.event for x in out]


# -- every operator passes a watermark on, uncounted ----------------------------------------


def counted(metrics: pfrx.StreamMetrics) -> tuple[int, int, int]:
    snap = metrics.snapshot()
    return snap.received, snap.emitted, snap.dropped


@pytest.mark.parametrize("batch", [None, 2, 10])
@pytest.mark.parametrize(
    "form",
    ["capability", "computed", "resource"],
)
def test_capability_filter_passes_watermarks_in_every_form(form: str, batch: int | None) -> None:
    metrics = pfrx.StreamMetrics()
    if form == "capability":
        op = pf.capability_filter(FileCap.read("/docs"), metrics=metrics)
    elif form == "computed":
        op = pf.capability_filter(lambda ev: FileCap.read(ev), metrics=metrics)
    else:
        op = pf.capability_filter(FileCap.read, resource=lambda ev: ev, metrics=metrics)
    items = [env("/docs/a"), MARK, env("/docs/b", NOBODY), env("/docs/c")]
    out, dropped = run(op, items, batch)
    assert events(out) == ["/docs/a", MARK, "/docs/c"] and out[1] is MARK
    assert [d.reason for d in dropped] == ["insufficient_capabilities"]
    assert counted(metrics) == (3, 2, 1)


@pytest.mark.parametrize("batch", [None, 3])
def test_transform_passes_watermarks(batch: int | None) -> None:
    metrics = pfrx.StreamMetrics()
    op = pf.transform(lambda e, c: e * 2, metrics=metrics)
    out, dropped = run(op, [env(1), MARK, env(2), "junk"], batch)
    assert events(out) == [2, MARK, 4] and out[1] is MARK
    assert [d.reason for d in dropped] == ["not_an_envelope"]
    assert counted(metrics) == (3, 2, 1)
    assert metrics.snapshot().errors == 0


class Summer:
    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
        return pfrx.Ok(state + event, effects=(state + event,))


@pytest.mark.parametrize("batch", [None, 3])
def test_process_passes_watermarks_and_keeps_its_state(batch: int | None) -> None:
    metrics = pfrx.StreamMetrics()
    op = pf.process(Summer(), metrics=metrics, processing_timeout=1.0)
    out, dropped = run(op, [env(1), MARK, env(2)], batch)
    assert events(out) == [1, MARK, 3] and dropped == []
    assert counted(metrics) == (2, 2, 0)
    assert metrics.snapshot().errors == 0


@pytest.mark.parametrize("batch", [None, 3])
def test_metrics_tap_passes_watermarks_unmeasured(batch: int | None) -> None:
    tap = pf.metrics_tap()
    out, _ = run(tap, [env(1), MARK, env(2)], batch)
    assert events(out) == [1, MARK, 2]
    assert counted(tap.metrics) == (2, 2, 0)


@pytest.mark.parametrize("strategy", ["drop_oldest", "drop_newest", "latest", "block", "error"])
def test_backpressure_passes_watermarks_uncounted_taking_no_room(strategy: str) -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: reactivex.subject.Subject[Any] = reactivex.subject.Subject()
    out: list[Any] = []
    errors: list[Exception] = []
    dropped: list[pfrx.Dropped] = []
    op = pf.backpressure(
        strategy, buffer_size=2, scheduler=scheduler, metrics=metrics, on_drop=dropped.append
    )
    subject.pipe(op).subscribe(out.append, errors.append)
    first = pfrx.Watermark(1.0)
    subject.on_next(env(1))
    subject.on_next(first)
    subject.on_next(MARK)  # marks of other sources wait side by side ...
    later = pfrx.Watermark(3.0)
    subject.on_next(later)  # ... one of the same source behind the same item replaces it
    if strategy != "latest":  # latest keeps one item: the next would overwrite env(1)
        subject.on_next(env(2))  # the buffer holds 2 items: the marks took no room
    scheduler.start()
    assert errors == [] and dropped == []
    expected = [1, later, MARK, 2] if strategy != "latest" else [1, later, MARK]
    assert events(out) == expected
    items = 2 if strategy != "latest" else 1
    assert counted(metrics) == (items, items, 0)
    assert metrics.snapshot().backpressure_events == 0


def test_backpressure_eviction_never_evicts_a_watermark() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: reactivex.subject.Subject[Any] = reactivex.subject.Subject()
    out: list[Any] = []
    op = pf.backpressure("drop_oldest", buffer_size=2, scheduler=scheduler, metrics=metrics)
    subject.pipe(op).subscribe(out.append)
    subject.on_next(MARK)  # the oldest in the buffer, but no item: env(1) is evicted
    for n in (1, 2, 3):
        subject.on_next(env(n))
    scheduler.start()
    assert events(out) == [MARK, 2, 3]
    assert counted(metrics) == (3, 2, 1)
    assert metrics.snapshot().drops_by_reason == {"overflow": 1}


def test_backpressure_checkpoint_keeps_waiting_watermarks_uncounted() -> None:
    from pfrx import checkpoint

    scheduler = TestScheduler()
    subject: reactivex.subject.Subject[Any] = reactivex.subject.Subject()
    with checkpoint.checkpointing(None) as scope:
        subject.pipe(pf.backpressure(scheduler=scheduler, metrics=pfrx.StreamMetrics())).subscribe()
    subject.on_next(env(1))
    subject.on_next(MARK)
    saved = scope.snapshot()
    metrics = pfrx.StreamMetrics(scheduler)
    out: list[Any] = []
    subject2: reactivex.subject.Subject[Any] = reactivex.subject.Subject()
    with checkpoint.checkpointing(saved):
        subject2.pipe(pf.backpressure(scheduler=scheduler, metrics=metrics)).subscribe(out.append)
    scheduler.start()
    assert events(out) == [1, MARK]
    assert counted(metrics) == (1, 1, 0)


# -- Stream.send_watermark ----------------------------------------------------------------


def stream(*ops: Any, scheduler: TestScheduler) -> tuple[pfrx.Stream, list[Any], list[Any]]:
    s = pfrx.Stream(*ops, scheduler=scheduler)
    out: list[Any] = []
    dropped: list[Any] = []
    s.results.subscribe(out.append)
    s.dropped.subscribe(dropped.append)
    return s, out, dropped


def test_send_watermark_fires_windows_in_order_with_the_sends() -> None:
    scheduler = TestScheduler()
    s, out, dropped = stream(
        pf.capability_filter(FileCap.read("/docs")),
        pf.transform(lambda e, c: e),
        pf.metrics_tap(),
        pf.window_time(10, timestamp=lambda e: e.event[1]),
        scheduler=scheduler,
    )
    assert s.send(("a", 1), CTX).ok and s.send(("b", 8), CTX).ok
    assert out == []
    assert s.send_watermark(10).ok
    assert [w.events for w in out] == [(("a", 1), ("b", 8))]
    assert s.send(("c", 3), CTX).ok  # its window has fired: late
    assert [(d.reason, d.windows) for d in dropped] == [("late", ((0.0, 10.0),))]
    snap = s.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (3, 1, 1)
    s.close()
    assert s.send_watermark(20) == pfrx.SendResult(False, "closed")


def test_send_watermark_goes_through_a_backpressure_drain_in_order() -> None:
    scheduler = TestScheduler()
    s, out, dropped = stream(
        pf.backpressure(buffer_size=4),
        pf.window_session(5, key=lambda e: "k", timestamp=lambda e: e.event),
        scheduler=scheduler,
    )
    for t in (1, 2):
        s.send(t, CTX)
    assert s.send_watermark(7).ok  # queued behind 1 and 2 in the buffer
    s.send(9, CTX)
    assert out == []
    scheduler.start()
    assert [(w.start, w.end, w.events) for w in out] == [(1.0, 7.0, (1, 2))]
    s.close()
    scheduler.start()
    assert [w.events for w in out] == [(1, 2), (9,)] and dropped == []
    snap = s.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (3, 2, 0)


def test_named_sources_and_idle_through_a_stream() -> None:
    scheduler = TestScheduler()
    s, out, _ = stream(pf.window_time(10, timestamp=lambda e: e.event), scheduler=scheduler)
    s.send(1.0, CTX)
    s.send_watermark(5, source="slow")
    s.send_watermark(30, source="fast")
    assert out == []  # the slow source holds event time at 5
    s.send_watermark(5, source="slow", idle=True)
    assert [w.events for w in out] == [(1.0,)]


def test_a_watermark_no_window_takes_ends_at_the_stream() -> None:
    scheduler = TestScheduler()
    s, out, dropped = stream(pf.transform(lambda e, c: e), scheduler=scheduler)
    s.send("x", CTX)
    assert s.send_watermark(datetime(2026, 1, 1, tzinfo=UTC)).ok
    s.send("y", CTX)
    assert [e.event for e in out] == ["x", "y"] and dropped == []
    snap = s.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 2, 0)


def test_a_watermark_is_forgotten_not_dropped_when_the_pipeline_fails() -> None:
    scheduler = TestScheduler()
    s, out, dropped = stream(pf.backpressure("error", buffer_size=1), scheduler=scheduler)
    s.send("x", CTX)
    s.send_watermark(1)
    s.send("y", CTX)  # overflows: the stream fails
    scheduler.start()
    assert [e.event for e in out] == ["x"]  # what was buffered is delivered, then the error
    assert [d.reason for d in dropped] == ["overflow"]
    assert all(type(d.item) is not pfrx.Watermark for d in dropped)
    assert s.send_watermark(2) == pfrx.SendResult(False, "failed")


def test_send_watermark_checks_its_time() -> None:
    s = pfrx.Stream(scheduler=TestScheduler())
    with pytest.raises(TypeError, match="watermark time"):
        s.send_watermark("soon")
    with pytest.raises(ValueError, match="timezone-aware"):
        s.send_watermark(datetime(2026, 1, 1))


def test_a_watermark_after_restore_fires_the_restored_windows() -> None:
    def ops() -> tuple[Any, ...]:
        return (
            pf.transform(lambda e, c: e),
            pf.window_time(10, key=lambda e: e.event[0], timestamp=lambda e: e.event[1]),
        )

    scheduler = TestScheduler()
    s, out, _ = stream(*ops(), scheduler=scheduler)
    s.send(("k", 1), CTX)
    s.send(("j", 4), CTX)
    saved = s.checkpoint()
    assert out == []
    s2 = pfrx.Stream(*ops(), scheduler=scheduler, restore=saved)
    out2: list[Any] = []
    s2.results.subscribe(out2.append)
    s2.send(("k", 7), CTX)
    assert out2 == []
    assert s2.send_watermark(10).ok
    assert [(w.key, w.events) for w in out2] == [("k", (("k", 1), ("k", 7))), ("j", (("j", 4),))]
    snap = s2.metrics()
    assert (snap.received, snap.emitted) == (1, 2)  # the restored items came before


def test_a_watermark_an_operator_chokes_on_is_no_drop() -> None:
    # A plain Rx operator after a boundary takes the watermark for an item and raises: the
    # stream fails, but the watermark is no item to report.
    from reactivex import operators as ops

    scheduler = TestScheduler()
    s, out, dropped = stream(pf.backpressure(), ops.map(lambda env: env.event), scheduler=scheduler)
    s.send("x", CTX)
    s.send_watermark(1)
    scheduler.start()
    assert out == ["x"] and dropped == []
    assert s.state == "failed" and isinstance(s.error, Exception)


def test_backpressure_keeps_the_later_time_of_a_replaced_watermark() -> None:
    scheduler = TestScheduler()
    subject: reactivex.subject.Subject[Any] = reactivex.subject.Subject()
    out: list[Any] = []
    subject.pipe(pf.backpressure(scheduler=scheduler, metrics=pfrx.StreamMetrics())).subscribe(
        out.append
    )
    subject.on_next(env(1))
    subject.on_next(pfrx.Watermark(5.0, source="a"))
    subject.on_next(pfrx.Watermark(3.0, source="a", idle=True))  # older time, newer state
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    subject.on_next(pfrx.Watermark(aware, source="b"))
    subject.on_next(pfrx.Watermark(7.0, source="b"))  # not comparable: both wait
    scheduler.start()
    assert events(out) == [
        1,
        pfrx.Watermark(5.0, source="a", idle=True),
        pfrx.Watermark(aware, source="b"),
        pfrx.Watermark(7.0, source="b"),
    ]
