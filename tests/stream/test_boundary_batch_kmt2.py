"""Issue 12: the stream's `Boundary` on the batch path (a drain's turn handed on as one list),
stated exactly: what it holds while downstream takes the list, what it reports when the
stream has stopped or downstream raises, and what it leaves behind."""

from __future__ import annotations

import threading
from typing import Any

import reactivex
from reactivex import abc
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import Prepared, fuse, subscribe_with_batches
from pfrx.stream import StageError, Stream
from pfrx.stream._boundary import NOTHING, Boundary, Switch

CTX = pfrx.Context("alice")


class _Probe:
    """A boundary over a source that hands lists, with what it reported recorded."""

    def __init__(self) -> None:
        self.observers: list[Any] = []
        self.switch = Switch()
        self.lost: list[Any] = []
        self.raised: list[tuple[Boundary, Any, Exception]] = []
        self.changed = 0
        self.failure = RuntimeError("signalled downstream")

        def subscribe(observer: abc.ObserverBase[Any], _scheduler: Any = None) -> Any:
            self.observers.append(observer)
            return lambda: None

        self.boundary = Boundary(
            reactivex.create(subscribe),
            2,
            self.switch,
            self.lost.append,
            self._raised,
            self._changed,
        )

    def _raised(self, boundary: Boundary, item: Any, error: Exception) -> Exception:
        self.raised.append((boundary, item, error))
        return self.failure

    def _changed(self) -> None:
        self.changed += 1

    def subscribe(
        self,
        on_batch: Any,
        on_error: Any = None,
        on_next: Any = None,
    ) -> abc.DisposableBase:
        """Subscribe downstream of the boundary, taking lists with ``on_batch``."""
        return subscribe_with_batches(
            self.boundary,
            on_next or (lambda value: None),
            on_error or (lambda error: None),
            lambda: None,
            None,
            on_batch,
        )

    def hand(self, values: list[Any]) -> None:
        """What a drain does with a turn: hand the list on at once."""
        [observer] = self.observers
        observer.on_batch(values)


def test_a_list_passes_whole_with_its_thread_and_the_list_in_hand() -> None:
    probe = _Probe()
    boundary = probe.boundary
    seen: list[tuple[list[Any], int | None, list[Any], Any]] = []
    probe.subscribe(
        lambda values: seen.append((values, boundary.thread, boundary.batch, boundary.current))
    )
    turn = ["a", "b", None]
    probe.hand(turn)
    assert seen == [(turn, threading.get_ident(), turn, NOTHING)]
    assert seen[0][0] is turn and seen[0][2] is turn
    # idle again: no list in hand, no thread, nothing reported
    assert boundary.batch == []
    assert boundary.take_batch() == []
    assert boundary.thread is None
    assert (probe.lost, probe.raised, probe.changed) == ([], [], 0)


def test_the_list_in_hand_is_handed_out_once() -> None:
    probe = _Probe()
    boundary = probe.boundary
    taken: list[Any] = []
    probe.subscribe(lambda values: taken.extend([boundary.take_batch(), boundary.take_batch()]))
    probe.hand([1, 2])
    assert taken == [[1, 2], []]


def test_a_stopped_stream_loses_each_item_of_a_list_that_reaches_the_boundary() -> None:
    probe = _Probe()
    seen: list[Any] = []
    probe.subscribe(seen.append)
    probe.switch.stopped = True
    probe.hand(["late", 0, None])
    assert seen == []
    assert probe.lost == ["late", 0, None]
    assert probe.boundary.thread is None
    assert probe.raised == []


def test_downstream_raising_on_a_list_loses_each_item_and_signals_the_failure() -> None:
    probe = _Probe()
    boundary = probe.boundary
    error = ValueError("operator bug")
    errors: list[Exception] = []

    def broken(values: list[Any]) -> None:
        raise error

    probe.subscribe(broken, errors.append)
    probe.hand(["x", "y"])  # does not raise to the drain
    assert probe.lost == ["x", "y"]
    assert len(probe.raised) == 1
    by, item, raised = probe.raised[0]
    assert by is boundary and item is NOTHING and raised is error
    assert errors == [probe.failure]
    assert boundary.batch == []
    assert boundary.thread is None


