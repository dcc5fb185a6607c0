"""The marble kit: grammar, drawing, and MarbleKit's cold/hot/run/expect."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pfrx
from pfrx import operators as pf
from pfrx.testing import (
    DEFAULT_CONTEXT,
    SUBSCRIBED,
    MarbleMismatch,
    MarbleSyntaxError,
    Note,
    default_project,
    marbles,
    parse,
    render,
)
from pfrx.testing import strategies as pst

FileCap = pfrx.CapabilityFamily("file", actions=("read",))


def _upper() -> Any:
    return pf.transform(lambda event, _ctx: event.upper())


# --- grammar -----------------------------------------------------------------------------


def test_values_and_ticks() -> None:
    assert parse("-a--b") == [Note(1.0, "next", "a"), Note(4.0, "next", "b")]
    assert parse("") == []
    assert parse("---") == []


def test_lookup_and_start_and_tick() -> None:
    notes = parse("a-b", {"a": 1, "b": {"k": "v"}}, start=10.0, tick=0.5)
    assert notes == [Note(10.0, "next", 1), Note(11.0, "next", {"k": "v"})]
    assert parse("ab", {"a": None}) == [Note(0.0, "next", None), Note(1.0, "next", "b")]


def test_completion_and_error() -> None:
    assert parse("a|") == [Note(0.0, "next", "a"), Note(1.0, "completed")]
    boom = ValueError("boom")
    assert parse("-#", error=boom) == [Note(1.0, "error", boom)]
    (default,) = parse("#")
    assert default.kind == "error"
    assert isinstance(default.value, Exception)
    assert str(default.value) == "error"
    assert parse("a|--") == [Note(0.0, "next", "a"), Note(1.0, "completed")]


def test_groups_share_an_instant_and_are_as_wide_as_they_are_written() -> None:
    # RxJS: '(ab)' takes four frames, so 'c' lands four ticks after the group's instant.
    assert parse("-(ab)c") == [
        Note(1.0, "next", "a"),
        Note(1.0, "next", "b"),
        Note(5.0, "next", "c"),
    ]
    assert parse("(a|)") == [Note(0.0, "next", "a"), Note(0.0, "completed")]
    assert parse("-(ab#)", error=KeyError("k"))[2].kind == "error"
    assert parse("()a") == [Note(2.0, "next", "a")]


def test_spaces_are_ignored() -> None:
    assert parse(" -a - b | ") == parse("-a-b|")
    assert parse("( a b )") == parse("(ab)")


def test_hot_caret_marks_the_subscription_instant() -> None:
    assert parse("a-^-b|", hot=True, start=200.0) == [
        Note(198.0, "next", "a"),
        Note(202.0, "next", "b"),
        Note(203.0, "completed"),
    ]
    assert parse("^a", hot=True, start=200.0) == [Note(201.0, "next", "a")]
    assert parse("ab", hot=True, start=200.0) == [  # no caret: starts at `start`
        Note(200.0, "next", "a"),
        Note(201.0, "next", "b"),
    ]


@pytest.mark.parametrize(
    ("text", "hot", "message"),
    [
        ("(a(b))", False, "do not nest"),
        ("a)", False, "without '\\('"),
        ("(ab", False, "unclosed"),
        ("a|b", False, "nothing but '-'"),
        ("#|", False, "nothing but '-'"),
        ("(|a)", False, "nothing but '-'"),
        ("|(a)", False, "nothing but '-'"),
        ("a^b", False, "only marks subscription in hot"),
        ("^a^", True, "more than one"),
    ],
)
def test_syntax_errors(text: str, hot: bool, message: str) -> None:
    with pytest.raises(MarbleSyntaxError, match=message):
        parse(text, hot=hot)
    assert issubclass(MarbleSyntaxError, ValueError)


# --- drawing -----------------------------------------------------------------------------


def canonical_marbles() -> st.SearchStrategy[str]:
    """Strings that render reproduces exactly (no trailing '-'), also ending in a group."""
    return pst.marble_timelines(max_ticks=8, ending=("", "|", "#", "(a|)", "(b#)"))


@given(canonical_marbles())
def test_render_round_trips(text: str) -> None:
    drawn, legend = render(parse(text))
    assert drawn == text
    assert legend == []


@given(canonical_marbles(), st.sampled_from([0.25, 1.0, 10.0]), st.sampled_from([0.0, 200.0]))
def test_render_round_trips_with_tick_and_start(text: str, tick: float, start: float) -> None:
    drawn, _ = render(parse(text, start=start, tick=tick), start=start, tick=tick)
    assert drawn == text


def test_render_uses_lookup_keys_and_invents_symbols_with_a_legend() -> None:
    notes = [Note(0.0, "next", 10), Note(1.0, "next", "long"), Note(2.0, "next", 10)]
    assert render(notes, lookup={"t": 10}) == ("tat", [("a", "long")])
    drawn, legend = render([Note(0.0, "next", ("x",)), Note(1.0, "next", "-")])
    assert drawn == "ab"
    assert legend == [("a", ("x",)), ("b", "-")]


def test_render_never_loses_notes_under_a_wide_group() -> None:
    # 'c' at tick 2 falls under the four-tick group: before the fix it vanished.
    notes = [
        Note(0.0, "next", "a"),
        Note(0.0, "next", "b"),
        Note(2.0, "next", "c"),
        Note(3.0, "completed"),
    ]
    drawn, _ = render(notes)
    assert drawn == "(ab)(c|)"


def test_note_str() -> None:
    assert str(Note(201.0, "next", "a")) == "201: on_next('a')"
    assert str(Note(2.5, "completed")) == "2.5: on_completed()"
    assert str(Note(3.0, "error", ValueError("x"))) == "3: on_error(ValueError('x'))"


def test_default_project() -> None:
    env = pfrx.Envelope("e", DEFAULT_CONTEXT, 0.0)
    assert default_project(env) == "e"
    assert default_project(pfrx.Window(None, 0.0, 1.0, (env, env))) == ("e", "e")
    assert default_project(5) == 5


# --- MarbleKit -----------------------------------------------------------------------------


def test_cold_run_expect() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a-b-|").pipe(_upper()))
        m.expect(result, "-A-B-|")
    assert result.values == ["A", "B"]
    assert result.completed
    assert result.error is None
    assert result.marbles() == "-A-B-|"
    assert [n.time for n in result.notes] == [201.0, 203.0, 205.0]
    assert repr(result) == "Recording('-A-B-|', dropped=0)"


def test_envelopes_carry_the_virtual_time_and_the_context() -> None:
    alice = pfrx.Context("alice", "s9")
    with marbles() as m:
        result = m.run(m.cold("a--(bc)|", context=alice))
    assert [(e.event, e.timestamp) for e in result.raw_values] == [
        ("a", 200.0),
        ("b", 203.0),
        ("c", 203.0),
    ]
    assert all(e.context is alice for e in result.raw_values)
    with marbles(alice) as m2:
        assert m2.run(m2.cold("a")).raw_values[0].context is alice
    with marbles() as m3:
        assert m3.run(m3.cold("a")).raw_values[0].context is DEFAULT_CONTEXT


def test_cold_starts_at_each_subscription_hot_does_not() -> None:
    with marbles() as m:
        hot = m.hot("a-b-^-c-d-|")
        result = m.run(hot)
        m.expect(result, "--c-d-|")
    assert result.values == ["c", "d"]
    assert [e.timestamp for e in result.raw_values] == [202.0, 204.0]


def test_run_accepts_a_factory_called_at_subscription() -> None:
    calls: list[float] = []
    with marbles() as m:

        def factory() -> Any:
            calls.append(float(m.scheduler.clock))
            return m.cold("a|")

        m.expect(m.run(factory), "a|")
    assert calls == [SUBSCRIBED]


def test_run_disposes_at_the_given_instant() -> None:
    with marbles() as m:
        result = m.run(m.cold("a-b-c-|"), disposed=203.0)
        m.expect(result, "a-b")
    assert not result.completed


def test_a_kit_runs_once() -> None:
    with marbles() as m:
        m.run(m.cold("a|"))
        with pytest.raises(RuntimeError, match="runs once"):
            m.run(m.cold("a|"))


def test_errors_match_by_type_and_message() -> None:
    boom = ValueError("boom")
    with marbles() as m:
        result = m.run(m.cold("a#", error=boom))
        m.expect(result, "a#")  # any error
        m.expect(result, "a#", error=ValueError("boom"))
        with pytest.raises(MarbleMismatch):
            m.expect(result, "a#", error=ValueError("other"))
        with pytest.raises(MarbleMismatch):
            m.expect(result, "a#", error=KeyError("boom"))
    assert result.error is boom
    assert not result.completed


def test_hot_errors_reach_the_subscriber() -> None:
    with marbles() as m:
        result = m.run(m.hot("^-a-#", error=RuntimeError("hot")))
        m.expect(result, "--a-#", error=RuntimeError("hot"))


def test_a_failing_expect_draws_expected_and_actual() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a-b-|").pipe(_upper()))
        with pytest.raises(MarbleMismatch) as failure:
            m.expect(result, "-A--C|")
    message = str(failure.value)
    assert isinstance(failure.value, AssertionError)
    assert "expected: -A--C|" in message
    assert "actual:   -A-B-|" in message
    assert "notifications (expected | actual):" in message
    assert "!! 204: on_next('C')" in message
    assert "203: on_next('B')" in message
    assert "   201: on_next('A')" in message  # equal lines are not marked


def test_a_mismatch_lists_invented_symbols_and_missing_notifications() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a|").pipe(pf.transform(lambda e, _c: {"event": e})))
        with pytest.raises(MarbleMismatch) as failure:
            m.expect(result, "-a-b|")
    message = str(failure.value)
    # "a" means the source's "a" and "b" the expected "b": the dict gets a symbol of its own
    actual = re.search(r"actual:   -(\w)\|", message)
    assert actual is not None and actual.group(1) not in "ab", message
    assert f"{actual.group(1)} = {{'event': 'a'}}" in message
    assert "| -" in message  # expected has more notifications than actual


def test_mismatch_drawings_follow_the_tick() -> None:
    with marbles(tick=0.5) as m:
        result = m.run(m.cold("-a-b|"))
        m.expect(result, "-a-b|")
        assert [n.time for n in result.notes] == [200.5, 201.5, 202.0]
        assert result.marbles() == "-a-b|"
        with pytest.raises(MarbleMismatch) as failure:
            m.expect(result, "-a-c|")
    assert "actual:   -a-b|" in str(failure.value)


def test_expect_with_a_projection_and_lookup() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a-b|", {"a": 1, "b": 2}))
        m.expect(result, "-x-y|", {"x": 1, "y": 2})
        m.expect(result, "-t-f|", {"t": True, "f": False}, project=lambda env: env.event == 1)


def test_drops_go_into_the_kit_through_the_reporting_scope() -> None:
    docs = pfrx.Context("alice", capabilities=[FileCap.read("/docs")])
    with marbles(docs) as m:
        source = m.cold("-a-b-c-|", {"a": "/docs/x", "b": "/etc/passwd", "c": "/docs/y"})
        result = m.run(source.pipe(pf.capability_filter(lambda path: FileCap.read(path))))
        m.expect(result, "-a---c-|", {"a": "/docs/x", "c": "/docs/y"})
    assert result.drop_reasons() == ["insufficient_capabilities"]
    assert m.dropped == result.dropped
    (record,) = m.dropped
    assert record.item.event == "/etc/passwd"
    assert record.operator == "capability_filter"
    assert record.timestamp == 203.0
    assert m.metrics.snapshot().dropped == 1


def test_an_explicit_on_drop_wins_over_the_kit() -> None:
    mine: list[pfrx.Dropped] = []
    with marbles() as m:
        result = m.run(
            m.cold("ab|").pipe(
                pf.transform(
                    lambda e, _c: pfrx.Reject("no_b") if e == "b" else e, on_drop=mine.append
                )
            )
        )
        m.expect(result, "a-|")
    assert [d.reason for d in mine] == ["no_b"]
    assert m.dropped == []
