"""Issue 12: the stream's serialized input stated exactly: refusals and their reasons, the
order of re-entrant sends, counting, the queue bound, waiting producers and quiescence."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops

import pfrx
from pfrx.stream import StageError, Stream, _input

from ._helpers import bounded

ALICE = pfrx.Context("alice", "s1")


def _on(trigger: str, action: Callable[[], Any]) -> Any:
    """An operator that runs ``action`` (inside the stream) when ``trigger`` passes."""

    def act(env: pfrx.Envelope) -> None:
        if env.event == trigger:
            action()

    return ops.do_action(act)


def _raising(trigger: str, error: Exception, before: Callable[[], Any] | None = None) -> Any:
    """An operator whose on_next raises on ``trigger`` (so the exception reaches the input),
    after running ``before``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event == trigger:
                    if before is not None:
                        before()
                    raise error
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def _record(stream: Stream) -> list[Any]:
    log: list[Any] = []

    def event(value: Any) -> Any:
        return value.event if isinstance(value, pfrx.Envelope) else value

    stream.results.subscribe(
        lambda v: log.append(("result", event(v))),
        lambda e: log.append(("error", e)),
        lambda: log.append(("completed",)),
    )
    stream.dropped.subscribe(lambda d: log.append(("drop", event(d.item), d.reason, d.operator)))
    return log


# -- refusal() ------------------------------------------------------------------------------------


def test_a_refusal_is_a_shared_not_ok_result_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_input, "_REFUSALS", {})
    closed = _input.refusal("closed")
    assert closed == pfrx.SendResult(False, "closed")
    assert closed.ok is False
    assert _input.refusal("closed") is closed


def test_refusals_are_shared_for_64_reasons_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_input, "_REFUSALS", {})
    for n in range(100):
        assert _input.refusal(f"r{n}") == pfrx.SendResult(False, f"r{n}")
    assert _input.refusal("r63") is _input.refusal("r63")
    assert _input.refusal("r64") is not _input.refusal("r64")
    assert _input.refusal("r64") == pfrx.SendResult(False, "r64")


# -- re-entrant sends: order, counting, the bound -------------------------------------------------


def test_a_re_entrant_send_goes_after_the_item_in_progress_within_a_batch() -> None:
    holder: list[Stream] = []
    stream = Stream(_on("a", lambda: holder[0].send("x", ALICE)), name="s")
    holder.append(stream)
    log = _record(stream)
    assert stream.send_many(["a", "b"], ALICE) == [pfrx.SendResult(True)] * 2
    assert log == [("result", "a"), ("result", "x"), ("result", "b")]
    assert stream.metrics().received == 3


def test_a_re_entrant_batch_is_queued_in_order_without_waiting_on_the_sender() -> None:
    holder: list[Stream] = []
    sent: list[list[pfrx.SendResult]] = []
    stream = Stream(_on("a", lambda: sent.append(holder[0].send_many(["b", "c"], ALICE))))
    holder.append(stream)
    log = _record(stream)
    assert bounded(lambda: stream.send("a", ALICE), 5.0).ok
    assert sent == [[pfrx.SendResult(True)] * 2]
    assert log == [("result", "a"), ("result", "b"), ("result", "c")]


def test_a_refusal_counted_mid_batch_keeps_the_queue_in_order() -> None:
    holder: list[Stream] = []

    def inside() -> None:
        holder[0].refused("r", "refused: test")
        holder[0].send("y", ALICE)

    stream = Stream(_on("a", inside), name="s")
    holder.append(stream)
    log = _record(stream)
    stream.send_many(["a", "b"], ALICE)
    # (a batch's results are published together once it is in: compare each kind apart)
    assert [entry for entry in log if entry[0] == "result"] == [
        ("result", "a"),
        ("result", "y"),
        ("result", "b"),
    ]
    assert [entry for entry in log if entry[0] == "drop"] == [
        ("drop", "r", "refused: test", "connect")
    ]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (4, 3, 1)


@pytest.mark.parametrize("batch", [False, True])
def test_a_re_entrant_send_finding_the_queue_full_is_refused_full(batch: bool) -> None:
    holder: list[Stream] = []
    sent: list[pfrx.SendResult] = []

    def inside() -> None:
        sent.extend(holder[0].send(x, ALICE) for x in "bcd")

    stream = Stream(_on("a", inside), queue_size=2, name="s")
    holder.append(stream)
    log = _record(stream)

    def send() -> Any:
        return stream.send_many(["a"], ALICE) if batch else stream.send("a", ALICE)

    bounded(send, 5.0)
    assert sent == [pfrx.SendResult(True), pfrx.SendResult(True), pfrx.SendResult(False, "full")]
    assert log == [("result", "a"), ("result", "b"), ("result", "c")]


