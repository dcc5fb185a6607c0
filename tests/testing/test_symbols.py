"""One symbol allocator for marble strings and marble pictures (pfrx.testing._marbles.Symbols)."""

from __future__ import annotations

from pfrx.testing import Note, render


def _nexts(*values: object) -> list[Note]:
    return [Note(float(i), "next", v) for i, v in enumerate(values)]


def test_an_invented_symbol_is_never_a_one_character_value_of_the_same_marbles() -> None:
    # 'a' and 'c' stand for themselves, so 1 and 2 get letters nobody else shows.
    assert render(_nexts(1, "a", 2, "c")) == ("badc", [("b", 1), ("d", 2)])


def test_an_invented_symbol_is_never_a_lookup_key() -> None:
    assert render(_nexts(1, 10, 2), lookup={"a": 10, "b": 20}) == ("cad", [("c", 1), ("d", 2)])


def test_a_lookup_value_is_found_by_identity_when_it_is_not_equal_to_itself() -> None:
    nan = float("nan")
    assert render(_nexts(nan, nan), lookup={"n": nan}) == ("nn", [])


def test_past_the_spare_symbols_a_value_is_drawn_as_a_question_mark() -> None:
    drawn, legend = render(_nexts(*range(64)))
    assert drawn[:62] == "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert drawn[62:] == "??"
    assert [value for _, value in legend] == list(range(64))
