"""Chaos: a hypothesis state machine drives a real Stream on threads and checks the ledger.

Random sends from several threads, batches, re-entrant sends from subscribers, subscribers
that raise, bad items, operators that fail, close and join at random points. After every
step: nothing accepted is lost or reported twice (by identity), every refused send says
why, and nothing hangs (every wait is bounded, and a wait that runs out fails the test).

``PFRX_CHAOS_EXAMPLES=N`` runs N examples instead of the default 300 (``make test`` keeps
the default; a soak run sets thousands).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

EXAMPLES = int(os.environ.get("PFRX_CHAOS_EXAMPLES", "300"))
REASONS = {"closed", "failed", "timeout", "full", "invalid_context"}
WAIT = 5.0  # seconds any single wait may take before the test calls it a hang

READ = pfrx.Capability("file", "read", "/")
ALLOWED = pfrx.Context("alice", "s1", [READ])
DENIED = pfrx.Context("mallory", "s2")


def _checked(event: Any, context: pfrx.Context) -> Any:
    # One bad item in seven raises, one in eleven is rejected: each is one Dropped.
    if event % 7 == 3:
        raise ValueError(f"bad item {event}")
    if event % 11 == 5:
        return pfrx.Reject("odd_one")
    return event


def _bug_on(every: int) -> Any:
    """An operator whose on_next raises (an operator bug) for one event in ``every``."""

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def on_next(value: Any) -> None:
                if value.event % every == every - 1:
                    raise RuntimeError("operator bug")
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.Observable(subscribe)

    return operator


def _raising_on_drop(record_drop: Any) -> Any:
    """An ``on_drop=`` callback that records the drop, then raises (a failing callback)."""

    def on_drop(record: pfrx.Dropped) -> None:
        record_drop(record)
        raise RuntimeError("on_drop bug")

    return on_drop


PIPELINES: dict[str, Any] = {
    "none": lambda own: (),
    "failing_on_drop": lambda own: (
        pf.capability_filter(READ, on_drop=_raising_on_drop(own)),
        pf.backpressure("drop_oldest", buffer_size=2, on_drop=_raising_on_drop(own)),
    ),
    "sync": lambda own: (pf.capability_filter(READ), pf.transform(_checked)),
    "block": lambda own: (
        pf.capability_filter(READ),
        pf.backpressure("block", buffer_size=4, batch_size=2),
        pf.transform(_checked),
    ),
    "block_timeout": lambda own: (
        pf.backpressure("block", buffer_size=2, batch_size=1, timeout=0.01),
        pf.transform(_checked),
    ),
    "drop_oldest": lambda own: (
        pf.backpressure("drop_oldest", buffer_size=3),
        pf.transform(_checked),
    ),
    "latest": lambda own: (pf.transform(_checked), pf.backpressure("latest")),
    "error": lambda own: (pf.backpressure("error", buffer_size=3, batch_size=1),),
    "bug_after_drain": lambda own: (pf.backpressure("block", buffer_size=8), _bug_on(40)),
    "bug_inline": lambda own: (pf.transform(_checked), _bug_on(60)),
}


class StreamChaos(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.accepted: list[int] = []
        self.refused: list[str | None] = []
        self.delivered: list[int] = []
        self.dropped: list[pfrx.Dropped] = []
        self.resent: set[int] = set()
        self.stream: Stream | None = None
        self.closed = False  # by a rule: preconditions must not depend on thread timing

    # -- set-up -------------------------------------------------------------------------------
    @initialize(pipeline=st.sampled_from(sorted(PIPELINES)), queue_size=st.sampled_from([2, 64]))
    def start(self, pipeline: str, queue_size: int) -> None:
        operators = PIPELINES[pipeline](self._drop)
        self.stream = Stream(*operators, name=f"chaos-{pipeline}", queue_size=queue_size)
        self.stream.results.subscribe(self._result)
        self.stream.dropped.subscribe(self._drop)

    def _result(self, envelope: pfrx.Envelope) -> None:
        with self.lock:
            self.delivered.append(envelope.event)

    def _drop(self, record: pfrx.Dropped) -> None:
        with self.lock:
            self.dropped.append(record)

    def _next_id(self) -> int:
        with self.lock:
            return next(self.ids)

    def _record(self, event: int, result: pfrx.SendResult) -> None:
        with self.lock:
            if result.ok:
                self.accepted.append(event)
            else:
                self.refused.append(result.reason)

    def _send(self, context: pfrx.Context = ALLOWED) -> None:
        assert self.stream is not None
        event = self._next_id()
        self._record(event, self.stream.send(event, context))

    @staticmethod
    def _bounded_threads(targets: list[Any]) -> None:
        threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive(), "a producer hung"

    # -- rules ----------------------------------------------------------------------------------
    @rule(n=st.integers(1, 30), denied=st.booleans())
    def send_some(self, n: int, denied: bool) -> None:
        for _ in range(n):
            self._send(DENIED if denied and self.stream is not None and n % 3 == 0 else ALLOWED)

    @rule(threads=st.integers(2, 4), n=st.integers(1, 40))
    def send_from_threads(self, threads: int, n: int) -> None:
        def produce() -> None:
            for _ in range(n):
                self._send()

        self._bounded_threads([produce] * threads)

    @rule(n=st.integers(1, 50))
    def send_a_batch(self, n: int) -> None:
        assert self.stream is not None
        events = [self._next_id() for _ in range(n)]
        results = self.stream.send_many(events, ALLOWED)
        assert len(results) == n
        for event, result in zip(events, results, strict=True):
            self._record(event, result)

    @rule()
    def send_a_bad_envelope(self) -> None:
        assert self.stream is not None
        result = self.stream.send_envelope(pfrx.Envelope(self._next_id(), "root", 0.0))  # type: ignore[arg-type]
        assert result == pfrx.SendResult(False, "invalid_context")

    @rule(every=st.integers(2, 5), on_drops=st.booleans())
    def subscribe_a_resender(self, every: int, on_drops: bool) -> None:
        """A subscriber that sends again from inside the stream."""
        assert self.stream is not None

        def resend(value: Any) -> None:
            event = value.item.event if on_drops else value.event
            if not isinstance(event, int) or event % every or event in self.resent:
                return
            with self.lock:
                if len(self.resent) > 200:
                    return
                self.resent.add(event)
            self._send()

        (self.stream.dropped if on_drops else self.stream.results).subscribe(resend)

    @rule(every=st.integers(2, 6), on_drops=st.booleans())
    def subscribe_a_failing_subscriber(self, every: int, on_drops: bool) -> None:
        assert self.stream is not None

        def fail(value: Any) -> None:
            event = value.item.event if on_drops else value.event
            if isinstance(event, int) and event % every == 0:
                raise RuntimeError("subscriber bug")

        (self.stream.dropped if on_drops else self.stream.results).subscribe(fail)

    @rule(n=st.integers(1, 40))
    def checkpoint_while_sending(self, n: int) -> None:
        """`quiescent` from outside while another thread sends: nothing enters meanwhile."""
        assert self.stream is not None
        stream = self.stream

        def produce() -> None:
            for _ in range(n):
                self._send()

        def still() -> bool:
            before = stream.metrics().received
            time.sleep(0.002)
            return stream.metrics().received == before

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        assert stream.quiescent(still), "an item was handed over during quiescent()"
        producer.join(WAIT)
        assert not producer.is_alive(), "a producer hung"

    @rule()
    def close(self) -> None:
        assert self.stream is not None
        started = time.perf_counter()
        self.stream.close()
        self.closed = True
        assert time.perf_counter() - started < 1.0, "close() blocked"

    @rule()
    def join_briefly(self) -> None:
        assert self.stream is not None
        try:
            self.stream.join(0.01)
        except Exception:  # the pipeline's error: the stream has failed, which is allowed
            assert self.stream.error is not None

    @precondition(lambda self: self.closed)
    @rule()
    def join_after_close(self) -> None:
        assert self.stream is not None
        self.stream.close()
        try:
            done = self.stream.join(WAIT)
        except Exception:
            done = self.stream.done
        assert done, "join() ran out of time after close: a hang"

    # -- what must hold after every step ------------------------------------------------------
    @invariant()
    def refused_sends_say_why(self) -> None:
        with self.lock:
            assert all(reason in REASONS for reason in self.refused), self.refused

    @invariant()
    def every_accepted_item_ends_exactly_once(self) -> None:
        deadline = time.monotonic() + WAIT
        while True:
            with self.lock:
                accepted = sorted(self.accepted)
                ended = sorted(self.delivered + [d.item.event for d in self.dropped if _is_ours(d)])
            if ended == accepted:
                return
            # In flight on a drain thread: wait (bounded) for it to end; never more than once.
            assert len(set(ended)) == len(ended), "an item ended twice"
            assert set(ended) <= set(accepted), "an item that was never accepted ended"
            assert time.monotonic() < deadline, (
                f"{len(set(accepted) - set(ended))} accepted item(s) never delivered or dropped"
            )
            time.sleep(0.001)

    def teardown(self) -> None:
        stream = self.stream
        if stream is None:
            return
        stream.close()
        try:
            done = stream.join(WAIT)
        except Exception:
            done = stream.done
        assert done, "the stream did not end after close()"
        self.every_accepted_item_ends_exactly_once()
        snap = stream.metrics()
        assert snap.received == len(self.accepted)
        assert snap.received == snap.emitted + snap.dropped
        assert snap.dropped == len(self.dropped)
        assert not stream.send(0, ALLOWED).ok


def _is_ours(record: pfrx.Dropped) -> bool:
    return isinstance(record.item, pfrx.Envelope) and isinstance(record.item.event, int)


StreamChaos.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_stream_chaos = pytest.mark.threads(pytest.mark.timeout(600)(StreamChaos.TestCase))
