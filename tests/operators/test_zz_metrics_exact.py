"""Issue 12: `pfrx.StreamMetrics` stated exactly where the mutation run found it unstated.

Time is a TestScheduler's; every expected figure is worked out in the test from the
definitions in the docs (rates per second over the sliding interval, fractions of what was
received), never read back from another pfrx function.
"""

from __future__ import annotations

import inspect
import warnings

from reactivex.testing import TestScheduler

import pfrx


def test_stage_is_the_deprecated_name_of_operator_and_warns_the_caller() -> None:
    metrics = pfrx.StreamMetrics(TestScheduler())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call_line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        counters = metrics.stage("parse")
    assert [(w.category, str(w.message)) for w in caught] == [
        (DeprecationWarning, "StreamMetrics.stage() is deprecated, call StreamMetrics.operator()")
    ]
    # The warning points at the line that called stage (stacklevel 2): this test's line, or,
    # when a decorator wraps stage (mutation testing does), a line of the wrapper's machinery,
    # never one of the function we called ourselves (that would be a frame too far up).
    stage = pfrx.StreamMetrics.stage
    where = (caught[0].filename, caught[0].lineno)
    if getattr(stage, "__wrapped__", None) is None:
        assert where == (__file__, call_line)
    else:
        ours = {line for _start, _end, line in stage.__code__.co_lines() if line is not None}
        assert where[0] == stage.__code__.co_filename and where[1] not in ours
    assert counters.name == "parse"
    counters.received += 2
    assert [(o.name, o.received) for o in metrics.snapshot().operators] == [("parse", 2)]
