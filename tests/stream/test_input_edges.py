"""Issue 12: the stream's input at its edges, stated exactly through `Stream`: sends before the
pipeline has subscribed, a pipeline that completes without letting go of its input, which item
an error signalled on the sending thread blames, a sender interrupted by a ``BaseException``
(Ctrl-C) with sends queued behind it, two callers of `quiescent` at once, and when the results
of a ``send_many`` batch are published.

A thread "waits" when it calls ``threading``'s ``wait``, and "blocks on a lock" when it calls
a lock's ``acquire``: each such thread here runs under a profile hook that records those calls,
so a test knows where a thread is without sleeping."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx.stream import StageError, Stream

from ._helpers import bounded

pytestmark = pytest.mark.threads

ALICE = pfrx.Context("alice", "s1")
OK = pfrx.SendResult(True)


class Abort(BaseException):
    """What a Ctrl-C looks like to an operator: not an ``Exception``, so nothing catches it."""


def _event(value: Any) -> Any:
    if isinstance(value, pfrx.Envelope):
        return value.event
    if isinstance(value, pfrx.Watermark):
        return ("watermark", value.time)
    return value


def _record(stream: Stream) -> list[Any]:
    log: list[Any] = []
    stream.results.subscribe(
        lambda v: log.append(("result", _event(v))),
        lambda e: log.append(("error", e)),
        lambda: log.append(("completed",)),
    )
    stream.dropped.subscribe(lambda d: log.append(("drop", _event(d.item), d.reason, d.operator)))
    return log


def _drops(log: list[Any]) -> list[Any]:
    return [entry for entry in log if entry[0] == "drop"]


def _operator(
    act: Callable[[Any, Any], bool], *, clinging: bool = False
) -> Callable[[Observable[Any]], Observable[Any]]:
    """An operator calling ``act(value, observer)`` on each value, which forwards the value
    unless ``act`` returns True. A ``clinging`` one never lets go of its source."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if not act(value, observer):
                    observer.on_next(value)

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return Disposable() if clinging else subscription

        return Observable(subscribe)

    return operator


class Watched:
    """Runs ``action`` on its own thread, recording its ``wait`` calls (with their timeouts)
    and lock ``acquire`` calls."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self.waited = threading.Event()
        self.acquiring = threading.Event()
        self.timeouts: list[Any] = []
        self.returned = threading.Event()
        self.result: Any = None
        self._action = action
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_name == "wait" and code.co_filename == threading.__file__:
            self.timeouts.append(frame.f_locals.get("timeout"))
            self.waited.set()
        elif event == "c_call" and getattr(arg, "__name__", "") == "acquire":
            self.acquiring.set()

    def _run(self) -> None:
        sys.setprofile(self._profile)
        try:
            self.result = self._action()
        finally:
            sys.setprofile(None)
            self.returned.set()

    def join(self) -> None:
        self.thread.join(5.0)
        assert not self.thread.is_alive(), "still running after 5 s: a hang"


def _at_first_lock(action: Callable[[], Any], hook: Callable[[], None]) -> Any:
    """Run ``action`` on this thread; just before its first call of a lock's ``acquire``,
    run ``hook`` (once): a race provoked at a known point. A profile hook already set on
    this thread (`Watched`) goes on seeing every call."""
    armed = [True]
    outer = sys.getprofile()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if outer is not None:
            outer(frame, event, arg)
        if event == "c_call" and armed[0] and getattr(arg, "__name__", "") == "acquire":
            armed[0] = False
            hook()

    sys.setprofile(profile)
    try:
        return action()
    finally:
        sys.setprofile(outer)


# -- before the pipeline has subscribed to the input ----------------------------------------------


def _subscribing_at(time: float) -> Callable[[Observable[Any]], Observable[Any]]:
    """A pass-through that subscribes to its source only at virtual ``time``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            inner = SerialDisposable()

            def later(_scheduler: Any, _state: Any) -> None:
                inner.disposable = source.subscribe(observer, scheduler=scheduler)

            return CompositeDisposable(scheduler.schedule_absolute(time, later), inner)

        return Observable(subscribe)

    return operator


