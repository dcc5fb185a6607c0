"""Issue 12: `stage` and `connect` stated exactly: messages, schedulers, envelopes, errors."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler
from reactivex.testing.subscription import Subscription

import pfrx
from pfrx.stream import StageError, Stream, connect, stage

ALICE = pfrx.Context("alice", "s1")


def _ends(stream: Stream) -> tuple[list[Any], list[pfrx.Dropped], list[Any]]:
    results: list[Any] = []
    dropped: list[pfrx.Dropped] = []
    ends: list[Any] = []
    stream.results.subscribe(results.append, ends.append, lambda: ends.append("completed"))
    stream.dropped.subscribe(dropped.append)
    return results, dropped, ends


# -- stage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", None, 3])
def test_stage_refuses_a_bad_name_with_its_repr(name: Any) -> None:
    with pytest.raises(TypeError) as caught:
        stage(name, ops.map(str))
    assert str(caught.value) == f"a stage needs a non-empty str name, not {name!r}"


def test_stage_refuses_a_non_operator_naming_it() -> None:
    with pytest.raises(TypeError) as caught:
        stage("parse", ops.map(str), 42)  # type: ignore[arg-type]
    assert str(caught.value) == "stage 'parse': 42 is not an operator"


def test_stage_passes_the_subscription_scheduler_to_its_source() -> None:
    # interval() without a scheduler of its own runs on the one given at subscription:
    # only then does it tick in the TestScheduler's virtual time.
    scheduler = TestScheduler()
    observed = scheduler.start(
        lambda: reactivex.interval(10.0).pipe(stage("ticks", ops.map(lambda i: i * 2), ops.take(3)))
    )
    assert [(m.time, m.value.kind, getattr(m.value, "value", None)) for m in observed.messages] == [
        (210, "N", 0),
        (220, "N", 2),
        (230, "N", 4),
        (230, "C", None),
    ]


def test_stage_wraps_an_error_signalled_inside_once() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        reactivex.testing.ReactiveTest.on_next(210, "1"),
        reactivex.testing.ReactiveTest.on_next(220, "x"),
    )
    observed = scheduler.start(lambda: source.pipe(stage("parse", ops.map(int))))
    assert [m.time for m in observed.messages] == [210, 220]
    error = observed.messages[1].value.exception
    assert isinstance(error, StageError) and error.stage == "parse"
    assert isinstance(error.error, ValueError)
    assert source.subscriptions == [Subscription(200, 220)]


# -- connect ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["upstream", "downstream"])
def test_connect_takes_two_streams(which: str) -> None:
    with Stream(name="s") as stream:
        args = (stream, object()) if which == "downstream" else (object(), stream)
        with pytest.raises(TypeError) as caught:
            connect(*args)  # type: ignore[arg-type]
    assert str(caught.value) == "connect() takes two pfrx.Stream instances"


def test_connect_wraps_a_plain_result_in_the_upstreams_context_at_time_zero() -> None:
    first = Stream(ops.map(lambda env: env.event), name="first")
    second = Stream(name="second")
    connect(first, second)
    results, dropped, _ = _ends(second)
    first.send(10, ALICE)
    first.send(None, ALICE)  # a None result is still a value to forward
    assert results == [
        pfrx.Envelope(10, pfrx.Context("first"), 0.0),
        pfrx.Envelope(None, pfrx.Context("first"), 0.0),
    ]
    assert dropped == []
    second.close()


def test_connect_sends_an_envelope_result_as_it_is() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(7.0)
    first = Stream(name="first", scheduler=scheduler)
    second = Stream(name="second", scheduler=scheduler)
    connect(first, second)
    results, _, _ = _ends(second)
    first.send("a", ALICE)
    assert results == [pfrx.Envelope("a", ALICE, 7.0)]


def test_connect_drops_a_refused_envelope_downstream_with_its_reason() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(3.0)
    bad = pfrx.Envelope("e", "not a context", 1.0)  # type: ignore[arg-type]
    first = Stream(ops.map(lambda env: bad), name="first", scheduler=scheduler)
    second = Stream(name="second", scheduler=scheduler)
    connect(first, second)
    results, dropped, _ = _ends(second)
    first.send("x", ALICE)
    assert results == []
    assert dropped == [pfrx.Dropped(bad, "refused: invalid_context", "connect", 3.0)]
    snap = second.metrics()
    assert (snap.received, snap.dropped) == (1, 1)


def test_connect_keeps_an_upstream_stage_error_as_it_is() -> None:
    first = Stream(stage("parse", ops.map(lambda env: int(env.event))), name="first")
    second = Stream(name="second")
    connect(first, second)
    _, _, ends = _ends(second)
    first.send("x", ALICE)
    assert second.error is first.error
    assert isinstance(second.error, StageError) and second.error.stage == "parse"
    assert ends == [second.error]


def test_connect_names_the_upstream_for_a_plain_error() -> None:
    first = Stream(ops.map(lambda env: 1 / env.event), name="divide")
    second = Stream(name="second")
    connect(first, second)
    _, _, ends = _ends(second)
    first.send(0, ALICE)
    assert isinstance(first.error, ZeroDivisionError)
    error = second.error
    assert isinstance(error, StageError)
    assert (error.stage, error.error) == ("divide", first.error)
    assert ends == [error]


def test_connect_closes_downstream_when_upstream_completes() -> None:
    first = Stream(name="first")
    second = Stream(name="second")
    connect(first, second)
    _, _, ends = _ends(second)
    first.close()
    assert ends == ["completed"]
    assert second.state == "done"


def test_disposing_the_connection_stops_the_forwarding() -> None:
    first = Stream(name="first")
    second = Stream(name="second")
    link = connect(first, second)
    results, _, _ = _ends(second)
    first.send(1, ALICE)
    link.dispose()
    first.send(2, ALICE)
    first.close()
    assert [env.event for env in results] == [1]
    assert second.state == "open"
    second.close()


def _raising_op(error: Exception) -> Any:
    """An operator whose on_next raises (an operator bug) instead of signalling on_error."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                raise error

            return source.subscribe(on_next, observer.on_error, observer.on_completed)

        return Observable(subscribe)

    return operator


