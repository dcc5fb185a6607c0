"""One worker against bad input: each bad input is one drop with its reason; the worker lives on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pfrx
from pfrx.examples.filesystem import FileCap
from pfrx.nats import sign_context
from pfrx.nats._server import NatsServer

from .helpers import (
    KEY,
    OLD_KEY,
    counts,
    ledger,
    publish_inputs,
    start_worker,
    stop_all,
    wait_for_total,
    worker_command,
)

CTX = pfrx.Context("alice", "s1", [FileCap.read("/docs")])


def test_bad_tokens_bodies_and_poison_each_drop_once(
    server: NatsServer, key_file: Path, tmp_path: Path
) -> None:
    good = sign_context(CTX, KEY)
    payload, mac = good.split(".")
    tampered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    inputs = [
        ("ok-1", "hello", good),
        ("tampered", "x", tampered),
        ("missing", "x", None),
        ("expired-key", "x", sign_context(CTX, OLD_KEY)),
        ("malformed-token", "x", "not-a-token"),
        ("malformed-json", b"{not json", good),
        ("not-an-object", b"[1, 2]", good),
        ("poison", "poison", good),
        ("ok-2", "world", good),
    ]
    worker = start_worker(
        worker_command(
            server.url, key_file, pipeline="tests.nats.pipelines:poisonable", ack_wait=2
        ),
        tmp_path / "worker.log",
    )
    try:
        asyncio.run(publish_inputs(server.url, inputs, subject="t.in"))
        assert asyncio.run(wait_for_total(server.url, len(inputs), timeout=30)) == len(inputs)
        # Inputs after the poison still flow through the fresh pipeline:
        asyncio.run(publish_inputs(server.url, [("ok-3", "again", good)], subject="t.in"))
        assert asyncio.run(wait_for_total(server.url, len(inputs) + 1, timeout=30))
        time.sleep(0.5)  # nothing more arrives (no redelivery loop)
        result_ids, drops, results = asyncio.run(ledger(server.url))
        assert worker.poll() is None, "the worker lives on"
    finally:
        stop_all([worker])
    seen = counts(result_ids, drops)
    assert set(seen.values()) == {1}, seen
    assert {ids[0] for ids in result_ids} == {"ok-1", "ok-2", "ok-3"}
    assert sorted(r["event"]["echo"] for r in results) == ["again", "hello", "world"]
    reasons = {d["source_id"]: (d["reason"], d["operator"]) for d in drops}
    for sid in ("tampered", "missing", "expired-key", "malformed-token"):
        assert reasons[sid] == ("unauthenticated", "verify_context")
    assert reasons["malformed-json"][0].startswith("malformed_body")
    assert reasons["not-an-object"][0].startswith("malformed_body")
    assert reasons["poison"][1] == "pipeline" and "poisoned input" in reasons["poison"][0]


def test_rotated_keys_verify_old_tokens(
    server: NatsServer, rotated_key_file: Path, tmp_path: Path
) -> None:
    inputs = [("old", "a", sign_context(CTX, OLD_KEY)), ("new", "b", sign_context(CTX, KEY))]
    worker = start_worker(
        worker_command(server.url, rotated_key_file, pipeline="tests.nats.pipelines:poisonable"),
        tmp_path / "worker.log",
    )
    try:
        asyncio.run(publish_inputs(server.url, inputs, subject="t.in"))
        assert asyncio.run(wait_for_total(server.url, 2, timeout=30)) == 2
        result_ids, drops, _ = asyncio.run(ledger(server.url))
    finally:
        stop_all([worker])
    assert sorted(ids[0] for ids in result_ids) == ["new", "old"] and drops == []


def test_an_input_that_kills_its_worker_ends_dropped_after_max_deliver(
    server: NatsServer, key_file: Path, tmp_path: Path
) -> None:
    good = sign_context(CTX, KEY)
    cmd = worker_command(
        server.url,
        key_file,
        pipeline="tests.nats.pipelines:poisonable",
        ack_wait=1,
        extra=["--max-deliver", "3"],
    )
    log = tmp_path / "worker.log"
    workers = [start_worker(cmd, log)]
    crashes = 0
    try:
        asyncio.run(
            publish_inputs(
                server.url, [("crash", "crash", good), ("fine", "x", good)], subject="t.in"
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if asyncio.run(wait_for_total(server.url, 2, timeout=0.5)) >= 2:
                break
            if workers[-1].poll() is not None:
                crashes += 1
                workers.append(start_worker(cmd, log))  # a supervisor restarts it
        result_ids, drops, _ = asyncio.run(ledger(server.url))
    finally:
        stop_all(workers)
    assert crashes == 2  # delivered 3 times: twice it killed a worker, the third is dropped
    assert [ids[0] for ids in result_ids] == ["fine"]
    assert [(d["source_id"], d["reason"]) for d in drops] == [("crash", "max_deliver_exceeded")]
