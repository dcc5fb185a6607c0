"""send_many under attack: the exactly-once ledger when failures, closes and re-entrant
sends meet a batch on real threads.

Every accepted event must end once, on ``results`` or as one ``Dropped`` (by identity),
and the metrics must say received = emitted + dropped. The races are provoked on purpose:
user functions and raw operators wait on events so that a failure lands while another
thread holds an item past the failure point.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import Observable

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

from ._helpers import CTX, Ledger

pytestmark = pytest.mark.threads

#: More examples for a longer hunt: ATTACK_EXAMPLES=600.
EXAMPLES = int(os.environ.get("ATTACK_EXAMPLES", "25"))
WAIT = 1.5  # every wait is bounded: a hang fails the test instead of the run
DENIED = pfrx.Capability("vault", "open")


class Token:
    """An event compared by identity (the ledger counts each object once)."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Token({self.n}@{id(self):x})"


def events_of(stream_values: list[Any]) -> list[Any]:
    return [value.event if isinstance(value, pfrx.Envelope) else value for value in stream_values]


def raising_on(trigger: int, before: threading.Event | None = None) -> Any:
    """A raw (unfused) operator whose on_next raises on event ``trigger``: the stream puts a
    boundary after the stage before it, and fails at that boundary. With ``before``, it
    waits for that event first (so another thread is where the test wants it)."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event.n == trigger:
                    if before is not None:
                        assert before.wait(WAIT)
                    raise RuntimeError("raw operator broke")
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def settle(stream: Stream) -> None:
    with contextlib.suppress(Exception):  # the error the stream failed with
        stream.join(WAIT)
    assert stream.done


def assert_ledger(stream: Stream, ledger: Ledger, accepted: list[Any]) -> None:
    """Each accepted event once (by identity), and the metrics agree."""
    with ledger.lock:
        seen = events_of(ledger.delivered) + ledger.dropped_events()
    assert sorted(map(id, seen)) == sorted(map(id, accepted)), (seen, accepted)
    for window in ledger.delivered:
        assert not isinstance(window, pfrx.Window)  # these tests count events, not windows
    snapshot = stream.metrics()
    assert snapshot.received == len(accepted)
    assert snapshot.received == snapshot.emitted + snapshot.dropped, snapshot


# -- found by this attack: a failure at an early boundary while a later drain is busy -------------


def test_items_buffered_past_the_failure_point_are_reported_before_dropped_ends() -> None:
    # bp1's drain hands the batch to a raw operator that breaks on `bad`, while bp2's
    # drain is inside a user function with two more items buffered behind it. The stream
    # fails at the first boundary and used to finish at once: bp2's buffered items were
    # then reported after `dropped` had ended (counted, never seen): lost.
    inside = threading.Event()
    release = threading.Event()
    first, held, b1, b2, bad, last = (Token(i) for i in range(6))

    def slow(event: Any, context: Any) -> Any:
        if event is held:
            inside.set()
            release.wait(0.3)
        return event

    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        raising_on(bad.n, before=inside),
        pf.backpressure("block", buffer_size=8),
        pf.transform(slow),
    )
    ledger = Ledger(stream)
    batch = [first, held, b1, b2, bad, last]
    results = stream.send_many(batch, CTX)
    assert all(result.ok for result in results)
    settle(stream)
    release.set()
    time.sleep(0.4)  # whatever bp2's drain does after the finish must not count
    assert ledger.ends == ["error:StageError"]
    assert_ledger(stream, ledger, batch)


def test_an_item_a_later_window_absorbs_as_the_stream_fails_is_counted_once() -> None:
    # bp2's drain holds `held` inside window_session's key function when the stream fails
    # at the first boundary: the finish reported it ("failed"), then the window absorbed it
    # and reported it again when the error reached it ("upstream_error"): the metrics
    # counted four drops for three items.
    inside = threading.Event()
    held, bad, last = Token(1), Token(50), Token(2)

    def key(envelope: pfrx.Envelope) -> str:
        if envelope.event is held:
            inside.set()
            time.sleep(0.2)  # the failure lands now
        return "k"

    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        raising_on(bad.n, before=inside),
        pf.backpressure("block", buffer_size=8),
        pf.window_session(100.0, key=key),
    )
    ledger = Ledger(stream)
    batch = [held, bad, last]
    assert all(result.ok for result in stream.send_many(batch, CTX))
    settle(stream)
    time.sleep(0.4)
    assert_ledger(stream, ledger, batch)


def test_an_item_a_later_link_drops_as_the_stream_fails_is_counted_once() -> None:
    # As above, the held item leaving a transform into a capability_filter that denies it.
    inside = threading.Event()
    held, bad, last = Token(1), Token(50), Token(2)

    def slow(event: Any, context: Any) -> Any:
        if event is held:
            inside.set()
            time.sleep(0.2)
        return event

    stream = Stream(
        pf.backpressure("block", buffer_size=8),
        raising_on(bad.n, before=inside),
        pf.backpressure("block", buffer_size=8),
        pf.transform(slow),
        pf.capability_filter(DENIED),
    )
    ledger = Ledger(stream)
    batch = [held, bad, last]
    assert all(result.ok for result in stream.send_many(batch, CTX))
    settle(stream)
    time.sleep(0.4)
    assert_ledger(stream, ledger, batch)


# -- attacks that held ---------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["fail", "close"])
@pytest.mark.parametrize("after", ["window_session", "deny"])
def test_fail_or_close_from_another_thread_while_a_drain_holds_an_item(
    stop: str, after: str
) -> None:
    inside = threading.Event()
    release = threading.Event()
    tokens = [Token(i) for i in range(4)]
    held = tokens[1]

    def wait_on_held(event: Any) -> None:
        if event is held:
            inside.set()
            release.wait(0.5)

    def key(envelope: pfrx.Envelope) -> str:
        wait_on_held(envelope.event)
        return "k"

    def slow(event: Any, context: Any) -> Any:
        wait_on_held(event)
        return event

    tail: list[Any] = (
        [pf.window_session(100.0, key=key)]
        if after == "window_session"
        else [pf.transform(slow), pf.capability_filter(DENIED)]
    )
    stream = Stream(pf.backpressure("block", buffer_size=8, batch_size=2), *tail)
    ledger = Ledger(stream)
    assert all(result.ok for result in stream.send_many(tokens, CTX))
    assert inside.wait(WAIT)
    stopper = threading.Thread(
        target=(lambda: stream.fail(RuntimeError("outside"))) if stop == "fail" else stream.close,
        daemon=True,
    )
    stopper.start()
    time.sleep(0.05)
    release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    settle(stream)
    time.sleep(0.1)
    if after == "window_session" and stop == "close":
        # The session window is emitted on completion with all four.
        (window,) = ledger.delivered
        assert [envelope.event for envelope in window.items] == tokens
        assert not ledger.dropped
    else:
        assert_ledger(stream, ledger, tokens)


def test_close_never_blocks_while_a_user_function_holds_the_drain() -> None:
    inside = threading.Event()
    release = threading.Event()

    def slow(event: Any, context: Any) -> Any:
        inside.set()
        release.wait(WAIT)
        return event

    stream = Stream(pf.backpressure("block", buffer_size=2), pf.transform(slow))
    ledger = Ledger(stream)
    batch = [Token(i) for i in range(2)]
    assert all(result.ok for result in stream.send_many(batch, CTX))
    assert inside.wait(WAIT)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.2
    assert stream.send_many([Token(9)], CTX) == [pfrx.SendResult(False, "closed")]
    release.set()
    assert stream.join(WAIT)
    assert_ledger(stream, ledger, batch)


def test_block_timeouts_with_a_tiny_buffer_refuse_only_what_did_not_fit() -> None:
    release = threading.Event()

    def slow(event: Any, context: Any) -> Any:
        release.wait(0.3)
        return event

    stream = Stream(pf.backpressure("block", buffer_size=1, timeout=0.02), pf.transform(slow))
    ledger = Ledger(stream)
    batch = [Token(i) for i in range(6)]
    results = stream.send_many(batch, CTX)
    release.set()
    accepted = [token for token, result in zip(batch, results, strict=True) if result.ok]
    refused = [result for result in results if not result.ok]
    assert refused and all(result.reason == "timeout" for result in refused)
    stream.close()
    assert stream.join(WAIT)
    assert_ledger(stream, ledger, accepted)
    # Order across results is the order they were sent in.
    assert events_of(ledger.delivered) == [t for t in accepted if t in events_of(ledger.delivered)]


def test_a_subscriber_that_raises_and_resends_a_batch_loses_nothing() -> None:
    stream = Stream(pf.capability_filter(pfrx.Capability("file", "read", "/docs")))
    stream_bp = Stream(
        pf.transform(lambda e, c: e),
        pf.backpressure("block", buffer_size=4, batch_size=3),
        pf.metrics_tap(),
    )
    for target in (stream, stream_bp):
        ledger = Ledger(target)
        extra: list[Any] = []

        def on_result(value: Any, target: Stream = target, extra: list[Any] = extra) -> None:
            if value.event.n % 3 == 0 and value.event.n < 30:
                more = [Token(value.event.n * 10 + 1), Token(value.event.n * 10 + 2)]
                results = target.send_many(more, CTX)
                extra.extend(t for t, r in zip(more, results, strict=True) if r.ok)
                raise ValueError("subscriber broke")

        target.results.subscribe(on_result)
        batch = [Token(i) for i in range(7)]
        results = target.send_many(batch, CTX)
        assert all(result.ok for result in results)
        deadline = time.monotonic() + WAIT
        while len(ledger.delivered) < len(batch) + len(extra) and time.monotonic() < deadline:
            time.sleep(0.01)
        target.close()
        assert target.join(WAIT)
        assert extra  # the re-entrant batches were accepted, never waited on themselves
        assert_ledger(target, ledger, batch + extra)
        assert target.metrics().errors >= 1


def _race_fail_against_producers(round_: int) -> None:
    stream = Stream(
        pf.capability_filter(pfrx.Capability("file", "read", "/docs")),
        pf.transform(lambda e, c: pfrx.Reject("odd") if e.n % 2 else e),
        pf.metrics_tap(),
        pf.backpressure(
            ("block", "drop_oldest", "drop_newest")[round_ % 3], buffer_size=4, batch_size=3
        ),
        pf.window_count(2) if round_ % 2 else pf.metrics_tap(),
    )
    ledger = Ledger(stream)
    accepted: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def producer(base: int) -> None:
        start.wait(WAIT)
        for k in range(10):
            batch = [Token(base + 10 * k + i) for i in range(5)]
            results = stream.send_many(batch, CTX)
            with lock:
                accepted.extend(t for t, r in zip(batch, results, strict=True) if r.ok)

    threads = [threading.Thread(target=producer, args=(1000 * n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    start.wait(WAIT)
    time.sleep(0.002 * round_)
    stream.fail(RuntimeError("stop"))
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    settle(stream)
    with ledger.lock:
        delivered: list[Any] = []
        for value in ledger.delivered:
            if isinstance(value, pfrx.Window):
                delivered.extend(envelope.event for envelope in value.items)
            else:
                delivered.append(value)
        seen = delivered + ledger.dropped_events()
    assert sorted(map(id, seen)) == sorted(map(id, accepted))
    assert stream.metrics().received == len(accepted)


@pytest.mark.parametrize("round_", range(6))
def test_fail_racing_send_many_from_several_threads(round_: int) -> None:
    _race_fail_against_producers(round_)


def test_checkpoint_between_batches_on_a_drained_stream() -> None:
    stream = Stream(pf.transform(lambda e, c: e), pf.backpressure("block", buffer_size=8))
    ledger = Ledger(stream)
    first = [Token(i) for i in range(5)]
    assert all(r.ok for r in stream.send_many(first, CTX))
    checkpoint = stream.checkpoint()
    assert checkpoint is not None
    second = [Token(10 + i) for i in range(5)]
    assert all(r.ok for r in stream.send_many(second, CTX))
    stream.close()
    assert stream.join(WAIT)
    assert_ledger(stream, ledger, first + second)
    assert events_of(ledger.delivered) == first + second


def test_a_send_many_from_inside_a_whole_batch_comes_after_that_batch() -> None:
    # The documented order: a re-entrant send made while a batch is taken whole (here from
    # the transform, on the sending thread) is handed over after the whole batch, accepted,
    # and never waits on itself.
    batch = [Token(i) for i in range(5)]
    inner = [Token(100), Token(101)]
    told: list[pfrx.SendResult] = []

    def reenter(event: Any, context: Any) -> Any:
        if event is batch[1] and not told:
            told.extend(stream.send_many(inner, CTX))
        return event

    stream = Stream(pf.transform(reenter), pf.backpressure("block", buffer_size=64))
    ledger = Ledger(stream)
    results = stream.send_many(batch, CTX)
    assert all(result.ok for result in results)
    assert told == [pfrx.SendResult(True)] * 2
    stream.close()
    assert stream.join(WAIT)
    assert events_of(ledger.delivered) == batch + inner
    assert_ledger(stream, ledger, batch + inner)


# -- a property on real threads: any mix of sends, batches, closes and failures ------------------

_actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 0)),
        st.tuples(st.just("many"), st.integers(1, 6)),
        st.tuples(st.just("close"), st.integers(0, 0)),
        st.tuples(st.just("fail"), st.integers(0, 0)),
    ),
    min_size=1,
    max_size=8,
)


def _pipeline(kind: int, strategy: str, size: int) -> list[Any]:
    head: list[Any] = [
        [pf.capability_filter(pfrx.Capability("file", "read", "/docs"))],
        [pf.transform(lambda e, c: pfrx.Reject("third") if e.n % 3 == 0 else e)],
        [pf.metrics_tap(), pf.transform(lambda e, c: e)],
    ][kind % 3]
    tail: list[Any] = [
        [],
        [pf.transform(lambda e, c: e)],
        [pf.window_count(2)],
        [raising_on(7), pf.backpressure("block", buffer_size=4), pf.transform(lambda e, c: e)],
        [raising_on(7), pf.backpressure("drop_oldest", buffer_size=2), pf.window_count(2)],
    ][kind // 3]
    return [*head, pf.backpressure(strategy, buffer_size=size, batch_size=3), *tail]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.integers(0, 14),
    strategy=st.sampled_from(["block", "drop_oldest", "drop_newest", "latest", "error"]),
    size=st.sampled_from([1, 2, 16]),
    plans=st.lists(_actions, min_size=2, max_size=3),
    subscriber=st.sampled_from(["plain", "raises", "reenters"]),
)
def test_any_mix_on_real_threads_ends_each_accepted_event_once(
    kind: int, strategy: str, size: int, plans: list[list[tuple[str, int]]], subscriber: str
) -> None:
    stream = Stream(*_pipeline(kind, strategy, size))
    ledger = Ledger(stream)
    accepted: list[Any] = []
    lock = threading.Lock()
    counter = iter(range(10**6))

    def told(batch: list[Any], results: list[pfrx.SendResult]) -> None:
        with lock:
            accepted.extend(t for t, r in zip(batch, results, strict=True) if r.ok)
        for result in results:
            assert result.ok or result.reason

    reentered = [0]

    def on_result(value: Any) -> None:
        if subscriber == "raises":
            raise ValueError("subscriber broke")
        if subscriber == "reenters" and reentered[0] < 3:
            reentered[0] += 1
            batch = [Token(900_000 + next(counter))]
            told(batch, stream.send_many(batch, CTX))

    stream.results.subscribe(on_result)
    start = threading.Barrier(len(plans))

    def run(plan: list[tuple[str, int]]) -> None:
        start.wait(WAIT)
        for action, n in plan:
            if action == "send":
                token = Token(next(counter))
                told([token], [stream.send(token, CTX)])
            elif action == "many":
                batch = [Token(next(counter)) for _ in range(n)]
                told(batch, stream.send_many(batch, CTX))
            elif action == "close":
                stream.close()
            else:
                stream.fail(RuntimeError("from a producer"))

    threads = [threading.Thread(target=run, args=(plan,), daemon=True) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    stream.close()
    settle(stream)
    with ledger.lock:
        delivered: list[Any] = []
        for value in ledger.delivered:
            if isinstance(value, pfrx.Window):
                delivered.extend(envelope.event for envelope in value.items)
            else:
                delivered.append(value)
        seen = delivered + ledger.dropped_events()
    with lock:
        expected = list(accepted)
    assert sorted(map(id, seen)) == sorted(map(id, expected)), (seen, expected)
    snapshot = stream.metrics()
    assert snapshot.received == len(expected)
    if kind // 3 not in (2, 4):  # a window is one emitted value for several events
        assert snapshot.received == snapshot.emitted + snapshot.dropped


def test_an_iterator_that_raises_half_way_sends_nothing() -> None:
    stream = Stream(pf.transform(lambda e, c: e), pf.backpressure("block", buffer_size=4))
    ledger = Ledger(stream)
    sent = [Token(0), Token(1)]

    def events() -> Any:
        yield from sent
        raise KeyError("half way")

    with pytest.raises(KeyError):
        stream.send_many(events(), CTX)
    with pytest.raises(TypeError):
        stream.send_many(sent, "not a context")  # type: ignore[arg-type]
    stream.close()
    assert stream.join(WAIT)
    assert ledger.delivered == [] and ledger.dropped == []
    assert stream.metrics().received == 0


def test_a_queued_batch_whose_events_time_out_ends_each_as_one_drop() -> None:
    # Thread A holds the emitter role, waiting for room in a one-slot block buffer whose
    # drain is held; thread B's batch is queued as one entry and accepted whole. The events
    # that then find no room in time end as Dropped("timeout"), the others delivered.
    inside = threading.Event()
    release = threading.Event()
    first = Token(0)

    def slow(event: Any, context: Any) -> Any:
        if event is first:
            inside.set()
            release.wait(0.4)
        return event

    stream = Stream(pf.backpressure("block", buffer_size=1, timeout=0.05), pf.transform(slow))
    ledger = Ledger(stream)
    assert stream.send(first, CTX).ok
    assert inside.wait(WAIT)
    second = Token(1)
    assert stream.send(second, CTX).ok  # fills the slot
    a_told: list[pfrx.SendResult] = []
    a_event = Token(2)
    a = threading.Thread(target=lambda: a_told.append(stream.send(a_event, CTX)), daemon=True)
    a.start()
    time.sleep(0.01)  # A is waiting for room, holding the role
    batch = [Token(10 + i) for i in range(4)]
    b_told = stream.send_many(batch, CTX)
    a.join(WAIT)
    release.set()
    stream.close()
    assert stream.join(WAIT)
    accepted = [first, second] + ([a_event] if a_told[0].ok else [])
    if all(result.ok for result in b_told):  # queued behind A: accepted whole
        accepted += batch
        timeouts = [d for d in ledger.dropped if d.reason == "timeout"]
        assert {id(d.item.event) for d in timeouts} <= {id(t) for t in batch}
    else:  # B found the role free after A timed out: refused one by one, never half
        accepted += [t for t, r in zip(batch, b_told, strict=True) if r.ok]
        assert all(r.reason == "timeout" for r in b_told if not r.ok)
    assert_ledger(stream, ledger, accepted)


@pytest.mark.parametrize("round_", range(4))
def test_close_racing_send_many_from_several_threads_refuses_or_ends_each_once(round_: int) -> None:
    stream = Stream(
        pf.transform(lambda e, c: pfrx.Reject("odd") if e.n % 2 else e),
        pf.backpressure(("block", "drop_oldest")[round_ % 2], buffer_size=3, batch_size=2),
        pf.metrics_tap(),
    )
    ledger = Ledger(stream)
    accepted: list[Any] = []
    reasons: set[str | None] = set()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def producer(base: int) -> None:
        start.wait(WAIT)
        for k in range(20):
            batch = [Token(base + 10 * k + i) for i in range(4)]
            results = stream.send_many(batch, CTX)
            with lock:
                accepted.extend(t for t, r in zip(batch, results, strict=True) if r.ok)
                reasons.update(r.reason for r in results if not r.ok)

    threads = [threading.Thread(target=producer, args=(1000 * n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    start.wait(WAIT)
    time.sleep(0.001 * round_)
    stream.close()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert stream.join(WAIT)
    assert reasons <= {"closed"}
    assert_ledger(stream, ledger, accepted)
