"""send_many taken whole: a batch runs through the links as one list into a buffer, and
nothing a user can observe differs from sending its events one by one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex.scheduler import ImmediateScheduler
from reactivex.scheduler.scheduler import Scheduler
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._backpressure import _Run
from pfrx.operators._shared import FILTER, Prepared, fuse
from pfrx.stream import StageError, Stream

from ._helpers import Ledger, bounded

pytestmark = pytest.mark.threads

OK = pfrx.SendResult(True)
DOCS = pfrx.CapabilityFamily("file", actions=("read",))
# Holds /docs/0 and /docs/1: an event whose value is 2 modulo 3 is denied.
CTX = pfrx.Context("alice", "s1", [DOCS.read("/docs/0"), DOCS.read("/docs/1")])
NOBODY = pfrx.Context("bob", "s2", [])


def need(event: int) -> pfrx.Capability:
    return DOCS.read(f"/docs/{event % 3}")


def shape(event: int, context: pfrx.Context) -> Any:
    if event % 5 == 1:
        return pfrx.Reject("odd_five")
    if event % 7 == 3:
        raise ValueError(f"no {event}")
    return event * 10


def reshape(event: int, context: pfrx.Context) -> Any:
    if event % 4 == 0:
        return pfrx.Reject("quarter")
    return event + 1


# -- the pipelines a property draws ------------------------------------------------------------

Spec = tuple[Any, ...]
backpressures = st.tuples(
    st.just("backpressure"),
    st.sampled_from(["block", "drop_oldest", "drop_newest", "latest", "adaptive", "error"]),
    st.sampled_from([1, 3, 8, 1000]),
    st.sampled_from([1, 4, 100]),
    st.booleans(),  # block: with a timeout (the per-item path)
)
links = st.sampled_from(
    [
        ("capability_filter",),
        ("transform",),
        ("reshape",),
        ("metrics_tap",),
        ("window_count",),
        ("window_time",),
    ]
)
pipelines = st.lists(st.one_of(links, backpressures), min_size=1, max_size=5)


def build(spec: list[Spec]) -> list[Any]:
    operators: list[Any] = []
    for item in spec:
        kind = item[0]
        if kind == "capability_filter":
            operators.append(pf.capability_filter(need))
        elif kind == "transform":
            operators.append(pf.transform(shape))
        elif kind == "reshape":
            operators.append(pf.transform(reshape))
        elif kind == "metrics_tap":
            operators.append(pf.metrics_tap())
        elif kind == "window_count":
            operators.append(pf.window_count(3))
        elif kind == "window_time":  # in event time: fired by the watermarks sent
            operators.append(pf.window_time(4.0, timestamp=lambda env: float(env.event)))
        else:
            _, strategy, size, batch, timed = item
            timeout = 0.05 if timed and strategy == "block" else None
            operators.append(
                pf.backpressure(strategy, buffer_size=size, batch_size=batch, timeout=timeout)
            )
    return operators


def describe(value: Any) -> Any:
    if isinstance(value, pfrx.Envelope):
        return describe(value.event)
    if isinstance(value, pfrx.Window):
        return ("window", tuple(describe(item) for item in value.items))
    return value


class Log:
    """What a stream says, in the one order a subscriber of both observables sees."""

    def __init__(self, stream: Stream) -> None:
        self.entries: list[Any] = []
        stream.results.subscribe(
            lambda value: self.entries.append(("result", describe(value))),
            lambda error: self.entries.append(("error", type(error).__name__)),
            lambda: self.entries.append(("completed",)),
        )
        stream.dropped.subscribe(
            lambda d: self.entries.append(("drop", describe(d.item), d.reason, d.operator))
        )


# batch length, denied context, advance the clock afterwards, then send a watermark
Step = tuple[int, bool, bool, bool]
plans = st.lists(
    st.tuples(st.integers(1, 12), st.booleans(), st.booleans(), st.booleans()), min_size=1
)


def run(spec: list[Spec], plan: list[Step], batched: bool) -> tuple[Any, ...]:
    scheduler = TestScheduler()
    stream = Stream(*build(spec), scheduler=scheduler)
    log = Log(stream)
    results: list[pfrx.SendResult] = []
    marks: list[pfrx.SendResult] = []
    event = 0
    for size, denied, advance, watermark in plan:
        events = list(range(event, event + size))
        event += size
        context = NOBODY if denied else CTX
        if batched:
            results.extend(stream.send_many(events, context))
        else:
            results.extend(stream.send(e, context) for e in events)
        if advance:
            scheduler.advance_by(1.0)
        if watermark:  # event time reaches the events sent so far: in its place
            marks.append(stream.send_watermark(float(event)))
    stream.close()
    scheduler.advance_by(10.0)
    snap = stream.metrics()
    ledger = (snap.received, snap.emitted, snap.dropped, dict(snap.drops_by_reason))
    return results, log.entries, ledger, stream.state, marks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=pipelines, plan=plans)
def test_send_many_says_and_does_exactly_what_sending_one_by_one_does(
    spec: list[Spec], plan: list[Step]
) -> None:
    one_by_one = run(spec, plan, batched=False)
    batched = run(spec, plan, batched=True)
    assert batched[0] == one_by_one[0]  # each event's own SendResult
    assert batched[1] == one_by_one[1]  # results and drops, in one order
    assert batched[2] == one_by_one[2]  # the ledger
    assert batched[3:] == one_by_one[3:]  # the end, and what each watermark was told
    assert batched[2][0] == sum(result.ok for result in batched[0])  # received: the accepted


# -- the batch path is taken, and not where it cannot keep a promise ---------------------------


def spy_on_whole_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of each list a buffer takes whole from the stream's input."""
    taken: list[int] = []
    plain = _Run.take_batch

    def take_batch(self: _Run, items: list[Any]) -> None:
        taken.append(len(items))
        plain(self, items)

    monkeypatch.setattr(_Run, "take_batch", take_batch)
    return taken


