"""The input side: streams, the durable pull consumer, batched fetches that follow capacity.

A worker fetches at most as many messages as it has room for (``max_in_flight`` minus what
it holds), so a slow pipeline slows the fetch instead of piling up redeliveries; the
consumer's ``max_ack_pending`` bounds what all workers together may hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import nats
import nats.errors
from loguru import logger
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import NotFoundError
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._model import Dropped, Envelope
from ._lineage import track
from ._wire import MSG_ID, MalformedBody, decode_input
from .tokens import CONTEXT_HEADER, InvalidToken, verify_context

__all__ = [
    "ConsumerSettings",
    "StreamMissing",
    "ensure_stream",
    "nats_source",
    "partition_subject",
    "subscribe",
]


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


# -- a standalone source -----------------------------------------------------------------------


def nats_source(
    servers: str,
    subject: str,
    *,
    durable: str,
    keys: Sequence[bytes],
    batch: int = 100,
    max_in_flight: int = 1000,
    ack_wait: float = 30.0,
    max_deliver: int = 5,
    on_drop: Callable[[Dropped], None] | None = None,
) -> Observable[Envelope]:
    """An observable of envelopes from the durable pull consumer ``durable`` on ``subject``.

    Each subscription runs its own connection on a background thread, fetching in batches
    of at most ``batch`` while it holds fewer than ``max_in_flight`` inputs, and emitting
    on that thread. Each input's context is verified with ``keys`` (an input that fails is
    ``Dropped(reason="unauthenticated", operator="verify_context")`` to ``on_drop``; a bad
    body ``malformed_body``) and is a fresh object, so `pfrx.nats.source_ids` can name
    what came from it. An input is acknowledged once the pipeline lets go of its envelope
    (after a synchronous downstream returns; after the window holding it is emitted), and
    kept alive with in-progress acks until then. With `pfrx.nats.nats_sink`
    downstream (which publishes and waits for JetStream's acknowledgement), that is the
    worker's ack rule. Disposing stops fetching; what is held comes back by redelivery.
    """
    key_list = list(keys)

    def on_subscribe(
        observer: abc.ObserverBase[Envelope], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        stop = threading.Event()

        def report(sid: str, reason: str, operator: str) -> None:
            record = Dropped(sid, reason, operator, time.time())
            if on_drop is not None:
                on_drop(record)
            else:
                logger.warning("nats_source dropped input {}: {} ({})", sid, reason, operator)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            nc = await nats.connect(servers)
            js = nc.jetstream()
            held: dict[str, list[Any]] = {}
            acks: set[asyncio.Task[None]] = set()

            def release(sid: str) -> None:
                entry = held.pop(sid, None)
                if entry is not None:
                    task = loop.create_task(_quiet(entry[0].ack()))
                    acks.add(task)
                    task.add_done_callback(acks.discard)

            def released(sid: str) -> None:
                with contextlib.suppress(RuntimeError):  # after disposal: redelivered instead
                    loop.call_soon_threadsafe(release, sid)

            try:
                stream = await ensure_stream(
                    js, subject, duplicate_window=ack_wait * max_deliver + 60.0
                )
                settings = ConsumerSettings(durable, ack_wait, max_deliver)
                sub = await subscribe(js, stream, subject, settings)
                last_touch = time.monotonic()
                while not stop.is_set():
                    room = max_in_flight - len(held)
                    if time.monotonic() - last_touch > ack_wait / 4:
                        last_touch = time.monotonic()
                        for msg, _ in list(held.values()):
                            await _quiet(msg.in_progress())
                    if room <= 0:
                        await asyncio.sleep(0.01)
                        continue
                    try:
                        msgs = await sub.fetch(min(batch, room), timeout=0.5)
                    except nats.errors.TimeoutError:
                        continue
                    for msg in msgs:
                        headers = msg.headers or {}
                        meta = msg.metadata
                        sid = headers.get(MSG_ID) or f"{meta.stream}:{meta.sequence.stream}"
                        if sid in held:
                            held[sid][0] = msg
                            continue
                        if meta.num_delivered >= max_deliver:
                            report(sid, "max_deliver_exceeded", "nats_source")
                            await _quiet(msg.ack())
                            continue
                        try:
                            event = decode_input(msg.data)
                            context = verify_context(headers.get(CONTEXT_HEADER), key_list)
                        except MalformedBody as error:
                            report(sid, f"malformed_body: {error}", "decode")
                            await _quiet(msg.ack())
                            continue
                        except InvalidToken:
                            report(sid, "unauthenticated", "verify_context")
                            await _quiet(msg.ack())
                            continue
                        held[sid] = [msg, None]
                        track(context, sid, released)
                        observer.on_next(Envelope(event, context, time.time()))
                        del context
            except Exception as error:
                if not stop.is_set():
                    observer.on_error(error)
            finally:
                for msg, _ in list(held.values()):
                    await _quiet(msg.nak())
                await _quiet(nc.close())

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.name = f"pfrx-nats-source-{durable}"
        thread.start()
        return Disposable(stop.set)

    return Observable(on_subscribe)


async def _quiet(coro: Any) -> None:
    with contextlib.suppress(Exception):
        await coro
