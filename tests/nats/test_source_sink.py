"""The standalone source and sinks in an Rx pipeline: inputs acked once outputs are stored."""

from __future__ import annotations

import asyncio
import time

import nats

import pfrx
from pfrx import operators as pf
from pfrx.examples.filesystem import FileCap
from pfrx.nats import nats_sink, nats_source, sign_context
from pfrx.nats._server import NatsServer

from .helpers import KEY, counts, ledger, publish_inputs


async def consumer_state(url: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        stream = await js.find_stream_name_by_subject("t.in")
        info = await js.consumer_info(stream, "rx")
        return info.num_ack_pending, info.num_pending
    finally:
        await nc.close()


def test_source_to_sinks_keeps_the_ledger_and_acks_everything(server: NatsServer) -> None:
    ctx = pfrx.Context("bob", "s", [FileCap.read("/docs")])
    good = sign_context(ctx, KEY)
    inputs = [(f"in-{i}", {"n": i}, good) for i in range(50)]
    inputs += [("forged", {"n": -1}, sign_context(ctx, b"x" * 32)), ("junk", b"nope", good)]
    results = nats_sink(server.url, "t.out")
    dropped = nats_sink(server.url, "t.dropped", kind="dropped")
    drops: list[pfrx.Dropped] = []
    with pfrx.Stream(
        pf.transform(lambda e, c: pfrx.Reject("odd") if e["n"] % 2 else {"half": e["n"] // 2})
    ) as stream:
        stream.results.subscribe(results)
        stream.dropped.subscribe(dropped)
        source = nats_source(server.url, "t.in", durable="rx", keys=[KEY], on_drop=drops.append)
        subscription = source.subscribe(stream.send_envelope)
        asyncio.run(publish_inputs(server.url, inputs, subject="t.in"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and asyncio.run(consumer_state(server.url)) != (0, 0):
            time.sleep(0.1)
        subscription.dispose()
    results.close()
    dropped.close()
    assert asyncio.run(consumer_state(server.url)) == (0, 0)  # every input acknowledged
    result_ids, drop_bodies, bodies = asyncio.run(ledger(server.url))
    seen = counts(result_ids, drop_bodies)
    assert set(seen) == {f"in-{i}" for i in range(50)} and set(seen.values()) == {1}
    assert {d["reason"] for d in drop_bodies} == {"odd"}
    assert sorted(b["event"]["half"] for b in bodies) == list(range(25))
    assert sorted((d.item, d.reason) for d in drops) == [
        ("forged", "unauthenticated"),
        ("junk", "malformed_body: body is not JSON"),
    ]