def full(**backpressure: Any) -> list[Any]:
    return [
        pf.capability_filter(need),
        pf.transform(shape),
        pf.backpressure(**{"strategy": "block", "buffer_size": 1000, **backpressure}),
        pf.metrics_tap(),
    ]


def test_a_batch_through_filter_transform_and_a_buffer_with_room_is_taken_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = spy_on_whole_batches(monkeypatch)
    scheduler = TestScheduler()
    stream = Stream(*full(), scheduler=scheduler)
    log = Log(stream)
    assert stream.send_many(list(range(30)), CTX) == [OK] * 30
    kept = [e for e in range(30) if e % 3 != 2 and e % 5 != 1 and e % 7 != 3]
    assert taken == [len(kept)]  # one list, after the links
    scheduler.advance_by(1.0)
    assert [entry[1] for entry in log.entries if entry[0] == "result"] == [e * 10 for e in kept]
    # The drops of both links, in the order of their events, as one by one.
    drops = [entry[1] for entry in log.entries if entry[0] == "drop"]
    assert drops == [e for e in range(30) if e not in kept]
    assert log.entries.index(("drop", 1, "odd_five", "transform")) < log.entries.index(
        ("drop", 2, "insufficient_capabilities", "capability_filter")
    )


# Each case builds its operators inside the test (mutation testing switches a mutant on per
# test, after collection: operators built at import would never meet it).
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (
            lambda: [pf.transform(shape), pf.capability_filter(need), pf.backpressure("block")],
            "a filter after a map drops items the input never handed over",
        ),
        (
            lambda: [pf.window_count(2), pf.backpressure("block")],
            "a window is no filter nor map",
        ),
        (
            lambda: [pf.transform(shape), pf.backpressure("block", scheduler=ImmediateScheduler())],
            "a drain that runs on the sending thread delivers amid the drops",
        ),
    ],
)
def test_the_per_item_path_is_kept_where_a_whole_batch_could_not_keep_a_promise(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[], list[Any]], why: str
) -> None:
    taken = spy_on_whole_batches(monkeypatch)
    stream = Stream(*make(), scheduler=TestScheduler())
    assert all(r.ok for r in stream.send_many(list(range(10)), CTX)), why
    assert taken == [], why


@pytest.mark.parametrize("backpressure", [{"timeout": 0.5}, {"strategy": "error"}])
def test_a_buffer_whose_full_outcome_is_a_refusal_takes_a_batch_whole_when_it_has_room(
    monkeypatch: pytest.MonkeyPatch, backpressure: dict[str, Any]
) -> None:
    # With room for every item, none waits nor overflows: the list changes nothing.
    taken = spy_on_whole_batches(monkeypatch)
    stream = Stream(*full(**backpressure), scheduler=TestScheduler())
    assert stream.send_many(list(range(10)), CTX) == [OK] * 10
    assert len(taken) == 1