def _late_stream() -> tuple[Stream, TestScheduler, list[Any]]:
    scheduler = TestScheduler()
    # The pipeline subscribes to the stream's input only at virtual time 5.
    stream = Stream(_subscribing_at(5.0), name="late", scheduler=scheduler)
    return stream, scheduler, _record(stream)


def test_sends_before_the_pipeline_subscribes_are_refused_failed_and_later_ones_flow() -> None:
    stream, scheduler, log = _late_stream()
    refused = pfrx.SendResult(False, "failed")
    assert stream.send_many(["a", "b"], ALICE) == [refused, refused]
    assert stream.send_many(["c"], ALICE) == [refused]
    assert stream.send("d", ALICE) == refused
    assert stream.error is None
    scheduler.advance_to(5.0)
    assert stream.send_many(["e", "f"], ALICE) == [OK, OK]
    assert log == [("result", "e"), ("result", "f")]
    assert stream.metrics().received == 2


def test_a_watermark_before_the_pipeline_subscribes_is_forgotten() -> None:
    stream, scheduler, log = _late_stream()
    assert stream.send_watermark(1.0) == OK
    assert stream.error is None
    scheduler.advance_to(5.0)
    assert stream.send("a", ALICE) == OK
    assert log == [("result", "a")]
    assert stream.error is None


def test_a_send_queued_before_the_pipeline_subscribes_is_dropped_failed() -> None:
    stream, scheduler, log = _late_stream()
    # Sent while quiescent: queued, hence accepted; handed over after the action, when the
    # pipeline has not subscribed yet: lost, and the stream goes on.
    assert stream.quiescent(lambda: stream.send("q", ALICE)) == OK
    assert log == [("drop", "q", "failed", "stream")]
    assert stream.error is None
    m = stream.metrics()
    assert (m.received, m.dropped, m.errors) == (1, 1, 0)
    scheduler.advance_to(5.0)
    assert stream.send("a", ALICE) == OK
    assert log[-1] == ("result", "a")


# -- a pipeline that ends without letting go of the input ----------------------------------------


def test_what_is_queued_behind_the_end_is_dropped_closed_and_never_handed_over() -> None:
    seen: list[Any] = []
    sent: list[pfrx.SendResult] = []

    def end_on_end(value: Any, observer: Any) -> bool:
        seen.append(_event(value))
        if _event(value) == "end":
            sent.append(stream.send("after", ALICE))  # re-entrant: queued behind "end"
            sent.append(stream.send_watermark(1.0))
            observer.on_completed()
            return True
        return False

    stream = Stream(_operator(end_on_end, clinging=True), name="s")
    log = _record(stream)
    assert stream.send("end", ALICE) == OK
    assert sent == [OK, OK]
    assert seen == ["end"]  # neither "after" nor the watermark reached the ended pipeline
    assert log == [("drop", "after", "closed", "stream"), ("completed",)]
    assert stream.send("later", ALICE) == pfrx.SendResult(False, "closed")


# -- what an error signalled on the sending thread blames ------------------------------------------


class Signalling:
    """An operator that, on each event, runs what ``plan`` says: ``send:X`` (a re-entrant
    send), ``watermark`` (a re-entrant watermark), ``timeout`` (raises BackpressureTimeout)
    or ``error`` (signals an error downstream); a watermark always signals an error."""

    def __init__(self, plan: dict[str, list[str]]) -> None:
        self.plan = plan
        self.stream: Stream | None = None
        self.error = RuntimeError("signalled")

    def act(self, value: Any, observer: Any) -> bool:
        assert self.stream is not None
        if isinstance(value, pfrx.Watermark):
            observer.on_error(self.error)
            return True
        for step in self.plan.get(value.event, []):
            if step.startswith("send:"):
                assert self.stream.send(step[5:], ALICE) == OK
            elif step == "watermark":
                assert self.stream.send_watermark(1.0) == OK
            elif step == "timeout":
                raise pfrx.BackpressureTimeout(0.5, value)
            elif step == "error":
                observer.on_error(self.error)
                return True
        return False

    def start(self) -> tuple[Stream, list[Any]]:
        self.stream = Stream(_operator(self.act), name="s")
        return self.stream, _record(self.stream)


