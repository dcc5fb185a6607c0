"""Pipelines the real-server tests run in worker subprocesses (``--pipeline tests.nats...``)."""

from __future__ import annotations

import os
import time
from typing import Any

from reactivex import operators as ops

from pfrx import Envelope
from pfrx import operators as pf
from pfrx.nats.pipelines import filesystem


def _check(envelope: Envelope) -> Envelope:
    if envelope.event == "poison":
        raise RuntimeError("poisoned input")
    if envelope.event == "crash":
        os._exit(3)  # the whole worker dies on this input, every time
    return envelope


def poisonable() -> list[Any]:
    """Echo; ``"poison"`` makes the pipeline raise (a plain RxPY map: the stream fails);
    ``"crash"`` kills the worker process."""
    return [ops.map(_check), pf.transform(lambda event, context: {"echo": event})]


def _slow(event: Any, context: Any) -> Any:
    time.sleep(0.002)  # workers hold inputs long enough for a kill to catch some in flight
    return event


def slow_filesystem() -> list[Any]:
    """The FileSystem workload with 2 ms per item."""
    return [*filesystem(), pf.transform(_slow)]