def test_a_buffer_without_room_for_the_whole_batch_takes_it_item_by_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = spy_on_whole_batches(monkeypatch)
    spec: list[Spec] = [("transform",), ("backpressure", "drop_oldest", 4, 100, False)]
    plan: list[Step] = [(12, False, False, False)]
    batched = run(spec, plan, batched=True)
    assert taken == []  # 12 events, room for 4: evictions come amid the transform's drops
    assert batched == run(spec, plan, batched=False)
    drops = [entry for entry in batched[1] if entry[0] == "drop"]
    assert drops == [
        ("drop", 1, "odd_five", "transform"),
        ("drop", 3, "no 3", "transform"),
        ("drop", 6, "odd_five", "transform"),
        ("drop", 0, "overflow", "backpressure"),  # evicted by 7 (70), 8 and 9
        ("drop", 20, "overflow", "backpressure"),
        ("drop", 40, "overflow", "backpressure"),
        ("drop", 10, "no 10", "transform"),  # after them, as one by one
        ("drop", 11, "odd_five", "transform"),
    ]


# -- failing in the middle of a batch ------------------------------------------------------------


def breaking_filter(after: int) -> Callable[[reactivex.Observable[Any]], Any]:
    """A filter link that drops event 0 and then breaks (an operator bug) in its batch entry
    after ``after`` items; per item it passes everything but event 0."""

    def link(_scheduler: Any) -> Prepared:
        def wire(forward: Any) -> Any:
            def on_next(envelope: Any) -> None:
                forward(envelope)

            return on_next

        def wire_batch(forward: Any) -> Any:
            def on_batch(items: list[Any]) -> None:
                kept = []
                for index, envelope in enumerate(items):
                    if index == after:
                        raise RuntimeError("filter bug")
                    kept.append(envelope)
                forward(kept)

            return on_batch

        return Prepared(wire, wire_batch=wire_batch, shape=FILTER)

    return fuse(link)


def test_a_link_breaking_mid_batch_fails_the_stream_and_reports_each_event_once() -> None:
    stream = Stream(breaking_filter(after=3), pf.transform(shape), pf.backpressure("block"))
    ledger = Ledger(stream)
    events = [0, 2, 4, 6, 8]
    assert bounded(lambda: stream.send_many(events, CTX)) == [OK] * 5
    with pytest.raises(StageError, match="filter bug"):
        stream.join(5.0)
    ledger.assert_exactly_once(events)
    assert {d.reason for d in ledger.dropped} == {"failed"}
    snap = stream.metrics()
    assert snap.received == 5 == snap.emitted + snap.dropped
    assert stream.send_many([1], CTX) == [pfrx.SendResult(False, "failed")]


class BrokenCounts(pfrx.StreamMetrics):
    """Metrics whose received count breaks once armed (a broken buffer, for the test)."""

    armed = False

    def record_received(self, n: int = 1) -> None:
        if self.armed:
            raise RuntimeError("buffer bug")
        super().record_received(n)


def test_a_buffer_breaking_as_it_takes_a_batch_reports_each_event_it_did_not_take() -> None:
    counts = BrokenCounts()
    scheduler = TestScheduler()
    stream = Stream(
        pf.capability_filter(need),
        pf.transform(lambda e, c: e),
        pf.backpressure("block", metrics=counts),
        scheduler=scheduler,
    )
    ledger = Ledger(stream)
    assert stream.send_many([0, 4], CTX) == [OK, OK]  # taken whole
    scheduler.advance_by(1.0)  # and delivered
    counts.armed = True
    events = list(range(10, 20))
    assert stream.send_many(events, CTX) == [OK] * 10
    with pytest.raises(StageError, match="buffer bug"):
        stream.join(5.0)
    ledger.assert_exactly_once([0, 4, *events])
    lost = [e for e in events if e % 3 != 2]  # denied ones were dropped by the filter
    assert sorted(d.item.event for d in ledger.dropped if d.operator == "backpressure") == lost
    assert {d.reason for d in ledger.dropped if d.operator == "backpressure"} == {"failed"}
    snap = stream.metrics()
    # The buffer counts its own drops into the metrics it was given.
    assert snap.received == 12 == snap.emitted + snap.dropped + counts.snapshot().dropped


# -- real threads: close racing, re-entrant batches ------------------------------------------------


@pytest.mark.parametrize("producers", [1, 3])
def test_close_racing_batches_taken_whole_accounts_for_every_accepted_event(
    producers: int,
) -> None:
    stream = Stream(*full(buffer_size=64, batch_size=16))
    ledger = Ledger(stream)
    accepted: list[Any] = []
    lock = threading.Lock()
    go = threading.Barrier(producers + 1)

    def produce(k: int) -> None:
        go.wait()
        for b in range(60):
            events = [k * 100_000 + b * 100 + i for i in range(30)]
            results = stream.send_many(events, CTX)
            assert {r.reason for r in results} <= {None, "closed"}
            with lock:
                accepted.extend(e for e, r in zip(events, results, strict=True) if r.ok)

    threads = [threading.Thread(target=produce, args=(k,), daemon=True) for k in range(producers)]
    for thread in threads:
        thread.start()
    go.wait()
    stream.close()
    for thread in threads:
        thread.join(10.0)
        assert not thread.is_alive(), "a producer hung"
    assert stream.join(10.0)
    ledger.assert_exactly_once(accepted)
    snap = stream.metrics()
    assert snap.received == len(accepted) == snap.emitted + snap.dropped


