"""A 3-node JetStream cluster on loopback with R3 streams: one server killed mid-run and
brought back; nothing acknowledged is lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nats
import nats.errors

import pfrx
from pfrx.examples.filesystem import FileCap
from pfrx.nats import sign_context
from pfrx.nats._server import NatsServer, free_port

from .helpers import KEY, counts, ledger, start_worker, stop_all, wait_for_total, worker_command

CTX = pfrx.Context("alice", "s1", [FileCap.read("/"), FileCap.write("/docs")])


async def wait_jetstream(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=1)
            try:
                await nc.jetstream().account_info()
                # A meta leader exists once a stream can be made.
                await nc.jetstream().add_stream(name="READY", subjects=["ready.x"], num_replicas=3)
                return
            finally:
                await nc.close()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def leader_of(stream: str, nodes: list[NatsServer]) -> NatsServer:
    nc = await nats.connect([node.url for node in nodes])
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    leader = info.cluster.leader if info.cluster else None
    return next((node for node in nodes if node.name == leader), nodes[1])


async def feed(urls: str, n: int, token: str, on_half: asyncio.Event) -> set[str]:
    """Publish ``n`` inputs, retrying through the outage; the ids JetStream acknowledged."""
    nc = await nats.connect(urls.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    while True:
        try:
            await js.find_stream_name_by_subject("t.in")
            break
        except Exception:
            await asyncio.sleep(0.1)
    acked: set[str] = set()
    try:
        for i in range(n):
            sid = f"in-{i}"
            event = {"op": "read" if i % 3 else "write", "path": f"/docs/{i % 7}"}
            body = json.dumps({"event": event}).encode()
            headers = {"Nats-Msg-Id": sid, "Pfrx-Context": token}
            for _attempt in range(50):
                try:
                    await js.publish("t.in", body, headers=dict(headers), timeout=2)
                    acked.add(sid)
                    break
                except (TimeoutError, nats.errors.TimeoutError, nats.errors.Error):
                    await asyncio.sleep(0.2)
            if i == n // 2:
                on_half.set()
    finally:
        await nc.close()
    return acked


def test_r3_stream_survives_a_server_kill_and_return(key_file: Path, tmp_path: Path) -> None:
    cluster_ports = [free_port() for _ in range(3)]
    nodes = [
        NatsServer(
            tmp_path / f"n{i}",
            name=f"n{i}",
            cluster_name="pfrx",
            cluster_port=cluster_ports[i],
            routes=[p for j, p in enumerate(cluster_ports) if j != i],
        )
        for i in range(3)
    ]
    workers = []
    try:
        for node in nodes:
            node.start()
        urls = ",".join(node.url for node in nodes)
        asyncio.run(wait_jetstream(nodes[0].url))
        cmd = worker_command(urls, key_file, ack_wait=3, extra=["--replicas", "3"])
        log = tmp_path / "workers.log"
        workers = [start_worker(cmd, log) for _ in range(2)]

        async def scenario() -> set[str]:
            half = asyncio.Event()
            feeding = asyncio.ensure_future(feed(urls, 600, sign_context(CTX, KEY), half))
            await half.wait()
            victim = await leader_of("PFRX_T_OUT", nodes)  # the worst one to lose
            victim.stop(kill=True)
            await asyncio.sleep(1.5)
            victim.start()
            return await feeding

        acked = asyncio.run(scenario())
        asyncio.run(wait_for_total(urls.split(",")[0], len(acked), timeout=90))
        time.sleep(0.5)
        result_ids, drops, _ = asyncio.run(ledger(nodes[0].url))
    finally:
        stop_all(workers)
        for node in nodes:
            node.stop()
    assert len(acked) == 600
    seen = counts(result_ids, drops)
    assert acked <= set(seen), f"{len(acked - set(seen))} acknowledged inputs lost"
    assert max(seen.values()) == 1
    assert {d["reason"] for d in drops} == {"insufficient_capabilities"} or not drops
