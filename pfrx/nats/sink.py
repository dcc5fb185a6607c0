"""The output side: results to the output subject, ``Dropped`` records to the dropped subject.

Every publish carries a ``Nats-Msg-Id`` derived from its source ids (see
`pfrx.nats._wire.output_msg_id`), so the server deduplicates a redelivered input's
outputs within the stream's duplicate window. A publish is retried until JetStream
acknowledges it or ``give_up_after`` passes; only an acknowledged publish lets its inputs be
acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import attrs
from nats.js import JetStreamContext

from ._wire import MSG_ID, SOURCE_ID, encode_drop

__all__ = ["Output", "Publisher", "drop_output"]


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
