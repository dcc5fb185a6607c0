from __future__ import annotations

from typing import Any

import attrs
import pytest
import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles


def upper(event: str, context: pfrx.Context) -> str:
    return event.upper()


def test_maps_events_and_keeps_context_and_timestamp() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-|").pipe(pf.transform(upper)))
        m.expect(result, "-A-B-|")
        assert [e.timestamp for e in result.raw_values] == [201.0, 203.0]
        assert {e.context for e in result.raw_values} == {m.context}


def test_reject_drops_with_its_reason_and_exceptions_with_their_text() -> None:
    def fn(event: str, context: pfrx.Context) -> Any:
        if event == "b":
            return pfrx.Reject("too_big")
        if event == "c":
            raise ValueError("bad value")
        if event == "d":
            raise ValueError()
        return event.upper()

    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-e-|").pipe(pf.transform(fn)))
        m.expect(result, "-A-------E-|")
        assert result.drop_reasons() == ["too_big", "bad value", "ValueError"]
        assert [d.item.event for d in result.dropped] == ["b", "c", "d"]
        snap = m.metrics.snapshot()
        assert snap.errors == 2  # a Reject is a decision, not an error
        assert snap.operators[0].received == 5 and snap.operators[0].emitted == 2


def test_upstream_error_and_completion_pass_through() -> None:
    boom = OSError("disk")
    with marbles() as m:
        result = m.run(m.cold("-a-#", error=boom).pipe(pf.transform(upper)))
        m.expect(result, "-A-#", error=boom)


def test_fn_receives_the_context() -> None:
    ctx = pfrx.Context("carol", "s9")
    seen = (
        pfrx.envelopes(["x"], ctx)
        .pipe(pf.transform(lambda e, c: (e, c.user_id, c.session_id)))
        .run()
    )
    assert seen.event == ("x", "carol", "s9")


def test_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        pf.transform("upper")  # type: ignore[arg-type]


def test_non_envelopes_are_dropped_with_a_reason() -> None:
    lost: list[pfrx.Dropped] = []
    out = reactivex.of("raw").pipe(pf.transform(upper, on_drop=lost.append), ops.to_list()).run()
    assert out == []
    assert lost[0].reason == "not_an_envelope"


# -- the guide's FileEventTransformer and FileEventFilter, ported --------------------------


@attrs.frozen
class ReadFile:
    path: str
    user_id: str
    metadata: dict[str, Any] | None = None


@attrs.frozen
class WriteFile:
    path: str
    content: bytes
    user_id: str
    metadata: dict[str, Any] | None = None


MAX_CONTENT = 1024 * 1024


def file_event_transformer(event: Any, context: pfrx.Context) -> Any:
    if isinstance(event, ReadFile):
        return attrs.evolve(event, metadata={"operation": "read"})
    if isinstance(event, WriteFile):
        if len(event.content) > MAX_CONTENT:
            return pfrx.Reject("content_too_large")
        return attrs.evolve(event, metadata={"operation": "write"})
    return pfrx.Reject("unknown_event")


def file_event_filter(event: Any, context: pfrx.Context) -> Any:
    if isinstance(event, ReadFile):
        return event if event.path.startswith("/allowed/") else pfrx.Reject("access_denied")
    if isinstance(event, WriteFile):
        if event.path.startswith("/system/"):
            return pfrx.Reject("system_directory_protected")
        return event
    return pfrx.Reject("unknown_event")


def test_guide_file_event_transformer_enforces_the_1mb_limit() -> None:
    lookup = {
        "r": ReadFile("/allowed/r", "u"),
        "s": WriteFile("/allowed/s", b"x" * MAX_CONTENT, "u"),
        "t": WriteFile("/allowed/t", b"x" * (MAX_CONTENT + 1), "u"),
    }
    with marbles() as m:
        result = m.run(m.hot("-r-s-t-|", lookup).pipe(pf.transform(file_event_transformer)))
        assert [e.metadata for e in result.values] == [
            {"operation": "read"},
            {"operation": "write"},
        ]
        assert result.drop_reasons() == ["content_too_large"]
        assert result.completed