def test_a_list_partly_reported_before_downstream_raised_loses_only_what_is_left() -> None:
    probe = _Probe()
    boundary = probe.boundary

    def reported_then_raise(values: list[Any]) -> None:
        assert boundary.take_batch() == values  # e.g. the stream reported them at its finish
        raise ValueError("late")

    probe.subscribe(reported_then_raise)
    probe.hand(["x", "y"])
    assert probe.lost == []
    assert [item for _, item, _ in probe.raised] == [NOTHING]


def test_a_downstream_whose_on_error_raises_too_does_not_raise_to_the_drain() -> None:
    probe = _Probe()

    def broken(values: list[Any]) -> None:
        raise ValueError("operator bug")

    def broken_error(error: Exception) -> None:
        raise RuntimeError("on_error broken too")

    probe.subscribe(broken, broken_error)
    probe.hand(["x"])
    assert probe.lost == ["x"]
    assert len(probe.raised) == 1
    assert probe.boundary.thread is None


def test_a_list_handed_on_after_the_end_reports_the_change_when_done() -> None:
    probe = _Probe()
    probe.subscribe(lambda values: None)
    probe.boundary.ended = True  # e.g. disposed while this list was on its way
    probe.hand(["x"])
    assert probe.changed == 1
    assert probe.lost == []


# -- in a stream: a drain's turn meeting a link that breaks on lists ---------------------------


def _breaking_on_lists() -> Any:
    """A link that passes items on one by one, and breaks (an operator bug) on a list."""

    def link(_scheduler: Any) -> Prepared:
        def wire(forward: Any) -> Any:
            return forward

        def pass_batch(forward: Any) -> Any:
            def on_batch(values: list[Any]) -> None:
                raise RuntimeError("list bug")

            return on_batch

        return Prepared(wire, pass_batch=pass_batch)

    return fuse(link)


def test_a_turn_whose_downstream_breaks_is_one_drop_per_event_and_fails_the_stream() -> None:
    s = TestScheduler()
    stream = Stream(pf.backpressure("block", batch_size=100), _breaking_on_lists(), scheduler=s)
    log: list[Any] = []
    stream.results.subscribe(
        lambda env: log.append(("result", env.event)),
        lambda error: log.append(("error", type(error).__name__, str(error.__cause__ or error))),
        lambda: log.append(("completed",)),
    )
    stream.dropped.subscribe(lambda d: log.append(("drop", d.item.event, d.reason, d.operator)))
    for event in (1, 2, 3):
        assert stream.send(event, CTX).ok
    s.advance_to(1.0)  # the drain hands [1, 2, 3] on at once
    assert log[:3] == [
        ("drop", 1, "failed", "stream"),
        ("drop", 2, "failed", "stream"),
        ("drop", 3, "failed", "stream"),
    ]
    assert [entry[:2] for entry in log[3:]] == [("error", "StageError")]
    assert stream.state == "failed"
    assert isinstance(stream.error, StageError)
    assert "list bug" in str(stream.error)
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (3, 0, 3, 1)
    assert dict(snap.drops_by_reason) == {"failed": 3}
    assert stream.send(4, CTX) == pfrx.SendResult(False, "failed")


def test_an_empty_send_many_hands_nothing_over() -> None:
    s = TestScheduler()
    stream = Stream(pf.backpressure("block", batch_size=100), pf.metrics_tap(), scheduler=s)
    seen: list[Any] = []
    stream.results.subscribe(seen.append)
    assert stream.send_many([], CTX) == []
    s.advance_to(1.0)
    assert seen == []
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (0, 0, 0, 0)
    assert stream.state == "open"
