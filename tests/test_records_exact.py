"""Issue 12: a Watermark's time is checked with exact, self-explaining errors."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone, tzinfo

import pytest

import pfrx


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: the datetime is naive in all but name."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_a_datetime_whose_tzinfo_has_no_offset_is_refused_as_naive() -> None:
    when = datetime(2026, 1, 1, 12, 0, tzinfo=_NoOffset())
    assert when.tzinfo is not None and when.utcoffset() is None
    with pytest.raises(ValueError) as caught:
        pfrx.Watermark(when)
    assert str(caught.value) == f"a watermark datetime must be timezone-aware, not {when!r}"


def test_a_naive_datetime_is_refused_and_named_in_the_error() -> None:
    when = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(ValueError) as caught:
        pfrx.Watermark(when)
    assert str(caught.value) == f"a watermark datetime must be timezone-aware, not {when!r}"


def test_an_aware_datetime_is_a_watermark_time() -> None:
    when = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert pfrx.Watermark(when).time == when


@pytest.mark.parametrize("value", ["12", None, True, [1.0]])
def test_a_time_that_is_not_seconds_or_a_datetime_is_a_type_error_naming_it(value: object) -> None:
    with pytest.raises(TypeError) as caught:
        pfrx.Watermark(value)
    assert str(caught.value) == (
        f"a watermark time must be seconds or an aware datetime, not {value!r}"
    )


def test_nan_is_refused_with_its_own_message() -> None:
    with pytest.raises(ValueError) as caught:
        pfrx.Watermark(math.nan)
    assert str(caught.value) == "a watermark time must not be NaN"


@pytest.mark.parametrize("value", [0, -5, 1.5, math.inf])
def test_seconds_are_a_watermark_time(value: float) -> None:
    assert pfrx.Watermark(value).time == value


# -- the records operators produce -------------------------------------------------------------


class _Loud(str):
    """A str subclass reason: kept by its characters only."""


@pytest.mark.parametrize("bad", ["", None, 3, b"late"])
def test_a_bad_reason_is_named_exactly(bad: object) -> None:
    message = f"reason must be a non-empty str, not {bad!r}"
    with pytest.raises(TypeError) as caught:
        pfrx.Dropped("item", bad, "op", 0.0)  # type: ignore[arg-type]
    assert str(caught.value) == message
    with pytest.raises(TypeError) as caught:
        pfrx.Reject(bad)  # type: ignore[arg-type]
    assert str(caught.value) == message
    with pytest.raises(TypeError) as caught:
        pfrx.Err(bad, None)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_str_subclass_reason_becomes_an_exact_str() -> None:
    record = pfrx.Dropped("item", _Loud("late"), "window_time", 3.5)
    assert type(record.reason) is str
    assert record.reason == "late"
    assert (record.item, record.operator, record.timestamp) == ("item", "window_time", 3.5)
    assert record == pfrx.Dropped("item", "late", "window_time", 3.5)


def test_backpressure_errors_say_what_happened() -> None:
    overflow = pfrx.BackpressureOverflow(10)
    assert str(overflow) == "backpressure buffer full (10 items)"
    assert overflow.args == ("backpressure buffer full (10 items)",)
    assert (overflow.buffer_size, overflow.item) == (10, None)
    timeout = pfrx.BackpressureTimeout(0.25, item="x")
    assert str(timeout) == "backpressure buffer still full after 0.25s"
    assert (timeout.timeout, timeout.item) == (0.25, "x")
    assert str(pfrx.BackpressureTimeout(2.0)) == "backpressure buffer still full after 2s"
    assert pfrx.BackpressureTimeout(2.0).item is None


def test_window_defaults_and_events() -> None:
    ctx = pfrx.Context("alice", "s1")
    items = (pfrx.Envelope("a", ctx, 1.0), pfrx.Envelope("b", ctx, 2.0))
    window = pfrx.Window(None, 0, 2, iter(items))
    assert window.items == items
    assert window.revision == 0
    assert len(window) == 2
    assert window.events == ("a", "b")
    assert len(pfrx.Window(None, 0, 0, [])) == 0
    assert pfrx.Window(None, 0, 0, []).events == ()


def test_send_result_is_truthy_exactly_when_ok() -> None:
    assert bool(pfrx.SendResult(True)) is True
    assert bool(pfrx.SendResult(False)) is False
    assert pfrx.SendResult(False).reason is None


def test_a_watermark_defaults_to_a_single_busy_source() -> None:
    mark = pfrx.Watermark(5.0)
    assert (mark.time, mark.source, mark.idle) == (5.0, None, False)
