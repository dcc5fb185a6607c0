"""Issue 12: what `Stream` itself does on the batch path, stated exactly: the drops of a
batch taken whole (their order, and what a link breaking mid-batch loses), the results a
drain hands back as one list on the thread handing a ``send_many`` over (gathered, published
at the limit), a list meeting a stream that has stopped, and a buffer breaking as it takes
what it gathered."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import FILTER, Prepared, fuse
from pfrx.stream import StageError, Stream

from ._helpers import Ledger

OK = pfrx.SendResult(True)
DOCS = pfrx.CapabilityFamily("file", actions=("read",))
# Holds /docs/0 and /docs/1: an event whose value is 2 modulo 3 is denied.
CTX = pfrx.Context("alice", "s1", [DOCS.read("/docs/0"), DOCS.read("/docs/1")])


def need(event: int) -> pfrx.Capability:
    return DOCS.read(f"/docs/{event % 3}")


def odd_five(event: int, context: pfrx.Context) -> Any:
    return pfrx.Reject("odd_five") if event % 5 == 1 else event


class Log:
    """What a stream says, in the one order a subscriber of both observables sees."""

    def __init__(self, stream: Stream) -> None:
        self.entries: list[Any] = []
        stream.results.subscribe(
            lambda env: self.entries.append(("result", env.event)),
            lambda error: self.entries.append(("error", type(error).__name__)),
            lambda: self.entries.append(("completed",)),
        )
        stream.dropped.subscribe(
            lambda d: self.entries.append(("drop", d.item.event, d.reason, d.operator))
        )


def _ledger(stream: Stream) -> tuple[int, int, int, dict[str, int]]:
    snap = stream.metrics()
    return snap.received, snap.emitted, snap.dropped, dict(snap.drops_by_reason)


# -- a batch taken whole: the drops it causes -----------------------------------------------------


def test_two_drops_of_a_batch_come_in_the_order_of_their_events_not_of_the_links() -> None:
    # The filter runs over the whole list first (it denies 2), then the transform (it
    # rejects 1): published in the order one by one gives, 1 then 2.
    s = TestScheduler()
    stream = Stream(
        pf.capability_filter(need), pf.transform(odd_five), pf.backpressure("block"), scheduler=s
    )
    log = Log(stream)
    assert stream.send_many([0, 1, 2], CTX) == [OK] * 3
    s.advance_to(1.0)
    assert log.entries == [
        ("drop", 1, "odd_five", "transform"),
        ("drop", 2, "insufficient_capabilities", "capability_filter"),
        ("result", 0),
    ]
    assert _ledger(stream) == (3, 1, 2, {"odd_five": 1, "insufficient_capabilities": 1})


def _breaking_filter(at: int) -> Any:
    """A filter link that passes every item, and breaks (an operator bug) in its batch
    entry when it reaches the item at index ``at`` of a list."""

    def link(_scheduler: Any) -> Prepared:
        def wire(forward: Any) -> Any:
            return forward

        def wire_batch(forward: Any) -> Any:
            def on_batch(items: list[Any]) -> None:
                for index, _item in enumerate(items):
                    if index == at:
                        raise RuntimeError("filter bug")
                forward(items)

            return on_batch

        return Prepared(wire, wire_batch=wire_batch, shape=FILTER)

    return fuse(link)


def test_a_link_breaking_mid_batch_loses_each_event_not_dropped_before_once() -> None:
    # The capability filter denies 2 and 5 (held, with their reasons); the next link breaks
    # on the list of the others: each of those is lost once, the denied ones are not lost
    # again.
    s = TestScheduler()
    stream = Stream(
        pf.capability_filter(need), _breaking_filter(at=2), pf.backpressure("block"), scheduler=s
    )
    log = Log(stream)
    assert stream.send_many([0, 1, 2, 3, 4, 5], CTX) == [OK] * 6
    denied = ("insufficient_capabilities", "capability_filter")
    assert sorted(log.entries[:6]) == [
        ("drop", 0, "failed", "stream"),
        ("drop", 1, "failed", "stream"),
        ("drop", 2, *denied),
        ("drop", 3, "failed", "stream"),
        ("drop", 4, "failed", "stream"),
        ("drop", 5, *denied),
    ]
    # The denied ones in the order of their events (the failed ones come first today).
    assert [entry for entry in log.entries if entry[2:] == denied] == [
        ("drop", 2, *denied),
        ("drop", 5, *denied),
    ]
    assert log.entries[6:] == [("error", "StageError")]
    assert _ledger(stream) == (6, 0, 6, {"failed": 4, "insufficient_capabilities": 2})
    assert stream.state == "failed"
    assert "filter bug" in str(stream.error)


# -- a buffer breaking as it takes what it gathered ----------------------------------------------


class BrokenCounts(pfrx.StreamMetrics):
    """Metrics whose received count breaks once armed (a broken buffer, for the test)."""

    armed = False

    def record_received(self, n: int = 1) -> None:
        if self.armed:
            raise RuntimeError("buffer bug")
        super().record_received(n)


def test_a_buffer_breaking_as_it_takes_what_it_gathered_fails_the_stream_with_its_error() -> None:
    # A map before a filter: the batch goes item by item, the buffer gathering them; it
    # breaks taking them at the end of the batch.
    counts = BrokenCounts()
    s = TestScheduler()
    stream = Stream(
        pf.transform(lambda e, c: e),
        pf.capability_filter(need),
        pf.backpressure("block", metrics=counts),
        scheduler=s,
    )
    ledger = Ledger(stream)
    counts.armed = True
    assert stream.send_many([0, 1, 3], CTX) == [OK] * 3  # none denied: gathered to the end
    assert stream.state == "failed"
    error = stream.error
    assert isinstance(error, StageError)
    assert str(error) == "stage 'stream' failed: RuntimeError: buffer bug"
    assert type(error.__cause__) is RuntimeError
    with pytest.raises(StageError, match="buffer bug"):
        stream.join(1.0)
    ledger.assert_exactly_once([0, 1, 3])
    assert [(d.item.event, d.reason, d.operator) for d in ledger.dropped] == [
        (0, "failed", "backpressure"),
        (1, "failed", "backpressure"),
        (3, "failed", "backpressure"),
    ]


# -- results a drain hands back as one list on the thread handing a batch over ---------------------


def _drained_while_sending(s: TestScheduler, backlog: int, *, batch_size: int) -> tuple[Any, ...]:
    """A stream whose buffer holds ``backlog`` events; then a ``send_many`` whose transform
    runs the scheduler (so the drain hands the backlog on as one list, on the sending
    thread, while the batch is being handed over). Returns the stream, what results saw,
    and how many results had been published when the drain was done."""
    seen: list[Any] = []
    published_meanwhile: list[int] = []

    def run_the_drain(event: Any, context: pfrx.Context) -> Any:
        if event == "go":
            s.advance_by(1.0)
            published_meanwhile.append(len(seen))
        return event

    stream = Stream(
        pf.transform(run_the_drain),
        pf.backpressure("block", buffer_size=5000, batch_size=batch_size),
        pf.metrics_tap(),
        scheduler=s,
    )
    stream.results.subscribe(lambda env: seen.append(env.event))
    for event in range(backlog):
        assert stream.send(event, CTX).ok
    assert seen == []
    return stream, seen, published_meanwhile


def test_results_handed_back_as_a_list_while_a_batch_is_handed_over_wait_for_the_batch() -> None:
    s = TestScheduler()
    stream, seen, published_meanwhile = _drained_while_sending(s, 3, batch_size=100)
    assert stream.send_many(["go", "after"], CTX) == [OK, OK]
    assert published_meanwhile == [0]  # gathered while the batch was handed over
    assert seen == [0, 1, 2]  # published once the batch was in
    s.advance_to(5.0)
    assert seen == [0, 1, 2, "go", "after"]
    assert _ledger(stream) == (5, 5, 0, {})
    assert stream.state == "open"


def test_results_gathered_from_a_list_are_published_as_soon_as_they_reach_the_limit() -> None:
    s = TestScheduler()
    stream, seen, published_meanwhile = _drained_while_sending(s, 1024, batch_size=1024)
    assert stream.send_many(["go"], CTX) == [OK]
    assert published_meanwhile == [1024]  # 1024 gathered: published at once
    assert seen == list(range(1024))
    assert stream.metrics().emitted == 1024


def test_results_gathered_from_a_list_below_the_limit_wait_for_the_batch() -> None:
    s = TestScheduler()
    stream, seen, published_meanwhile = _drained_while_sending(s, 1023, batch_size=1023)
    assert stream.send_many(["go"], CTX) == [OK]
    assert published_meanwhile == [0]
    assert seen == list(range(1023))


# -- a list meeting a stream that has stopped ----------------------------------------------------


def _failing_on_lists(streams: list[Stream], before: threading.Event | None = None) -> Any:
    """A link that passes lists on, failing the stream (from outside, ``Stream.fail``) just
    before it hands a list on; ``before``: wait for it first."""

    def link(_scheduler: Any) -> Prepared:
        def wire(forward: Any) -> Any:
            return forward

        def pass_batch(forward: Any) -> Any:
            def on_batch(values: list[Any]) -> None:
                if before is not None:
                    assert before.wait(5.0)
                streams[0].fail(RuntimeError("stop"))
                forward(values)

            return on_batch

        return Prepared(wire, pass_batch=pass_batch)

    return fuse(link)


def test_a_list_reaching_the_end_after_the_stream_finished_is_not_reported_again() -> None:
    # The stream fails and finishes while the list is in hand: the finish reports each of
    # its events once; the list then reaching the end reports nothing more.
    s = TestScheduler()
    streams: list[Stream] = []
    stream = Stream(
        pf.backpressure("block", batch_size=100), _failing_on_lists(streams), scheduler=s
    )
    streams.append(stream)
    log = Log(stream)
    for event in (0, 1, 2):
        assert stream.send(event, CTX).ok
    s.advance_to(1.0)
    assert log.entries == [
        ("drop", 0, "failed", "stream"),
        ("drop", 1, "failed", "stream"),
        ("drop", 2, "failed", "stream"),
        ("error", "RuntimeError"),
    ]
    assert _ledger(stream) == (3, 0, 3, {"failed": 3})


@pytest.mark.threads
def test_a_list_reaching_the_end_after_a_stop_before_the_finish_reports_each_event_once() -> None:
    # A send is in progress (held in its transform) when the stream fails from the drain's
    # thread: the stream cannot finish yet, so the list then reaching the end is reported
    # there, each event once.
    inside, release = threading.Event(), threading.Event()

    def hold(event: Any, context: pfrx.Context) -> Any:
        if event == "held":
            inside.set()
            assert release.wait(5.0)
        return event

    streams: list[Stream] = []
    stream = Stream(
        pf.transform(hold),
        pf.backpressure("block", batch_size=100),
        _failing_on_lists(streams, before=inside),
    )
    streams.append(stream)
    ledger = Ledger(stream)
    lost: list[Any] = []
    stream.dropped.subscribe(lambda d: lost.append((d.item.event, d.reason, d.operator)))
    assert stream.send_many([0, 1, 2], CTX) == [OK] * 3  # the drain takes them as one list
    sender = threading.Thread(target=stream.send, args=("held", CTX), daemon=True)
    sender.start()
    assert _wait_for(lambda: len(lost) >= 3)  # reported from the drain's thread
    assert lost[:3] == [(0, "failed", "stream"), (1, "failed", "stream"), (2, "failed", "stream")]
    release.set()
    sender.join(5.0)
    assert not sender.is_alive()
    with pytest.raises(RuntimeError, match="stop"):
        stream.join(5.0)
    ledger.assert_exactly_once([0, 1, 2, "held"])
    snap = stream.metrics()
    assert snap.received == 4 == snap.emitted + snap.dropped


def _wait_for(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# -- a drop that ends the stream while a drain hands an item on ------------------------------------


def test_a_drop_subscriber_failing_the_stream_mid_delivery_reports_the_dropped_item_once() -> None:
    # The transform rejects 1 on the drain's turn; a drop subscriber fails the stream then,
    # with 1 still in the hand of the boundary after the buffer: 1 came to something (its
    # drop), so the finish does not report it again.
    s = TestScheduler()
    stream = Stream(
        pf.backpressure("block", batch_size=1),
        pf.transform(lambda e, c: pfrx.Reject("odd") if e % 2 else e),
        scheduler=s,
    )
    log = Log(stream)
    stream.dropped.subscribe(lambda d: d.item.event == 1 and stream.fail(RuntimeError("stop")))
    for event in (0, 1):
        assert stream.send(event, CTX).ok
    s.advance_to(1.0)
    assert log.entries == [
        ("result", 0),
        ("drop", 1, "odd", "transform"),
        ("error", "RuntimeError"),
    ]
    assert _ledger(stream) == (2, 1, 1, {"odd": 1})


# -- the stream failing while a boundary hands on into a second buffer ----------------------


def test_failing_while_a_drains_list_goes_into_a_second_buffer_reports_each_once() -> None:
    # The first buffer's drain hands [0..4] on as one list into a second, drop_oldest buffer
    # of 2; taking 2 evicts 0 and a drop subscriber fails the stream then (as any thread may,
    # e.g. pfrx.connect from upstream). Each event ends once (before d37334c the finish
    # reported the whole list in the boundary's hand again: received 5, dropped 10).
    s = TestScheduler()
    stream = Stream(
        pf.backpressure("block", batch_size=100),
        pf.backpressure("drop_oldest", buffer_size=2, scheduler=s),
        scheduler=s,
    )
    drops: list[tuple[Any, str]] = []
    stream.dropped.subscribe(lambda d: drops.append((d.item.event, d.reason)))
    stream.dropped.subscribe(lambda d: d.reason == "overflow" and stream.fail(RuntimeError("x")))
    for event in range(5):
        assert stream.send(event, CTX).ok
    s.advance_to(1.0)
    assert sorted(event for event, _ in drops) == [0, 1, 2, 3, 4]  # each once
    snap = stream.metrics()
    assert snap.received == 5 == snap.emitted + snap.dropped


def test_an_item_in_hand_at_the_finish_then_entering_a_disposed_buffer_counts_once() -> None:
    # Per item too: the transform fails the stream (as any thread may) while the boundary
    # after the first buffer holds 1, then returns it into the second, disposed buffer: 1
    # counts once (before d37334c: "failed" at the finish and "disposed" by the buffer,
    # after `dropped` had completed; received 3, dropped 4).
    s, never = TestScheduler(), TestScheduler()
    streams: list[Stream] = []

    def fail_on_one(event: int, context: pfrx.Context) -> int:
        if event == 1:
            streams[0].fail(RuntimeError("x"))
        return event

    stream = Stream(
        pf.backpressure("block", batch_size=1),
        pf.transform(fail_on_one),
        pf.backpressure("drop_oldest", buffer_size=10, scheduler=never),
        scheduler=s,
    )
    streams.append(stream)
    for event in range(3):
        assert stream.send(event, CTX).ok
    s.advance_to(1.0)
    snap = stream.metrics()
    assert snap.received == 3 == snap.emitted + snap.dropped


def test_the_drops_of_a_batch_a_link_broke_on_come_in_the_order_of_their_events() -> None:
    # The items of a batch a link broke on are reported "failed" while the batch's drops are
    # still held, so they are placed among the filter's denials by event, as sending one by
    # one gives (they used to be published at once, ahead of the held denials).
    s = TestScheduler()
    stream = Stream(
        pf.capability_filter(need), _breaking_filter(at=2), pf.backpressure("block"), scheduler=s
    )
    drops: list[Any] = []
    stream.dropped.subscribe(lambda d: drops.append(d.item.event))
    assert stream.send_many([0, 1, 2, 3, 4, 5], CTX) == [OK] * 6
    assert drops == [0, 1, 2, 3, 4, 5]
