"""Issue 12: the stream's serialized input (`pfrx.stream._input`) stated exactly where the
mutation run found it loose: subscribing twice, the pipeline letting go, the emitter handing
over what was queued before it lets go of the role, the reasons of refusals and losses when
the input is closed and fails at once, the batch protocol with the stream (gather, order,
flush), a buffer breaking a batch, and what is "current" after a hand-over ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import BatchBroken, subscribe_with_batches
from pfrx.stream import Stream
from pfrx.stream._boundary import NOTHING
from pfrx.stream._input import SerializedInput

from ._helpers import Ledger, bounded

pytestmark = pytest.mark.threads

ALICE = pfrx.Context("alice", "s1")
OK = pfrx.SendResult(True)
FAILED = pfrx.SendResult(False, "failed")
CLOSED = pfrx.SendResult(False, "closed")
TIMEOUT = pfrx.SendResult(False, "timeout")
FULL = pfrx.SendResult(False, "full")


# -- a SerializedInput on its own, with every callback recorded -----------------------------------


class Calls:
    """What an input told its stream, in order."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.errors: list[BaseException | None] = []


def make_input(capacity: int = 8) -> tuple[SerializedInput, Calls]:
    calls = Calls()
    holder: list[SerializedInput] = []

    def lost(item: Any, reason: str, operator: str) -> None:  # exactly three arguments
        calls.log.append(("lost", item, reason, operator))

    def broke(error: Exception) -> None:
        # As the stream does: it fails, so the input stops with reason "failed".
        calls.errors.append(error)
        calls.log.append(("broke",))
        holder[0].stop("failed")

    inp = SerializedInput(
        capacity,
        accepted=lambda n: calls.log.append(("accepted", n)),
        lost=lost,
        broke=broke,
        inside=lambda thread: False,
        changed=lambda: calls.log.append(("changed",)),
    )
    holder.append(inp)
    return inp, calls


class Pipeline:
    """The pipeline's side of an input: what reaches it, and how it reacts to an item."""

    def __init__(
        self,
        inp: SerializedInput,
        react: Callable[[Any], None] | None = None,
        room: bool | None = None,
    ) -> None:
        self.seen: list[Any] = []
        self.asked: list[int] = []  # the sizes batch_room was asked about
        self.react = react
        self.room = room

        def on_next(item: Any) -> None:
            self.seen.append(item)
            if self.react is not None:
                self.react(item)

        def on_batch(items: list[Any]) -> None:
            self.seen.append(("batch", list(items)))
            if self.react is not None:
                self.react(items)

        def batch_room(size: int) -> bool:
            self.asked.append(size)
            return bool(self.room)

        self.subscription = subscribe_with_batches(
            inp,
            on_next,
            lambda error: self.seen.append(("error", error)),
            lambda: self.seen.append(("completed",)),
            None,
            on_batch if room is not None else None,
            batch_room if room is not None else None,
        )


def protocol(inp: SerializedInput, calls: Calls) -> None:
    """The stream's side of the batch protocol, recorded in ``calls.log``."""
    inp.gather = lambda start: calls.log.append(("gather", start))
    inp.flush = lambda: calls.log.append(("flush",))
    inp.order = lambda items, broken: calls.log.append(
        ("order", None if items is None else list(items), broken)
    )


# -- subscribed once ------------------------------------------------------------------------------


def test_the_input_is_subscribed_once_and_says_so() -> None:
    inp, _ = make_input()
    Pipeline(inp)
    errors: list[Exception] = []
    inp.subscribe(on_error=errors.append)
    assert [type(error) for error in errors] == [RuntimeError]
    assert str(errors[0]) == "a stream's input is subscribed once, by its pipeline"


# -- the pipeline letting go ----------------------------------------------------------------------


def test_a_pipeline_letting_go_stops_the_input_with_reason_failed() -> None:
    inp, calls = make_input()
    pipeline = Pipeline(inp)
    assert inp.offer("a") == OK
    pipeline.subscription.dispose()
    assert inp.refusing == "failed"
    assert inp.offer("b") == FAILED
    assert inp.offer_many(["c", "d"]) == [FAILED, FAILED]
    assert pipeline.seen == ["a"]
    assert calls.log == [("accepted", 1), ("changed",), ("changed",)]


