"""The results fan-out taking a list at once (``Publisher.emit_many``, used by send_many)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pfrx.stream._publish import Publisher

pytestmark = pytest.mark.threads


def publisher() -> tuple[Publisher[Any], list[Exception]]:
    failures: list[Exception] = []
    return Publisher("results", lambda: failures.append(RuntimeError())), failures


def test_emit_many_delivers_in_order_to_every_subscriber() -> None:
    fan, failures = publisher()
    seen: dict[str, list[Any]] = {"a": [], "b": []}
    fan.subscribe(seen["a"].append)
    fan.subscribe(seen["b"].append)
    fan.emit_many([1, 2, 3])
    fan.emit(4)
    assert seen == {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]}
    assert failures == []


def test_a_notification_from_inside_emit_many_comes_after_the_whole_list() -> None:
    fan, _ = publisher()
    seen: list[Any] = []

    def watch(value: Any) -> None:
        seen.append(value)
        if value == 1:
            fan.emit(99)  # re-entrant: queued, never nested

    fan.subscribe(watch)
    fan.emit_many([1, 2, 3])
    assert seen == [1, 2, 3, 99]


def test_emit_many_while_another_thread_delivers_is_queued_and_delivered_after() -> None:
    fan, _ = publisher()
    seen: list[Any] = []
    inside, release = threading.Event(), threading.Event()

    def slow(value: Any) -> None:
        if value == 0:
            inside.set()
            release.wait(5.0)
        seen.append(value)

    fan.subscribe(slow)
    first = threading.Thread(target=fan.emit, args=(0,), daemon=True)
    first.start()
    assert inside.wait(5.0)
    fan.emit_many([1, 2, 3])  # the other thread is delivering: queued, returns at once
    assert seen == []
    release.set()
    first.join(5.0)
    assert seen == [0, 1, 2, 3]


def test_a_subscriber_raising_in_emit_many_is_counted_and_misses_nothing_else() -> None:
    fan, failures = publisher()
    seen: list[Any] = []

    def picky(value: Any) -> None:
        if value == 2:
            raise ValueError("subscriber bug")
        seen.append(value)

    fan.subscribe(picky)
    other: list[Any] = []
    fan.subscribe(other.append)
    fan.emit_many([1, 2, 3])
    assert seen == [1, 3] and other == [1, 2, 3]
    assert len(failures) == 1


def test_nothing_is_delivered_after_completion_and_late_subscribers_get_the_end() -> None:
    fan, _ = publisher()
    seen: list[Any] = []
    ends: list[str] = []
    fan.subscribe(seen.append, on_completed=lambda: ends.append("done"))
    fan.emit_many([1])
    fan.complete()
    fan.emit_many([2, 3])
    fan.emit(4)
    late: list[str] = []
    fan.subscribe(seen.append, on_completed=lambda: late.append("done"))
    assert seen == [1] and ends == ["done"] and late == ["done"]