def test_send_many_from_a_results_subscriber_on_the_drain_thread_never_deadlocks() -> None:
    stream = Stream(
        pf.transform(lambda e, c: e),
        pf.backpressure("block", buffer_size=8, batch_size=4),
        pf.metrics_tap(),
    )
    ledger = Ledger(stream)
    answers: list[list[pfrx.SendResult]] = []
    threads: set[int] = set()

    def echo(env: pfrx.Envelope) -> None:
        threads.add(threading.get_ident())
        if env.event < 100:  # an original: send it on again, twice
            answers.append(stream.send_many([env.event + 100, env.event + 200], CTX))

    stream.results.subscribe(echo)
    events = list(range(20))
    assert bounded(lambda: stream.send_many(events, CTX)) == [OK] * 20
    deadline = time.monotonic() + 10.0
    while len(answers) < 20 and time.monotonic() < deadline:  # every echo sent, then close
        time.sleep(0.005)
    stream.close()
    assert bounded(lambda: stream.join(10.0))
    assert threading.get_ident() not in threads  # delivered on the drain thread
    assert answers == [[OK, OK]] * 20
    ledger.assert_exactly_once([e + k for e in events for k in (0, 100, 200)])
    assert ledger.dropped == []


def test_send_many_from_a_drop_subscriber_comes_after_the_batch() -> None:
    scheduler = TestScheduler()
    stream = Stream(*full(), scheduler=scheduler)
    log = Log(stream)
    answers: list[list[pfrx.SendResult]] = []

    def resend(record: pfrx.Dropped) -> None:
        if record.item.event < 100:
            answers.append(stream.send_many([record.item.event + 300], CTX))

    stream.dropped.subscribe(resend)
    assert stream.send_many([0, 1, 2, 3], CTX) == [OK] * 4
    scheduler.advance_by(1.0)
    # 1 rejected, 2 denied, 3 raised, in that order; each re-sent after the whole batch
    # (301 rejected, 302 denied, 303 passes).
    assert [entry[1:3] for entry in log.entries if entry[0] == "drop"] == [
        (1, "odd_five"),
        (2, "insufficient_capabilities"),
        (3, "no 3"),
        (301, "odd_five"),
        (302, "insufficient_capabilities"),
    ]
    assert answers == [[OK]] * 3
    assert [entry[1] for entry in log.entries if entry[0] == "result"] == [0, 3030]


def test_a_checkpoint_between_batches_holds_what_the_buffer_took_whole() -> None:
    scheduler = TestScheduler()
    stream = Stream(*full(), scheduler=scheduler)
    assert stream.send_many([0, 4, 7], CTX) == [OK] * 3
    checkpoint = stream.checkpoint()
    restored = Stream(*full(), scheduler=scheduler, restore=checkpoint)
    seen: list[Any] = []
    restored.results.subscribe(lambda env: seen.append(env.event))
    scheduler.advance_by(1.0)
    assert seen == [0, 40, 70]


class HandOff(Scheduler):
    """Runs each action on a thread of its own and waits for it: a drain that finishes
    before ``schedule`` returns, yet never on the caller's thread."""

    def schedule(self, action: Any, state: Any = None) -> Any:
        done: list[Any] = []
        thread = threading.Thread(target=lambda: done.append(self.invoke_action(action, state)))
        thread.start()
        thread.join(5.0)
        return done[0] if done else None

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        return self.schedule(action, state)

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> Any:
        return self.schedule(action, state)


def test_a_close_from_inside_a_gathered_batch_completes_after_what_the_buffer_gathered() -> None:
    # Too many events for the room: the buffer gathers what fits, one by one. A close
    # from inside (an operator function) ends the input in the middle of the batch: what
    # was gathered goes in before the end (else a drain that ran at the end would have
    # finished without it), then the rest of the batch is refused.
    streams: list[Stream] = []

    def closing(event: int, context: pfrx.Context) -> int:
        if event == 5:
            assert streams[0].send(100, context).ok  # queued behind the item in progress
            streams[0].close()
        return event

    stream = Stream(
        pf.transform(closing), pf.backpressure("block", buffer_size=50, scheduler=HandOff())
    )
    streams.append(stream)
    ledger = Ledger(stream)
    results = bounded(lambda: stream.send_many(list(range(60)), CTX))
    assert results == [OK] * 6 + [pfrx.SendResult(False, "closed")] * 54
    assert stream.join(5.0)
    assert ledger.delivered == [0, 1, 2, 3, 4, 5, 100]
    assert ledger.ends == ["completed"]
    snap = stream.metrics()
    assert snap.received == 7 == snap.emitted


