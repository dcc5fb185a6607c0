"""The stream runtime: sending, closing, reporting, registry and composition."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.stream import DuplicateStreamName, StageError, Stream, StreamRegistry, connect, stage

READ = pfrx.Capability("file", "read", "/docs")
ALICE = pfrx.Context("alice", "s1", [READ])
BOB = pfrx.Context("bob", "s2")


def collect(stream: Stream) -> tuple[list[Any], list[pfrx.Dropped], list[str]]:
    results: list[Any] = []
    dropped: list[pfrx.Dropped] = []
    ends: list[str] = []
    stream.results.subscribe(
        results.append, lambda e: ends.append(f"error:{e}"), lambda: ends.append("completed")
    )
    stream.dropped.subscribe(dropped.append)
    return results, dropped, ends


def test_send_applies_the_operators_and_reports_acceptance() -> None:
    stream = Stream(pf.capability_filter(READ), pf.transform(lambda e, c: e.upper()), name="s")
    results, dropped, _ = collect(stream)
    assert stream.send("a", ALICE) == pfrx.SendResult(True)
    assert stream.send("b", BOB).ok  # accepted, then dropped by the filter
    assert [env.event for env in results] == ["A"]
    assert all(isinstance(env, pfrx.Envelope) for env in results)
    assert [(d.reason, d.operator, d.item.event) for d in dropped] == [
        ("insufficient_capabilities", "capability_filter", "b")
    ]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 1, 1)
    assert {s.name: (s.received, s.emitted) for s in snap.operators} == {
        "capability_filter": (2, 1),
        "transform": (1, 1),
    }
    assert stream.health() is pfrx.Health.DEGRADED  # half the items dropped


def test_envelopes_carry_the_context_and_the_scheduler_clock() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(42.0)
    stream = Stream(scheduler=scheduler)
    results, _, _ = collect(stream)
    stream.send("x", ALICE)
    assert results == [pfrx.Envelope("x", ALICE, 42.0)]


def test_an_operator_with_its_own_on_drop_does_not_report_into_the_stream() -> None:
    own: list[pfrx.Dropped] = []
    stream = Stream(pf.capability_filter(READ, on_drop=own.append))
    _, dropped, _ = collect(stream)
    stream.send("b", BOB)
    assert [d.reason for d in own] == ["insufficient_capabilities"]
    assert dropped == []


def test_close_refuses_sends_completes_results_and_is_idempotent() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    results, _, ends = collect(stream)
    stream.send(1, ALICE)
    stream.close()
    stream.close()
    assert stream.send(2, ALICE) == pfrx.SendResult(False, "closed")
    assert ends == ["completed"]
    assert stream.join(timeout=1.0) is True
    assert [e.event for e in results] == [1]
    assert stream.metrics().received == 1


def test_context_manager_closes_and_waits() -> None:
    with Stream(pf.transform(lambda e, c: e * 2)) as stream:
        results, _, ends = collect(stream)
        assert stream.send(21, ALICE).ok
    assert stream.closed and stream.done
    assert [e.event for e in results] == [42]
    assert ends == ["completed"]


def test_bad_input_is_a_clear_error() -> None:
    stream = Stream()
    with pytest.raises(TypeError, match=r"pfrx\.Context"):
        stream.send("x", "alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callables"):
        Stream("not an operator")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name"):
        Stream(name="")
    with pytest.raises(TypeError, match="StreamMetrics"):
        Stream(metrics=object())  # type: ignore[arg-type]


def test_on_a_test_scheduler_nothing_is_drained_until_it_advances() -> None:
    scheduler = TestScheduler()
    stream = Stream(ops.delay(5.0), scheduler=scheduler)
    results, _, ends = collect(stream)
    stream.send("a", ALICE)
    stream.close()
    assert results == [] and ends == []
    assert stream.join() is False  # virtual time: join reports, it does not wait
    scheduler.advance_by(5.0)
    assert [e.event for e in results] == ["a"]
    scheduler.advance_by(1.0)
    assert ends == ["completed"]
    assert stream.join() is True


def test_operators_use_the_stream_scheduler_for_time() -> None:
    scheduler = TestScheduler()
    stream = Stream(ops.buffer_with_time(10.0), scheduler=scheduler)
    results, _, _ = collect(stream)
    for i in range(3):
        stream.send(i, ALICE)
    scheduler.advance_by(10.0)
    assert [[e.event for e in batch] for batch in results] == [[0, 1, 2]]


@given(
    st.lists(st.tuples(st.sampled_from(["alice", "bob"]), st.integers(-5, 5)), max_size=60),
)
def test_ledger_received_equals_emitted_plus_dropped(items: list[tuple[str, int]]) -> None:
    def check(event: int, context: pfrx.Context) -> Any:
        if event < 0:
            return pfrx.Reject("negative")
        if event == 0:
            raise ValueError("zero")
        return event

    stream = Stream(pf.capability_filter(READ), pf.transform(check))
    results, dropped, _ = collect(stream)
    people = {"alice": ALICE, "bob": BOB}
    for who, value in items:
        assert stream.send(value, people[who]).ok
    stream.close()
    snap = stream.metrics()
    assert snap.received == len(items)
    assert snap.received == snap.emitted + snap.dropped
    assert snap.emitted == len(results)
    assert snap.dropped == len(dropped)
    assert dict(snap.drops_by_reason) == {
        reason: sum(1 for d in dropped if d.reason == reason)
        for reason in {d.reason for d in dropped}
    }


@pytest.mark.threads
def test_sends_from_many_threads_are_serialized() -> None:
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def observe(event: Any, context: pfrx.Context) -> Any:
        nonlocal inside, overlaps
        with guard:
            inside += 1
            if inside > 1:
                overlaps += 1
        # Give another thread a chance to barge in if serialization were broken.
        threading.Event().wait(0) if event % 97 == 0 else None
        with guard:
            inside -= 1
        return event

    stream = Stream(pf.transform(observe), name="threads")
    results, _, ends = collect(stream)
    per_thread, threads_n = 2_000, 8
    oks: list[int] = []

    def producer(offset: int) -> None:
        ok = 0
        for i in range(per_thread):
            ok += stream.send(offset + i, ALICE).ok
        oks.append(ok)

    threads = [threading.Thread(target=producer, args=(n * per_thread,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.close()
    assert stream.join(timeout=5.0)
    assert overlaps == 0
    assert sum(oks) == per_thread * threads_n
    assert sorted(e.event for e in results) == list(range(per_thread * threads_n))
    assert ends == ["completed"]
    assert stream.metrics().received == per_thread * threads_n


@pytest.mark.threads
def test_close_from_another_thread_while_sending_never_loses_an_accepted_event() -> None:
    stream = Stream(pf.transform(lambda e, c: e))
    results, _, ends = collect(stream)
    accepted: list[int] = []
    started = threading.Event()

    def producer() -> None:
        i = 0
        while True:
            if stream.send(i, ALICE).ok:
                accepted.append(i)
            else:
                return
            if i == 100:
                started.set()
            i += 1

    thread = threading.Thread(target=producer)
    thread.start()
    started.wait(5.0)
    stream.close()
    thread.join(5.0)
    assert stream.join(timeout=5.0)
    assert [e.event for e in results] == accepted
    assert ends == ["completed"]


# -- failure and stages -------------------------------------------------------------------------


def test_a_stage_error_reaches_subscribers_and_senders_with_the_stage_name() -> None:
    stream = Stream(
        stage("parse", ops.map(lambda env: int(env.event))),
        stage("double", ops.map(lambda n: 2 * n)),
        name="numbers",
    )
    results, dropped, ends = collect(stream)
    assert stream.send("21", ALICE).ok
    assert stream.send("x", ALICE).ok  # accepted; the stage then fails the pipeline
    assert results == [42]
    assert ends and ends[0].startswith("error:stage 'parse' failed: ValueError")
    # the item that failed the pipeline is not lost silently
    assert [(d.item.event, d.reason, d.operator) for d in dropped] == [("x", "failed", "stream")]
    refused = stream.send("1", ALICE)
    assert refused == pfrx.SendResult(False, "failed")  # the contract's reason; error says why
    assert isinstance(stream.error, StageError) and stream.error.stage == "parse"
    assert isinstance(stream.error.error, ValueError)
    assert stream.health() is pfrx.Health.UNHEALTHY
    with pytest.raises(StageError) as raised:
        stream.join()
    assert raised.value.stage == "parse"


def test_an_exception_escaping_on_next_fails_the_stream_with_the_stage_name() -> None:
    def broken(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                raise RuntimeError("operator bug")

            return source.subscribe(on_next, observer.on_error, observer.on_completed)

        return reactivex.Observable(subscribe)

    stream = Stream(stage("enrich", broken), name="s")
    _, _, ends = collect(stream)
    result = stream.send("a", ALICE)
    assert result == pfrx.SendResult(False, "failed")
    assert isinstance(stream.error, StageError) and stream.error.stage == "enrich"
    assert "operator bug" in str(stream.error)
    assert len(ends) == 1 and "enrich" in ends[0]
    assert stream.metrics().received == 0  # never accepted


def test_stage_reuses_an_operator_sequence() -> None:
    shout = stage("shout", pf.transform(lambda e, c: e.upper()), pf.transform(lambda e, c: e + "!"))
    out = pfrx.envelopes(["hi", "yo"], ALICE).pipe(shout, ops.map(lambda e: e.event), ops.to_list())
    assert out.run() == ["HI!", "YO!"]
    with pytest.raises(TypeError):
        stage("", ops.map(str))
    with pytest.raises(TypeError):
        stage("x", 42)  # type: ignore[arg-type]


def test_connect_chains_streams_and_balances_both_ledgers() -> None:
    first = Stream(pf.capability_filter(READ), name="first")
    second = Stream(pf.transform(lambda e, c: e * 10), name="second")
    connect(first, second)
    results, _, ends = collect(second)
    first.send(1, ALICE)
    first.send(2, BOB)
    first.send(3, ALICE)
    first.close()
    assert [e.event for e in results] == [10, 30]
    assert ends == ["completed"]
    assert second.done
    assert (second.metrics().received, second.metrics().emitted) == (2, 2)


def test_connect_counts_refused_items_as_dropped_downstream() -> None:
    first = Stream(name="first")
    second = Stream(name="second")
    connect(first, second)
    _, dropped, _ = collect(second)
    second.close()
    first.send("late", ALICE)
    # second's drop observable has completed with it: the refusal is counted and logged.
    assert dropped == []
    snap = second.metrics()
    assert (snap.received, snap.dropped) == (1, 1)
    assert dict(snap.drops_by_reason) == {"refused: closed": 1}


def test_connect_carries_an_upstream_error_with_its_name() -> None:
    first = Stream(ops.map(lambda env: 1 / env.event), name="divide")
    second = Stream(name="second")
    connect(first, second)
    _, _, ends = collect(second)
    first.send(0, ALICE)
    assert isinstance(second.error, StageError) and second.error.stage == "divide"
    assert ends and "divide" in ends[0]
    assert not second.send(1, ALICE).ok


# -- registry -----------------------------------------------------------------------------------


def test_registry_register_lookup_unregister() -> None:
    reg = StreamRegistry()
    stream = Stream(name="files")
    reg.register("file_stream", stream)
    assert reg.lookup("file_stream") is stream
    assert "file_stream" in reg and reg.names() == ["file_stream"] and len(reg) == 1
    with pytest.raises(DuplicateStreamName, match="already registered as 'file_stream'"):
        reg.register("file_stream", Stream())
    assert reg.unregister("file_stream") is stream
    with pytest.raises(KeyError, match="no stream registered as 'file_stream'"):
        reg.lookup("file_stream")
    with pytest.raises(KeyError):
        reg.unregister("file_stream")
    assert reg.get("file_stream") is None


def test_a_closed_stream_unregisters_itself_everywhere() -> None:
    reg = StreamRegistry()
    stream = Stream()
    reg.register("a", stream)
    pfrx.registry.register("test-closed-stream", stream)
    stream.close()
    assert "a" not in reg
    assert "test-closed-stream" not in pfrx.registry
    with pytest.raises(ValueError, match="closed"):
        reg.register("b", stream)


def test_a_failed_stream_unregisters_itself() -> None:
    reg = StreamRegistry()
    stream = Stream(ops.map(lambda env: 1 / 0))
    reg.register("boom", stream)
    stream.send(1, ALICE)
    assert "boom" not in reg


def test_registry_rejects_bad_input() -> None:
    reg = StreamRegistry()
    with pytest.raises(TypeError):
        reg.register("", Stream())
    with pytest.raises(TypeError):
        reg.register("x", object())  # type: ignore[arg-type]


def test_a_new_name_after_unregistering_is_free_again() -> None:
    reg = StreamRegistry()
    one, two = Stream(), Stream()
    reg.register("n", one)
    reg.unregister("n")
    reg.register("n", two)
    one.close()  # closing the old stream does not remove the new one
    assert reg.lookup("n") is two