def test_a_buffer_failing_on_overflow_closes_the_stream_at_once() -> None:
    # ``error`` lets go of its input as it overflows (its error comes later, from the drain):
    # from that moment the stream refuses sends, before anyone hears of the error.
    scheduler = TestScheduler()
    stream = Stream(pf.backpressure("error", buffer_size=1), scheduler=scheduler)
    ledger = Ledger(stream)
    assert stream.send(1, ALICE) == OK
    assert stream.send(2, ALICE) == OK  # accepted, then dropped: the buffer is full
    assert stream.closed
    assert stream.state == "closing"
    assert stream.send(3, ALICE) == FAILED
    assert stream.send_many([4, 5], ALICE) == [FAILED, FAILED]
    scheduler.advance_by(1.0)
    assert ledger.delivered == [1]
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        (2, "overflow", "backpressure")
    ]
    assert ledger.ends == ["error:BackpressureOverflow"]
    assert stream.state == "failed"
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 1, 1)


# -- the emitter's role: a deterministic look at the moments around it ----------------------------


class HookedLock:
    """The input's emitter-role lock with a hook, run once, right after the next acquire that
    succeeds or the next release: the moment another thread would act, made to stay."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.after_acquire: Callable[[], None] | None = None
        self.after_release: Callable[[], None] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        hook = self.after_acquire
        if got and hook is not None:
            self.after_acquire = None
            hook()
        return got

    def release(self) -> None:
        self._lock.release()
        hook = self.after_release
        if hook is not None:
            self.after_release = None
            hook()

    def locked(self) -> bool:
        return self._lock.locked()


def hook_role(stream: Stream) -> HookedLock:
    lock = HookedLock()
    stream._input._role = lock  # type: ignore[assignment]
    return lock


def test_the_emitter_hands_over_what_was_sent_during_its_item_before_it_lets_go() -> None:
    holder: list[Stream] = []
    lock_holder: list[HookedLock] = []
    delivered: list[tuple[Any, str]] = []
    answers: list[pfrx.SendResult] = []

    def another_producer() -> None:
        # Another thread sends the moment the emitter lets go of the role.
        thread = threading.Thread(
            target=lambda: answers.append(holder[0].send("y", ALICE)), name="other"
        )
        thread.start()
        thread.join(5.0)
        assert not thread.is_alive()

    def during(env: pfrx.Envelope) -> None:
        if env.event == "a":
            answers.append(holder[0].send("x", ALICE))  # queued behind "a"
            lock_holder[0].after_release = another_producer

    stream = Stream(ops.do_action(during))
    holder.append(stream)
    lock_holder.append(hook_role(stream))
    stream.results.subscribe(
        lambda env: delivered.append((env.event, threading.current_thread().name))
    )
    sender = threading.Thread(
        target=lambda: answers.append(stream.send("a", ALICE)), name="emitter"
    )
    sender.start()
    sender.join(10.0)
    assert not sender.is_alive()
    # "x" was queued while "a" was being handed over: the emitter hands it over too, before
    # it lets go, so the other producer finds nothing older waiting and hands "y" itself.
    assert delivered == [("a", "emitter"), ("x", "emitter"), ("y", "other")]
    assert answers == [OK, OK, OK]
    assert stream.metrics().received == 3


def test_a_send_taking_the_role_as_the_stream_closes_and_fails_is_refused_as_failed() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    ledger = Ledger(stream)
    lock = hook_role(stream)

    def close_and_fail() -> None:
        # Right after this send took the role: the stream is closed, then fails.
        stream.close()
        stream.fail(RuntimeError("upstream broke"))

    lock.after_acquire = close_and_fail
    assert stream.send("a", ALICE) == FAILED
    assert ledger.delivered == [] and ledger.dropped == []
    assert stream.metrics().received == 0
    assert stream.state == "failed"


def test_a_send_taking_the_role_as_the_stream_closes_and_lets_go_is_refused_as_closed() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    ledger = Ledger(stream)
    lock = hook_role(stream)

    def close_and_let_go() -> None:
        # Right after this send took the role: the stream is closed, and the pipeline
        # stops its observer (a dispose on another thread, before the input hears of it).
        stream.close()
        observer: Any = stream._input._observer
        observer._stop()

    lock.after_acquire = close_and_let_go
    assert stream.send("a", ALICE) == CLOSED
    assert ledger.delivered == [] and ledger.dropped == []
    assert stream.metrics().received == 0


# -- a drain started by someone who found the role free -------------------------------------------


def test_a_re_entrant_send_during_a_queued_watermark_finds_the_queue_full_not_itself() -> None:
    holder: list[Stream] = []
    answers: list[pfrx.SendResult] = []

    def on_mark(value: Any) -> None:
        if type(value) is pfrx.Watermark:
            answers.append(holder[0].send("x", ALICE))  # room for one behind the watermark
            answers.append(holder[0].send("y", ALICE))  # full: waiting would wait on itself

    stream = Stream(ops.do_action(on_mark), queue_size=1)
    holder.append(stream)
    ledger = Ledger(stream)
    assert bounded(lambda: stream.send_watermark(1.0), 5.0) == OK
    assert answers == [OK, FULL]
    assert ledger.delivered == ["x"]
    assert stream.metrics().received == 1


# -- closed, then failed: what is lost, and why ---------------------------------------------------


def _raising(trigger: Any, make_error: Callable[[], Exception], before: Callable[[], Any]) -> Any:
    """An operator whose on_next raises on ``trigger`` (after ``before``), so the exception
    reaches the input."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if isinstance(value, pfrx.Envelope) and value.event == trigger:
                    before()
                    raise make_error()
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def test_a_send_queued_before_a_close_and_a_failure_is_lost_as_failed_by_the_stream() -> None:
    holder: list[Stream] = []
    answers: list[pfrx.SendResult] = []

    def send_then_close() -> None:
        answers.append(holder[0].send("b", ALICE))  # queued behind "a"
        answers.append(holder[0].send_many(["c", "d"], ALICE)[0])  # queued too, as one batch
        holder[0].close()

    stream = Stream(_raising("a", lambda: RuntimeError("operator bug"), send_then_close))
    holder.append(stream)
    ledger = Ledger(stream)
    assert stream.send("a", ALICE) == FAILED
    assert answers == [OK, OK]
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        ("b", "failed", "stream"),
        ("c", "failed", "stream"),
        ("d", "failed", "stream"),
    ]
    assert ledger.delivered == []
    assert ledger.ends == ["error:StageError"]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (3, 0, 3)


