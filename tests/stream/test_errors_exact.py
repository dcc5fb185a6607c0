"""Issue 12: `StageError` stated exactly: its message, its fields and its cause."""

from __future__ import annotations

from pfrx.stream import StageError


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_stage_error_message_fields_and_cause() -> None:
    original = ValueError("bad input")
    error = StageError("parse", original)
    assert str(error) == "stage 'parse' failed: ValueError: bad input"
    assert error.stage == "parse"
    assert error.error is original
    assert error.__cause__ is original


def test_stage_error_of_an_unprintable_exception_names_its_type() -> None:
    error = StageError("render", _Unprintable())
    assert str(error) == (
        "stage 'render' failed: _Unprintable: <_Unprintable with an unprintable message>"
    )