def test_closing_mid_batch_refuses_the_rest_of_the_batch_closed() -> None:
    holder: list[Stream] = []
    stream = Stream(_on("a", lambda: holder[0].close()), name="s")
    holder.append(stream)
    log = _record(stream)
    assert stream.send_many(["a", "b", "c"], ALICE) == [
        pfrx.SendResult(True),
        pfrx.SendResult(False, "closed"),
        pfrx.SendResult(False, "closed"),
    ]
    assert log == [("result", "a"), ("completed",)]
    assert stream.metrics().received == 1
    assert stream.closed and stream.state == "done"


@pytest.mark.parametrize("batch", [False, True])
def test_an_operator_raising_on_a_send_fails_the_stream_and_refuses_the_rest(batch: bool) -> None:
    cause = KeyError("broken")
    stream = Stream(_raising("bad", cause), name="s")
    log = _record(stream)
    if batch:
        results = stream.send_many(["ok", "bad", "x"], ALICE)
    else:
        results = [stream.send(x, ALICE) for x in ["ok", "bad", "x"]]
    assert results == [
        pfrx.SendResult(True),
        pfrx.SendResult(False, "failed"),
        pfrx.SendResult(False, "failed"),
    ]
    error = stream.error
    assert isinstance(error, StageError) and error.error is cause
    assert log == [("result", "ok"), ("error", error)]
    assert stream.metrics().received == 1
    assert stream.closed


def test_closed_then_failed_loses_what_is_queued_as_failed() -> None:
    holder: list[Stream] = []
    cause = KeyError("broken")

    def inside() -> None:
        holder[0].send("b", ALICE)
        holder[0].send("c", ALICE)
        holder[0].close()

    stream = Stream(_raising("a", cause, inside), name="s")
    holder.append(stream)
    log = _record(stream)
    assert stream.send("a", ALICE) == pfrx.SendResult(False, "failed")
    assert log == [
        ("drop", "b", "failed", "stream"),
        ("drop", "c", "failed", "stream"),
        ("error", stream.error),
    ]
    snap = stream.metrics()
    assert (snap.received, snap.dropped) == (2, 2)


def test_a_queued_item_that_breaks_the_pipeline_is_dropped_as_failed() -> None:
    holder: list[Stream] = []
    cause = KeyError("broken")

    def operator(source: Observable[Any]) -> Observable[Any]:
        # first in the pipeline, so what it raises reaches the input itself
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event == "bad":
                    raise cause
                if value.event == "a":
                    holder[0].send("bad", ALICE)  # queued behind "a"
                observer.on_next(value)

            return source.subscribe(on_next, observer.on_error, observer.on_completed)

        return Observable(subscribe)

    stream = Stream(operator, name="s")
    holder.append(stream)
    log = _record(stream)
    assert stream.send("a", ALICE).ok
    error = stream.error
    assert isinstance(error, StageError) and error.error is cause
    assert log == [("result", "a"), ("drop", "bad", "failed", "stream"), ("error", error)]
    assert stream.metrics().received == 2


def test_an_operator_raising_at_completion_fails_the_stream_naming_it() -> None:
    cause = KeyError("at the end")

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_completed() -> None:
                raise cause

            return source.subscribe(observer.on_next, observer.on_error, on_completed)

        return Observable(subscribe)

    stream = Stream(operator, name="s")
    log = _record(stream)
    stream.send("a", ALICE)
    stream.close()
    error = stream.error
    assert isinstance(error, StageError) and (error.stage, error.error) == ("s", cause)
    assert log == [("result", "a"), ("error", error)]


@pytest.mark.parametrize("how", ["send", "send_many"])
def test_an_error_at_completion_blames_no_item_after_a_finished_send(how: str) -> None:
    cause = ValueError("no more")
    stream = Stream(lambda source: reactivex.concat(source, reactivex.throw(cause)), name="s")
    log = _record(stream)
    if how == "send":
        stream.send("a", ALICE)
    else:
        stream.send_many(["a"], ALICE)
    stream.close()
    assert log == [("result", "a"), ("error", cause)]


def test_an_error_signalled_during_a_batch_drops_the_item_being_handed_over() -> None:
    def parse(env: pfrx.Envelope) -> pfrx.Envelope:
        if env.event == "bad":
            raise ValueError("unparsable")
        return env

    stream = Stream(ops.map(parse), name="s")
    log = _record(stream)
    results = stream.send_many(["a", "bad", "c"], ALICE)
    assert results == [pfrx.SendResult(True)] * 2 + [pfrx.SendResult(False, "failed")]
    # (a batch's results are published together once it is in: compare each kind apart)
    assert [entry for entry in log if entry[0] != "drop"] == [
        ("result", "a"),
        ("error", stream.error),
    ]
    assert [entry for entry in log if entry[0] == "drop"] == [("drop", "bad", "failed", "stream")]


