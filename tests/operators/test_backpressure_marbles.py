"""backpressure in virtual time: the marble table, terminal notifications, disposal, metrics."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler import CurrentThreadScheduler, ImmediateScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles, slow_consumer

PRODUCER = "-a-b-c-d-e-f-|"

# A producer -a-b-c-d-e-f-| meets a consumer three times slower (6 ticks per item, the
# producer sends one every 2 ticks), buffer_size=2, batch_size=1. The same table is on
# operators/backpressure.md.
TABLE: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "drop_oldest": ("-a-----c-----e-----f-----|", [("b", "overflow"), ("d", "overflow")]),
    "drop_newest": ("-a-----b-----c-----e-----|", [("d", "overflow"), ("f", "overflow")]),
    "latest": (
        "-a-----d-----f-----|",
        [("b", "overwritten"), ("c", "overwritten"), ("e", "overwritten")],
    ),
    "block": ("-a-----b-----c-----d-----e-----f-----|", []),
    "error": ("-a-----b-----c-----#", [("d", "overflow")]),
    "adaptive": ("-a-----c-----e-----f-----|", [("b", "overflow"), ("d", "overflow")]),
}


@pytest.mark.parametrize("strategy", list(TABLE))
def test_marble_table_slow_consumer(strategy: str) -> None:
    expected, drops = TABLE[strategy]
    with marbles() as m:
        result = m.run(
            m.cold(PRODUCER).pipe(
                pf.backpressure(strategy, buffer_size=2, batch_size=1),
                slow_consumer(6, m.scheduler),
            )
        )
        m.expect(result, expected, error=pfrx.BackpressureOverflow(2))
        assert [(d.item.event, d.reason) for d in result.dropped] == drops
        assert all(d.operator == "backpressure" for d in result.dropped)
        # The ledger: everything sent is delivered or dropped, exactly once.
        sent = set("abcdef") if strategy != "error" else set("abcd")
        delivered = set(result.values)
        assert delivered | {d.item.event for d in result.dropped} == sent
        assert not delivered & {d.item.event for d in result.dropped}
        snapshot = m.metrics.snapshot()
        full = [d for d in result.dropped if d.reason in ("overflow", "overwritten")]
        blocked = 2 if strategy == "block" else 0
        assert snapshot.backpressure_events == len(full) + blocked


def test_block_counts_each_wait_and_loses_nothing() -> None:
    with marbles() as m:
        result = m.run(
            m.cold(PRODUCER).pipe(
                pf.backpressure("block", buffer_size=2, batch_size=1),
                slow_consumer(6, m.scheduler),
            )
        )
        assert result.values == list("abcdef")
        assert result.dropped == []
        # d and f found the buffer full; each was one wait (drained inline in virtual time).
        assert m.metrics.snapshot().backpressure_events == 2


def test_error_disposes_upstream_at_the_overflow() -> None:
    with marbles() as m:
        disposals: list[float] = []
        source = m.cold(PRODUCER)

        def tracked(observer: Any, scheduler: Any = None) -> Any:
            inner = source.subscribe(observer, scheduler=scheduler)

            def dispose() -> None:
                disposals.append(m.scheduler.clock)
                inner.dispose()

            return reactivex.disposable.Disposable(dispose)

        result = m.run(
            reactivex.create(tracked).pipe(
                pf.backpressure("error", buffer_size=2, batch_size=1),
                slow_consumer(6, m.scheduler),
            )
        )
        assert isinstance(result.error, pfrx.BackpressureOverflow)
        assert result.error.buffer_size == 2
        assert result.error.item.event == "d"
        # d overflowed when it arrived (the consumer held the clock until 207): upstream went then.
        assert disposals[0] == 207
        assert result.values == ["a", "b", "c"]


def test_default_batch_takes_the_whole_buffer_per_turn() -> None:
    with marbles() as m:
        result = m.run(
            m.cold(PRODUCER).pipe(
                pf.backpressure("drop_oldest", buffer_size=2), slow_consumer(6, m.scheduler)
            )
        )
        # The turn at 207 takes c and d together, so e and f find room.
        m.expect(result, "-a-----c-----d-----e-----f-----|")
        assert result.drop_reasons() == ["overflow"]
        drain = m.metrics.snapshot().info["backpressure.drain"]
        assert drain["max_batch"] == 2
        assert drain["items"] == 5


def test_upstream_error_comes_after_the_buffered_items() -> None:
    with marbles() as m:
        boom = ValueError("boom")
        result = m.run(
            m.cold("-a-b-c-#", error=boom).pipe(
                pf.backpressure("drop_oldest", buffer_size=2, batch_size=1),
                slow_consumer(6, m.scheduler),
            )
        )
        m.expect(result, "-a-----b-----c-----#", error=boom)
        assert result.dropped == []


def test_completion_comes_after_everything_buffered() -> None:
    with marbles() as m:
        result = m.run(m.cold("-(abc|)").pipe(pf.backpressure("block", buffer_size=5)))
        m.expect(result, "-(abc|)")


def test_disposal_reports_what_is_left_as_disposed() -> None:
    with marbles() as m:
        result = m.run(
            m.cold(PRODUCER).pipe(
                pf.backpressure("drop_oldest", buffer_size=2, batch_size=1),
                slow_consumer(6, m.scheduler),
            ),
            disposed=210,
        )
        assert result.values == ["a", "c"]
        assert [(d.item.event, d.reason) for d in result.dropped] == [
            ("b", "overflow"),
            ("d", "disposed"),
            ("e", "disposed"),
        ]
        assert m.metrics.snapshot().buffered == 0  # the gauge is gone with the buffer


def test_nothing_is_drained_until_the_scheduler_advances() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    got: list[int] = []
    done: list[bool] = []
    subject.pipe(pf.backpressure("block", buffer_size=100)).subscribe(
        got.append, on_completed=lambda: done.append(True), scheduler=scheduler
    )
    for i in range(10):
        subject.on_next(i)
    subject.on_completed()
    assert got == []
    assert done == []
    scheduler.advance_by(0.001)
    assert got == list(range(10))
    assert done == [True]


def test_block_on_a_virtual_scheduler_drains_inline_instead_of_deadlocking() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    got: list[int] = []
    subject.pipe(pf.backpressure("block", buffer_size=3, batch_size=2)).subscribe(
        got.append, scheduler=scheduler
    )
    for i in range(10):
        subject.on_next(i)  # returns: the producer delivered the oldest items itself
    assert got == list(range(7))
    scheduler.start()
    assert got == list(range(10))


def test_guide_stream_handles_backpressure_correctly() -> None:
    # The guide: buffer 5, 10 events sent rapidly -> backpressure events > 0.
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[pfrx.Envelope] = Subject()
    ctx = pfrx.Context("user123", "session456")
    delivered: list[Any] = []
    subject.pipe(pf.backpressure(buffer_size=5, metrics=metrics)).subscribe(
        delivered.append, scheduler=scheduler
    )
    for i in range(1, 11):
        subject.on_next(pfrx.Envelope(f"/test{i}.txt", ctx, 0.0))
    snapshot = metrics.snapshot()
    assert snapshot.backpressure_events > 0
    assert snapshot.backpressure_events == 5
    assert snapshot.buffer_utilization == 1.0
    assert snapshot.peak_buffer_utilization == 1.0
    assert dict(snapshot.drops_by_reason) == {"overflow": 5}
    scheduler.start()
    assert [e.event for e in delivered] == [f"/test{i}.txt" for i in range(6, 11)]
    after = metrics.snapshot()
    assert after.received == 10
    assert after.emitted == 5
    assert after.dropped == 5
    assert after.buffer_utilization == 0.0


def test_latest_ignores_buffer_size() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    got: list[int] = []
    lost: list[pfrx.Dropped] = []
    subject.pipe(pf.backpressure("latest", buffer_size=50, on_drop=lost.append)).subscribe(
        got.append, scheduler=scheduler
    )
    for i in range(5):
        subject.on_next(i)
    scheduler.start()
    assert got == [4]
    assert [(d.item, d.reason) for d in lost] == [(i, "overwritten") for i in range(4)]


def test_explicit_scheduler_wins_over_the_subscribe_scheduler() -> None:
    mine, theirs = TestScheduler(), TestScheduler()
    subject: Subject[int] = Subject()
    got: list[int] = []
    subject.pipe(pf.backpressure(scheduler=mine)).subscribe(got.append, scheduler=theirs)
    subject.on_next(1)
    theirs.start()
    assert got == []
    mine.start()
    assert got == [1]


def test_drop_timestamps_come_from_the_scheduler_clock() -> None:
    scheduler = TestScheduler()
    lost: list[pfrx.Dropped] = []
    subject: Subject[int] = Subject()
    subject.pipe(
        pf.backpressure("drop_newest", buffer_size=1, scheduler=scheduler, on_drop=lost.append)
    ).subscribe(lambda _: None)
    scheduler.advance_to(42.0)
    subject.on_next(1)
    subject.on_next(2)
    assert lost == [pfrx.Dropped(2, "overflow", "backpressure", 42.0)]


def test_unknown_strategy_raises_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown backpressure strategy 'drop_random'"):
        pf.backpressure("drop_random")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"buffer_size": 0}, ValueError),
        ({"buffer_size": -3}, ValueError),
        ({"buffer_size": 2.5}, TypeError),
        ({"buffer_size": True}, TypeError),
        ({"batch_size": 0}, ValueError),
        ({"timeout": 1.0}, ValueError),  # timeout is for block only
        ({"adaptive": pf.AdaptivePolicy()}, ValueError),  # adaptive= is for adaptive only
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        pf.backpressure("drop_oldest", **kwargs)


STRATEGIES = ("drop_oldest", "drop_newest", "latest", "block", "error", "adaptive")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_drop": "oops"}, TypeError, "on_drop"),
        ({"on_drop": 5}, TypeError, "on_drop"),
        ({"scheduler": "x"}, TypeError, "scheduler"),
        ({"scheduler": 5}, TypeError, "scheduler"),
        ({"metrics": 5}, TypeError, "StreamMetrics"),
        ({"buffer_size": "x"}, TypeError, "buffer_size"),
        ({"buffer_size": 2.0}, TypeError, "buffer_size"),
        ({"batch_size": "x"}, TypeError, "batch_size"),
        ({"timeout": "1s"}, TypeError, "duration"),
        ({"adaptive": {"high_water": 0.9}}, TypeError, "AdaptivePolicy"),
        ({"name": 5}, TypeError, "name"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_every_argument_is_checked_whatever_the_strategy(
    strategy: str, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    # Whether or not the argument applies to the strategy (buffer_size to latest,
    # timeout to block, adaptive= to adaptive), a wrong type is a TypeError when built.
    with pytest.raises(error, match=match):
        pf.backpressure(strategy, **kwargs)


def test_latest_takes_any_int_buffer_size_since_it_does_not_apply() -> None:
    scheduler = TestScheduler()
    got: list[int] = []
    lost: list[pfrx.Dropped] = []
    subject: Subject[int] = Subject()
    subject.pipe(
        pf.backpressure("latest", buffer_size=0, scheduler=scheduler, on_drop=lost.append)
    ).subscribe(got.append)
    for i in range(3):
        subject.on_next(i)
    scheduler.start()
    assert got == [2]
    assert [(d.item, d.reason) for d in lost] == [(0, "overwritten"), (1, "overwritten")]


def test_bad_block_timeout_and_policy() -> None:
    with pytest.raises(ValueError, match="timeout"):
        pf.backpressure("block", timeout=0)
    with pytest.raises(TypeError, match="AdaptivePolicy"):
        pf.backpressure("adaptive", adaptive={"high_water": 0.9})  # type: ignore[arg-type]


def test_downstream_failure_closes_and_reports_the_rest() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    lost: list[pfrx.Dropped] = []
    seen: list[int] = []

    def consumer(value: int) -> None:
        seen.append(value)
        if value == 1:
            raise RuntimeError("consumer broke")

    subject.pipe(pf.backpressure(scheduler=scheduler, on_drop=lost.append)).subscribe(consumer)
    for i in range(4):
        subject.on_next(i)
    scheduler.start()
    assert seen == [0, 1]
    assert [(d.item, d.reason) for d in lost] == [(2, "downstream_error"), (3, "downstream_error")]
    subject.on_next(9)  # upstream was disposed: the subject has no observer left
    assert [d.item for d in lost] == [2, 3]


def test_reports_into_the_stream_scope_without_explicit_targets() -> None:
    with marbles() as m:
        result = m.run(
            m.cold("-(abcd)-|").pipe(pf.backpressure("drop_newest", buffer_size=2, batch_size=1))
        )
        assert result.values == ["a", "b"]
        assert result.drop_reasons() == ["overflow", "overflow"]
        snapshot = m.metrics.snapshot()
        assert snapshot.backpressure_events == 2
        counts = next(s for s in snapshot.operators if s.name == "backpressure")
        assert (counts.received, counts.emitted, counts.dropped) == (4, 2, 2)


def test_run_on_the_default_threads() -> None:
    # Observable.run() subscribes with RxPY's NewThreadScheduler: the drain gets one
    # dedicated thread, and the result is the same.
    out = reactivex.from_iterable(range(1000)).pipe(pf.backpressure("block", buffer_size=10))
    assert out.pipe(ops.to_list()).run() == list(range(1000))


@pytest.mark.parametrize("trampoline", [CurrentThreadScheduler(), ImmediateScheduler()])
def test_block_on_a_trampoline_never_waits(trampoline: abc.SchedulerBase) -> None:
    got: list[int] = []
    done: list[bool] = []
    reactivex.range(0, 500).pipe(
        pf.backpressure("block", buffer_size=3, batch_size=2, scheduler=trampoline)
    ).subscribe(got.append, on_completed=lambda: done.append(True))
    assert got == list(range(500))
    assert done == [True]


def test_latest_accepts_any_buffer_size_since_it_does_not_apply() -> None:
    scheduler = TestScheduler()
    lost: list[pfrx.Dropped] = []
    seen: list[Any] = []
    source = reactivex.from_iterable(
        [pfrx.Envelope(e, pfrx.Context("u"), 0.0) for e in "abc"], scheduler=scheduler
    )
    source.pipe(pf.backpressure("latest", buffer_size=0, on_drop=lost.append)).subscribe(
        lambda envelope: seen.append(envelope.event), scheduler=scheduler
    )
    scheduler.start()
    assert seen == ["c"]
    assert [(d.item.event, d.reason) for d in lost] == [("a", "overwritten"), ("b", "overwritten")]
