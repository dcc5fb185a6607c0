"""``pfrx demo-cluster``: three workers on a local JetStream, one SIGKILLed midway.

Starts ``nats-server`` on 127.0.0.1 (a free port), three ``pfrx worker`` processes running
the FileSystem workload (`pfrx.nats.pipelines.filesystem`), feeds signed inputs,
kills one worker with SIGKILL halfway through, starts a replacement, and prints the ledger:
every input exactly once in the output or the dropped stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig

from .._model import Context
from ..examples.filesystem import FileCap
from ._server import local_server
from .tokens import sign_context

__all__ = ["main"]

PREFIX = "demo"
USERS = {
    "alice": Context("alice", "s-alice", [FileCap.admin("/")]),
    "bob": Context("bob", "s-bob", [FileCap.read("/"), FileCap.write("/docs")]),
    "eve": Context("eve", "s-eve", [FileCap.read("/public")]),
}


def workload(n: int, seed: int = 1) -> list[tuple[str, dict[str, Any], str]]:
    """``n`` file intents ``(msg_id, event, user)`` from three users."""
    rng = random.Random(seed)
    paths = ["/docs/a.txt", "/docs/b.txt", "/public/readme", "/system/passwd", "/home/x"]
    out = []
    for i in range(n):
        op = rng.choice(["read", "read", "write", "delete"])
        event: dict[str, Any] = {"op": op, "path": rng.choice(paths)}
        if op == "write":
            event["content"] = f"line {i}"
        out.append((f"demo-{i}", event, rng.choice(sorted(USERS))))
    return out


def worker_command(url: str, key_file: str, ack_wait: float) -> list[str]:
    return [
        sys.executable, "-m", "pfrx.nats.worker",
        "--servers", url,
        "--input", f"{PREFIX}.in",
        "--output", f"{PREFIX}.out",
        "--dropped", f"{PREFIX}.dropped",
        "--durable", f"{PREFIX}-workers",
        "--pipeline", "pfrx.nats.pipelines:filesystem",
        "--key-file", key_file,
        "--ack-wait", str(ack_wait),
    ]  # fmt: skip


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


async def _stored(js: Any, subject: str) -> int:
    try:
        stream = await js.find_stream_name_by_subject(subject)
        return int((await js.stream_info(stream)).state.messages)
    except Exception:
        return 0


async def _read(js: Any, subject: str) -> list[Any]:
    stream = await js.find_stream_name_by_subject(subject)
    total = (await js.stream_info(stream)).state.messages
    # No acks: an ack-explicit reader would stall at max_ack_pending (1,000).
    sub = await js.pull_subscribe(
        subject, stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    msgs: list[Any] = []
    while len(msgs) < total:
        try:
            msgs.extend(await sub.fetch(min(500, total - len(msgs)), timeout=2))
        except nats.errors.TimeoutError:
            break
    await sub.unsubscribe()
    return msgs


async def _run(args: argparse.Namespace, url: str, key_file: str, key: bytes) -> int:
    cmd = worker_command(url, key_file, args.ack_wait)
    workers = [subprocess.Popen(cmd, env=_env()) for _ in range(args.workers)]
    print(f"nats-server on {url}; {args.workers} workers: pids {[w.pid for w in workers]}")
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        deadline = time.monotonic() + 30
        while True:  # the first worker creates the streams
            try:
                await js.find_stream_name_by_subject(f"{PREFIX}.in")
                break
            except Exception:
                if time.monotonic() > deadline:
                    print("the workers did not start", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.1)
        tokens = {user: sign_context(ctx, key) for user, ctx in USERS.items()}
        inputs = workload(args.inputs)
        started = time.monotonic()
        for i in range(0, len(inputs), 64):
            chunk = inputs[i : i + 64]
            await asyncio.gather(
                *(
                    js.publish(
                        f"{PREFIX}.in",
                        json.dumps({"event": event}).encode(),
                        headers={"Nats-Msg-Id": sid, "Pfrx-Context": tokens[user]},
                    )
                    for sid, event, user in chunk
                )
            )
            if i <= len(inputs) // 2 < i + 64:
                while (
                    await _stored(js, f"{PREFIX}.out") + await _stored(js, f"{PREFIX}.dropped")
                    < len(inputs) // 4
                ):
                    await asyncio.sleep(0.05)
                victim = workers[0]
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                workers.append(subprocess.Popen(cmd, env=_env()))
                print(f"SIGKILL worker {victim.pid} midway; replacement pid {workers[-1].pid}")
        print(f"fed {len(inputs)} signed inputs")
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            done = await _stored(js, f"{PREFIX}.out") + await _stored(js, f"{PREFIX}.dropped")
            if done >= len(inputs):
                break
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.3)
        results = await _read(js, f"{PREFIX}.out")
        drops = await _read(js, f"{PREFIX}.dropped")
    finally:
        await nc.close()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(args.ack_wait + 5)
            except subprocess.TimeoutExpired:
                worker.kill()
    seen: Counter[str] = Counter()
    for msg in results:
        seen.update(msg.headers["Pfrx-Source-Id"].split(","))
    reasons: Counter[str] = Counter()
    for msg in drops:
        body = json.loads(msg.data)
        seen.update(body["source_id"].split(","))
        reasons[body["reason"]] += 1
    expected = {sid for sid, _, _ in inputs}
    missing = expected - set(seen)
    duplicated = [sid for sid, n in seen.items() if n > 1]
    print(f"ledger after {elapsed:.1f}s: {len(inputs)} inputs = {len(results)} results + "
          f"{len(drops)} dropped")  # fmt: skip
    for reason, n in reasons.most_common():
        print(f"  dropped {n:6d}  {reason}")
    print(f"  missing {len(missing)}, duplicated {len(duplicated)}")
    balanced = not missing and not duplicated and len(results) + len(drops) == len(inputs)
    print("balanced: every input exactly once in output or dropped" if balanced else "UNBALANCED")
    return 0 if balanced else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``pfrx demo-cluster [--inputs N] [--workers 3] [--ack-wait S]``."""
    parser = argparse.ArgumentParser(
        prog="pfrx demo-cluster",
        description="Local JetStream + three workers; one SIGKILLed midway; print the ledger.",
    )
    parser.add_argument("--inputs", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--ack-wait", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.inputs < 4 or args.workers < 1:
        print("pfrx demo-cluster: --inputs >= 4 and --workers >= 1", file=sys.stderr)
        return 1
    key = os.urandom(32).hex().encode()
    with tempfile.TemporaryDirectory(prefix="pfrx-demo-") as tmp:
        key_file = os.path.join(tmp, "keys")
        with open(key_file, "wb") as handle:
            handle.write(key + b"\n")
        os.chmod(key_file, 0o600)
        try:
            with local_server(os.path.join(tmp, "js")) as server:
                return asyncio.run(_run(args, server.url, key_file, key))
        except (FileNotFoundError, RuntimeError) as error:
            print(f"pfrx demo-cluster: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
