"""The input side: streams, the durable pull consumer, batched fetches that follow capacity.

A worker fetches at most as many messages as it has room for (``max_in_flight`` minus what
it holds), so a slow pipeline slows the fetch instead of piling up redeliveries; the
consumer's ``max_ack_pending`` bounds what all workers together may hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import NotFoundError

__all__ = ["ConsumerSettings", "StreamMissing", "ensure_stream", "partition_subject", "subscribe"]


class StreamMissing(RuntimeError):
    """No stream covers a subject, and the worker was told not to create one."""


def stream_name_for(subject: str) -> str:
    """The name of the stream pfrx creates for ``subject``: ``PFRX_`` + its safe spelling."""
    return "PFRX_" + re.sub(r"[^A-Za-z0-9_-]", "_", subject).upper()


def partition_subject(input_subject: str, partition: int | str, key: str = "*") -> str:
    """The stored subject of ``key`` in ``partition``: ``<input>.<partition>.<key>``."""
    return f"{input_subject}.{partition}.{key}"


async def ensure_stream(
    js: JetStreamContext,
    subject: str,
    *,
    duplicate_window: float,
    create: bool = True,
    partitions: int = 0,
    replicas: int = 1,
) -> str:
    """The name of the stream covering ``subject``; creates one when none does.

    With ``partitions`` > 0 the stream covers ``<subject>.*`` (the last token is the key)
    and maps each key to ``<subject>.<p>.<key>`` with ``partition(partitions, 1)``.

    Raises:
        StreamMissing: no stream covers ``subject`` and ``create`` is false.
    """
    probe = f"{subject}.x" if partitions else subject
    try:
        return await js.find_stream_name_by_subject(probe)
    except NotFoundError:
        if not create:
            raise StreamMissing(f"no JetStream stream covers subject {subject!r}") from None
    name = stream_name_for(subject)
    config = StreamConfig(
        name=name,
        subjects=[f"{subject}.*" if partitions else subject],
        duplicate_window=duplicate_window,
        num_replicas=replicas,
    )
    if partitions:
        config.subject_transform = SubjectTransform(
            src=f"{subject}.*",
            dest=f"{subject}.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}",
        )
    await js.add_stream(config)
    return name


@attrs.frozen
class ConsumerSettings:
    """The durable consumer's configuration (shared by every worker using ``durable``)."""

    durable: str
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 20_000

    def config(self, filter_subject: str, name: str | None = None) -> ConsumerConfig:
        durable = name or self.durable
        return ConsumerConfig(
            durable_name=durable,
            name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=filter_subject,
        )


async def subscribe(
    js: JetStreamContext,
    stream: str,
    filter_subject: str,
    settings: ConsumerSettings,
    name: str | None = None,
) -> Any:
    """A pull subscription on the durable consumer (created when missing, else bound)."""
    config = settings.config(filter_subject, name)
    durable = config.durable_name
    try:
        await js.consumer_info(stream, durable)  # type: ignore[arg-type]
    except NotFoundError:
        try:
            await js.add_consumer(stream, config)
        except Exception:
            # Another worker created it first: bind to theirs.
            await js.consumer_info(stream, durable)  # type: ignore[arg-type,unused-ignore]
    return await js.pull_subscribe_bind(durable=durable, stream=stream)


def batch_size(capacity: int, batch: int) -> int:
    """How many messages to fetch: what fits, at most ``batch``."""
    return max(0, min(batch, capacity))


def source_ids(ids: Sequence[str]) -> str:
    return ",".join(ids)