def test_an_error_signalled_on_a_queued_send_drops_that_send() -> None:
    op = Signalling({"a": ["send:b"], "b": ["error"]})
    stream, log = op.start()
    assert stream.send("a", ALICE) == OK
    assert log == [("result", "a"), ("drop", "b", "failed", "stream"), ("error", op.error)]


def test_an_error_signalled_on_a_watermark_after_a_queued_send_blames_no_send() -> None:
    op = Signalling({"a": ["send:b", "watermark"]})
    stream, log = op.start()
    assert stream.send("a", ALICE) == OK
    assert log == [("result", "a"), ("result", "b"), ("error", op.error)]


def test_a_queued_send_timing_out_is_dropped_timeout_by_the_stream_and_blamed_once() -> None:
    op = Signalling({"a": ["send:t", "watermark"], "t": ["timeout"]})
    stream, log = op.start()
    assert stream.send("a", ALICE) == OK
    assert log == [("result", "a"), ("drop", "t", "timeout", "stream"), ("error", op.error)]


def test_a_batch_item_timing_out_is_refused_and_not_blamed_for_a_later_error() -> None:
    op = Signalling({"t": ["watermark", "timeout"]})
    stream, log = op.start()
    assert stream.send_many(["a", "t"], ALICE) == [OK, pfrx.SendResult(False, "timeout")]
    assert log == [("result", "a"), ("error", op.error)]


def test_an_operator_raising_on_a_watermark_fails_the_stream_with_that_error() -> None:
    boom = ValueError("bad watermark")

    def raise_on_watermark(value: Any, observer: Any) -> bool:
        if isinstance(value, pfrx.Watermark):
            raise boom
        return False

    stream = Stream(_operator(raise_on_watermark), name="s")
    log = _record(stream)
    assert stream.send("a", ALICE) == OK
    assert stream.send_watermark(1.0) == OK
    error = stream.error
    assert isinstance(error, StageError)
    assert (error.stage, error.error) == ("s", boom)
    assert log == [("result", "a"), ("error", error)]
    assert stream.send("b", ALICE) == pfrx.SendResult(False, "failed")


# -- a sender interrupted by a BaseException -----------------------------------------------------


def test_a_batch_after_an_interrupted_send_comes_after_what_that_send_queued() -> None:
    def interrupt(value: Any, observer: Any) -> bool:
        if value.event == "a":
            assert stream.send("b", ALICE) == OK  # queued behind "a"
            raise Abort
        return False

    stream = Stream(_operator(interrupt), name="s")
    log = _record(stream)
    with pytest.raises(Abort):
        stream.send("a", ALICE)
    assert log == []  # "b" waits: nobody is handing items over
    assert stream.send_many(["c", "d"], ALICE) == [OK, OK]
    assert log == [("result", "b"), ("result", "c"), ("result", "d")]


