from __future__ import annotations

from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles


class Counter:
    """Counts events; 'b' is an Err that still advances the count; 'x' raises; 's' is silent."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: str, context: pfrx.Context, state: int) -> Any:
        if event == "x":
            raise RuntimeError("processor crashed")
        if event == "b":
            return pfrx.Err("odd_event", state + 100)
        if event == "s":
            return pfrx.Ok(state + 1)
        return pfrx.Ok(state + 1, effects=[f"{event}{state + 1}"])


def test_ok_effects_flow_downstream_with_the_same_context() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-c-|").pipe(pf.process(Counter())))
        m.expect(result, "-1-2-|", {"1": "a1", "2": "c2"})
        assert {e.context for e in result.raw_values} == {m.context}
        assert [e.timestamp for e in result.raw_values] == [201.0, 203.0]


def test_err_drops_with_its_reason_and_its_state_becomes_the_state() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|").pipe(pf.process(Counter())))
        m.expect(result, "-1---2-|", {"1": "a1", "2": "c102"})
        assert result.drop_reasons() == ["odd_event"]
        assert m.metrics.snapshot().errors == 1


def test_exception_drops_the_item_and_keeps_the_old_state() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-x-c-|").pipe(pf.process(Counter())))
        m.expect(result, "-1---2-|", {"1": "a1", "2": "c2"})
        assert result.drop_reasons() == ["processor crashed"]


def test_ok_without_effects_absorbs_the_item_and_is_not_a_drop() -> None:
    with marbles() as m:
        result = m.run(m.hot("-s-a-|").pipe(pf.process(Counter())))
        m.expect(result, "---2-|", {"2": "a2"})
        assert result.dropped == []


def test_many_effects_from_one_event() -> None:
    class Fanout:
        def initial_state(self) -> None:
            return None

        def process_event(self, event: str, context: pfrx.Context, state: None) -> Any:
            return pfrx.Ok(None, effects=[event, event * 2])

    with marbles() as m:
        result = m.run(m.hot("-a-|").pipe(pf.process(Fanout())))
        assert result.values == ["a", "aa"]
        assert m.metrics.snapshot().operators[0].emitted == 2


def test_an_envelope_effect_is_rewrapped_with_the_inputs_context() -> None:
    forged = pfrx.Context("root")
    user = pfrx.Context("u")

    class Reroute:
        def initial_state(self) -> None:
            return None

        def process_event(self, event: str, context: pfrx.Context, state: None) -> Any:
            return pfrx.Ok(None, effects=[pfrx.Envelope(event * 2, forged, 1.0), "plain"])

    source = reactivex.of(pfrx.Envelope("a", user, 7.0))
    out = source.pipe(pf.process(Reroute()), ops.to_list()).run()
    assert out == [pfrx.Envelope("aa", user, 7.0), pfrx.Envelope("plain", user, 7.0)]


def test_state_is_kept_per_subscription() -> None:
    source = pfrx.envelopes(["a", "c"], pfrx.Context("u"))
    op = pf.process(Counter())
    first = source.pipe(op, ops.map(lambda e: e.event), ops.to_list()).run()
    second = source.pipe(op, ops.map(lambda e: e.event), ops.to_list()).run()
    assert first == second == ["a1", "c2"]


def test_an_outcome_that_is_neither_ok_nor_err_is_a_drop() -> None:
    class Sloppy:
        def initial_state(self) -> int:
            return 0

        def process_event(self, event: str, context: pfrx.Context, state: int) -> Any:
            return state

    lost: list[pfrx.Dropped] = []
    out = pfrx.envelopes(["a"], pfrx.Context("u")).pipe(
        pf.process(Sloppy(), on_drop=lost.append), ops.to_list()
    )
    assert out.run() == []
    assert lost[0].reason == "processor returned int, not Ok or Err"


def test_errors_and_completion_pass_through() -> None:
    boom = RuntimeError("up")
    with marbles() as m:
        result = m.run(m.cold("-a-#", error=boom).pipe(pf.process(Counter())))
        m.expect(result, "-1-#", {"1": "a1"}, error=boom)


def test_processing_timeout_records_slow_events_without_killing_the_stream() -> None:
    scheduler = TestScheduler()

    class Slow:
        """Takes 3 virtual seconds on 'z' (the scheduler's clock moves while it works)."""

        def initial_state(self) -> None:
            return None

        def process_event(self, event: str, context: pfrx.Context, state: None) -> Any:
            if event == "z":
                scheduler.sleep(3.0)
            return pfrx.Ok(None, effects=[event])

    metrics = pfrx.StreamMetrics(scheduler)
    warnings: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(warnings.append, level="WARNING", format="{message}")
    try:
        source = pfrx.envelopes(["a", "z", "b"], pfrx.Context("u"), scheduler)
        seen: list[str] = []
        source.pipe(
            pf.process(Slow(), metrics=metrics, processing_timeout=1.0, scheduler=scheduler)
        ).subscribe(lambda e: seen.append(e.event))
        scheduler.start()
    finally:
        logger.remove(handler)
        logger.disable("pfrx")
    snap = metrics.snapshot()
    assert seen == ["a", "z", "b"]
    assert snap.slow_events == 1
    assert snap.max_processing_time == 3.0
    assert snap.avg_processing_time == 1.0
    assert len(warnings) == 1 and "took 3.000000s" in warnings[0]


def test_construction_validates_processor_and_timeout() -> None:
    with pytest.raises(TypeError, match="initial_state"):
        pf.process(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="processing_timeout"):
        pf.process(Counter(), processing_timeout=0)
    with pytest.raises(TypeError, match="duration"):
        pf.process(Counter(), processing_timeout="5s")  # type: ignore[arg-type]


def test_disposal_stops_delivery() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-c-a-|").pipe(pf.process(Counter())), disposed=204.0)
        m.expect(result, "-1-2", {"1": "a1", "2": "c2"})


def test_works_in_a_merged_pipeline_with_timedelta() -> None:
    from datetime import timedelta

    op = pf.process(Counter(), processing_timeout=timedelta(milliseconds=5))
    out = reactivex.merge(
        pfrx.envelopes(["a"], pfrx.Context("u")), pfrx.envelopes(["c"], pfrx.Context("v"))
    ).pipe(op, ops.map(lambda e: e.event), ops.to_list())
    assert sorted(out.run()) == ["a1", "c2"]


class Hostile(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_exception_whose_str_raises_is_one_drop_and_the_stream_goes_on() -> None:
    class Raising:
        def initial_state(self) -> int:
            return 0

        def process_event(self, event: str, context: pfrx.Context, state: int) -> Any:
            if event == "x":
                raise Hostile()
            return pfrx.Ok(state + 1, effects=[event])

    lost: list[pfrx.Dropped] = []
    out = pfrx.envelopes(["a", "x", "b"], pfrx.Context("u")).pipe(
        pf.process(Raising(), on_drop=lost.append), ops.map(lambda e: e.event), ops.to_list()
    )
    assert out.run() == ["a", "b"]
    assert [(d.item.event, d.reason) for d in lost] == [("x", "Hostile")]


def test_garbage_returned_by_a_processor_is_one_drop_with_a_reason() -> None:
    class Garbage:
        def initial_state(self) -> int:
            return 0

        def process_event(self, event: str, context: pfrx.Context, state: int) -> Any:
            garbage = {"a": None, "b": object(), "c": pfrx.Reject("no")}
            return garbage.get(event, pfrx.Ok(0, [event]))

    lost: list[pfrx.Dropped] = []
    out = pfrx.envelopes(["a", "b", "c", "d"], pfrx.Context("u")).pipe(
        pf.process(Garbage(), on_drop=lost.append), ops.map(lambda e: e.event), ops.to_list()
    )
    assert out.run() == ["d"]
    assert [(d.item.event, d.reason) for d in lost] == [
        ("a", "processor returned NoneType, not Ok or Err"),
        ("b", "processor returned object, not Ok or Err"),
        ("c", "processor returned Reject, not Ok or Err"),
    ]


class WrongArity:
    def initial_state(self) -> int:
        return 0

    def process_event(self, event: str, context: pfrx.Context) -> Any:
        return pfrx.Ok(0)


class StateTakesArgs:
    def initial_state(self, seed: int) -> int:
        return seed

    def process_event(self, event: str, context: pfrx.Context, state: int) -> Any:
        return pfrx.Ok(state)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_drop": 5}, TypeError, "on_drop"),
        ({"on_drop": "oops"}, TypeError, "on_drop"),
        ({"metrics": 5}, TypeError, "StreamMetrics"),
        ({"scheduler": "x"}, TypeError, "scheduler"),
        ({"name": 3}, TypeError, "name"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_every_argument_is_checked_when_built(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        pf.process(Counter(), **kwargs)


@pytest.mark.parametrize("processor", [WrongArity(), StateTakesArgs()])
def test_a_processor_whose_methods_cannot_be_called_is_refused_when_built(
    processor: Any,
) -> None:
    with pytest.raises(TypeError, match="cannot be called"):
        pf.process(processor)
