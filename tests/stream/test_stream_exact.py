"""Issue 12: `Stream` stated exactly: argument checks, timestamps, asend's own worker, the
ledger when the pipeline ends or fails, close callbacks and what the stream logs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.stream import StageError, Stream

from ._helpers import bounded

ALICE = pfrx.Context("alice", "s1")


class _SubContext(pfrx.Context):
    """A Context subclass is a Context: every send path accepts it."""


def _record(stream: Stream) -> list[Any]:
    """Results, drops and ends of ``stream``, in the order they happen, as plain tuples."""
    log: list[Any] = []

    def event(value: Any) -> Any:
        return value.event if isinstance(value, pfrx.Envelope) else value

    stream.results.subscribe(
        lambda v: log.append(("result", event(v))),
        lambda e: log.append(("error", e)),
        lambda: log.append(("completed",)),
    )
    stream.dropped.subscribe(
        lambda d: log.append(("drop", event(d.item), d.reason, d.operator, d.timestamp)),
        lambda e: log.append(("drops error", e)),
        lambda: log.append(("drops completed",)),
    )
    return log


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """pfrx's log lines at ERROR and above, as ``LEVEL message``."""
    caught: list[str] = []
    handler = logger.add(
        lambda m: caught.append(f"{m.record['level'].name} {m.record['message']}"), level="ERROR"
    )
    logger.enable("pfrx")
    try:
        yield caught
    finally:
        logger.disable("pfrx")
        logger.remove(handler)


# -- argument checks --------------------------------------------------------------------------


def test_every_send_path_names_the_type_of_a_bad_context() -> None:
    message = "context must be a pfrx.Context, not str"
    with Stream() as stream:
        with pytest.raises(TypeError) as caught:
            stream.send(1, "alice")  # type: ignore[arg-type]
        assert str(caught.value) == message
        with pytest.raises(TypeError) as caught:
            stream.send_many([1], "alice")  # type: ignore[arg-type]
        assert str(caught.value) == message
        with pytest.raises(TypeError) as caught:
            asyncio.run(stream.asend(1, "alice"))  # type: ignore[arg-type]
        assert str(caught.value) == message
        assert stream.metrics().received == 0


def test_send_envelope_names_the_type_of_a_non_envelope() -> None:
    with Stream() as stream, pytest.raises(TypeError) as caught:
        stream.send_envelope(("x", ALICE))  # type: ignore[arg-type]
    assert str(caught.value) == "expected a pfrx.Envelope, not tuple"


def test_every_send_path_accepts_a_context_subclass() -> None:
    ctx = _SubContext("bob")
    scheduler = TestScheduler()
    stream = Stream(scheduler=scheduler)
    seen: list[pfrx.Envelope] = []
    stream.results.subscribe(seen.append)
    assert stream.send(1, ctx).ok
    assert stream.send_many([2, 3], ctx) == [pfrx.SendResult(True)] * 2
    assert asyncio.run(stream.asend(4, ctx)).ok
    assert [(e.event, e.context) for e in seen] == [(1, ctx), (2, ctx), (3, ctx), (4, ctx)]
    stream.close()


# -- envelopes and timestamps -------------------------------------------------------------------


def test_every_send_path_stamps_the_scheduler_clock() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(12.5)
    stream = Stream(scheduler=scheduler)
    seen: list[pfrx.Envelope] = []
    stream.results.subscribe(seen.append)
    stream.send("a", ALICE)
    stream.send_many(["b", "c"], ALICE)
    asyncio.run(stream.asend("d", ALICE))
    assert seen == [pfrx.Envelope(x, ALICE, 12.5) for x in "abcd"]
    stream.close()


# -- asend's own worker -------------------------------------------------------------------------


def test_asend_hands_over_on_one_worker_thread_of_the_stream() -> None:
    threads: list[str] = []
    stream = Stream(
        ops.do_action(lambda env: threads.append(threading.current_thread().name)), name="q"
    )

    async def main() -> list[pfrx.SendResult]:
        return [await stream.asend(i, ALICE) for i in range(3)]

    assert asyncio.run(main()) == [pfrx.SendResult(True)] * 3
    assert threads == ["pfrx-q_0"] * 3
    stream.close()