def test_sends_queued_before_a_close_as_the_pipeline_lets_go_are_lost_as_closed() -> None:
    holder: list[Stream] = []
    answers: list[pfrx.SendResult] = []

    def during(event: Any, context: pfrx.Context) -> Any:
        if event == "a":
            answers.append(holder[0].send("b", ALICE))  # queued behind "a"
            answers.extend(holder[0].send_many(["c", "d"], ALICE))  # queued, one entry
            holder[0].close()
            # The pipeline lets go of its input (a dispose on another thread, just before
            # the input hears of it): what was queued can no longer be handed over.
            observer: Any = holder[0]._input._observer
            observer._stop()
        return event

    stream = Stream(pf.transform(during))
    holder.append(stream)
    ledger = Ledger(stream)
    assert stream.send("a", ALICE) == OK
    assert answers == [OK, OK, OK]
    assert ledger.delivered == ["a"]
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        ("b", "closed", "stream"),
        ("c", "closed", "stream"),
        ("d", "closed", "stream"),
    ]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (4, 1, 3)
    assert dict(snap.drops_by_reason) == {"closed": 3}


def test_a_queued_item_meeting_a_stopped_observer_is_reported_with_three_arguments() -> None:
    inp, calls = make_input()

    def react(item: Any) -> None:
        if item == "a":
            assert inp.offer("b") == OK
            observer: Any = inp._observer
            observer._stop()  # the pipeline let go, the input not told yet

    pipeline = Pipeline(inp, react)
    assert inp.offer("a") == OK
    assert pipeline.seen == ["a"]
    assert calls.log == [("accepted", 1), ("accepted", 1), ("lost", "b", "failed", "stream")]


def test_queued_items_that_cannot_be_handed_over_are_reported_with_reason_and_operator() -> None:
    inp, calls = make_input()

    def react(item: Any) -> None:
        if item == "a":
            assert inp.offer("b") == OK  # queued: it times out when handed over
            assert inp.offer("c") == OK  # queued: the pipeline breaks on it
            assert inp.offer("d") == OK  # queued: the input has stopped by then
        elif item == "b":
            raise pfrx.BackpressureTimeout(0.5, item)
        elif item == "c":
            raise RuntimeError("broken")

    pipeline = Pipeline(inp, react)
    assert inp.offer("a") == OK
    assert pipeline.seen == ["a", "b", "c", ("completed",)]  # stopped: the input completes
    assert calls.log == [
        ("accepted", 1),  # "a"
        ("accepted", 3),  # what was queued, counted in one go
        ("lost", "b", "timeout", "stream"),
        ("broke",),
        ("lost", "c", "failed", "stream"),
        ("lost", "d", "failed", "stream"),
        ("changed",),
        ("changed",),
    ]
    assert inp.take_current() is NOTHING


