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
