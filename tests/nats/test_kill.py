"""Workers SIGKILLed at random moments: every input ends exactly once in output or dropped,
with the reason a single in-process run gives; keyed sessions match a single-process run."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.examples.filesystem import FileCap
from pfrx.nats import pipelines, sign_context
from pfrx.nats._server import NatsServer

from .helpers import (
    KEY,
    counts,
    ledger,
    publish_inputs,
    start_worker,
    stop_all,
    wait_for_total,
    wait_spread,
    worker_command,
)

ALICE = pfrx.Context("alice", "s-alice", [FileCap.read("/"), FileCap.write("/docs")])
BOB = pfrx.Context("bob", "s-bob", [FileCap.read("/docs")])


def filesystem_inputs(n: int) -> list[tuple[str, Any, pfrx.Context]]:
    ops = ["read", "write", "delete"]
    paths = ["/docs/a.txt", "/docs/b.txt", "/system/conf", "/home/x"]
    rng = random.Random(7)
    out = []
    for i in range(n):
        event: Any = {"op": rng.choice(ops), "path": rng.choice(paths), "content": "x" * (i % 5)}
        if i % 97 == 0:
            event = {"op": "chmod", "path": "/docs"}
        out.append((f"in-{i}", event, ALICE if i % 2 else BOB))
    return out


def local_outcomes(inputs: list[tuple[str, Any, pfrx.Context]]) -> dict[str, str]:
    """What one in-process Stream of the same pipeline does with each input."""
    outcome: dict[str, str] = {}
    current: list[str] = []
    with pfrx.Stream(*pipelines.filesystem()) as stream:
        stream.results.subscribe(lambda r: outcome.__setitem__(current[0], "result"))
        stream.dropped.subscribe(lambda d: outcome.__setitem__(current[0], d.reason))
        for sid, event, ctx in inputs:
            current[:] = [sid]
            stream.send(event, ctx)
    return outcome


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_a_worker_loses_and_duplicates_nothing(
    seed: int, server: NatsServer, key_file: Path, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    inputs = filesystem_inputs(1500)
    tokens = {ctx: sign_context(ctx, KEY) for ctx in (ALICE, BOB)}
    cmd = worker_command(
        server.url,
        key_file,
        pipeline="tests.nats.pipelines:slow_filesystem",
        ack_wait=2,
        extra=["--batch", "50"],
    )
    log = tmp_path / "workers.log"
    workers = [start_worker(cmd, log) for _ in range(3)]
    try:
        feeding = asyncio.run(
            _feed_and_kill(server.url, inputs, tokens, workers, rng.uniform(0.15, 0.6), rng)
        )
        workers.append(start_worker(cmd, log))  # the replacement
        assert feeding is not None
        total = asyncio.run(wait_for_total(server.url, len(inputs), timeout=60))
        time.sleep(0.3)
        result_ids, drops, _ = asyncio.run(ledger(server.url))
    finally:
        stop_all(workers)
    assert total >= len(inputs)
    seen = counts(result_ids, drops)
    assert set(seen) == {sid for sid, _, _ in inputs}, "an input is missing"
    assert max(seen.values()) == 1, [sid for sid, n in seen.items() if n > 1][:5]
    expected = local_outcomes(inputs)
    got = {ids[0]: "result" for ids in result_ids}
    got.update({d["source_id"]: d["reason"] for d in drops})
    assert got == expected


async def _feed_and_kill(
    url: str,
    inputs: list[tuple[str, Any, pfrx.Context]],
    tokens: dict[pfrx.Context, str],
    workers: list[Any],
    fraction: float,
    rng: random.Random,
) -> float:
    async def killer() -> float:
        # Mid-run: once a random fraction of the inputs has come out, so the victim holds work.
        await wait_for_total(url, int(fraction * len(inputs)), timeout=60)
        victim = rng.choice(workers)
        victim.send_signal(signal.SIGKILL)
        return fraction

    kill = asyncio.ensure_future(killer())
    await publish_inputs(url, [(sid, ev, tokens[ctx]) for sid, ev, ctx in inputs], subject="t.in")
    return await kill


# -- keyed sessions ------------------------------------------------------------------------------

SESSIONS = 24
PER_SESSION = 8
GAP = 4.0  # processing time: generous, so a starved worker on a busy box does not split one


def session_inputs() -> list[tuple[str, dict[str, Any], pfrx.Context]]:
    contexts = [pfrx.Context(f"user{k % 5}", f"s{k}") for k in range(SESSIONS)]
    return [
        (f"s{k}-{j}", {"i": f"s{k}-{j}"}, contexts[k])
        for j in range(PER_SESSION)
        for k in range(SESSIONS)
    ]


def single_process_sessions(inputs: list[tuple[str, Any, pfrx.Context]]) -> set[tuple[str, ...]]:
    windows: list[pfrx.Window] = []
    with pfrx.Stream(pf.window_session(GAP)) as stream:
        stream.results.subscribe(windows.append)
        for _, event, ctx in inputs:
            stream.send(event, ctx)
        stream.close()
        stream.join(10)
    return {tuple(sorted(e["i"] for e in w.events)) for w in windows}


@pytest.mark.parametrize("seed", [1, 2])
def test_keyed_sessions_survive_a_kill_identical_to_single_process(
    seed: int,
    server: NatsServer,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(seed)
    monkeypatch.setenv("PFRX_SESSION_GAP", str(GAP))
    inputs = session_inputs()
    cmd = worker_command(
        server.url,
        key_file,
        pipeline="pfrx.nats.pipelines:sessions",
        # ack_wait well past the lease: a new owner that did not wait for the dead one's
        # inputs to fall due would close sessions without them.
        # (a lease short enough for a fast test, long enough that a worker slowed down by
        # a busy machine does not lose it while alive: that would split its open sessions)
        ack_wait=5,
        extra=["--partitions", "6", "--lease-ttl", "2"],
    )
    log = tmp_path / "workers.log"
    workers = [start_worker(cmd, log) for _ in range(3)]
    try:
        # Publish once the partitions have spread: a partition handed back while its
        # sessions are open would close them early (see docs/scaling.md).
        asyncio.run(wait_spread(server.url, "t-workers", 6, 3))
        tokens = {ctx: sign_context(ctx, KEY) for _, _, ctx in inputs}
        subjects = [f"t.in.{ctx.session_id}" for _, _, ctx in inputs]
        half = int(len(inputs) * rng.uniform(0.2, 0.8))  # a random moment, sessions open
        asyncio.run(
            publish_inputs(
                server.url,
                [(sid, ev, tokens[ctx]) for sid, ev, ctx in inputs[:half]],
                subject=subjects[:half],
            )
        )
        rng.choice(workers).send_signal(signal.SIGKILL)
        asyncio.run(
            publish_inputs(
                server.url,
                [(sid, ev, tokens[ctx]) for sid, ev, ctx in inputs[half:]],
                subject=subjects[half:],
            )
        )
        assert asyncio.run(wait_for_total(server.url, SESSIONS, timeout=60)) >= SESSIONS
        time.sleep(GAP + 0.5)
        result_ids, drops, results = asyncio.run(ledger(server.url))
    finally:
        stop_all(workers)
    assert drops == []
    distributed = {tuple(sorted(e["i"] for e in body["event"]["events"])) for body in results}
    split = sorted(
        (body["event"]["key"], body["event"]["start"], [e["i"] for e in body["event"]["events"]])
        for body in results
    )
    assert len(results) == SESSIONS, split
    assert distributed == single_process_sessions(inputs)
    assert {tuple(sorted(ids)) for ids in result_ids} == distributed
