"""Scale-out on NATS JetStream (issue 15): a worker end to end against a bare nats-py loop.

On one local ``nats-server`` (127.0.0.1), with N inputs stored in the input stream first:

- *bare loop*: nats-py alone doing the worker's messaging with no pipeline: fetch a batch,
  publish each body to the output (waiting for every PubAck), then ack each input;
- *one worker* / *two workers*: ``pfrx worker`` processes running the FileSystem workload
  (``pfrx.nats.pipelines:filesystem``), signed contexts verified, every output acked before
  its input. Rates are taken from the output stream's fill (first to last output), so start
  up is not counted; each run's ledger is checked (every input once) before it counts;
- *failover*: keyed mode (4 partitions, two workers, a steady feed); the owner of some
  partitions is SIGKILLed; the time until a later input of one of its keys comes out.

Every process shares this machine's cores with the server and the feeder, so the absolute
figures are this box's, not a cluster's: see ``docs/scaling.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import nats.errors
import psutil
from nats.js.api import ConsumerConfig, StreamConfig

from pfrx import Context
from pfrx.examples.filesystem import FileCap
from pfrx.nats import sign_context
from pfrx.nats._server import NatsServer

from ._table import Row

GROUP = "nats"
KEY = b"bench-key-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = [
    Context("alice", "s-a", [FileCap.admin("/")]),
    Context("bob", "s-b", [FileCap.read("/docs")]),
]


def _event(i: int) -> dict[str, Any]:
    return {"op": "read" if i % 4 else "write", "path": f"/docs/f{i % 50}.txt", "content": "x"}


async def _fill(js: Any, subject: str, n: int, prefix: str) -> None:
    tokens = [sign_context(ctx, KEY) for ctx in CONTEXTS]
    for start in range(0, n, 256):
        await asyncio.gather(
            *(
                js.publish(
                    subject,
                    json.dumps({"event": _event(i)}).encode(),
                    headers={"Nats-Msg-Id": f"{prefix}-{i}", "Pfrx-Context": tokens[i % 2]},
                )
                for i in range(start, min(n, start + 256))
            )
        )


async def _stored(js: Any, stream: str) -> int:
    try:
        return int((await js.stream_info(stream)).state.messages)
    except Exception:
        return 0


def _cpu(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids``."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


async def _rate_from_fill(
    js: Any, streams: list[str], n: int, timeout: float, cpu: list[list[int]] | None = None
) -> tuple[float, list[float]]:
    """Outputs/s between the first and the last output appearing (polled every 10 ms), and
    the CPU seconds per output each group of ``cpu`` pids used in between."""
    first = last = None
    cpu = cpu or []
    cpu_first: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total = 0
        for stream in streams:
            total += await _stored(js, stream)
        now = time.perf_counter()
        if total and first is None:
            first = (now, total)
            cpu_first = [_cpu(pids) for pids in cpu]
        if total >= n:
            last = (now, total)
            break
        await asyncio.sleep(0.01)
    if first is None or last is None or last[0] <= first[0]:
        raise RuntimeError(f"outputs stalled ({n} expected)")
    outputs = last[1] - first[1]
    per_output = [
        (_cpu(pids) - before) / outputs for pids, before in zip(cpu, cpu_first, strict=True)
    ]
    return outputs / (last[0] - first[0]), per_output


async def _bare_consume(url: str, n: int, batch: int) -> None:
    """nats-py alone: fetch a batch, publish each body (all PubAcks awaited), ack each."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        "bare.in", durable="bare", config=ConsumerConfig(ack_wait=30, max_ack_pending=20_000)
    )
    done = 0
    while done < n:
        try:
            msgs = await sub.fetch(batch, timeout=1)
        except nats.errors.TimeoutError:
            continue
        await asyncio.gather(
            *(
                js.publish(
                    "bare.out",
                    msg.data,
                    headers={"Nats-Msg-Id": msg.headers["Nats-Msg-Id"] + "/r0"},
                )
                for msg in msgs
            )
        )
        for msg in msgs:
            await msg.ack()
        done += len(msgs)
    await nc.close()


