"""Issue 12: when a failed stream finishes, stated exactly.

A stream that fails waits, before it ends ``results`` and ``dropped``, for the operators that
still hand an item over between the failure and the end of the pipeline, and for nobody
else: a failure from outside (``fail``) or from a send that breaks the first operator waits
for no operator; an error signalled by the pipeline waits for the last one. Each test below
puts an item in flight in some operators only (an item pushed by a ``merge`` further down
the pipeline than the failure) and reads ``done`` right where the failure returns.
"""

from __future__ import annotations

from typing import Any

from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx.stream import StageError, Stream

ALICE = pfrx.Context("alice", "s1")


def _raising(trigger: str, error: Exception, *, complete_first: bool = False) -> Any:
    """An operator (not fused: the stream puts a boundary after it) whose on_next raises on
    an envelope of event ``trigger``, after completing downstream if ``complete_first``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if getattr(value, "event", None) == trigger:
                    if complete_first:
                        observer.on_completed()
                    raise error
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def _log_ends(stream: Stream, log: list[Any]) -> None:
    stream.results.subscribe(
        on_error=lambda e: log.append(("error", type(e).__name__)),
        on_completed=lambda: log.append(("completed",)),
    )
    stream.dropped.subscribe(
        lambda d: log.append(("drop", d.item.event, d.reason, d.operator)),
        on_completed=lambda: log.append(("drops completed",)),
    )


def test_fail_from_a_subscriber_finishes_the_stream_before_it_returns() -> None:
    # Two operators hand "x" over when the subscriber fails the stream from outside: the
    # stream has let go of its pipeline, so it waits for neither of them.
    scheduler = TestScheduler()
    side: Subject[Any] = Subject()
    stream = Stream(ops.merge(side), ops.map(lambda v: v), name="s", scheduler=scheduler)
    scheduler.advance_to(1.0)
    log: list[Any] = []
    cause = KeyError("from outside")

    def on_result(value: Any) -> None:
        log.append(("result", value.event))
        stream.fail(cause)
        log.append(("fail returned", stream.done, stream.state))

    stream.results.subscribe(on_result, lambda e: log.append(("error", e)))
    stream.dropped.subscribe(on_completed=lambda: log.append(("drops completed",)))
    side.on_next(pfrx.Envelope("x", ALICE, 0.0))
    assert log == [
        ("result", "x"),
        ("drops completed",),
        ("fail returned", True, "failed"),
        ("error", cause),  # results stays serialized: its error follows the on_next
    ]


def test_a_pipeline_error_waits_for_the_last_operator_still_handing_an_item_over() -> None:
    # "x" comes from the second merge, so only the last operator hands it over when the
    # subscriber makes the first merge's source fail: the stream finishes once that hand-over
    # is done, not inside it.
    scheduler = TestScheduler()
    first: Subject[Any] = Subject()
    second: Subject[Any] = Subject()
    stream = Stream(ops.merge(first), ops.merge(second), name="s", scheduler=scheduler)
    scheduler.advance_to(1.0)
    log: list[Any] = []

    def on_result(value: Any) -> None:
        log.append(("result", value.event))
        first.on_error(KeyError("upstream"))
        log.append(("error signalled", stream.done))

    stream.results.subscribe(on_result)
    _log_ends(stream, log)
    second.on_next(pfrx.Envelope("x", ALICE, 0.0))
    assert log[0] == ("result", "x")
    assert ("error signalled", False) in log
    assert log[-2:] == [("error", "KeyError"), ("drops completed",)]
    assert stream.done and stream.state == "failed"


def test_a_send_that_breaks_the_first_operator_waits_for_no_operator() -> None:
    # While the two last operators hand "x" over, a subscriber's send breaks the first
    # operator: the stream lets go of its pipeline and has finished when the send returns.
    scheduler = TestScheduler()
    side: Subject[Any] = Subject()
    stream = Stream(
        _raising("bad", KeyError("broken")),
        ops.merge(side),
        ops.map(lambda v: v),
        name="s",
        scheduler=scheduler,
    )
    scheduler.advance_to(1.0)
    log: list[Any] = []

    def on_result(value: Any) -> None:
        log.append(("result", value.event))
        result = stream.send("bad", ALICE)
        log.append(("sent", result.ok, result.reason, stream.done))

    stream.results.subscribe(on_result)
    _log_ends(stream, log)
    side.on_next(pfrx.Envelope("x", ALICE, 0.0))
    assert log == [
        ("result", "x"),
        ("drops completed",),
        ("sent", False, "failed", True),
        ("error", "StageError"),
    ]


def test_an_operator_that_completes_then_raises_fails_the_stream_with_the_stage_error() -> None:
    cause = KeyError("broken after completing")
    stream = Stream(_raising("bad", cause, complete_first=True), name="s")
    log: list[Any] = []
    _log_ends(stream, log)
    assert stream.send("ok", ALICE).ok
    result = stream.send("bad", ALICE)
    assert (result.ok, result.reason) == (False, "failed")
    assert log == [("error", "StageError"), ("drops completed",)]
    assert isinstance(stream.error, StageError) and stream.error.error is cause
    assert stream.state == "failed"
    assert stream.send("later", ALICE).ok is False  # "closed" or "failed": both are the contract's


def test_an_item_reaching_the_pipeline_after_the_failure_is_dropped_never_delivered() -> None:
    # The second operator breaks on "bad"; while the stream is failing (a close callback), an
    # envelope still enters through the merge: it is dropped as failed, never a result.
    scheduler = TestScheduler()
    side: Subject[Any] = Subject()
    stream = Stream(
        ops.merge(side), _raising("bad", KeyError("broken")), name="s", scheduler=scheduler
    )
    scheduler.advance_to(2.0)
    log: list[Any] = []
    stream.results.subscribe(lambda v: log.append(("result", v.event)))
    _log_ends(stream, log)
    stream.when_closed(lambda: side.on_next(pfrx.Envelope("late", ALICE, 0.0)))
    assert stream.send("bad", ALICE).ok
    assert log == [
        ("drop", "bad", "failed", "stream"),
        ("drop", "late", "failed", "stream"),
        ("error", "StageError"),
        ("drops completed",),
    ]
    snapshot = stream.metrics()
    assert (snapshot.received, snapshot.emitted, snapshot.dropped) == (1, 0, 2)
