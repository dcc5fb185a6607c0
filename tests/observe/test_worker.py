"""``pfrx worker --metrics-port PORT`` serves the worker's stream on /metrics and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import pfrx
from pfrx.examples.filesystem import FileCap
from pfrx.nats import sign_context
from pfrx.nats._server import NatsServer, free_port
from tests.nats.helpers import (
    KEY,
    publish_inputs,
    start_worker,
    stop_all,
    wait_for_total,
    worker_command,
)

from .conftest import get


def received(text: str) -> dict[str, float]:
    return {
        sample.labels["stream"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "pfrx_received_total"
    }


def test_worker_metrics_port_serves_the_workers_stream(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_bytes(KEY + b"\n")
    token = sign_context(pfrx.Context("alice", "s", [FileCap.read("/")]), KEY)
    inputs = [(f"in-{i}", {"op": "read", "path": f"/d/{i}"}, token) for i in range(30)]
    port = free_port()
    node = NatsServer(tmp_path / "js").start()
    worker = start_worker(
        worker_command(node.url, key_file, extra=["--metrics-port", str(port)]),
        tmp_path / "worker.log",
    )
    try:
        asyncio.run(publish_inputs(node.url, inputs, subject="t.in"))
        assert asyncio.run(wait_for_total(node.url, len(inputs), timeout=60)) == len(inputs)
        url = f"http://127.0.0.1:{port}"
        counts: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(counts.values()) < len(inputs):
            with contextlib.suppress(OSError):  # not listening yet
                counts = received(get(url + "/metrics")[2].decode())
            time.sleep(0.1)
        assert sum(counts.values()) == len(inputs), counts
        assert get(url + "/")[0] == 200
    finally:
        stop_all([worker])
        node.stop()
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log, log