def test_guide_file_event_filter() -> None:
    lookup = {
        "a": ReadFile("/allowed/a", "u"),
        "b": ReadFile("/private/b", "u"),
        "c": WriteFile("/system/c", b"", "u"),
        "d": WriteFile("/home/d", b"", "u"),
    }
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|", lookup).pipe(pf.transform(file_event_filter)))
        m.expect(result, "-a-----d-|", lookup)
        assert result.drop_reasons() == ["access_denied", "system_directory_protected"]


def test_guide_transformer_and_filter_compose() -> None:
    lookup = {"a": ReadFile("/allowed/a", "u"), "b": WriteFile("/system/b", b"x", "u")}
    with marbles() as m:
        pipeline = reactivex.compose(
            pf.transform(file_event_filter), pf.transform(file_event_transformer)
        )
        result = m.run(m.hot("-a-b-|", lookup).pipe(pipeline))
        assert [e.path for e in result.values] == ["/allowed/a"]
        assert result.drop_reasons() == ["system_directory_protected"]


class Hostile(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_exception_whose_str_raises_is_one_drop_and_the_stream_goes_on() -> None:
    def fn(event: str, context: pfrx.Context) -> str:
        if event == "x":
            raise Hostile()
        return event.upper()

    lost: list[pfrx.Dropped] = []
    out = pfrx.envelopes(["a", "x", "b"], pfrx.Context("u")).pipe(
        pf.transform(fn, on_drop=lost.append), ops.map(lambda e: e.event), ops.to_list()
    )
    assert out.run() == ["A", "B"]
    assert [(d.item.event, d.reason, d.operator) for d in lost] == [("x", "Hostile", "transform")]


class NonStrText(Exception):
    def __str__(self) -> Any:
        return 42


def test_an_exception_whose_str_is_not_text_gives_its_type_name() -> None:
    def fn(event: str, context: pfrx.Context) -> str:
        raise NonStrText()

    lost: list[pfrx.Dropped] = []
    pfrx.envelopes(["a"], pfrx.Context("u")).pipe(
        pf.transform(fn, on_drop=lost.append), ops.to_list()
    ).run()
    assert [d.reason for d in lost] == ["NonStrText"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_drop": 5}, TypeError, "on_drop"),
        ({"on_drop": "oops"}, TypeError, "on_drop"),
        ({"metrics": 5}, TypeError, "StreamMetrics"),
        ({"metrics": "m"}, TypeError, "StreamMetrics"),
        ({"name": None}, TypeError, "name"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_every_argument_is_checked_when_built(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        pf.transform(upper, **kwargs)


def one_argument(event: str) -> str:
    return event.upper()


class Three:
    def __call__(self, event: str, context: pfrx.Context, extra: int) -> str:
        return event


@pytest.mark.parametrize(
    "fn", [lambda p: p.upper(), one_argument, Three(), lambda: None, lambda *, event: event]
)
def test_a_function_of_the_wrong_arity_is_refused_when_built(fn: Any) -> None:
    with pytest.raises(TypeError, match="fn\\(event, context\\)"):
        pf.transform(fn)


CTX = pfrx.Context("u")


def both(event: str, context: pfrx.Context, extra: int = 0) -> tuple[str, int]:
    return (event, extra)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (both, ("x", 0)),  # a defaulted third parameter is fine
        (lambda *args: args[0], "x"),  # so is *args
        (slice, slice("x", CTX)),  # a builtin whose signature Python cannot read
    ],
)
def test_callables_that_can_take_two_arguments_are_accepted(fn: Any, expected: Any) -> None:
    out = pfrx.envelopes(["x"], CTX).pipe(pf.transform(fn)).run()
    assert out.event == expected
