"""A producer that waited for room and then hands the queue over itself (the emitter let go
without doing it), while the stream is closed during that hand-over (here by an operator; a
subscriber could do the same), is refused "closed" -- and the stream still finishes: results
complete and join() returns (found by mutation testing; the input used to stay "closing")."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pfrx.stream import Stream
from tests.stream.test_input_edges import ALICE, OK, Abort, Watched, _operator, _record


def test_a_close_during_a_waiting_producers_own_hand_over_still_finishes_the_stream() -> None:
    inside, gate = threading.Event(), threading.Event()

    def act(value: Any, observer: Any) -> bool:
        if value.event == "a":
            inside.set()
            assert gate.wait(10)
            raise Abort  # the sender lets go of the role without handing the queue over
        if value.event == "b":
            stream.close()
        return False

    stream = Stream(_operator(act), name="s", queue_size=1)
    log = _record(stream)

    def send_a() -> None:
        with pytest.raises(Abort):
            stream.send("a", ALICE)

    sender = threading.Thread(target=send_a, daemon=True)
    sender.start()
    assert inside.wait(10)
    assert stream.send("b", ALICE) == OK
    producer = Watched(lambda: stream.send("c", ALICE))
    assert producer.waited.wait(5.0)
    gate.set()
    sender.join(5.0)
    producer.join()
    assert stream.join(2.0)  # fails: the stream stays "closing"
    assert log == [("result", "b"), ("completed",)]