@pytest.mark.parametrize(
    ("after", "counted"),
    [
        ([pf.metrics_tap()], [4] * 4),  # a turn reaches results as one list, counted once
        ([], [4] * 4),
        ([pf.transform(lambda e, c: e)], [1, 2, 3, 4]),  # a link that may drop: item by item
    ],
)
def test_a_drain_turn_reaches_results_as_one_list_only_through_links_that_pass_lists(
    after: list[Any], counted: list[int]
) -> None:
    scheduler = TestScheduler()
    stream = Stream(pf.backpressure("block", batch_size=100), *after, scheduler=scheduler)
    seen: list[int] = []
    stream.results.subscribe(lambda env: seen.append(stream.metrics().emitted))
    for event in range(4):
        assert stream.send(event, CTX).ok
    scheduler.advance_by(1.0)
    assert seen == counted


def test_drops_to_an_operators_own_handler_keep_the_order_of_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = spy_on_whole_batches(monkeypatch)

    def drops(batched: bool) -> list[Any]:
        seen: list[Any] = []

        def handler(record: pfrx.Dropped) -> None:
            seen.append((record.item.event, record.operator))

        stream = Stream(
            pf.capability_filter(need, on_drop=handler),
            pf.transform(shape, on_drop=handler),
            pf.backpressure("block"),
            scheduler=TestScheduler(),
        )
        events = list(range(12))
        if batched:
            assert stream.send_many(events, CTX) == [OK] * 12
        else:
            assert all(stream.send(e, CTX).ok for e in events)
        return seen

    assert drops(batched=True) == drops(batched=False)
    assert taken == []  # their drops bypass the stream: the per-event path
    assert drops(batched=False)[:3] == [
        (1, "transform"),
        (2, "capability_filter"),
        (3, "transform"),
    ]


# -- the pipeline letting go of its input while a send hands an item over ------------------------


def let_go(stream: Stream) -> Any:
    """Stop the observer the pipeline gave the stream's input, as a dispose on another
    thread does just before the input hears of it (white-box: that moment, made to stay)."""
    observer: Any = stream._input._observer
    observer._stop()
    return observer


FAILED = pfrx.SendResult(False, "failed")


def test_a_send_in_the_moment_the_pipeline_lets_go_is_refused_not_lost() -> None:
    stream = Stream(pf.transform(lambda e, c: e), pf.backpressure("block"))
    ledger = Ledger(stream)
    let_go(stream)
    assert stream.send(1, CTX) == FAILED
    assert stream.send_many([2, 3], CTX) == [FAILED, FAILED]
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (0, 0, 0)
    assert ledger.delivered == [] and ledger.dropped == []


def test_a_whole_batch_in_the_moment_the_pipeline_lets_go_is_reported_lost() -> None:
    scheduler = TestScheduler()
    stream = Stream(*full(), scheduler=scheduler)
    ledger = Ledger(stream)
    observer = let_go(stream)
    observer.batch_room = lambda size: True  # checked just before the stop
    events = [0, 1, 2, 4]
    assert stream.send_many(events, CTX) == [OK] * 4  # accepted: each then reported once
    ledger.assert_exactly_once(events)
    assert {d.reason for d in ledger.dropped} == {"failed"}
    snap = stream.metrics()
    assert snap.received == 4 == snap.dropped


def test_queued_sends_in_the_moment_the_pipeline_lets_go_are_reported_lost() -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(event: Any, context: pfrx.Context) -> Any:
        if event == "hold":
            inside.set()
            assert release.wait(5.0)
        return event

    stream = Stream(pf.transform(hold), pf.backpressure("block"))
    ledger = Ledger(stream)
    sender = threading.Thread(target=stream.send, args=("hold", CTX), daemon=True)
    sender.start()
    assert inside.wait(5.0)
    assert stream.send_many([1, 2], CTX) == [OK, OK]  # queued behind "hold"
    assert stream.send(3, CTX) == OK
    let_go(stream)
    release.set()
    sender.join(5.0)
    deadline = time.monotonic() + 5.0
    while len(ledger.dropped) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sorted(ledger.dropped_events()) == [1, 2, 3]
    snap = stream.metrics()
    assert snap.received == 4
