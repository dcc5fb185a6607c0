"""Issue 12: the results/drops fan-out (`Publisher`) stated exactly: subscribers of every
kind, late subscribers, unsubscribing, re-entrant notifications, the delivering thread,
subscribers that raise (logged, counted) and a producer waiting for room."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from loguru import logger
from reactivex import Observable
from reactivex.observer import Observer

from pfrx.stream._publish import MAX_WAIT, Publisher

from ._helpers import bounded


class _Duck:
    """Not an ``ObserverBase``, but has the three methods: subscribed as an observer."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_next(self, value: Any) -> None:
        self.seen.append(("next", value))

    def on_error(self, error: Exception) -> None:
        self.seen.append(("error", error))

    def on_completed(self) -> None:
        self.seen.append(("completed",))


class _Counted:
    def __init__(self) -> None:
        self.failed = 0

    def __call__(self) -> None:
        self.failed += 1


@pytest.fixture
def lines() -> Iterator[list[str]]:
    caught: list[str] = []
    handler = logger.add(
        lambda m: caught.append(f"{m.record['level'].name} {m.record['message']}"), level="DEBUG"
    )
    logger.enable("pfrx")
    try:
        yield caught
    finally:
        logger.disable("pfrx")
        logger.remove(handler)


def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        threading.Event().wait(0.001)


# -- subscribers of every kind ------------------------------------------------------------------


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_an_observer_object_gets_all_three_notifications(end: str) -> None:
    pub: Publisher[Any] = Publisher("results", _Counted())
    duck = _Duck()
    seen: list[Any] = []
    pub.subscribe(duck)
    pub.subscribe(
        Observer(
            lambda v: seen.append(("next", v)),
            lambda e: seen.append(("error", e)),
            lambda: seen.append(("completed",)),
        )
    )
    pub.emit(1)
    error = ValueError("x")
    if end == "complete":
        pub.complete()
        last: tuple[Any, ...] = ("completed",)
    else:
        pub.fail(error)
        last = ("error", error)
    assert duck.seen == [("next", 1), last]
    assert seen == [("next", 1), last]


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_subscribing_through_the_plain_observable_path_works_the_same(end: str) -> None:
    pub: Publisher[Any] = Publisher("results", _Counted())
    seen: list[Any] = []
    Observable.subscribe(
        pub,
        lambda v: seen.append(("next", v)),
        lambda e: seen.append(("error", e)),
        lambda: seen.append(("completed",)),
    )
    pub.emit("a")
    error = KeyError("k")
    pub.complete() if end == "complete" else pub.fail(error)
    assert seen == [("next", "a"), ("completed",) if end == "complete" else ("error", error)]


def test_a_late_subscriber_gets_the_end_at_once() -> None:
    done: Publisher[Any] = Publisher("results", _Counted())
    done.complete()
    failed: Publisher[Any] = Publisher("results", _Counted())
    error = RuntimeError("gone")
    failed.fail(error)
    seen: list[Any] = []
    done.subscribe(seen.append, lambda e: seen.append(("error", e)), lambda: seen.append("done"))
    failed.subscribe(seen.append, lambda e: seen.append(("error", e)), lambda: seen.append("c"))
    done.emit("after")
    assert seen == ["done", ("error", error)]
    assert done.terminated and failed.terminated


def test_unsubscribing_stops_only_that_subscriber() -> None:
    pub: Publisher[Any] = Publisher("results", _Counted())
    first: list[Any] = []
    second: list[Any] = []
    subscription = pub.subscribe(first.append)
    pub.subscribe(second.append)
    pub.emit(1)
    subscription.dispose()
    pub.emit(2)
    assert (first, second) == ([1], [1, 2])
    assert pub.has_observers


# -- re-entrant notifications and the delivering thread -----------------------------------------


def test_a_re_entrant_emit_is_delivered_after_the_current_item_in_order() -> None:
    pub: Publisher[Any] = Publisher("results", _Counted())
    seen: list[Any] = []

    def subscriber(value: Any) -> None:
        seen.append(value)
        if value == "a":
            pub.emit("b")
            pub.emit(None)
            seen.append("a done")

    pub.subscribe(subscriber)
    bounded(lambda: pub.emit("a"), 5.0)
    assert seen == ["a", "a done", "b", None]


def test_a_subscriber_may_end_the_publisher_re_entrantly() -> None:
    pub: Publisher[Any] = Publisher("results", _Counted())
    seen: list[Any] = []

    def subscriber(value: Any) -> None:
        seen.append(value)
        pub.complete()

    pub.subscribe(subscriber, on_completed=lambda: seen.append("completed"))
    bounded(lambda: pub.emit("a"), 5.0)
    assert seen == ["a", "completed"]


