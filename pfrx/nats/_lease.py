"""Keyed mode: one active owner per partition, through leases in a JetStream KV bucket.

The input stream maps ``<input>.<key>`` to ``<input>.<p>.<key>`` with the server's
``partition(N, 1)`` subject mapping; partition ``p`` has its own durable consumer
``<durable>-p<p>``. A worker fetches from a partition only while it holds the lease
``p.<p>`` in the bucket ``PFRX_LEASE_<durable>`` (a KV bucket whose ``ttl`` is the lease
time). Owners renew their leases and a member entry ``m.<id>`` every quarter of the lease
time; a worker takes free partitions up to its fair share ``ceil(N / members)`` and hands
back the extra ones (nak'ing what it held of them, so they are redelivered at once).

Failover: a killed owner's leases expire after ``lease_ttl``; the next worker to see a free
partition takes it. If the consumer still has inputs the dead owner held, it first waits
until those have fallen due (``ack_wait + lease_ttl / 2 - lease_ttl`` at most: an owner
fences itself, fetching and sending in-progress acks for a partition only within
``lease_ttl / 2`` of its last successful renewal), so they come back *before* newer inputs
of the same key (JetStream redelivers due messages first): a key's items keep their order
and open windows re-form whole. Failover time is about
``max(lease_ttl, ack_wait + lease_ttl / 2)`` plus up to a renewal period.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import random
import re
import socket
import time
from typing import TYPE_CHECKING, Any

import nats.js.errors
from nats.js.api import KeyValueConfig

from .source import partition_subject, subscribe

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["PartitionLeases"]


def bucket_name(durable: str) -> str:
    return "PFRX_LEASE_" + re.sub(r"[^A-Za-z0-9_-]", "_", durable)


class PartitionLeases:
    """Acquires, renews and hands back partition leases for one worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.options = worker.options
        self.me = f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 30):x}".encode()
        self.revisions: dict[int, int] = {}
        self.acquiring: set[int] = set()
        self.handing_back: set[int] = set()
        self.stopping = False
        # (what, partition, monotonic time): the recent history, for tests and debugging
        self.events: collections.deque[tuple[str, int, float]] = collections.deque(maxlen=1000)
        self.renewed: dict[int, float] = {}  # partition -> last successful renewal

    def fresh(self, partition: int) -> bool:
        """Whether this worker may still act for ``partition`` (its fence)."""
        renewed = self.renewed.get(partition)
        return renewed is not None and time.monotonic() - renewed < self.options.lease_ttl / 2

    async def _bucket(self) -> Any:
        js = self.worker.js
        name = bucket_name(self.options.durable)
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            try:
                return await js.create_key_value(
                    KeyValueConfig(
                        bucket=name,
                        ttl=self.options.lease_ttl,
                        history=1,
                        replicas=self.options.replicas,
                    )
                )
            except Exception:
                return await js.key_value(name)

    async def run(self) -> None:
        self.kv = await self._bucket()
        period = max(0.1, self.options.lease_ttl / 4)
        while not self.stopping:
            try:
                await self._tick()
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                pass  # the server is away: leases lapse by themselves, we retry
            await asyncio.sleep(period)

    async def _members(self) -> int:
        """Live workers: member entries not yet expired (one subject each in the bucket)."""
        bucket = bucket_name(self.options.durable)
        info = await self.worker.js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.m.>")
        return max(1, len(info.state.subjects or {}))

    async def _tick(self) -> None:
        await self.kv.put(f"m.{self.me.decode()}", b"1")
        for partition, revision in list(self.revisions.items()):
            try:
                self.revisions[partition] = await self.kv.update(
                    f"p.{partition}", self.me, last=revision
                )
                self.renewed[partition] = time.monotonic()
            except nats.js.errors.KeyWrongLastSequenceError:
                self._lose(partition)
        fair = math.ceil(self.options.partitions / await self._members())
        owned = len(self.revisions)  # partitions still being taken are in it already
        ready = [p for p in self.revisions if p in self.worker.owned]
        if owned > fair and ready and not self.handing_back:
            partition = max(ready)
            self.handing_back.add(partition)
            self.worker._spawn(self.hand_back(partition))
            return
        free = [
            p
            for p in range(self.options.partitions)
            if p not in self.revisions and p not in self.acquiring
        ]
        random.shuffle(free)
        for partition in free:
            if owned >= fair:
                break
            try:
                revision = await self.kv.create(f"p.{partition}", self.me)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            owned += 1
            self.revisions[partition] = revision
            self.renewed[partition] = time.monotonic()
            self.acquiring.add(partition)
            self.worker._spawn(self._take(partition))

    async def _take(self, partition: int) -> None:
        o = self.options
        worker = self.worker
        name = f"{o.durable}-p{partition}"
        subject = partition_subject(o.input, partition)
        try:
            sub = await subscribe(worker.js, worker.stream_name, subject, worker.settings, name)
            info = await worker.js.consumer_info(worker.stream_name, name)
            if info.num_ack_pending:
                # A previous owner died holding inputs: let them fall due, so they come back
                # before anything newer of the same keys. An owner fetches and keeps its
                # inputs alive only within lease_ttl / 2 of its last renewal (fenced), and
                # its lease lapsed lease_ttl after that renewal (we hold it now), so what
                # it held falls due within this wait.
                await asyncio.sleep(max(0.0, o.ack_wait + o.lease_ttl / 2 - o.lease_ttl))
            if partition in self.revisions and not self.stopping:
                worker.owned[partition] = sub
                self.events.append(("take", partition, time.monotonic()))
        finally:
            self.acquiring.discard(partition)

    def _lose(self, partition: int) -> None:
        self.revisions.pop(partition, None)
        self.worker.owned.pop(partition, None)
        self.events.append(("lost", partition, time.monotonic()))

    async def hand_back(self, partition: int) -> None:
        """Stop fetching ``partition``; once nothing of it is held (its open windows have
        closed and been published), free its lease. Kept if that takes longer than
        ``ack_wait``."""
        worker = self.worker
        sub = worker.owned.pop(partition, None)
        deadline = time.monotonic() + self.options.ack_wait
        while any(held.partition == partition for held in worker.inputs.values()):
            if time.monotonic() > deadline or self.stopping:
                if sub is not None and not self.stopping:
                    worker.owned[partition] = sub
                self.handing_back.discard(partition)
                return
            await asyncio.sleep(0.05)  # the renewals go on in the meantime
        revision = self.revisions.pop(partition, None)
        if revision is not None:
            with contextlib.suppress(Exception):
                await self.kv.delete(f"p.{partition}", last=revision)
        self.handing_back.discard(partition)
        self.events.append(("hand_back", partition, time.monotonic()))

    async def release_all(self) -> None:
        self.stopping = True
        for partition in list(self.revisions):
            revision = self.revisions.pop(partition)
            with contextlib.suppress(Exception):
                await self.kv.delete(f"p.{partition}", last=revision)
        with contextlib.suppress(Exception):
            await self.kv.delete(f"m.{self.me.decode()}")
