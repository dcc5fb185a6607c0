"""The boundary's observer of the operator before it (`_Listener`), stated exactly.

As RxPY's auto-detaching observer: nothing passes after a terminal notification, and a
subscribe that raises signals the error. Unlike it, once the stream lets go (dispose), what
the operator still hands on is reported lost (one item, or each item of a list), never
swallowed: a stream that fails while another thread is inside an operator sees it.
"""

from __future__ import annotations

from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from pfrx.operators._shared import subscribe_with_batches
from pfrx.stream._boundary import NOTHING, Boundary, Switch


class _Source:
    """A raw operator output whose observer the test drives by hand."""

    def __init__(self) -> None:
        self.observer: Any = None
        self.disposed = 0

    def subscribe(self, observer: abc.ObserverBase[Any], scheduler: Any = None) -> Any:
        self.observer = observer
        return Disposable(self._dispose)

    def _dispose(self) -> None:
        self.disposed += 1


def _boundary(source: Observable[Any]) -> tuple[Boundary, list[Any], list[int]]:
    lost: list[Any] = []
    changed: list[int] = []

    def raised(_boundary: Boundary, _item: Any, error: Exception) -> Exception:
        return error

    boundary = Boundary(source, 0, Switch(), lost.append, raised, lambda: changed.append(1))
    return boundary, lost, changed


def _subscribe(boundary: Boundary, with_batches: bool = False) -> tuple[list[Any], Any]:
    seen: list[Any] = []
    subscription = subscribe_with_batches(
        boundary,
        seen.append,
        lambda e: seen.append(("error", e)),
        lambda: seen.append("completed"),
        None,
        (lambda values: seen.append(("list", values))) if with_batches else None,
    )
    return seen, subscription


def test_items_pass_until_disposed_then_each_is_reported_lost() -> None:
    raw = _Source()
    boundary, lost, _ = _boundary(Observable(raw.subscribe))
    seen, subscription = _subscribe(boundary)
    raw.observer.on_next("a")
    subscription.dispose()
    assert raw.disposed == 1  # the operator was let go of
    raw.observer.on_next("late")  # what it still hands on: reported, not swallowed
    raw.observer.on_next("later")
    raw.observer.on_completed()  # nothing passes after the dispose
    assert seen == ["a"]
    assert lost == ["late", "later"]


def test_a_list_handed_on_after_the_dispose_is_reported_item_by_item() -> None:
    raw = _Source()
    boundary, lost, _ = _boundary(Observable(raw.subscribe))
    seen, subscription = _subscribe(boundary, with_batches=True)
    raw.observer.on_batch(["a", "b"])
    subscription.dispose()
    raw.observer.on_batch(["c", "d"])
    assert seen == [("list", ["a", "b"])]
    assert lost == ["c", "d"]


def test_nothing_passes_after_completion_nor_is_reported() -> None:
    raw = _Source()
    boundary, lost, _ = _boundary(Observable(raw.subscribe))
    seen, _subscription = _subscribe(boundary, with_batches=True)
    raw.observer.on_completed()
    raw.observer.on_next("late")
    raw.observer.on_batch(["x"])
    raw.observer.on_completed()
    assert seen == ["completed"]
    assert lost == []
    assert raw.disposed == 1  # a terminal notification lets go of the operator


def test_nothing_passes_after_an_error_nor_is_reported() -> None:
    raw = _Source()
    boundary, lost, _ = _boundary(Observable(raw.subscribe))
    seen, subscription = _subscribe(boundary, with_batches=True)
    error = KeyError("broken")
    raw.observer.on_error(error)
    raw.observer.on_next("late")
    raw.observer.on_batch(["x"])
    raw.observer.on_error(KeyError("again"))
    subscription.dispose()
    raw.observer.on_next("after the dispose too")
    assert seen == [("error", error)]
    assert lost == []
    assert raw.disposed == 1


def test_a_subscribe_that_raises_signals_the_error_downstream() -> None:
    error = RuntimeError("cannot subscribe")

    def broken(_observer: Any, _scheduler: Any = None) -> Any:
        raise error

    boundary, lost, _ = _boundary(Observable(broken))
    seen, subscription = _subscribe(boundary)
    assert seen == [("error", error)]
    subscription.dispose()
    assert lost == []


def test_a_subscribe_returning_a_function_is_disposed_by_calling_it() -> None:
    calls: list[str] = []

    def subscribe(_observer: Any, _scheduler: Any = None) -> Any:
        return lambda: calls.append("disposed")

    boundary, _, _ = _boundary(Observable(subscribe))
    _, subscription = _subscribe(boundary)
    subscription.dispose()
    assert calls == ["disposed"]


def test_a_source_with_its_own_subscribe_is_subscribed_as_before() -> None:
    # A Subject overrides subscribe: the boundary takes RxPY's observer (deaf once disposed).
    subject: Subject[Any] = Subject()
    boundary, lost, changed = _boundary(subject)
    seen, subscription = _subscribe(boundary)
    subject.on_next("a")
    subscription.dispose()
    subject.on_next("late")
    assert seen == ["a"]
    assert lost == []
    assert boundary.ended and changed


class _Recorder:
    """A boundary over a hand-driven source, recording what it tells the stream."""

    def __init__(self) -> None:
        self.raw = _Source()
        self.switch = Switch()
        self.lost: list[Any] = []
        self.raised: list[tuple[Any, Any, Exception]] = []
        self.failure = RuntimeError("the stream's failure")
        self.boundary = Boundary(
            Observable(self.raw.subscribe), 0, self.switch, self.lost.append, self._raised, _none
        )

    def _raised(self, boundary: Any, item: Any, error: Exception) -> Exception:
        self.raised.append((boundary, item, error))
        return self.failure


def _none() -> None:
    pass


def test_a_list_after_the_stop_is_reported_item_by_item_never_handed_on() -> None:
    probe = _Recorder()
    seen, _ = _subscribe(probe.boundary, with_batches=True)
    probe.switch.stopped = True
    probe.raw.observer.on_batch(["a", "b"])
    assert seen == []
    assert probe.lost == ["a", "b"]
    assert probe.raised == []


def test_a_list_downstream_raises_on_is_reported_and_fails_downstream_once() -> None:
    probe = _Recorder()
    boom = ValueError("downstream broke")
    errors: list[Exception] = []
    during: list[tuple[Any, Any]] = []

    def on_batch(values: list[Any]) -> None:
        during.append((probe.boundary.thread, list(probe.boundary.batch)))
        raise boom

    subscribe_with_batches(
        probe.boundary, lambda _v: None, errors.append, lambda: None, None, on_batch
    )
    probe.raw.observer.on_batch(["a", "b"])
    assert during and during[0][1] == ["a", "b"] and during[0][0] is not None
    assert probe.lost == ["a", "b"]  # each item of the list, once
    assert probe.raised == [(probe.boundary, NOTHING, boom)]
    assert errors == [probe.failure]
    assert probe.boundary.batch == [] and probe.boundary.thread is None


def test_a_downstream_whose_on_error_raises_too_does_not_escape_the_boundary() -> None:
    probe = _Recorder()

    def on_batch(_values: list[Any]) -> None:
        raise ValueError("downstream broke")

    def on_error(_error: Exception) -> None:
        raise KeyError("and its on_error too")

    subscribe_with_batches(probe.boundary, lambda _v: None, on_error, lambda: None, None, on_batch)
    probe.raw.observer.on_batch(["a"])  # nothing escapes: the stream has failed
    assert probe.lost == ["a"]
