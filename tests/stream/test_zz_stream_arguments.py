"""Issue 12: what `Stream` checks when it is built, and its defaults, stated exactly."""

from __future__ import annotations

from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

ALICE = pfrx.Context("alice", "s1")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"metrics": "m"}, TypeError, "metrics must be a pfrx.StreamMetrics, not str"),
        ({"metrics": 3}, TypeError, "metrics must be a pfrx.StreamMetrics, not int"),
        ({"queue_size": True}, TypeError, "queue_size must be an int, not True"),
        ({"queue_size": 2.0}, TypeError, "queue_size must be an int, not 2.0"),
        ({"queue_size": "8"}, TypeError, "queue_size must be an int, not '8'"),
        ({"queue_size": 0}, ValueError, "queue_size must be at least 1, not 0"),
        ({"queue_size": -5}, ValueError, "queue_size must be at least 1, not -5"),
        (
            {"restore": {"states": []}},
            TypeError,
            "restore must be a pfrx.checkpoint.Checkpoint, not {'states': []}",
        ),
    ],
)
def test_a_bad_argument_is_named_exactly(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        Stream(**kwargs)
    assert str(caught.value) == message


def test_the_smallest_queue_is_accepted() -> None:
    with Stream(queue_size=1) as stream:
        assert stream.send("a", ALICE).ok


def test_a_checkpoint_of_the_same_pipeline_restores_it() -> None:
    results: list[Any] = []
    with Stream(pf.window_count(2)) as first:
        assert first.send("a", ALICE).ok
        checkpoint = first.checkpoint()
    with Stream(pf.window_count(2), restore=checkpoint) as second:
        second.results.subscribe(lambda w: results.append([e.event for e in w.items]))
        assert second.send("b", ALICE).ok
    assert results == [["a", "b"]]


def test_the_default_name_is_stream_in_the_stream_and_its_metrics() -> None:
    stream = Stream()
    assert stream.name == "stream"
    assert repr(stream) == "<pfrx.Stream 'stream' open>"
    assert stream.stream_metrics.name == "stream"
    stream.close()