def test_concurrent_asends_enter_one_at_a_time_in_order() -> None:
    # The first send waits inside the pipeline; with one worker, the second cannot even be
    # queued before the first is let go.
    gate = threading.Event()
    inside = threading.Event()
    order: list[str] = []

    def hold(env: pfrx.Envelope) -> None:
        if env.event == "first":
            inside.set()
            assert gate.wait(10)

    stream = Stream(ops.do_action(hold), name="one")
    stream.results.subscribe(lambda env: order.append(env.event))

    async def main() -> None:
        first = asyncio.ensure_future(stream.asend("first", ALICE))
        assert await asyncio.to_thread(inside.wait, 10)
        second = asyncio.ensure_future(stream.asend("second", ALICE))
        done, _ = await asyncio.wait({second}, timeout=0.2)
        order.append(f"second done before release: {bool(done)}")
        gate.set()
        assert (await first).ok and (await second).ok

    asyncio.run(main())
    assert order == ["second done before release: False", "first", "second"]
    stream.close()


def test_asend_on_a_stream_that_ended_while_it_was_submitting_gives_the_stream_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = Stream(name="s")
    assert asyncio.run(stream.asend(1, ALICE)).ok  # the stream's worker exists now
    real = asyncio.get_running_loop

    def loop_after_the_stream_failed() -> asyncio.AbstractEventLoop:
        stream.fail(RuntimeError("gone"))  # shuts the worker down
        return real()

    monkeypatch.setattr(asyncio, "get_running_loop", loop_after_the_stream_failed)
    assert asyncio.run(stream.asend(2, ALICE)) == pfrx.SendResult(False, "failed")


def test_asend_to_a_closed_stream_is_refused_without_a_worker() -> None:
    stream = Stream()
    stream.close()
    assert asyncio.run(stream.asend(1, ALICE)) == pfrx.SendResult(False, "closed")


# -- refused ------------------------------------------------------------------------------------


def test_refused_counts_the_item_as_dropped_by_connect_by_default() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(4.0)
    stream = Stream(scheduler=scheduler)
    log = _record(stream)
    item = pfrx.Envelope("x", ALICE, 1.0)
    stream.refused(item, "refused: closed")
    stream.refused(item, "refused: full", "bridge")
    assert log == [
        ("drop", "x", "refused: closed", "connect", 4.0),
        ("drop", "x", "refused: full", "bridge", 4.0),
    ]
    snap = stream.metrics()
    assert (snap.received, snap.dropped) == (2, 2)


# -- fail() from outside --------------------------------------------------------------------------


def test_fail_from_outside_reports_what_the_pipeline_held_before_the_error() -> None:
    # The buffered items are dropped as the pipeline is let go: each must reach ``dropped``
    # (the ledger of accepted items), not only the metrics, before ``results`` ends.
    scheduler = TestScheduler()
    scheduler.advance_to(5.0)
    stream = Stream(pf.backpressure(), name="s", scheduler=scheduler)
    log = _record(stream)
    assert [stream.send(x, ALICE).ok for x in "ab"] == [True, True]
    error = RuntimeError("upstream gone")
    stream.fail(error)
    assert log == [
        ("drop", "a", "disposed", "backpressure", 5.0),
        ("drop", "b", "disposed", "backpressure", 5.0),
        ("error", error),
        ("drops completed",),
    ]
    assert (stream.state, stream.error) == ("failed", error)
    assert stream.send("c", ALICE) == pfrx.SendResult(False, "failed")
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (2, 0, 2, 1)


# -- how the pipeline ends: the ledger, the reasons, the order ------------------------------------


