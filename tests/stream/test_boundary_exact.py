"""Issue 12: the stream's `Boundary`, stated exactly: what it hands on, tracks and reports."""

from __future__ import annotations

import threading
from typing import Any

from reactivex.subject import Subject

from pfrx.stream._boundary import NOTHING, Boundary, Switch


class _Probe:
    """A boundary over a Subject, with what it reported to the stream recorded."""

    def __init__(self) -> None:
        self.source: Subject[Any] = Subject()
        self.switch = Switch()
        self.lost: list[Any] = []
        self.raised: list[tuple[Boundary, Any, Exception]] = []
        self.changed = 0
        self.failure = RuntimeError("signalled downstream")
        self.boundary = Boundary(
            self.source, 3, self.switch, self.lost.append, self._raised, self._changed
        )

    def _raised(self, boundary: Boundary, item: Any, error: Exception) -> Exception:
        self.raised.append((boundary, item, error))
        return self.failure

    def _changed(self) -> None:
        self.changed += 1


def test_a_new_boundary_is_idle_and_not_ended() -> None:
    probe = _Probe()
    boundary = probe.boundary
    assert boundary.index == 3
    assert boundary.ended is False
    assert boundary.thread is None
    assert boundary.current is NOTHING
    assert boundary.take_current() is NOTHING


def test_items_pass_through_with_thread_and_item_in_hand() -> None:
    probe = _Probe()
    boundary = probe.boundary
    seen: list[tuple[Any, int | None, Any]] = []
    boundary.subscribe(lambda v: seen.append((v, boundary.thread, boundary.current)))
    probe.source.on_next("a")
    probe.source.on_next(None)
    me = threading.get_ident()
    assert seen == [("a", me, "a"), (None, me, None)]
    # idle again: nothing in hand, no thread, and no change reported before it ends
    assert boundary.thread is None
    assert boundary.current is NOTHING
    assert boundary.take_current() is NOTHING
    assert probe.changed == 0
    assert boundary.ended is False


def test_take_current_hands_the_item_out_once() -> None:
    probe = _Probe()
    boundary = probe.boundary
    taken: list[Any] = []
    boundary.subscribe(lambda v: taken.extend([boundary.take_current(), boundary.take_current()]))
    probe.source.on_next("x")
    assert taken == ["x", NOTHING]


def test_a_stopped_stream_loses_what_reaches_the_boundary() -> None:
    probe = _Probe()
    seen: list[Any] = []
    probe.boundary.subscribe(seen.append)
    probe.switch.stopped = True
    probe.source.on_next("late")
    probe.source.on_next(0)
    assert seen == []
    assert probe.lost == ["late", 0]
    assert probe.boundary.thread is None


def test_downstream_raising_is_reported_with_the_item_and_signalled() -> None:
    probe = _Probe()
    boundary = probe.boundary
    error = ValueError("operator bug")
    errors: list[Exception] = []

    def broken(value: Any) -> None:
        raise error

    boundary.subscribe(broken, errors.append)
    probe.source.on_next("item")  # does not raise to the caller
    assert probe.raised == [(boundary, "item", error)]
    assert errors == [probe.failure]
    assert boundary.current is NOTHING
    assert boundary.thread is None


def test_an_item_already_blamed_is_reported_as_nothing() -> None:
    probe = _Probe()
    boundary = probe.boundary

    def blamed_then_raise(value: Any) -> None:
        assert boundary.take_current() == value
        raise ValueError("late")

    boundary.subscribe(blamed_then_raise, lambda e: None)
    probe.source.on_next("item")
    assert [item for _, item, _ in probe.raised] == [NOTHING]


def test_a_downstream_whose_on_error_raises_too_does_not_raise_to_the_sender() -> None:
    probe = _Probe()

    def broken(value: Any) -> None:
        raise ValueError("operator bug")

    def broken_error(error: Exception) -> None:
        raise RuntimeError("on_error broken too")

    probe.boundary.subscribe(broken, broken_error)
    probe.source.on_next("item")
    assert [item for _, item, _ in probe.raised] == ["item"]


def test_error_ends_the_boundary_then_reports_the_change() -> None:
    probe = _Probe()
    boundary = probe.boundary
    at_error: list[tuple[Exception, bool, int]] = []
    boundary.subscribe(
        on_error=lambda e: at_error.append((e, boundary.ended, probe.changed)),
    )
    error = KeyError("upstream")
    probe.source.on_error(error)
    assert at_error == [(error, True, 0)]
    assert boundary.ended is True
    # once for the end, once for the subscription disposed after it (Rx auto-detach)
    assert probe.changed == 2


def test_completion_ends_the_boundary_then_reports_the_change() -> None:
    probe = _Probe()
    boundary = probe.boundary
    at_end: list[tuple[bool, int]] = []
    boundary.subscribe(on_completed=lambda: at_end.append((boundary.ended, probe.changed)))
    probe.source.on_completed()
    assert at_end == [(True, 0)]
    assert boundary.ended is True
    assert probe.changed == 2


def test_an_item_handed_over_after_the_end_reports_the_change_when_done() -> None:
    probe = _Probe()
    boundary = probe.boundary
    boundary.subscribe(lambda v: None)
    boundary.ended = True  # e.g. disposed while this item was on its way
    probe.source.on_next("x")
    assert probe.changed == 1


def test_disposing_ends_the_boundary_and_unsubscribes_upstream() -> None:
    probe = _Probe()
    boundary = probe.boundary
    seen: list[Any] = []
    subscription = boundary.subscribe(seen.append)
    assert probe.source.observers
    subscription.dispose()
    assert boundary.ended is True
    assert probe.changed == 1
    assert not probe.source.observers
    probe.source.on_next("after")
    assert seen == []
