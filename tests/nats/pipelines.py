"""Pipelines the real-server tests run in worker subprocesses (``--pipeline tests.nats.pipelines:...``)."""

from __future__ import annotations

import os
from typing import Any

from reactivex import operators as ops

from pfrx import Envelope
from pfrx import operators as pf


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