def _raising(trigger: str, error: Exception) -> Any:
    """An operator (not fused, so a boundary follows it) whose on_next raises on ``trigger``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event == trigger:
                    raise error
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def test_a_pipeline_that_completes_early_refuses_sends_and_reports_what_it_held() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(5.0)
    stream = Stream(pf.backpressure(), ops.take(1), name="s", scheduler=scheduler)
    log = _record(stream)
    assert [stream.send(x, ALICE).ok for x in "abc"] == [True] * 3
    scheduler.advance_by(1.0)
    assert log == [
        ("result", "a"),
        ("drop", "b", "disposed", "backpressure", 5.0),
        ("drop", "c", "disposed", "backpressure", 5.0),
        ("completed",),
        ("drops completed",),
    ]
    assert stream.state == "done"
    assert stream.send("d", ALICE) == pfrx.SendResult(False, "closed")


def test_an_error_signalled_mid_batch_loses_the_item_then_what_is_buffered() -> None:
    def parse(env: pfrx.Envelope) -> pfrx.Envelope:
        if env.event == "bad":
            raise ValueError("unparsable")
        return env

    scheduler = TestScheduler()
    scheduler.advance_to(5.0)
    stream = Stream(pf.backpressure(), ops.map(parse), name="s", scheduler=scheduler)
    log = _record(stream)
    assert [stream.send(x, ALICE).ok for x in ["a", "bad", "c"]] == [True] * 3
    scheduler.advance_by(1.0)
    error = stream.error
    assert isinstance(error, ValueError)
    assert log == [
        ("result", "a"),
        ("drop", "bad", "failed", "stream", 5.0),
        ("drop", "c", "disposed", "backpressure", 5.0),
        ("error", error),
        ("drops completed",),
    ]
    assert stream.send("d", ALICE) == pfrx.SendResult(False, "failed")


def test_an_operator_raising_on_a_drain_thread_fails_the_stream_naming_it() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(5.0)
    cause = KeyError("broken")
    stream = Stream(pf.backpressure(), _raising("bad", cause), name="drained", scheduler=scheduler)
    log = _record(stream)
    assert [stream.send(x, ALICE).ok for x in ["a", "bad", "c"]] == [True] * 3
    scheduler.advance_by(1.0)
    error = stream.error
    assert isinstance(error, StageError)
    assert (error.stage, error.error) == ("drained", cause)
    assert log == [
        ("result", "a"),
        ("drop", "bad", "failed", "stream", 5.0),
        ("drop", "c", "disposed", "backpressure", 5.0),
        ("error", error),
        ("drops completed",),
    ]


def test_a_stage_error_raised_on_a_drain_thread_keeps_its_stage() -> None:
    scheduler = TestScheduler()
    inner = StageError("inner", ValueError("v"))
    stream = Stream(pf.backpressure(), _raising("bad", inner), name="outer", scheduler=scheduler)
    stream.send("bad", ALICE)
    scheduler.advance_by(1.0)
    assert stream.error is inner


def test_an_operator_raising_on_the_sending_thread_fails_the_stream_naming_it() -> None:
    cause = KeyError("broken")
    stream = Stream(_raising("bad", cause), name="sync")
    log = _record(stream)
    assert stream.send("a", ALICE).ok
    assert stream.send("bad", ALICE) == pfrx.SendResult(False, "failed")
    error = stream.error
    assert isinstance(error, StageError)
    assert (error.stage, error.error) == ("sync", cause)
    assert log == [("result", "a"), ("error", error), ("drops completed",)]


def test_a_stage_error_raised_on_the_sending_thread_keeps_its_stage() -> None:
    inner = StageError("inner", ValueError("v"))
    stream = Stream(_raising("bad", inner), name="outer")
    stream.send("bad", ALICE)
    assert stream.error is inner


def test_an_error_swallowed_downstream_of_the_failing_boundary_still_ends_the_stream() -> None:
    # The boundary after the first operator catches the raise; the error it signals is
    # swallowed by catch() inside the next operator, so the later boundary never ends:
    # the stream finishes once what is upstream of the failure has let go.
    cause = KeyError("broken")

    def swallowing(source: Observable[Any]) -> Observable[Any]:
        return source.pipe(_raising("bad", cause), ops.catch(lambda e, src: Observable()))

    stream = Stream(ops.map(lambda env: env), swallowing, name="s")
    log = _record(stream)
    stream.send("bad", ALICE)
    error = stream.error
    assert isinstance(error, StageError) and error.error is cause
    assert stream.done
    assert [entry[0] for entry in log] == ["drop", "error", "drops completed"]


def test_an_item_reaching_a_boundary_after_the_failure_is_dropped_as_failed() -> None:
    from reactivex.subject import Subject

    scheduler = TestScheduler()
    side: Subject[Any] = Subject()
    cause = KeyError("broken")
    stream = Stream(ops.merge(side), _raising("bad", cause), name="s", scheduler=scheduler)
    scheduler.advance_to(3.0)  # merge subscribes its sources on the scheduler
    log = _record(stream)
    sent: list[pfrx.SendResult] = []

    def as_it_fails() -> None:  # while the first boundary still hands "bad" over
        sent.append(stream.send("again", ALICE))
        side.on_next("late")

    stream.when_closed(as_it_fails)
    assert stream.send("bad", ALICE).ok
    assert sent == [pfrx.SendResult(False, "failed")]
    assert log == [
        ("drop", "bad", "failed", "stream", 3.0),
        ("drop", "late", "failed", "stream", 3.0),
        ("error", stream.error),
        ("drops completed",),
    ]


# -- after the end --------------------------------------------------------------------------------


def test_fail_after_the_stream_is_done_changes_nothing() -> None:
    stream = Stream(name="s")
    log = _record(stream)
    stream.close()
    stream.fail(RuntimeError("too late"))
    assert (stream.state, stream.error) == ("done", None)
    assert stream.health() is not pfrx.Health.UNHEALTHY
    assert stream.join(0) is True
    assert log == [("completed",), ("drops completed",)]


def test_when_closed_runs_each_callback_once_and_at_once_after_closing() -> None:
    stream = Stream(name="s")
    calls: list[str] = []
    stream.when_closed(lambda: calls.append("before"))
    stream.close()
    assert calls == ["before"]
    stream.when_closed(lambda: calls.append("after"))
    assert calls == ["before", "after"]
    stream.close()
    assert calls == ["before", "after"]


# -- what the stream logs -------------------------------------------------------------------------


def test_a_failure_is_logged_once_with_the_stream_name_and_error(lines: list[str]) -> None:
    stream = Stream(name="orders")
    stream.fail(RuntimeError("upstream gone"))
    stream.fail(RuntimeError("again"))
    assert lines == ["ERROR stream orders failed: upstream gone"]
    assert stream.metrics().errors == 1


def test_a_close_callback_that_raises_is_logged_and_the_others_still_run(
    lines: list[str],
) -> None:
    stream = Stream(name="orders")
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("callback bug")

    stream.when_closed(broken)
    stream.when_closed(lambda: calls.append("second"))
    stream.close()
    assert calls == ["second"]
    assert lines == ["ERROR stream orders: a close callback failed"]


# -- waiting from inside ----------------------------------------------------------------------


def test_join_from_a_completion_subscriber_reports_without_waiting_on_itself() -> None:
    stream = Stream(name="s")
    seen: list[bool] = []
    stream.results.subscribe(on_completed=lambda: seen.append(stream.join(timeout=30)))
    bounded(stream.close, 5.0)
    assert seen == [False]  # not done yet while its own completion is being delivered
    assert stream.join(0) is True


def test_leaving_the_with_block_waits_for_the_drain_unless_an_exception_is_in_flight() -> None:
    gate = threading.Event()
    stream = Stream(pf.backpressure(), ops.do_action(lambda env: gate.wait(10)), name="slow")

    def leave_with_an_exception() -> None:
        with stream:
            assert stream.send("a", ALICE).ok
            raise KeyError("in flight")

    with pytest.raises(KeyError):
        bounded(leave_with_an_exception, 5.0)
    # nothing waited: the drain is still held at the gate
    assert stream.state == "closing"
    gate.set()
    assert stream.join(10) is True

    gate2 = threading.Event()
    timer = threading.Timer(0.2, gate2.set)
    timer.start()
    try:
        with Stream(pf.backpressure(), ops.do_action(lambda env: gate2.wait(10))) as waited:
            assert waited.send("a", ALICE).ok
        assert waited.state == "done"
    finally:
        timer.cancel()


def test_a_stream_that_ends_on_its_asend_worker_lets_the_worker_go() -> None:
    # take(1) completes the pipeline on the worker thread: the stream finishes there and
    # shuts its own executor down without waiting on itself.
    stream = Stream(ops.take(1), name="once")
    log = _record(stream)
    assert asyncio.run(stream.asend("a", ALICE)) == pfrx.SendResult(True)
    assert stream.join(10) is True
    assert log == [("result", "a"), ("completed",), ("drops completed",)]
    assert asyncio.run(stream.asend("b", ALICE)) == pfrx.SendResult(False, "closed")
