"""Operations: one-line errors, SIGTERM drains and exits 0 within ack_wait."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pfrx
from pfrx.examples.filesystem import FileCap
from pfrx.nats import sign_context
from pfrx.nats._server import NatsServer, free_port

from .helpers import (
    KEY,
    ROOT,
    counts,
    ledger,
    publish_inputs,
    start_worker,
    stop_all,
    wait_for_total,
    worker_command,
)


def run_worker(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )


def one_line(process: subprocess.CompletedProcess[str]) -> str:
    assert process.returncode == 1
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("pfrx worker: ")
    return lines[0]


def test_unreachable_server_is_one_line(key_file: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    line = one_line(run_worker(worker_command(url, key_file)))
    assert "cannot reach NATS" in line and url in line


def test_unreadable_key_file_is_one_line(tmp_path: Path) -> None:
    line = one_line(run_worker(worker_command("nats://127.0.0.1:1", tmp_path / "nope")))
    assert "cannot read key file" in line


def test_missing_stream_is_one_line(server: NatsServer, key_file: Path) -> None:
    cmd = worker_command(server.url, key_file, extra=["--no-create-streams"])
    line = one_line(run_worker(cmd))
    assert "no JetStream stream covers subject 't.in'" in line


def test_bad_pipeline_is_one_line(server: NatsServer, key_file: Path) -> None:
    line = one_line(run_worker(worker_command(server.url, key_file, pipeline="nowhere:f")))
    assert "cannot load pipeline" in line


def test_sigterm_drains_and_exits_zero_within_ack_wait(
    server: NatsServer, key_file: Path, tmp_path: Path
) -> None:
    ctx = pfrx.Context("alice", "s", [FileCap.read("/")])
    token = sign_context(ctx, KEY)
    inputs = [(f"in-{i}", {"op": "read", "path": f"/d/{i}"}, token) for i in range(400)]
    ack_wait = 5.0
    cmd = worker_command(
        server.url, key_file, pipeline="tests.nats.pipelines:slow_filesystem", ack_wait=ack_wait
    )
    log = tmp_path / "worker.log"
    worker = start_worker(cmd, log)
    successor = None
    try:
        asyncio.run(publish_inputs(server.url, inputs, subject="t.in"))
        asyncio.run(wait_for_total(server.url, 50, timeout=30))
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(ack_wait + 5) == 0
        assert time.monotonic() - started < ack_wait
        successor = start_worker(cmd, log)  # finishes the rest
        assert asyncio.run(wait_for_total(server.url, len(inputs), timeout=60)) == len(inputs)
        time.sleep(0.3)
        result_ids, drops, _ = asyncio.run(ledger(server.url))
    finally:
        stop_all([w for w in (worker, successor) if w is not None])
    seen = counts(result_ids, drops)
    assert len(seen) == len(inputs) and max(seen.values()) == 1 and not drops


def test_worker_help_runs_as_a_module() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "pfrx.nats.worker", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert process.returncode == 0 and "--durable" in process.stdout


def test_metrics_port_serves_the_workers_stream(
    server: NatsServer, key_file: Path, tmp_path: Path
) -> None:
    import urllib.request

    port = free_port()
    token = sign_context(pfrx.Context("alice", "s", [FileCap.read("/")]), KEY)
    cmd = worker_command(server.url, key_file, extra=["--metrics-port", str(port)])
    worker = start_worker(cmd, tmp_path / "worker.log")
    try:
        inputs = [(f"in-{i}", {"op": "read", "path": "/a"}, token) for i in range(20)]
        asyncio.run(publish_inputs(server.url, inputs, subject="t.in"))
        assert asyncio.run(wait_for_total(server.url, 20, timeout=30)) == 20
        url = f"http://127.0.0.1:{port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    finally:
        stop_all([worker])
    stream = f'stream="worker.t-workers.{worker.pid}"'
    received = [line for line in text.splitlines() if line.startswith("pfrx_received_total{")]
    assert any(stream in line and line.endswith(" 20.0") for line in received), received


def test_importing_without_the_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['nats'] = None\n"
        "try:\n    import pfrx.nats\nexcept ImportError as e:\n    print(e)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert process.stdout.strip() == "pfrx.nats needs the 'nats' extra: pip install 'pfrx[nats]'"


def test_a_server_without_jetstream_is_one_line(key_file: Path, tmp_path: Path) -> None:
    from pfrx.nats._server import find_server_binary

    port = free_port()
    plain = subprocess.Popen(
        [find_server_binary(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        line = one_line(run_worker(worker_command(f"nats://127.0.0.1:{port}", key_file)))
    finally:
        plain.terminate()
        plain.wait(10)
    assert "JetStream" in line
