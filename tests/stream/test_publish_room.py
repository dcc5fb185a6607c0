"""Issue 12: the results/drops fan-out's list path (`Publisher.emit_many`) and a producer waiting
for room, stated exactly: which producer waits (only one other than the delivering thread, only
once more than ``limit`` notifications wait), until when (the queue is down to half), and what a
producer does when the delivery it waited on was cut short by a ``BaseException``.

A producer thread "waits" when it calls ``threading``'s ``wait``: each producer here runs under a
profile hook that records that call, so the test knows whether it waited without any sleep."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from pfrx.stream import _publish
from pfrx.stream._publish import Publisher

from ._helpers import bounded

pytestmark = pytest.mark.threads


class Abort(BaseException):
    """What a Ctrl-C looks like to a subscriber: not an ``Exception``, so not swallowed."""


class Producer:
    """Runs ``action`` on its own thread and records whether it waited and whether it returned."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.waited = threading.Event()
        #: The timeout of each of its waits.
        self.timeouts: list[float | None] = []
        self.returned = threading.Event()
        self._action = action
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_name == "wait" and code.co_filename == threading.__file__:
            self.timeouts.append(frame.f_locals.get("timeout"))
            self.waited.set()

    def _run(self) -> None:
        sys.setprofile(self._profile)
        try:
            self._action()
        finally:
            sys.setprofile(None)
            self.returned.set()

    def settle(self) -> None:
        """Until the producer either waits or has returned."""
        bounded(lambda: _until(lambda: self.waited.is_set() or self.returned.is_set()), 5.0)


def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        threading.Event().wait(0.001)


class Held:
    """A publisher (``limit`` 4) whose subscriber holds ``"hold"`` on another thread until
    ``gate`` opens, then runs ``then(value)`` for every later value."""

    def __init__(self, then: Callable[[Any], None] = lambda value: None) -> None:
        self.pub: Publisher[Any] = Publisher("dropped", lambda: None)
        self.pub.limit = 4
        self.gate = threading.Event()
        self.holding = threading.Event()
        self.seen: list[Any] = []
        self.ends: list[BaseException] = []
        self._then = then
        self.pub.subscribe(self._take)
        self.delivering = threading.Thread(target=self._deliver, daemon=True)
        self.delivering.start()
        assert self.holding.wait(10)

    def _deliver(self) -> None:
        try:
            self.pub.emit("hold")
        except Abort as abort:
            self.ends.append(abort)

    def _take(self, value: Any) -> None:
        self.seen.append(value)
        if value == "hold":
            self.holding.set()
            assert self.gate.wait(10)
        self._then(value)

    def finish(self, *producers: Producer) -> None:
        self.gate.set()
        self.delivering.join(10)
        for producer in producers:
            producer.thread.join(10)
            assert not producer.thread.is_alive()


@pytest.fixture
def long_max_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # A producer that waits when it should not is then caught waiting, not let go after 1 s.
    monkeypatch.setattr(_publish, "MAX_WAIT", 60.0)


def test_emit_many_filling_the_queue_exactly_to_limit_returns_without_waiting(
    long_max_wait: None,
) -> None:
    held = Held()
    producer = Producer(lambda: held.pub.emit_many([0, 1, 2, 3]))  # 4 queued == limit
    producer.settle()
    assert producer.returned.is_set()
    assert not producer.waited.is_set()
    held.finish(producer)
    assert held.seen == ["hold", 0, 1, 2, 3]


def test_emit_many_past_limit_waits_until_the_queue_is_down_to_half(long_max_wait: None) -> None:
    returned_when: dict[Any, bool] = {}

    def then(value: Any) -> None:
        if value == 2:
            # 0, 1 and 2 taken: 2 (= limit // 2) left, so the producer is let go now, while
            # the delivering thread still delivers (it waits here for the producer to return).
            returned_when[value] = producer.returned.wait(10)
        elif value != "hold":
            returned_when[value] = producer.returned.is_set()

    held = Held(then)
    producer = Producer(lambda: held.pub.emit_many([0, 1, 2, 3, 4]))  # 5 queued > limit
    producer.settle()
    assert producer.waited.is_set()
    assert not producer.returned.is_set()
    held.finish(producer)
    assert held.seen == ["hold", 0, 1, 2, 3, 4]
    assert returned_when == {0: False, 1: False, 2: True, 3: True, 4: True}


def test_the_delivering_thread_itself_never_waits_for_room(long_max_wait: None) -> None:
    pub: Publisher[Any] = Publisher("results", lambda: None)
    pub.limit = 2
    seen: list[Any] = []

    def subscriber(value: Any) -> None:
        seen.append(value)
        if value == "first":
            pub.emit_many(["a", "b", "c", "d"])  # re-entrant: queued past limit, no waiting

    pub.subscribe(subscriber)
    producer = Producer(lambda: pub.emit("first"))
    bounded(lambda: producer.thread.join(5.0), 6.0)
    assert not producer.waited.is_set()
    assert seen == ["first", "a", "b", "c", "d"]


def test_a_producer_whose_deliverer_was_aborted_delivers_what_waits_itself(
    long_max_wait: None,
) -> None:
    def then(value: Any) -> None:
        if value == "hold":
            raise Abort  # the delivering thread is interrupted with items still queued

    held = Held(then)
    producer = Producer(lambda: held.pub.emit_many([0, 1, 2, 3, 4]))
    producer.settle()
    assert producer.waited.is_set()
    held.gate.set()
    held.delivering.join(10)
    assert len(held.ends) == 1
    # Nobody delivers any more: the waiting producer notices and delivers the queue itself,
    # within 0.1 s: it looks again at least that often (MAX_WAIT being 60 s here).
    producer.thread.join(10)
    assert not producer.thread.is_alive()
    assert held.seen == ["hold", 0, 1, 2, 3, 4]
    assert producer.timeouts and all(t is not None and 0 < t <= 0.1 for t in producer.timeouts)


@pytest.mark.parametrize("how", ["emit", "emit_many"])
def test_a_notification_after_an_aborted_delivery_comes_after_what_was_queued_before(
    how: str,
) -> None:
    pub: Publisher[Any] = Publisher("results", lambda: None)
    seen: list[Any] = []

    def subscriber(value: Any) -> None:
        seen.append(value)
        if value == "a":
            pub.emit("b")  # queued behind "a"
            raise Abort

    pub.subscribe(subscriber)
    with pytest.raises(Abort):
        pub.emit("a")
    assert seen == ["a"]  # "b" is still queued: nobody is delivering
    if how == "emit":
        pub.emit("c")
        assert seen == ["a", "b", "c"]
    else:
        pub.emit_many(["c", "d"])
        assert seen == ["a", "b", "c", "d"]


def test_emit_many_names_its_thread_as_the_delivering_one_only_while_delivering() -> None:
    pub: Publisher[Any] = Publisher("results", lambda: None)
    me = threading.get_ident()
    during: list[tuple[Any, bool]] = []
    pub.subscribe(lambda value: during.append((value, pub.thread == me)))
    assert pub.thread is None
    pub.emit_many([1, 2])
    assert pub.thread is None
    assert during == [(1, True), (2, True)]