def test_a_producer_waiting_for_room_hands_the_queue_over_when_the_sender_is_interrupted() -> None:
    inside, gate = threading.Event(), threading.Event()
    re_entrant: list[pfrx.SendResult] = []

    def act(value: Any, observer: Any) -> bool:
        if value.event == "a":
            inside.set()
            assert gate.wait(10)
            raise Abort  # the sender lets go of its role without handing the queue over
        if value.event == "b":
            # On the thread that now hands the queue over: a send queued, then one that
            # finds the queue full (refused, never waiting on itself).
            re_entrant.append(stream.send("d", ALICE))
            re_entrant.append(stream.send("e", ALICE))
        return False

    stream = Stream(_operator(act), name="s", queue_size=1)
    log = _record(stream)
    interrupted: list[BaseException] = []

    def send_a() -> None:
        try:
            stream.send("a", ALICE)
        except Abort as abort:
            interrupted.append(abort)

    sender = threading.Thread(target=send_a, daemon=True)
    sender.start()
    assert inside.wait(10)
    assert stream.send("b", ALICE) == OK  # queued: the queue is full now
    producer = Watched(lambda: stream.send("c", ALICE))
    bounded(lambda: producer.waited.wait(5.0), 6.0)
    assert not producer.returned.is_set()
    gate.set()
    sender.join(5.0)
    assert len(interrupted) == 1
    producer.join()
    assert producer.result == OK
    assert re_entrant == [OK, pfrx.SendResult(False, "full")]
    assert log == [("result", "b"), ("result", "d"), ("result", "c")]
    # it looked again at least every 0.1 s: nobody notified it, the sender was interrupted
    assert producer.timeouts and all(t == 0.1 for t in producer.timeouts)


# -- quiescent ----------------------------------------------------------------------------------


def test_two_quiescent_callers_each_get_a_quiet_point_and_sends_flow_after_both() -> None:
    stream = Stream(name="s")
    log = _record(stream)
    second: list[Watched] = []

    def first_action() -> pfrx.SendResult:
        sent = stream.send("x", ALICE)  # queued until nobody is quiescent any more
        other = Watched(lambda: stream.quiescent(lambda: list(log)))
        second.append(other)
        assert other.acquiring.wait(5.0)  # it waits for this quiet point to end
        return sent

    assert bounded(lambda: stream.quiescent(first_action), 5.0) == OK
    second[0].join()
    assert second[0].result == []  # "x" still waited while the second action ran
    assert log == [("result", "x")]
    assert stream.send("y", ALICE) == OK
    assert log == [("result", "x"), ("result", "y")]


# -- when a batch's results are published --------------------------------------------------------


def _handed_at_results(
    plan: Callable[[Stream, str], None],
) -> tuple[Stream, dict[str, int], list[str]]:
    """A stream counting what its pipeline was handed; for each result, how many items the
    pipeline had been handed when the result was published."""
    handed: list[str] = []

    def count(env: pfrx.Envelope) -> None:
        handed.append(env.event)
        plan(stream, env.event)

    stream = Stream(ops.do_action(count), name="s")
    at: dict[str, int] = {}
    stream.results.subscribe(lambda env: at.__setitem__(env.event, len(handed)))
    return stream, at, handed


def test_every_batch_sent_directly_publishes_its_results_once_it_is_in() -> None:
    stream, at, _ = _handed_at_results(lambda s, e: None)
    assert stream.send_many(["a", "b"], ALICE) == [OK, OK]
    assert stream.send_many(["c", "d"], ALICE) == [OK, OK]
    assert stream.send("e", ALICE) == OK
    assert at == {"a": 2, "b": 2, "c": 4, "d": 4, "e": 5}


def test_a_queued_batch_publishes_its_results_once_it_is_in_and_so_do_later_ones() -> None:
    def plan(stream: Stream, event: str) -> None:
        if event == "a":
            assert stream.send_many(["b", "c"], ALICE) == [OK, OK]  # queued as one entry

    stream, at, handed = _handed_at_results(plan)
    assert stream.send("a", ALICE) == OK
    assert stream.send_many(["d", "e"], ALICE) == [OK, OK]
    assert handed == ["a", "b", "c", "d", "e"]
    assert at == {"a": 1, "b": 3, "c": 3, "d": 5, "e": 5}