async def _bare_loop(url: str, n: int, batch: int) -> tuple[float, float]:
    """The bare loop in its own process, measured like the workers (the output's fill)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BARE_IN", subjects=["bare.in"], duplicate_window=120))
    await js.add_stream(StreamConfig(name="BARE_OUT", subjects=["bare.out"], duplicate_window=120))
    await _fill(js, "bare.in", n, "bare")
    proc = _spawn([sys.executable, "-m", "benchmarks.bench_nats", "bare", url, str(n), str(batch)])
    try:
        rate, cpu = await _rate_from_fill(
            js, ["BARE_OUT"], n, timeout=30 + n / 200, cpu=[[proc.pid]]
        )
    finally:
        proc.wait(30)
        await nc.close()
    return rate, cpu[0]


def _worker_cmd(url: str, key_file: str, prefix: str, extra: list[str] | None = None) -> list[str]:
    return [
        sys.executable, "-m", "pfrx.nats.worker",
        "--servers", url,
        "--input", f"{prefix}.in", "--output", f"{prefix}.out", "--dropped", f"{prefix}.dropped",
        "--durable", f"{prefix}-w", "--pipeline", "pfrx.nats.pipelines:filesystem",
        "--key-file", key_file, "--ack-wait", "30", *(extra or []),
    ]  # fmt: skip


def _spawn(cmd: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)


async def _workers_rate(
    server: NatsServer, key_file: str, n: int, workers: int, prefix: str
) -> tuple[float, list[float]]:
    url = server.url
    nc = await nats.connect(url)
    js = nc.jetstream()
    streams = {s: f"PFRX_{prefix.upper()}_{s.upper()}" for s in ("in", "out", "dropped")}
    for s, name in streams.items():
        await js.add_stream(
            StreamConfig(name=name, subjects=[f"{prefix}.{s}"], duplicate_window=300)
        )
    await _fill(js, f"{prefix}.in", n, prefix)
    procs = [_spawn(_worker_cmd(url, key_file, prefix)) for _ in range(workers)]
    try:
        assert server.process is not None
        rate = await _rate_from_fill(
            js,
            [streams["out"], streams["dropped"]],
            n,
            timeout=30 + n / 200,
            cpu=[[proc.pid for proc in procs], [server.process.pid]],
        )
        total = await _stored(js, streams["out"]) + await _stored(js, streams["dropped"])
        if total != n:
            raise RuntimeError(f"ledger: {total} outputs for {n} inputs")
    finally:
        _stop(procs)
        await nc.close()
    return rate


async def _failover(
    url: str, key_file: str, lease_ttl: float, ack_wait: float, prefix: str = "fo"
) -> tuple[float, int]:
    """Seconds from SIGKILL of a partition owner to the first output of a later input of a key
    it owned (keyed mode, 4 partitions, two workers, a steady feed)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    extra = ["--partitions", "4", "--lease-ttl", str(lease_ttl), "--ack-wait", str(ack_wait)]
    procs = [_spawn(_worker_cmd(url, key_file, prefix, extra)) for _ in range(2)]
    token = sign_context(CONTEXTS[0], KEY)
    keys = [f"k{i}" for i in range(16)]
    arrivals: dict[str, float] = {}

    async def on_output(msg: Any) -> None:
        for sid in msg.headers.get("Pfrx-Source-Id", "").split(","):
            arrivals.setdefault(sid, time.monotonic())

    try:
        await nc.subscribe(f"{prefix}.out", cb=on_output)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                await js.find_stream_name_by_subject(f"{prefix}.in.x")
                break
            except Exception:
                await asyncio.sleep(0.1)
        counter = 0

        async def publish(key: str) -> str:
            nonlocal counter
            counter += 1
            sid = f"{key}-{counter}"
            body = json.dumps({"event": _event(counter)}).encode()
            await js.publish(
                f"{prefix}.in.{key}", body, headers={"Nats-Msg-Id": sid, "Pfrx-Context": token}
            )
            return sid

        # Until every key flows (the partitions spread over both workers), feed steadily.
        settled = time.monotonic() + 60
        while time.monotonic() < settled:
            sids = [await publish(key) for key in keys]
            await asyncio.sleep(0.2)
            if all(sid in arrivals for sid in sids) and await _spread(js, prefix):
                break
        owners = await _owners(js, prefix)
        victim = procs[0]
        victim_partitions = {p for p, owner in owners.items() if f"-{victim.pid}-" in owner}
        mapping = await _partition_of(js, prefix, keys)
        victim_keys = [k for k in keys if mapping.get(k) in victim_partitions]
        if not victim_keys:
            raise RuntimeError(f"the victim owned no partition: {owners} {mapping} {victim.pid}")
        # A burst on its keys first, so the victim dies holding inputs (the worst case:
        # the new owner must wait for them to fall due).
        await asyncio.gather(*(publish(key) for key in victim_keys * 25))
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        stream = await js.find_stream_name_by_subject(f"{prefix}.in.x")
        held = 0
        for part in victim_partitions:
            info = await js.consumer_info(stream, f"{prefix}-w-p{part}")
            held += info.num_ack_pending
        after: list[str] = []
        trace = os.environ.get("PFRX_BENCH_TRACE")
        while time.monotonic() < killed + 60:
            after += [await publish(key) for key in victim_keys]
            await asyncio.sleep(0.01)
            if trace:
                print(f"{time.monotonic() - killed:5.2f}", await _owners(js, prefix))
            if any(sid in arrivals for sid in after):
                break
        resumed = min(arrivals[sid] for sid in after if sid in arrivals)
        return resumed - killed, held
    finally:
        _stop(procs)
        await nc.close()


