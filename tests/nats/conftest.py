from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pfrx.nats._server import NatsServer

from .helpers import KEY, OLD_KEY


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh JetStream server on 127.0.0.1 (a free port), stopped after the test."""
    node = NatsServer(tmp_path / "js").start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_bytes(KEY + b"\n")
    return path


@pytest.fixture
def rotated_key_file(tmp_path: Path) -> Path:
    """The new key first (it signs), the old one still accepted."""
    path = tmp_path / "rotated-keys"
    path.write_bytes(KEY + b"\n" + OLD_KEY + b"\n")
    return path
