"""capability_filter is a FILTER link: a send_many batch may run through it as one list.

A source that orders the drops a batch causes (a stream's input, ``orders_batch_drops``)
feeding a buffer that has room for a whole list is offered ``on_batch`` and ``batch_room``
through the filter, with or without metrics; what passes goes on as one list. With an
``on_drop`` of its own (its drops bypass the stream's ordering) it is not.
"""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import batch_entry, batch_room_of, subscribe_with_batches

READ = pfrx.Capability("file", "read", "/docs")


class _OrderedInput(Observable[Any]):
    """A stand-in for a stream's input: orders batch drops, keeps its observer."""

    orders_batch_drops = True

    def __init__(self) -> None:
        super().__init__()
        self.observer: Any = None

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self.observer = observer
        return Disposable()


def _envelope(event: str, *held: pfrx.Capability) -> pfrx.Envelope:
    return pfrx.Envelope(event, pfrx.Context("alice", "s1", list(held)), 0.0)


def _wire(**kwargs: Any) -> tuple[_OrderedInput, list[Any], list[int]]:
    source = _OrderedInput()
    lists: list[Any] = []
    asked: list[int] = []

    def room(n: int) -> bool:
        asked.append(n)
        return True

    subscribe_with_batches(
        source.pipe(pf.capability_filter(READ, **kwargs)),
        lambda value: lists.append(("item", value)),
        lambda error: lists.append(("error", error)),
        lambda: lists.append("completed"),
        None,
        lists.append,
        room,
    )
    return source, lists, asked


@pytest.mark.parametrize("with_metrics", [False, True])
def test_a_batch_goes_through_the_filter_as_one_list(with_metrics: bool) -> None:
    kwargs: dict[str, Any] = {}
    if with_metrics:
        kwargs["metrics"] = pfrx.StreamMetrics(TestScheduler())
    source, lists, asked = _wire(**kwargs)
    entry = batch_entry(source.observer)
    room = batch_room_of(source.observer)
    assert entry is not None and room is not None
    assert room(3) is True and asked == [3]
    allowed, denied, allowed_too = (
        _envelope("a", READ),
        _envelope("b"),
        _envelope("c", READ),
    )
    if with_metrics:
        entry([allowed, denied, allowed_too])
        assert kwargs["metrics"].snapshot().dropped == 1
    else:  # nobody observes the drop: it is said so
        with pytest.warns(pfrx.UnobservedDropWarning, match="insufficient_capabilities"):
            entry([allowed, denied, allowed_too])
    assert lists == [[allowed, allowed_too]]


def test_with_an_on_drop_of_its_own_no_batch_is_offered() -> None:
    source, _, _ = _wire(on_drop=lambda _record: None)
    assert batch_entry(source.observer) is None
    assert batch_room_of(source.observer) is None