# -- the end of a send leaves the input idle ---------------------------------------------------


@pytest.mark.parametrize("end", ["close", "fail"])
@pytest.mark.parametrize("how", ["send", "send_many", "quiescent"])
def test_after_each_kind_of_call_the_stream_can_finish(how: str, end: str) -> None:
    stream = Stream(name="s")
    log = _record(stream)
    if how == "send":
        stream.send("a", ALICE)
    elif how == "send_many":
        stream.send_many(["a"], ALICE)
    else:
        assert stream.quiescent(lambda: 42) == 42
    error = RuntimeError("stop")
    stream.close() if end == "close" else stream.fail(error)
    assert stream.done
    assert log[-1] == (("completed",) if end == "close" else ("error", error))


# -- quiescence -------------------------------------------------------------------------------


def test_quiescent_from_inside_the_stream_is_refused_with_a_reason() -> None:
    holder: list[Stream] = []
    raised: list[str] = []

    def inside() -> None:
        try:
            holder[0].quiescent(lambda: None)
        except RuntimeError as error:
            raised.append(str(error))

    stream = Stream(_on("a", inside), name="s")
    holder.append(stream)
    bounded(lambda: stream.send("a", ALICE), 5.0)
    assert raised == ["quiescent() cannot be called from inside the stream"]


def test_sends_from_the_quiescent_action_wait_in_the_queue_then_flow() -> None:
    stream = Stream(name="s", queue_size=1)
    log = _record(stream)

    def action() -> list[pfrx.SendResult]:
        return [stream.send(x, ALICE) for x in "ab"]

    sent = bounded(lambda: stream.quiescent(action), 5.0)
    assert sent == [pfrx.SendResult(True), pfrx.SendResult(False, "full")]
    assert log == [("result", "a")]
    assert stream.send("c", ALICE).ok  # not paused any more: handed over at once
    assert log == [("result", "a"), ("result", "c")]
    assert stream.quiescent(lambda: len(log)) == 2
    assert stream.send("d", ALICE).ok
    assert log[-1] == ("result", "d")


# -- a producer waiting for room ------------------------------------------------------------------


def test_a_producer_waiting_for_room_is_refused_with_the_reason_the_stream_stopped() -> None:
    gate = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        inside.set()
        assert gate.wait(10)

    stream = Stream(_on("a", hold), name="s", queue_size=1)
    log = _record(stream)
    first = threading.Thread(target=stream.send, args=("a", ALICE), daemon=True)
    first.start()
    assert inside.wait(10)
    assert stream.send("b", ALICE).ok  # queued: the queue is full now
    waited: list[pfrx.SendResult] = []
    producer = threading.Thread(target=lambda: waited.append(stream.send("c", ALICE)), daemon=True)
    producer.start()
    # the input counts the producers waiting for room: wait until "c" is one of them
    bounded(lambda: _until(lambda: stream._input._waiters == 1), 5.0)
    stream.fail(RuntimeError("stop"))
    producer.join(5)
    assert waited == [pfrx.SendResult(False, "failed")]
    assert stream._input._waiters == 0
    gate.set()
    first.join(5)
    assert ("drop", "b", "failed", "stream") in log  # queued, accepted, then lost


def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        threading.Event().wait(0.001)


class _InterruptedOnce:
    """The input's emitter role, whose next blocking acquire is interrupted (Ctrl-C)."""

    def __init__(self, role: Any) -> None:
        self._role = role
        self.armed = True

    def acquire(self, blocking: bool = True) -> bool:
        if blocking and self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return bool(self._role.acquire(blocking))

    def release(self) -> None:
        self._role.release()

    def locked(self) -> bool:
        return bool(self._role.locked())


def test_quiescent_interrupted_while_waiting_leaves_the_input_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = Stream(name="s")
    log = _record(stream)
    monkeypatch.setattr(stream._input, "_role", _InterruptedOnce(stream._input._role))
    with pytest.raises(KeyboardInterrupt):
        stream.quiescent(lambda: None)
    assert stream.send("a", ALICE).ok  # not paused: handed over at once
    assert log == [("result", "a")]
    assert stream.quiescent(lambda: 7) == 7
    assert stream.send("b", ALICE).ok
    assert log == [("result", "a"), ("result", "b")]
