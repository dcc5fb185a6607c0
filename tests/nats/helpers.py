"""Helpers for the real-server tests: workers as subprocesses, feeding inputs, reading ledgers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig

ROOT = Path(__file__).resolve().parents[2]
KEY = b"test-key-0123456789abcdef-0123456789"
OLD_KEY = b"old-key-0123456789abcdef-0123456789"


def worker_command(
    url: str,
    key_file: str | os.PathLike[str],
    *,
    pipeline: str = "pfrx.nats.pipelines:filesystem",
    prefix: str = "t",
    ack_wait: float = 2.0,
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pfrx.nats.worker",
        "--servers", url,
        "--input", f"{prefix}.in",
        "--output", f"{prefix}.out",
        "--dropped", f"{prefix}.dropped",
        "--durable", f"{prefix}-workers",
        "--pipeline", pipeline,
        "--key-file", str(key_file),
        "--ack-wait", str(ack_wait),
        *extra,
    ]  # fmt: skip


def start_worker(cmd: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_all(workers: Iterable[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)


async def publish_inputs(
    url: str,
    inputs: Sequence[tuple[str, Any, str | None]],
    *,
    subject: str | Sequence[str],
    extra_headers: dict[str, str] | None = None,
) -> None:
    """Publish ``(msg_id, event, token)`` inputs (acked by JetStream), 64 at a time."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    subjects = [subject] * len(inputs) if isinstance(subject, str) else list(subject)
    probe = subjects[0] if subjects else ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the first worker creates the streams
        try:
            await js.find_stream_name_by_subject(probe)
            break
        except nats.js.errors.NotFoundError:
            await asyncio.sleep(0.1)
    try:
        for start in range(0, len(inputs), 64):
            batch = []
            for (msg_id, event, token), subj in zip(
                inputs[start : start + 64], subjects[start : start + 64], strict=True
            ):
                headers = {"Nats-Msg-Id": msg_id, **(extra_headers or {})}
                if token is not None:
                    headers["Pfrx-Context"] = token
                body = event if isinstance(event, bytes) else json.dumps({"event": event}).encode()
                batch.append(js.publish(subj, body, headers=headers, timeout=10))
            await asyncio.gather(*batch)
    finally:
        await nc.close()


async def read_subject(js: Any, subject: str) -> list[Any]:
    """Every message stored on ``subject`` (an ephemeral consumer, acked none)."""
    stream = await js.find_stream_name_by_subject(subject)
    info = await js.stream_info(stream)
    total = info.state.messages
    # No acks: an ack-explicit reader would stall at max_ack_pending (1,000).
    sub = await js.pull_subscribe(
        subject, stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    out: list[Any] = []
    while len(out) < total:
        try:
            out.extend(await sub.fetch(min(500, total - len(out)), timeout=2))
        except nats.errors.TimeoutError:
            break
    await sub.unsubscribe()
    return out


async def ledger(
    url: str, prefix: str = "t"
) -> tuple[list[list[str]], list[dict[str, Any]], list[Any]]:
    """``(result source-id lists, drop bodies, result bodies)``."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        results = await read_subject(js, f"{prefix}.out")
        drops = await read_subject(js, f"{prefix}.dropped")
    finally:
        await nc.close()
    result_ids = [m.headers["Pfrx-Source-Id"].split(",") for m in results]
    return result_ids, [json.loads(m.data) for m in drops], [json.loads(m.data) for m in results]


async def wait_for_total(url: str, expected: int, prefix: str = "t", timeout: float = 60) -> int:
    nc = await nats.connect(url)
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while time.monotonic() < deadline:
            seen = 0
            for subject in (f"{prefix}.out", f"{prefix}.dropped"):
                try:
                    stream = await js.find_stream_name_by_subject(subject)
                    seen += (await js.stream_info(stream)).state.messages
                except Exception:
                    pass
            if seen >= expected:
                return seen
            await asyncio.sleep(0.2)
        return seen
    finally:
        await nc.close()


def counts(result_ids: list[list[str]], drops: list[dict[str, Any]]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for ids in result_ids:
        seen.update(ids)
    for body in drops:
        seen.update(body["source_id"].split(","))
    return seen


async def wait_spread(url: str, durable: str, partitions: int, workers: int) -> dict[int, str]:
    """Wait until every partition has an owner and none owns more than its fair share."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    fair = -(-partitions // workers)
    owners: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            owners = {}
            try:
                kv = await js.key_value(f"PFRX_LEASE_{durable}")
                for p in range(partitions):
                    with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                        owners[p] = (await kv.get(f"p.{p}")).value.decode()
            except nats.js.errors.BucketNotFoundError:
                pass
            per = Counter(owners.values())
            if len(owners) == partitions and len(per) == workers and max(per.values()) <= fair:
                return owners
            await asyncio.sleep(0.1)
        raise AssertionError(f"partitions did not spread: {owners}")
    finally:
        await nc.close()