def test_an_exception_raised_inside_a_stage_leaves_it_as_a_stage_error() -> None:
    cause = KeyError("operator bug")
    source: Subject[Any] = Subject()
    source.pipe(stage("parse", ops.map(lambda x: x), _raising_op(cause))).subscribe(lambda v: None)
    with pytest.raises(StageError) as caught:
        source.on_next(1)
    error = caught.value
    assert (error.stage, error.error, error.__cause__) == ("parse", cause, cause)


def test_a_stage_error_raised_inside_a_stage_keeps_its_stage() -> None:
    inner = StageError("inner", ValueError("v"))
    source: Subject[Any] = Subject()
    source.pipe(stage("outer", _raising_op(inner))).subscribe(lambda v: None)
    with pytest.raises(StageError) as caught:
        source.on_next(1)
    assert caught.value is inner


def test_an_inner_stage_error_signalled_keeps_the_inner_stage() -> None:
    seen: list[Any] = []
    nested = stage("outer", stage("inner", ops.map(int)))
    reactivex.of("1", "x").pipe(nested).subscribe(seen.append, seen.append)
    assert seen[0] == 1
    error = seen[1]
    assert isinstance(error, StageError) and error.stage == "inner"
    assert isinstance(error.error, ValueError)


def test_the_sources_error_and_completion_pass_through_a_stage() -> None:
    source: Subject[Any] = Subject()
    seen: list[Any] = []
    source.pipe(stage("s", ops.map(lambda x: x * 2))).subscribe(
        seen.append, lambda e: seen.append(("error", e)), lambda: seen.append("completed")
    )
    source.on_next(2)
    cause = OSError("source broke")
    source.on_error(cause)
    assert seen[0] == 4
    error = seen[1][1]
    assert isinstance(error, StageError) and (error.stage, error.error) == ("s", cause)

    other: Subject[Any] = Subject()
    ended: list[Any] = []
    other.pipe(stage("s", ops.map(lambda x: x))).subscribe(
        ended.append, lambda e: ended.append(("error", e)), lambda: ended.append("completed")
    )
    other.on_next(1)
    other.on_completed()
    assert ended == [1, "completed"]