def test_a_producer_refused_by_a_close_during_its_own_hand_over_leaves_the_input_idle() -> None:
    inside, gate = threading.Event(), threading.Event()

    def act(value: Any, observer: Any) -> bool:
        if value.event == "a":
            inside.set()
            assert gate.wait(10)
            raise Abort
        if value.event == "b":
            stream.close()  # from inside, on the producer's thread handing the queue over
        return False

    stream = Stream(_operator(act), name="s", queue_size=1)
    log = _record(stream)

    def send_a() -> None:
        with pytest.raises(Abort):
            stream.send("a", ALICE)

    sender = threading.Thread(target=send_a, daemon=True)
    sender.start()
    assert inside.wait(10)
    assert stream.send("b", ALICE) == OK
    producer = Watched(lambda: stream.send("c", ALICE))
    bounded(lambda: producer.waited.wait(5.0), 6.0)
    gate.set()
    sender.join(5.0)
    producer.join()
    assert producer.result == pfrx.SendResult(False, "closed")
    stream.close()  # idempotent; the input is idle, so the stream finishes
    assert stream.done
    assert log == [("result", "b"), ("completed",)]


def test_a_send_racing_close_is_refused_closed() -> None:
    inside, gate = threading.Event(), threading.Event()

    def hold(value: Any, observer: Any) -> bool:
        if value.event == "a":
            inside.set()
            assert gate.wait(10)
        return False

    stream = Stream(_operator(hold), name="s")
    log = _record(stream)
    sender = threading.Thread(target=stream.send, args=("a", ALICE), daemon=True)
    sender.start()
    assert inside.wait(10)
    closed: list[bool] = []

    def close() -> None:
        # The producer is about to try for the emitter role (held by the sender): the stream
        # is closed right then, after the producer found it open.
        closed.append(True)
        stream.close()

    sent = bounded(lambda: _at_first_lock(lambda: stream.send("b", ALICE), close), 5.0)
    assert sent == pfrx.SendResult(False, "closed")
    assert closed == [True]
    gate.set()
    sender.join(5.0)
    assert stream.done
    assert log == [("result", "a"), ("completed",)]


def test_a_producer_finding_room_after_its_check_does_not_wait() -> None:
    at_a, gate_a, at_b, gate_b = (threading.Event() for _ in range(4))

    def act(value: Any, observer: Any) -> bool:
        if value.event == "a":
            at_a.set()
            assert gate_a.wait(10)
        elif value.event == "b":
            at_b.set()
            assert gate_b.wait(10)
        return False

    stream = Stream(_operator(act), name="s", queue_size=1)
    log = _record(stream)
    sender = threading.Thread(target=stream.send, args=("a", ALICE), daemon=True)
    sender.start()
    assert at_a.wait(10)
    assert stream.send("b", ALICE) == OK  # the queue is full

    def make_room() -> None:
        # The producer found the queue full and is about to try for the role: the sender
        # takes the queue now (and holds the role, handing "b" over).
        gate_a.set()
        assert at_b.wait(10)

    producer = Watched(lambda: _at_first_lock(lambda: stream.send("c", ALICE), make_room))
    try:
        producer.join()
    finally:
        gate_b.set()
    sender.join(5.0)
    assert producer.result == OK
    assert not producer.waited.is_set()  # room was there when it looked again: no wait
    assert log == [("result", "a"), ("result", "b"), ("result", "c")]


def test_a_batch_racing_close_then_fail_is_refused_failed() -> None:
    def swallow_end(source: Observable[Any]) -> Observable[Any]:
        # A pipeline that does not complete when its input does.
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            return source.subscribe(
                observer.on_next, observer.on_error, lambda: None, scheduler=scheduler
            )

        return Observable(subscribe)

    stream = Stream(swallow_end, name="s")
    log = _record(stream)
    boom = RuntimeError("upstream failed")

    def close_then_fail() -> None:
        # After the batch found the stream open, before it takes the emitter role.
        stream.close()
        stream.fail(boom)

    sent = _at_first_lock(lambda: stream.send_many(["a", "b"], ALICE), close_then_fail)
    assert sent == [pfrx.SendResult(False, "failed")] * 2
    assert stream.error is boom
    assert log == [("error", boom)]
