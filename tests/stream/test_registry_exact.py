"""Issue 12: `StreamRegistry` stated exactly: its errors' messages, ``get``, iteration."""

from __future__ import annotations

import pytest

from pfrx.stream import DuplicateStreamName, Stream, StreamRegistry


@pytest.fixture
def reg() -> StreamRegistry:
    return StreamRegistry()


@pytest.mark.parametrize("name", ["", 7])
def test_register_refuses_a_bad_name_with_its_repr(reg: StreamRegistry, name: object) -> None:
    with Stream() as stream, pytest.raises(TypeError) as caught:
        reg.register(name, stream)  # type: ignore[arg-type]
    assert str(caught.value) == f"a stream name must be a non-empty str, not {name!r}"


def test_register_refuses_a_non_stream_naming_its_type(reg: StreamRegistry) -> None:
    with pytest.raises(TypeError) as caught:
        reg.register("files", object())  # type: ignore[arg-type]
    assert str(caught.value) == "can only register a pfrx.Stream, not object"
    assert len(reg) == 0


def test_register_refuses_a_taken_name_naming_the_holder(reg: StreamRegistry) -> None:
    with Stream(name="first") as first, Stream(name="second") as second:
        reg.register("files", first)
        with pytest.raises(DuplicateStreamName) as caught:
            reg.register("files", second)
        assert str(caught.value) == (
            "a stream is already registered as 'files': <pfrx.Stream 'first' open>"
        )
        assert reg.lookup("files") is first


def test_register_refuses_a_closed_stream(reg: StreamRegistry) -> None:
    stream = Stream(name="gone")
    stream.close()
    with pytest.raises(ValueError) as caught:
        reg.register("gone", stream)
    assert str(caught.value) == "cannot register <pfrx.Stream 'gone' done>: it is closed"
    assert "gone" not in reg


def test_lookup_of_an_unknown_name_lists_the_registered_ones(reg: StreamRegistry) -> None:
    with pytest.raises(KeyError) as caught:
        reg.lookup("x")
    assert caught.value.args == ("no stream registered as 'x' (registered: none)",)
    with Stream() as b, Stream() as a:
        reg.register("b", b)
        reg.register("a", a)
        with pytest.raises(KeyError) as caught:
            reg.lookup("x")
        assert caught.value.args == ("no stream registered as 'x' (registered: a, b)",)
        with Stream() as c:
            reg.register("c", c)
            with pytest.raises(KeyError) as caught:
                reg.lookup("c2")
            assert caught.value.args == ("no stream registered as 'c2' (registered: a, b, c)",)


def test_get_returns_the_stream_or_the_given_default(reg: StreamRegistry) -> None:
    with Stream() as stream, Stream() as other:
        reg.register("files", stream)
        assert reg.get("files") is stream
        assert reg.get("files", other) is stream
        assert reg.get("nope") is None
        assert reg.get("nope", other) is other


def test_unregister_returns_the_stream_and_names_an_unknown_one(reg: StreamRegistry) -> None:
    with Stream() as stream:
        reg.register("files", stream)
        assert reg.unregister("files") is stream
        assert not stream.closed
        with pytest.raises(KeyError) as caught:
            reg.unregister("files")
        assert caught.value.args == ("no stream registered as 'files'",)


def test_iteration_len_and_names_are_the_sorted_names(reg: StreamRegistry) -> None:
    assert list(reg) == []
    with Stream() as b, Stream() as a:
        reg.register("b", b)
        reg.register("a", a)
        assert list(reg) == ["a", "b"]
        assert reg.names() == ["a", "b"]
        assert len(reg) == 2
        assert "a" in reg and "c" not in reg
    # closing leaves the registry
    assert list(reg) == [] and len(reg) == 0


def test_discard_removes_only_the_stream_the_name_holds(reg: StreamRegistry) -> None:
    with Stream() as first, Stream() as second:
        reg.register("files", first)
        reg.discard("files", second)
        assert reg.lookup("files") is first
        reg.discard("files", first)
        assert "files" not in reg
        reg.discard("files", first)  # already gone: nothing to do
        assert len(reg) == 0
