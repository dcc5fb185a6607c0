"""The server: endpoints, live events, token, headers, binding, stopping, the missing extra."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx.observe import ExposedServerWarning, serve

from .conftest import ALLOWED, SECRETS, get, known_workload

ENDPOINTS = ("/", "/metrics", "/api/streams", "/api/events", "/static/dashboard.js")


def events(url: str, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The ``state`` messages of ``url``'s server-sent events, as they arrive."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", "/api/events", headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("text/event-stream")
        kind, data = None, []
        while True:
            line = response.fp.readline().decode()
            if not line:
                return
            line = line.rstrip("\n")
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif not line and data:
                if kind == "state":
                    yield json.loads("\n".join(data))
                kind, data = None, []
    finally:
        connection.close()


def test_api_streams_lists_each_stream_with_name_health_and_snapshot(
    registry: pfrx.StreamRegistry,
) -> None:
    files = known_workload("files", 100)
    registry.register("files", files)
    with serve(registry=registry) as server:
        status, headers, body = get(server.url + "/api/streams")
    assert status == 200
    assert headers["content-type"] == "application/json"
    (item,) = json.loads(body)
    snap = files.metrics()
    assert item["name"] == "files"
    assert item["health"] == "unhealthy"
    for field in ("received", "emitted", "dropped", "errors", "backpressure_events"):
        assert item["metrics"][field] == getattr(snap, field)
    for field in ("processing_rate", "buffer_utilization", "avg_processing_time", "error_rate"):
        assert item["metrics"][field] == getattr(snap, field)
    assert item["metrics"]["drops_by_reason"] == dict(snap.drops_by_reason)
    assert [s["name"] for s in item["metrics"]["operators"]] == [
        "capability_filter",
        "transform",
        "backpressure",
    ]


def test_the_page_as_served_lists_each_stream_escaped(registry: pfrx.StreamRegistry) -> None:
    hostile = "<script>alert(1)</script>&"
    registry.register("files", known_workload("files", 100))
    registry.register(hostile, pfrx.Stream())
    with serve(registry=registry) as server:
        page = get(server.url + "/")[2].decode()
    assert "<td>files</td><td>unhealthy</td><td>100</td><td>20</td><td>60</td>" in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;&amp;</td><td>healthy</td>" in page
    assert "<script>alert" not in page


def test_no_payload_context_or_token_reaches_any_endpoint(registry: pfrx.StreamRegistry) -> None:
    registry.register("files", known_workload("files", 100))
    token = "bearer-token-xyz"
    auth = {"Authorization": f"Bearer {token}"}
    with serve(registry=registry, token=token, interval=0.05) as server:
        bodies = [get(server.url + path, auth)[2] for path in ENDPOINTS if path != "/api/events"]
        bodies.append(get(server.url + "/static/dashboard.css", auth)[2])
        first = next(events(server.url, auth))
    bodies.append(json.dumps(first).encode())
    assert first["streams"][0]["metrics"]["received"] == 100
    for body in bodies:
        text = body.decode()
        for secret in (*SECRETS, token):
            assert secret not in text


def test_live_events_follow_sends_and_the_registry(registry: pfrx.StreamRegistry) -> None:
    clock = TestScheduler()
    alpha = pfrx.Stream(name="alpha", scheduler=clock)
    registry.register("alpha", alpha)
    with serve(registry=registry, interval=0.05, history=1.0) as server:
        stream = events(server.url)
        first = next(stream)
        assert [s["name"] for s in first["streams"]] == ["alpha"]
        assert first["streams"][0]["metrics"]["received"] == 0
        assert "history" in first
        for _ in range(7):
            alpha.send("x", ALLOWED)
        beta = pfrx.Stream(name="beta", scheduler=clock)
        registry.register("beta", beta)
        deadline = time.monotonic() + 10
        message = next(stream)
        while time.monotonic() < deadline and len(message["streams"]) < 2:
            message = next(stream)
        by_name = {s["name"]: s for s in message["streams"]}
        assert by_name["alpha"]["metrics"]["received"] == 7
        assert "beta" in by_name
        assert "history" not in message  # only the first message carries the history
        registry.unregister("alpha")
        while time.monotonic() < deadline and len(message["streams"]) > 1:
            message = next(stream)
        assert [s["name"] for s in message["streams"]] == ["beta"]
        kinds = [(t["stream"], t["kind"]) for t in message["transitions"]]
        assert ("alpha", "appeared") in kinds
        assert ("beta", "appeared") in kinds
        assert ("alpha", "gone") in kinds


def test_a_page_opened_later_gets_the_kept_history(registry: pfrx.StreamRegistry) -> None:
    registry.register("alpha", pfrx.Stream(name="alpha", scheduler=TestScheduler()))
    with serve(registry=registry, interval=0.05, history=0.25) as server:
        time.sleep(1.5)  # some 30 samples taken (fewer on a busy machine, still over 5)
        history = next(events(server.url))["history"]["alpha"]
    assert len(history) == 5  # 0.25 s of history at one point per 0.05 s: the oldest go
    times = [point[0] for point in history]
    assert times == sorted(times)
    assert all(len(point) == 5 for point in history)  # time, out/s, in/s, dropped/s, buffer


def test_a_health_transition_is_marked_in_the_events(registry: pfrx.StreamRegistry) -> None:
    from pfrx import operators as pf

    stream = pfrx.Stream(pf.transform(lambda e, c: pfrx.Reject("no") if e else e), name="t")
    registry.register("t", stream)
    stream.send(0, ALLOWED)
    with serve(registry=registry, interval=0.05) as server:
        feed = events(server.url)
        assert next(feed)["streams"][0]["health"] == "healthy"
        for _ in range(3):
            stream.send(1, ALLOWED)
        deadline = time.monotonic() + 10
        message = next(feed)
        while time.monotonic() < deadline and message["streams"][0]["health"] == "healthy":
            message = next(feed)
    item = message["streams"][0]
    assert item["health"] == "unhealthy"
    assert item["previous_health"] == "healthy"
    assert {"stream": "t", "kind": "health", "old": "healthy", "new": "unhealthy"}.items() <= (
        message["transitions"][-1].items()
    )


def test_every_endpoint_requires_the_token_when_one_is_set(
    registry: pfrx.StreamRegistry,
) -> None:
    registry.register("files", known_workload())
    token = "s3cret token/with?odd&chars"
    with serve(registry=registry, token=token) as server:
        for path in ENDPOINTS:
            status, headers, _ = get(server.url + path)
            assert status == 401, path
            assert headers["www-authenticate"].startswith("Bearer")
            assert get(server.url + path, {"Authorization": "Bearer wrong"})[0] == 401
        for path in ENDPOINTS:
            if path == "/api/events":
                assert next(events(server.url, {"Authorization": f"Bearer {token}"}))
                continue
            assert get(server.url + path, {"Authorization": f"Bearer {token}"})[0] == 200, path
        # The browser's way in: the login link sets a cookie (not the token) and redirects.
        parts = urllib.parse.urlsplit(server.dashboard_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        assert response.status == 303
        assert response.getheader("location") == "/"
        cookie = response.getheader("set-cookie")
        connection.close()
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert urllib.parse.quote(token) not in cookie
        assert token not in cookie
        pair = cookie.split(";", 1)[0]
        assert get(server.url + "/metrics", {"Cookie": pair})[0] == 200
        assert get(server.url + "/metrics", {"Cookie": pair[:-1] + "0"})[0] == 401
        # The login link works on the page only.
        assert get(server.url + "/metrics?token=" + urllib.parse.quote(token))[0] == 401
        assert get(server.url + "/?token=wrong")[0] == 401


def test_pages_carry_security_headers_and_only_the_shipped_assets(
    registry: pfrx.StreamRegistry,
) -> None:
    with serve(registry=registry) as server:
        status, headers, body = get(server.url + "/")
        assert status == 200
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert b"static/dashboard.js" in body
        assert b"http" not in body.replace(b"http-equiv", b"")  # no CDN, nothing remote
        js = get(server.url + "/static/dashboard.js")
        assert js[0] == 200
        assert js[1]["content-type"].startswith("text/javascript")
        assert b"innerHTML" not in js[2]  # user-controlled text is never parsed as HTML
        assert get(server.url + "/static/server.py")[0] == 404
        assert get(server.url + "/static/..%2f__init__.py")[0] == 404
        # A DNS name rebound to 127.0.0.1 is refused: only loopback host names are accepted.
        assert get(server.url + "/metrics", {"Host": "evil.example"})[0] == 400
        assert get(server.url + "/metrics", {"Host": "127.0.0.1.evil.example"})[0] == 400
        assert get(server.url.replace("127.0.0.1", "localhost") + "/metrics")[0] == 200


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_ipv6_loopback_is_served_too(registry: pfrx.StreamRegistry) -> None:
    registry.register("files", known_workload())
    if not ipv6_loopback_available():  # e.g. a container without IPv6: a clear error
        with pytest.raises(OSError):
            serve(registry=registry, host="::1")
        return
    with serve(registry=registry, host="::1") as server:
        assert server.url == f"http://[::1]:{server.port}"
        status, _, body = get(server.url + "/metrics")
    assert status == 200
    assert b'pfrx_received_total{stream="files"} 100.0' in body


def test_binds_loopback_by_default_and_warns_for_another_host(
    registry: pfrx.StreamRegistry,
) -> None:
    with serve(registry=registry) as server:
        assert server.host == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes, then the bind
    # fails, so nothing is ever exposed by this test.
    with (
        pytest.warns(ExposedServerWarning, match=r"other machines can read"),
        pytest.raises(OSError),
    ):
        serve(registry=registry, host="192.0.2.1")


def test_stop_ends_open_event_streams_and_frees_the_port(registry: pfrx.StreamRegistry) -> None:
    server = serve(registry=registry, interval=0.05)
    feed = events(server.url)
    assert next(feed)["streams"] == []
    started = time.monotonic()
    server.stop()
    assert not server.running
    rest = list(feed)  # ends when the server closes the stream (else: a 10 s read timeout)
    assert time.monotonic() - started < 3.5  # not the 5 s graceful-shutdown timeout
    assert all(message["streams"] == [] for message in rest)
    with pytest.raises(OSError):
        get(server.url + "/metrics")
    server.stop()  # idempotent


def test_a_taken_port_is_an_error_not_a_silent_second_server(
    registry: pfrx.StreamRegistry,
) -> None:
    with serve(registry=registry) as first:
        with pytest.raises(OSError):
            serve(first.port, registry=registry)
        assert get(first.url + "/metrics")[0] == 200


def test_bad_arguments_are_refused(registry: pfrx.StreamRegistry) -> None:
    with pytest.raises(TypeError, match="port"):
        serve(port="80", registry=registry)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port"):
        serve(port=70000, registry=registry)
    with pytest.raises(TypeError, match="token"):
        serve(registry=registry, token="")
    with pytest.raises(ValueError, match="interval"):
        serve(registry=registry, interval=0)


@pytest.mark.parametrize(
    ("blocked", "statement", "message"),
    [
        ("starlette", "import pfrx.observe", "pfrx.observe needs the 'web' extra"),
        (
            "opentelemetry",
            "import pfrx.observe; pfrx.observe.instrument()",
            "pfrx.observe.instrument needs the 'otel' extra",
        ),
    ],
)
def test_a_missing_extra_is_one_clear_line(blocked: str, statement: str, message: str) -> None:
    code = f"import sys; sys.modules[{blocked!r}] = None; {statement}"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: " + message)
    assert f"pip install 'pfrx[{message.split(chr(39))[1]}]'" in last
    assert "During handling" not in done.stderr  # one error, not a chain