# -- nothing is "current" once a hand-over ended --------------------------------------------------


@pytest.mark.parametrize("error", [pfrx.BackpressureTimeout(0.5), RuntimeError("broken")])
def test_nothing_is_current_after_a_send_that_raised(error: Exception) -> None:
    inp, _ = make_input()

    def react(item: Any) -> None:
        raise error

    Pipeline(inp, react)
    expected = TIMEOUT if isinstance(error, pfrx.BackpressureTimeout) else FAILED
    assert inp.offer("a") == expected
    assert inp.take_current() is NOTHING


@pytest.mark.parametrize("error", [pfrx.BackpressureTimeout(0.5), RuntimeError("broken")])
def test_nothing_is_current_after_an_item_of_a_batch_raised(error: Exception) -> None:
    inp, _ = make_input()

    def react(item: Any) -> None:
        if item == "b":
            raise error

    Pipeline(inp, react)
    expected = TIMEOUT if isinstance(error, pfrx.BackpressureTimeout) else FAILED
    results = inp.offer_many(["a", "b"])
    assert results == [OK, expected]
    assert inp.take_current() is NOTHING


def test_a_completion_error_after_a_timed_out_send_drops_nothing_that_was_never_accepted() -> None:
    # The send timed out (refused, never accepted); then the pipeline fails as the input
    # completes, on the thread holding the role: nothing is being handed over, so nothing
    # is blamed for the failure.
    stream = Stream(
        _raising("t", lambda: pfrx.BackpressureTimeout(0.5, "t"), lambda: None), ops.last()
    )
    ledger = Ledger(stream)
    assert stream.send("t", ALICE) == TIMEOUT
    stream.close()
    assert ledger.dropped == []
    assert ledger.ends == ["error:SequenceContainsNoElementsError"]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (0, 0, 0)


# -- the batch protocol with the stream: gather, order, flush -------------------------------------


def test_each_batch_gathers_its_results_once_from_start_to_end() -> None:
    inp, calls = make_input()
    pipeline = Pipeline(inp, room=True)
    protocol(inp, calls)
    assert inp.offer_many(["a", "b"]) == [OK, OK]  # taken whole
    pipeline.room = False
    assert inp.offer_many(["c"]) == [OK]  # item by item
    pipeline.room = True
    assert inp.offer_many(["d", "e"]) == [OK, OK]  # whole again
    assert pipeline.seen == [("batch", ["a", "b"]), "c", ("batch", ["d", "e"])]
    assert calls.log == [
        ("gather", True),
        ("accepted", 2),
        ("order", ["a", "b"], False),
        ("order", None, False),
        ("gather", False),
        ("gather", True),
        ("accepted", 1),
        ("gather", False),
        ("gather", True),
        ("accepted", 2),
        ("order", ["d", "e"], False),
        ("order", None, False),
        ("gather", False),
    ]


def test_a_queued_batch_is_taken_whole_when_the_buffer_has_room() -> None:
    inp, calls = make_input()
    queued: list[list[pfrx.SendResult]] = []

    def react(item: Any) -> None:
        if item == "a":
            queued.append(inp.offer_many(["b", "c"]))  # queued as one entry behind "a"

    pipeline = Pipeline(inp, react, room=True)
    protocol(inp, calls)
    assert inp.offer("a") == OK
    assert queued == [[OK, OK]]
    assert pipeline.seen == ["a", ("batch", ["b", "c"])]
    assert pipeline.asked == [2]
    assert calls.log == [
        ("accepted", 1),
        ("accepted", 2),
        ("gather", True),
        ("order", ["b", "c"], False),
        ("order", None, False),
        ("gather", False),
    ]


def test_a_queued_batch_without_room_is_handed_over_item_by_item_gathered() -> None:
    inp, calls = make_input()

    def react(item: Any) -> None:
        if item == "a":
            inp.offer_many(["b", "c"])

    pipeline = Pipeline(inp, react, room=False)
    protocol(inp, calls)
    assert inp.offer("a") == OK
    assert pipeline.seen == ["a", "b", "c"]
    assert calls.log == [("accepted", 1), ("accepted", 2), ("gather", True), ("gather", False)]


