"""The output side: results to the output subject, ``Dropped`` records to the dropped subject.

Every publish carries a ``Nats-Msg-Id`` derived from its source ids (see
`pfrx.nats._wire.output_msg_id`), so the server deduplicates a redelivered input's
outputs within the stream's duplicate window. A publish is retried until JetStream
acknowledges it or ``give_up_after`` passes; only an acknowledged publish lets its inputs be
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import nats
from nats.js import JetStreamContext
from reactivex.observer import Observer

from ._lineage import ordinal, source_ids
from ._wire import MSG_ID, SOURCE_ID, encode_drop, encode_result, output_msg_id
from .source import ensure_stream

__all__ = ["NatsSink", "Output", "Publisher", "drop_output", "nats_sink"]


@attrs.frozen
class Output:
    """One message to publish, and the inputs it came from."""

    subject: str
    data: bytes
    msg_id: str
    source_ids: tuple[str, ...]
    kind: str  # "result" or "drop"
    reason: str | None = None


def drop_output(
    subject: str, msg_id: str, source_ids: Sequence[str], reason: str, operator: str
) -> Output:
    joined = ",".join(source_ids)
    return Output(
        subject, encode_drop(reason, operator, joined), msg_id, tuple(source_ids), "drop", reason
    )


class Publisher:
    """Publishes outputs to JetStream and waits for each acknowledgement (with retries)."""

    def __init__(
        self, js: JetStreamContext, *, timeout: float = 5.0, give_up_after: float = 60.0
    ) -> None:
        self.js = js
        self.timeout = timeout
        self.give_up_after = give_up_after
        self.published = 0
        self.retries = 0

    async def publish(self, output: Output) -> bool:
        """True once JetStream acknowledged ``output`` (a duplicate counts: it is stored)."""
        headers = {MSG_ID: output.msg_id, SOURCE_ID: ",".join(output.source_ids)}
        deadline = time.monotonic() + self.give_up_after
        delay = 0.05
        while True:
            try:
                await self.js.publish(
                    output.subject, output.data, timeout=self.timeout, headers=dict(headers)
                )
                self.published += 1
                return True
            except asyncio.CancelledError:
                raise
            except Exception:
                if time.monotonic() + delay > deadline:
                    return False
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)


# -- standalone sinks for an Rx pipeline -------------------------------------------------------


class NatsSink(Observer[Any]):
    """An observer that publishes each item to ``subject`` and waits for JetStream's ack.

    ``kind="results"``: the item (an envelope, a window, any value with a JSON form) as
    ``{"event": ...}``; ``kind="dropped"``: a `Dropped` as ``{"reason",
    "operator", "source_id"}``. Headers ``Pfrx-Source-Id`` and ``Nats-Msg-Id`` come from
    the inputs `pfrx.nats.nats_source` recorded, so a redelivered input's outputs are
    deduplicated. ``on_next`` returns once the publish is acknowledged, so an upstream
    `nats_source` acknowledges an input only after its output is stored.
    An item that cannot be encoded or published raises out of ``on_next``. Call
    `close` (or use it as a context manager) to release its connection.
    """

    def __init__(
        self, servers: str, subject: str, *, kind: str = "results", timeout: float = 10.0
    ) -> None:
        if kind not in ("results", "dropped"):
            raise ValueError(f"kind must be 'results' or 'dropped', not {kind!r}")
        super().__init__()
        self.subject = subject
        self.kind = kind
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="pfrx-nats-sink"
        )
        self._thread.start()
        self._nc = self._call(nats.connect(servers))
        js = self._nc.jetstream()
        # Created when no stream covers the subject, with the worker's default window.
        self._call(ensure_stream(js, subject, duplicate_window=30.0 * 5 + 60.0))
        self._publisher = Publisher(js, give_up_after=timeout)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout + 5)

    def _on_next_core(self, value: Any) -> None:
        sources = source_ids(value)
        if self.kind == "dropped":
            reason = getattr(value, "reason", "unknown")
            operator = getattr(value, "operator", "unknown")
            msg_id = output_msg_id(sources or ("unknown",), "d", ordinal(sources, "d"))
            output = drop_output(self.subject, msg_id, sources, reason, operator)
        else:
            data = encode_result(value)
            msg_id = output_msg_id(sources or ("unknown",), "r", ordinal(sources, "r"))
            output = Output(self.subject, data, msg_id, sources, "result")
        if not self._call(self._publisher.publish(output)):
            raise RuntimeError(f"JetStream did not acknowledge a publish to {self.subject!r}")

    def close(self) -> None:
        """Close the connection and stop the sink's thread."""
        with contextlib.suppress(Exception):
            self._call(self._nc.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> NatsSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def nats_sink(servers: str, subject: str, *, kind: str = "results") -> NatsSink:
    """A `NatsSink`: ``stream.results.subscribe(nats_sink(url, "out"))``."""
    return NatsSink(servers, subject, kind=kind)
