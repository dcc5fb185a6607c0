"""Shared pieces of the observability tests: a private registry, a known workload, HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

FileCap = pfrx.CapabilityFamily("file", actions=("read", "write"))
#: Strings that must never reach any page or endpoint: they are payloads and contexts.
SECRETS = ("SECRET-PAYLOAD-7f3a", "secret-user-alice", "secret-session-9", "secret-meta-value")
ALLOWED = pfrx.Context(SECRETS[1], SECRETS[2], [FileCap.read("/docs")], {"note": SECRETS[3]})
DENIED = pfrx.Context("mallory", "s", [])


def reject_multiples_of_seven(event: Any, context: pfrx.Context) -> Any:
    if event[0] % 7 == 0:
        return pfrx.Reject("multiple of seven")
    return event


def known_workload(name: str = "files", n: int = 100) -> pfrx.Stream:
    """A stream on a TestScheduler (figures frozen in virtual time) after ``n`` sends.

    capability_filter drops every 4th (denied), transform rejects multiples of seven, and a
    ``drop_newest`` buffer of 20, drained once half-way (one virtual second), holds 20 items
    at the end and has dropped the rest (overflow).
    """
    scheduler = TestScheduler()
    stream = pfrx.Stream(
        pf.capability_filter(FileCap.read("/docs")),
        pf.transform(reject_multiples_of_seven),
        pf.backpressure("drop_newest", buffer_size=20),
        name=name,
        scheduler=scheduler,
    )
    for i in range(n):
        if i == n // 2:
            scheduler.advance_by(1.0)  # the drain delivers what the first half buffered
        assert stream.send((i, SECRETS[0]), DENIED if i % 4 == 3 else ALLOWED).ok
    return stream


@pytest.fixture
def registry() -> Iterator[pfrx.StreamRegistry]:
    """A registry of the test's own, so tests never see each other's streams."""
    reg = pfrx.StreamRegistry()
    yield reg
    for name in reg.names():
        reg.unregister(name)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; the status, headers (lower-case names) and body, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _headers(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _headers(error.headers), error.read()


def _headers(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


#: Set when the browser tests ran without a browser: reported at the end of the run.
MISSING_BROWSER: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in MISSING_BROWSER:
        terminalreporter.write_sep("!", line, red=True, bold=True)