def test_a_buffer_breaking_a_batch_fails_the_stream_with_what_broke_it() -> None:
    inp, calls = make_input()
    cause = RuntimeError("buffer bug")

    def react(items: Any) -> None:
        if isinstance(items, list):
            raise BatchBroken("buffer bug") from cause

    Pipeline(inp, react, room=True)
    protocol(inp, calls)
    assert inp.offer_many(["a", "b"]) == [OK, OK]  # accepted: the buffer reported each
    assert calls.errors == [cause]
    assert ("order", None, False) in calls.log  # not broken: nothing left to report lost


def test_a_batch_broken_without_a_cause_fails_the_stream_with_itself() -> None:
    inp, calls = make_input()
    broken = BatchBroken("no cause")

    def react(items: Any) -> None:
        if isinstance(items, list):
            raise broken

    Pipeline(inp, react, room=True)
    protocol(inp, calls)
    assert inp.offer_many(["a"]) == [OK]
    assert calls.errors == [broken]


def test_an_idle_input_completes_without_asking_the_stream_to_flush() -> None:
    inp, calls = make_input()
    pipeline = Pipeline(inp, room=True)
    protocol(inp, calls)
    inp.close()
    assert pipeline.seen == [("completed",)]
    assert ("flush",) not in calls.log
    assert inp.refusing == "closed"


def test_a_batch_ending_the_input_flushes_what_it_gathered_before_it_completes() -> None:
    inp, calls = make_input()

    def react(item: Any) -> None:
        if item == "a":
            assert inp.offer("x") == OK  # queued behind "a"
            inp.close()  # from inside: the input ends after "x", the batch's rest refused

    pipeline = Pipeline(inp, react, room=False)
    pipeline.seen = calls.log  # one log for both sides
    protocol(inp, calls)
    assert inp.offer_many(["a", "b"]) == [OK, CLOSED]
    assert calls.log == [
        ("gather", True),
        "a",
        ("accepted", 1),
        ("accepted", 1),
        "x",
        ("flush",),  # what the batch gave buffers goes in before the end
        ("completed",),
        ("changed",),
        ("gather", False),
        ("changed",),
    ]


def test_a_close_from_inside_a_batch_completes_the_input_once_the_batch_ended() -> None:
    inp, calls = make_input()

    def react(item: Any) -> None:
        if item == "a":
            inp.close()

    pipeline = Pipeline(inp, react, room=False)
    pipeline.seen = calls.log
    protocol(inp, calls)
    assert inp.offer_many(["a", "b"]) == [OK, CLOSED]
    assert calls.log == [
        ("gather", True),
        "a",
        ("accepted", 1),
        ("gather", False),  # the batch's end hands on what it gathered
        ("completed",),
        ("changed",),
        ("changed",),
    ]


def test_a_pipeline_letting_go_mid_batch_is_not_flushed_into() -> None:
    inp, calls = make_input()
    holder: list[Pipeline] = []

    def react(item: Any) -> None:
        if item == "a":
            assert inp.offer("x") == OK  # queued behind "a"
            holder[0].subscription.dispose()  # the pipeline lets go of its input

    pipeline = Pipeline(inp, react, room=False)
    holder.append(pipeline)
    protocol(inp, calls)
    assert inp.offer_many(["a", "b"]) == [OK, FAILED]
    assert pipeline.seen == ["a"]
    assert calls.log == [
        ("gather", True),
        ("changed",),
        ("accepted", 1),
        ("accepted", 1),
        ("lost", "x", "failed", "stream"),
        ("gather", False),
        ("changed",),
    ]


# -- a fresh input, and an input wired only in part -----------------------------------------------


def test_a_fresh_input_holds_nothing_current() -> None:
    inp, _ = make_input()
    assert inp.take_current() is NOTHING
    assert inp.idle


def test_a_fresh_stream_failing_as_it_completes_drops_nothing() -> None:
    # Nothing was ever sent: the pipeline's error at completion blames no item.
    stream = Stream(ops.last())
    ledger = Ledger(stream)
    stream.close()
    assert ledger.dropped == []
    assert ledger.ends == ["error:SequenceContainsNoElementsError"]
    assert stream.metrics().dropped == 0


def test_an_input_without_the_batch_protocol_hands_a_batch_over_item_by_item() -> None:
    # No gather, flush nor order (no stream behind it): a buffer's room is not enough to
    # take a batch whole, since nobody would order its drops.
    inp, calls = make_input()
    pipeline = Pipeline(inp, room=True)
    assert inp.offer_many(["a", "b"]) == [OK, OK]
    assert pipeline.seen == ["a", "b"]
    assert calls.log == [("accepted", 2)]


