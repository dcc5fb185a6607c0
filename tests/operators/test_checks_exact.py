"""Issue 12: the argument checks every factory runs, with their exact messages."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators import _checks


def test_positive_int_takes_ints_of_at_least_one() -> None:
    assert _checks.positive_int(1, "size") == 1
    assert _checks.positive_int(7, "size") == 7
    with pytest.raises(ValueError) as caught:
        _checks.positive_int(0, "size")
    assert str(caught.value) == "size must be at least 1, not 0"
    with pytest.raises(ValueError) as caught:
        _checks.positive_int(-3, "buffer_size")
    assert str(caught.value) == "buffer_size must be at least 1, not -3"
    with pytest.raises(TypeError) as caught:
        _checks.positive_int(2.0, "size")
    assert str(caught.value) == "size must be an int, not float 2.0"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "n must be an int, not bool True"),
        ("3", "n must be an int, not str '3'"),
        (None, "n must be an int, not NoneType None"),
    ],
)
def test_an_int_refuses_everything_else(value: Any, message: str) -> None:
    with pytest.raises(TypeError) as caught:
        _checks.an_int(value, "n")
    assert str(caught.value) == message


def test_an_int_returns_the_int_itself() -> None:
    assert _checks.an_int(0, "n") == 0
    assert _checks.an_int(-5, "n") == -5


def test_optional_callable() -> None:
    assert _checks.optional_callable(None, "on_drop") is None
    assert _checks.optional_callable(len, "on_drop") is len
    with pytest.raises(TypeError) as caught:
        _checks.optional_callable(5, "on_drop")
    assert str(caught.value) == "on_drop must be callable or None, not int 5"


def test_optional_scheduler() -> None:
    scheduler = TestScheduler()
    assert _checks.optional_scheduler(None) is None
    assert _checks.optional_scheduler(scheduler) is scheduler
    with pytest.raises(TypeError) as caught:
        _checks.optional_scheduler("now")
    assert str(caught.value) == "scheduler must be a reactivex scheduler or None, not str 'now'"
    with pytest.raises(TypeError) as caught:
        _checks.optional_scheduler(1, "clock")
    assert str(caught.value) == "clock must be a reactivex scheduler or None, not int 1"


def test_optional_metrics() -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    assert _checks.optional_metrics(None) is None
    assert _checks.optional_metrics(metrics) is metrics
    with pytest.raises(TypeError) as caught:
        _checks.optional_metrics({})
    assert str(caught.value) == "metrics must be a pfrx.StreamMetrics or None, not dict {}"
    with pytest.raises(TypeError) as caught:
        _checks.optional_metrics(2, "gauge")
    assert str(caught.value) == "gauge must be a pfrx.StreamMetrics or None, not int 2"


def test_operator_name() -> None:
    assert _checks.operator_name("guard") == "guard"
    with pytest.raises(TypeError) as caught:
        _checks.operator_name(3)
    assert str(caught.value) == "name must be a str, not int 3"
    with pytest.raises(ValueError) as caught:
        _checks.operator_name("")
    assert str(caught.value) == "name must not be empty"
    with pytest.raises(ValueError) as caught:
        _checks.operator_name("", "label")
    assert str(caught.value) == "label must not be empty"


def test_every_reporting_factory_checks_its_three_shared_arguments() -> None:
    with pytest.raises(TypeError) as caught:
        pf.transform(lambda e, c: e, on_drop="log")  # type: ignore[arg-type]
    assert str(caught.value) == "on_drop must be callable or None, not str 'log'"
    with pytest.raises(TypeError) as caught:
        pf.transform(lambda e, c: e, metrics=object())  # type: ignore[arg-type]
    assert str(caught.value).startswith("metrics must be a pfrx.StreamMetrics or None, not object")
    with pytest.raises(ValueError) as caught:
        pf.transform(lambda e, c: e, name="")
    assert str(caught.value) == "name must not be empty"


def test_accepts_names_the_call_that_cannot_be_made() -> None:
    def one(event: Any) -> Any:
        return event

    with pytest.raises(TypeError) as caught:
        _checks.accepts(one, 2, "transform calls fn(event, context)")
    assert str(caught.value) == (
        f"transform calls fn(event, context); {one!r} cannot be called that way: "
        "too many positional arguments"
    )
    _checks.accepts(lambda a, b: a, 2, "x")  # fine
    _checks.accepts(lambda *args: args, 2, "x")
    _checks.accepts(print, 2, "x")  # builtins whose signature may not be read are accepted
    with pytest.raises(TypeError) as caught:
        _checks.accepts(lambda a, b, c: a, 2, "two")
    assert str(caught.value).endswith("cannot be called that way: missing a required argument: 'c'")