def test_the_delivering_thread_is_known_while_delivering_and_only_then() -> None:
    pub: Publisher[Any] = Publisher("results", _Counted())
    me = threading.get_ident()
    during: list[Any] = []
    pub.subscribe(
        lambda v: during.append(("next", pub.thread == me)),
        on_completed=lambda: during.append(("completed", pub.thread == me)),
    )
    assert pub.thread is None
    pub.emit(1)
    assert pub.thread is None
    pub.complete()
    assert pub.thread is None
    assert during == [("next", True), ("completed", True)]


# -- subscribers that raise ---------------------------------------------------------------------


def test_a_subscriber_that_raises_is_logged_counted_and_still_fed(lines: list[str]) -> None:
    counted = _Counted()
    pub: Publisher[Any] = Publisher("results", counted)
    seen: list[Any] = []
    other: list[Any] = []

    def broken(value: Any) -> None:
        seen.append(value)
        raise RuntimeError("subscriber bug")

    pub.subscribe(broken)
    pub.subscribe(other.append)
    pub.emit(1)
    pub.emit(2)
    assert (seen, other) == ([1, 2], [1, 2])
    assert counted.failed == 2
    assert lines == ["ERROR a subscriber of results raised; the stream goes on"] * 2


def test_a_subscriber_raising_at_the_end_is_logged_and_counted(lines: list[str]) -> None:
    counted = _Counted()
    pub: Publisher[Any] = Publisher("dropped", counted)
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("bug at the end")

    pub.subscribe(on_completed=broken)
    pub.subscribe(on_completed=lambda: seen.append("second"))
    pub.complete()
    assert seen == ["second"]
    assert counted.failed == 1
    assert lines == ["ERROR a subscriber of dropped raised at the end"]


def test_a_subscriber_without_on_error_is_not_counted_and_the_rest_are_told(
    lines: list[str],
) -> None:
    counted = _Counted()
    pub: Publisher[Any] = Publisher("results", counted)
    seen: list[Any] = []
    error = ValueError("pipeline error")
    pub.subscribe(lambda v: None)  # no on_error: RxPY's default re-raises the error
    pub.subscribe(on_error=lambda e: seen.append(e))
    pub.fail(error)
    assert seen == [error]
    assert counted.failed == 0
    assert lines == []


def test_an_on_error_raising_another_exception_is_logged_and_counted(lines: list[str]) -> None:
    counted = _Counted()
    pub: Publisher[Any] = Publisher("results", counted)

    def broken(error: Exception) -> None:
        raise RuntimeError("handler bug")

    pub.subscribe(on_error=broken)
    pub.fail(ValueError("pipeline error"))
    assert counted.failed == 1
    assert lines == ["ERROR a subscriber of results raised at the end"]


# -- a producer waiting for room ------------------------------------------------------------------


class _Blocked:
    """A publisher whose only subscriber holds the first item until ``gate`` opens."""

    def __init__(self, limit: int) -> None:
        self.pub: Publisher[Any] = Publisher("dropped", _Counted())
        self.pub.limit = limit
        self.gate = threading.Event()
        self.holding = threading.Event()
        self.seen: list[Any] = []
        self.pub.subscribe(self._take)
        self.delivering = threading.Thread(target=self.pub.emit, args=("hold",), daemon=True)
        self.delivering.start()
        assert self.holding.wait(10)
        self.returned = 0

    def _take(self, value: Any) -> None:
        self.seen.append(value)
        if value == "hold":
            self.holding.set()
            assert self.gate.wait(10)

    def produce(self, count: int) -> threading.Thread:
        def run() -> None:
            for n in range(count):
                self.pub.emit(n)
                self.returned += 1

        producer = threading.Thread(target=run, daemon=True)
        producer.start()
        return producer


def test_a_producer_waits_once_more_than_limit_notifications_are_queued() -> None:
    blocked = _Blocked(limit=4)
    producer = blocked.produce(7)
    bounded(lambda: _until(lambda: blocked.pub._waiters == 1), 5.0)
    # items 0-3 were queued without waiting; item 4 (the fifth queued) waits for room
    assert blocked.returned == 4
    assert producer.is_alive()
    blocked.gate.set()
    producer.join(10)
    blocked.delivering.join(10)
    assert blocked.seen == ["hold", 0, 1, 2, 3, 4, 5, 6]
    assert blocked.pub._waiters == 0


def test_a_waiting_producer_gives_up_after_max_wait_while_delivery_is_stuck() -> None:
    assert MAX_WAIT == 1.0
    blocked = _Blocked(limit=2)
    producer = blocked.produce(3)
    producer.join(MAX_WAIT + 3.0)
    assert not producer.is_alive()  # the subscriber still holds "hold"
    assert blocked.returned == 3
    assert blocked.pub._waiters == 0
    blocked.gate.set()
    blocked.delivering.join(10)
    assert blocked.seen == ["hold", 0, 1, 2]
