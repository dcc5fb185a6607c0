"""Issue 12: ``Publisher.emit_many`` (a drain's turn or a send_many batch published as one
list) stated exactly: who subscribes is read for each value, a list is read as it stands,
and a subscriber that raises inside a list costs nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.metrics import OperatorSnapshot
from pfrx.stream import Stream
from pfrx.stream._publish import Publisher

CTX = pfrx.Context("alice")


class _Failures:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_a_subscriber_joining_mid_list_gets_the_rest_of_it_and_the_first_gets_all() -> None:
    failures = _Failures()
    publisher: Publisher[int] = Publisher("results", failures)
    first: list[int] = []
    late: list[int] = []

    def on_first(value: int) -> None:
        first.append(value)
        if value == 1:
            publisher.subscribe(late.append)

    publisher.subscribe(on_first)
    publisher.emit_many([1, 2, 3, 4])
    assert first == [1, 2, 3, 4]
    assert late == [2, 3, 4]
    publisher.emit_many([5])
    assert (first[-1], late[-1]) == (5, 5)
    assert failures.count == 0


def test_a_subscriber_leaving_mid_list_gets_nothing_more_and_the_other_gets_all() -> None:
    failures = _Failures()
    publisher: Publisher[int] = Publisher("results", failures)
    leaving: list[int] = []
    staying: list[int] = []
    subscriptions: list[Any] = []

    def on_leaving(value: int) -> None:
        leaving.append(value)
        if value == 2:
            subscriptions[0].dispose()

    subscriptions.append(publisher.subscribe(on_leaving))
    publisher.subscribe(staying.append)
    publisher.emit_many([1, 2, 3])
    assert leaving == [1, 2]
    assert staying == [1, 2, 3]


@pytest.mark.parametrize("subscribers", [1, 2])
def test_a_list_is_read_as_it_stands_when_each_value_is_reached(subscribers: int) -> None:
    # The list is not copied first: whatever the number of subscribers, a value added to it
    # during the delivery (by a subscriber) is delivered in its turn.
    publisher: Publisher[int] = Publisher("results", _Failures())
    values = [1, 2]
    seen: list[list[int]] = [[] for _ in range(subscribers)]

    def growing(value: int) -> None:
        seen[0].append(value)
        if value == 1:
            values.append(99)

    publisher.subscribe(growing)
    for other in seen[1:]:
        publisher.subscribe(other.append)
    publisher.emit_many(values)
    assert seen == [[1, 2, 99]] * subscribers


def test_an_empty_list_delivers_nothing_and_counts_nothing() -> None:
    failures = _Failures()
    publisher: Publisher[int] = Publisher("results", failures)
    seen: list[int] = []
    publisher.subscribe(seen.append)
    publisher.emit_many([])
    publisher.emit_many([7])
    assert seen == [7]
    assert failures.count == 0
    assert publisher.thread is None


def test_a_results_subscriber_raising_inside_a_drains_list_costs_nothing_else() -> None:
    s = TestScheduler()
    stream = Stream(
        pf.backpressure("block", batch_size=100), pf.metrics_tap(name="tap"), scheduler=s
    )
    raising: list[int] = []
    calm: list[int] = []

    def fragile(envelope: pfrx.Envelope) -> None:
        raising.append(envelope.event)
        if envelope.event == 2:
            raise ValueError("subscriber bug")

    stream.results.subscribe(fragile)
    stream.results.subscribe(lambda envelope: calm.append(envelope.event))
    for event in (1, 2, 3, 4):
        assert stream.send(event, CTX).ok
    assert (raising, calm) == ([], [])  # buffered until the drain runs
    s.advance_to(1.0)
    assert raising == [1, 2, 3, 4]
    assert calm == [1, 2, 3, 4]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (4, 4, 0, 1)
    assert snap.operators[-1] == OperatorSnapshot("tap", 4, 4, 0, 0)
    assert snap.error_rate == 0.25
    assert stream.state == "open"
    stream.close()
    s.advance_to(2.0)
    assert stream.state == "done"