async def _owners(js: Any, prefix: str) -> dict[int, str]:
    kv = await js.key_value(f"PFRX_LEASE_{prefix}-w")
    owners = {}
    for p in range(4):
        with contextlib.suppress(Exception):
            owners[p] = (await kv.get(f"p.{p}")).value.decode()
    return owners


async def _spread(js: Any, prefix: str) -> bool:
    owners = list((await _owners(js, prefix)).values())
    return len(owners) == 4 and sorted(owners.count(o) for o in set(owners)) == [2, 2]


async def _partition_of(js: Any, prefix: str, keys: list[str]) -> dict[str, int]:
    stream = await js.find_stream_name_by_subject(f"{prefix}.in.x")
    mapping = {}
    for key in keys:
        msg = await js.get_last_msg(stream, f"{prefix}.in.*.{key}")
        mapping[key] = int(msg.subject.split(".")[2])
    return mapping


def measure(quick: bool) -> dict[str, Any]:
    n = 1_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="pfrx-bench-nats-") as tmp:
        key_file = os.path.join(tmp, "keys")
        Path(key_file).write_bytes(KEY + b"\n")
        server = NatsServer(os.path.join(tmp, "js")).start()
        try:
            figures: dict[str, Any] = {}
            figures["bare"], figures["bare_cpu"] = asyncio.run(_bare_loop(server.url, n, 100))
            figures["one"], figures["one_cpu"] = asyncio.run(
                _workers_rate(server, key_file, n, 1, "one")
            )
            figures["two"], figures["two_cpu"] = asyncio.run(
                _workers_rate(server, key_file, n, 2, "two")
            )
            ttl, wait = (1.0, 1.0) if quick else (3.0, 3.0)
            samples = [
                asyncio.run(_failover(server.url, key_file, ttl, wait, f"fo{i}"))
                for i in range(1 if quick else 3)
            ]
            times = sorted(t for t, _held in samples)
            figures["failover"] = times[len(times) // 2]
            figures["failover_max"] = times[-1]
            figures["held"] = min(held for _t, held in samples)
            figures["lease_ttl"], figures["ack_wait"] = ttl, wait
        finally:
            server.stop()
    return figures


def run(quick: bool) -> list[Row]:
    f = measure(quick)
    ratio = f["one"] / f["bare"]
    scale = f["two"] / f["one"]
    check: Callable[[bool], bool | None] = (lambda ok: None) if quick else (lambda ok: ok)
    return [
        Row(GROUP, "bare nats-py loop: fetch, publish (acked), ack", f"{f['bare']:,.0f} msg/s"),
        Row(
            GROUP,
            "one worker, FileSystem pipeline, end to end",
            f"{f['one']:,.0f} msg/s ({ratio:.2f}x bare)",
            ">= 0.7x bare",
            check(ratio >= 0.7),
        ),
        Row(
            GROUP,
            "two workers",
            f"{f['two']:,.0f} msg/s ({scale:.2f}x one)",
            ">= 1.5x one",
            check(scale >= 1.5),
        ),
        Row(
            GROUP,
            "CPU per input: bare loop / worker / nats-server (one worker)",
            f"{f['bare_cpu'] * 1e6:,.0f} us / {f['one_cpu'][0] * 1e6:,.0f} us / "
            f"{f['one_cpu'][1] * 1e6:,.0f} us",
        ),
        Row(
            GROUP,
            "worker CPU per input: two workers (together) / one",
            f"{f['two_cpu'][0] * 1e6:,.0f} us / {f['one_cpu'][0] * 1e6:,.0f} us",
        ),
        Row(
            GROUP,
            "machine load average (1 min) during the run",
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        ),
        Row(
            GROUP,
            f"failover (lease {f['lease_ttl']:g}s, ack_wait {f['ack_wait']:g}s)",
            f"median {f['failover']:.1f} s, max {f['failover_max']:.1f} s "
            f"(victims held >= {f['held']} inputs)",
            "<= 10 s",
            check(f["failover_max"] <= 10),
        ),
    ]


if __name__ == "__main__":  # the bare loop's own process: python -m benchmarks.bench_nats bare
    if sys.argv[1:2] == ["bare"]:
        asyncio.run(_bare_consume(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