def test_an_input_gathering_without_a_flush_still_completes_mid_batch() -> None:
    inp, calls = make_input()
    inp.gather = lambda start: calls.log.append(("gather", start))

    def react(item: Any) -> None:
        if item == "a":
            assert inp.offer("x") == OK
            inp.close()

    pipeline = Pipeline(inp, react, room=False)
    assert inp.offer_many(["a", "b"]) == [OK, CLOSED]
    assert pipeline.seen == ["a", "x", ("completed",)]
    assert calls.log == [
        ("gather", True),
        ("accepted", 1),
        ("accepted", 1),
        ("changed",),
        ("gather", False),
        ("changed",),
    ]


# -- a batch meeting a pipeline that let go (its observer stopped, the input not told yet) --------


def _let_go(stream: Stream) -> Any:
    observer: Any = stream._input._observer
    observer._stop()
    return observer


def test_a_whole_batch_meeting_a_pipeline_that_let_go_is_lost_without_failing_the_stream() -> None:
    scheduler = TestScheduler()
    stream = Stream(pf.transform(lambda e, c: e), pf.backpressure("block"), scheduler=scheduler)
    ledger = Ledger(stream)
    observer = _let_go(stream)
    assert observer.batch_room is None  # stopped: it offers no room any more
    observer.batch_room = lambda size: True  # as if asked just before the stop
    assert stream.send_many([0, 1], ALICE) == [OK, OK]
    scheduler.advance_by(1.0)
    assert ledger.delivered == []  # nothing went in after the stop
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        (0, "failed", "stream"),
        (1, "failed", "stream"),
    ]
    assert stream.error is None  # the pipeline is letting go: no operator broke
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 0, 2)


def test_a_batch_after_the_pipeline_let_go_is_refused_item_by_item() -> None:
    stream = Stream(pf.transform(lambda e, c: e), pf.backpressure("block"))
    ledger = Ledger(stream)
    _let_go(stream)
    assert stream.send_many([0, 1, 2], ALICE) == [FAILED] * 3
    assert ledger.dropped == [] and ledger.delivered == []
    assert stream.metrics().received == 0


# -- refusals in the moment the input stops, and before it was ever subscribed --------------------


def test_an_input_never_subscribed_refuses_as_failed() -> None:
    inp, calls = make_input()
    assert inp.offer("a") == FAILED
    assert inp.offer_many(["b", "c"]) == [FAILED, FAILED]
    assert calls.log == []


def test_a_send_taking_the_role_as_the_input_stops_is_refused_with_the_stop_reason() -> None:
    inp, calls = make_input()
    pipeline = Pipeline(inp)
    lock = HookedLock()
    inp._role = lock  # type: ignore[assignment]

    def close_then_stop() -> None:
        inp.close()
        inp.stop("failed")  # the pipeline is still attached: it just failed

    lock.after_acquire = close_then_stop
    assert inp.offer("a") == FAILED
    assert pipeline.seen == [("completed",)]
    assert ("accepted", 1) not in calls.log


def test_a_batch_taking_the_role_as_the_stream_closes_and_lets_go_is_refused_as_closed() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    ledger = Ledger(stream)
    lock = hook_role(stream)

    def close_and_let_go() -> None:
        stream.close()
        observer: Any = stream._input._observer
        observer._stop()

    lock.after_acquire = close_and_let_go
    assert stream.send_many(["a", "b"], ALICE) == [CLOSED, CLOSED]
    assert ledger.delivered == [] and ledger.dropped == []
    assert stream.metrics().received == 0


def test_the_item_of_a_batch_the_pipeline_fails_on_is_the_one_reported_lost() -> None:
    def explode(event: Any) -> Any:
        if event.event == "b":
            raise ValueError("no b")
        return event

    stream = Stream(ops.map(explode))  # map turns the exception into an error downstream
    ledger = Ledger(stream)
    assert stream.send_many(["a", "b", "c"], ALICE) == [OK, OK, FAILED]
    assert ledger.delivered == ["a"]
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        ("b", "failed", "stream")
    ]
    assert ledger.ends == ["error:ValueError"]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 1, 1)


def test_a_refusal_counted_in_line_is_reported_with_its_own_item_reason_and_operator() -> None:
    inp, calls = make_input()
    Pipeline(inp)
    inp.refuse("r", "refused upstream", "connect")
    assert calls.log == [("accepted", 1), ("lost", "r", "refused upstream", "connect")]
