"""The observability server: ``/metrics``, ``/api/streams``, ``/api/events`` and ``/``.

Starlette serves the routes; uvicorn runs them on an event loop of its own, on a
background thread, so `serve` returns at once and the caller's program goes on. The
dashboard's assets ship in ``pfrx/observe/static`` (no CDN: it works offline). Live updates
are server-sent events: one message per sampling interval with every stream's reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import ipaddress
import json
import socket
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote

import uvicorn
from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from .. import registry as default_registry
from .._clock import positive_seconds
from ._hub import Hub
from ._reading import RegistryLike, read_streams
from .prometheus import exposition

__all__ = ["ExposedServerWarning", "ObserveServer", "serve"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The dashboard's files and their media types (nothing else under /static is served).
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
COOKIE = "pfrx_observe"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class ExposedServerWarning(UserWarning):
    """`serve` was asked to listen on an address other hosts may reach."""


class ObserveServer:
    """A running observability server (returned by `serve`).

    Attributes:
        url: ``http://host:port`` (no trailing slash).
        host, port: where it listens (the real port when ``port=0`` was asked).
    """

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        host: str,
        port: int,
        token: str | None,
        stopping: Callable[[], None],
    ) -> None:
        self._server = server
        self._thread = thread
        self._token = token
        self._stopping = stopping
        self.host = host.strip("[]")
        self.port = port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}"

    @property
    def dashboard_url(self) -> str:
        """The page to open in a browser; with a token, it logs the browser in once.

        Visiting it sets a cookie and redirects to ``/``, so the token leaves the address
        bar at once. Treat this URL as the secret it holds.
        """
        if self._token is None:
            return self.url + "/"
        return f"{self.url}/?token={quote(self._token, safe='')}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Close open pages' event streams, stop the server, wait for its thread."""
        if not self._thread.is_alive():
            return
        self._stopping()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> ObserveServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<pfrx.observe server {self.url} {'running' if self.running else 'stopped'}>"


def serve(
    port: int = 0,
    *,
    registry: RegistryLike = default_registry,
    host: str = "127.0.0.1",
    token: str | None = None,
    interval: float | timedelta = 1.0,
    history: float | timedelta = 300.0,
) -> ObserveServer:
    """Serve ``/metrics``, ``/api/streams`` and a live dashboard of ``registry``'s streams.

    Args:
        port: TCP port; 0 picks a free one (read it back from ``.port`` / ``.url``).
        registry: the streams to show (default: `pfrx.registry`).
        host: the address to listen on. The default, ``127.0.0.1``, is reachable from this
            machine only. Any other address lets other machines read your streams'
            figures (and stop nothing): choose it explicitly, preferably with ``token``;
            a warning is issued.
        token: when given, every endpoint requires ``Authorization: Bearer <token>`` (or
            the cookie `ObserveServer.dashboard_url` sets in a browser).
        interval: how often the dashboard is updated (and its history sampled).
        history: how much history the dashboard's charts keep.

    Returns:
        The running server: ``.url``, ``.stop()``; also a context manager.

    Example:
        >>> import pfrx, urllib.request
        >>> from pfrx.observe import serve
        >>> with serve() as server:
        ...     text = urllib.request.urlopen(server.url + "/metrics").read().decode()
        >>> "pfrx_received_total" in text
        True
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise TypeError(f"port must be an int in 0..65535, not {port!r}")
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a non-empty str, not {host!r}")
    if token is not None and (not isinstance(token, str) or not token):
        raise TypeError("token must be a non-empty str or None")
    period = positive_seconds(interval, "interval")
    kept = positive_seconds(history, "history")
    loopback = _is_loopback(host)
    if not loopback:
        message = (
            f"pfrx.observe.serve listens on {host}: other machines can read every registered "
            f"stream's metrics{'' if token else ' (no token set: anyone who can connect)'}"
        )
        logger.warning(message)
        warnings.warn(message, ExposedServerWarning, stacklevel=2)

    hub = Hub(registry, interval=period, history=kept)
    app, stopping = _app(hub, registry, token, loopback)
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,  # a library configures no logging: uvicorn's loggers stay as they are
        log_level=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # open pages are closed first: this bounds a stuck one
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:
            failure.append(error)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name="pfrx-observe", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"pfrx.observe server did not start: {failure!r}")
        thread.join(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    handle = ObserveServer(server, thread, host, bound_port, token, stopping)
    logger.info("pfrx.observe serving {} ({})", handle.url, bound_host)
    return handle


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_name(host_header: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback (port optional)."""
    if host_header.startswith("["):  # [::1]:8080
        name = host_header[1 : host_header.find("]")] if "]" in host_header else ""
    else:
        name = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    return name.lower() == "localhost" or _is_loopback(name)


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _cookie_value(token: str) -> str:
    # The cookie proves the browser once showed the token; it is not the token itself.
    return hmac.new(token.encode(), b"pfrx.observe dashboard", hashlib.sha256).hexdigest()


class _Guard:
    """Bearer-token check (when a token is set) and security headers, for every route."""

    def __init__(self, app: ASGIApp, token: str | None, loopback: bool) -> None:
        self.app = app
        self.loopback = loopback
        self.token = token.encode() if token is not None else None
        self.cookie = _cookie_value(token) if token is not None else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        request = Request(scope)
        if self.loopback and not _loopback_name(request.headers.get("host", "")):
            # A page on another site could otherwise reach a loopback server through a DNS
            # name rebound to 127.0.0.1 (DNS rebinding): only loopback names are accepted.
            await PlainTextResponse("400 Bad Request: unknown host\n", status_code=400)(
                scope, receive, send_with_headers
            )
            return
        if self.token is not None and not self._allowed(request, self.token):
            response: Response = PlainTextResponse(
                "401 Unauthorized: send 'Authorization: Bearer <token>'\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="pfrx"'},
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _allowed(self, request: Request, token: bytes) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token):
            return True
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), self.cookie.encode()):
            return True
        # The dashboard's one-time login link: /?token=...
        offered = request.query_params.get("token")
        return (
            request.url.path == "/"
            and offered is not None
            and hmac.compare_digest(offered.encode(), token)
        )


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _app(
    hub: Hub, registry: RegistryLike, token: str | None, loopback: bool
) -> tuple[ASGIApp, Callable[[], None]]:
    page = _asset("index.html")
    assets = {name: (_asset(name), kind) for name, kind in ASSETS.items()}
    listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()
    loop_box: list[asyncio.AbstractEventLoop] = []
    closing = threading.Event()

    def close_listeners() -> None:
        closing.set()
        for queue in list(listeners):
            queue.put_nowait(None)

    def stopping() -> None:
        if loop_box:
            loop_box[0].call_soon_threadsafe(close_listeners)
        else:
            closing.set()

    def publish(message: dict[str, Any]) -> None:
        for queue in list(listeners):
            if queue.full():  # a page that reads slowly gets the newest state, not a backlog
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    async def sampler() -> None:
        while not closing.is_set():
            try:
                publish(await asyncio.to_thread(hub.sample))
            except Exception as error:
                logger.warning("pfrx.observe: sampling failed: {!r}", error)
            await asyncio.sleep(hub.interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        loop_box.append(asyncio.get_running_loop())
        task = asyncio.create_task(sampler())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def index(request: Request) -> Response:
        if token is not None and "token" in request.query_params:
            # Logged in through the link: keep a cookie, drop the token from the address.
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                COOKIE, _cookie_value(token), httponly=True, samesite="strict", path="/"
            )
            return response
        return Response(_first_reading(page, registry), media_type="text/html; charset=utf-8")

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("404 Not Found\n", status_code=404)
        return Response(found[0], media_type=found[1])

    # Reading the streams takes microseconds per stream: done on the loop, a scrape costs
    # no thread hop (which was a third of its CPU time).
    async def metrics(_: Request) -> Response:
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    async def streams(_: Request) -> Response:
        return JSONResponse([reading.to_json() for reading in read_streams(registry)])

    async def events(request: Request) -> Response:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=4)
        listeners.add(queue)

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                yield _event(hub.latest(with_history=True))
                while not closing.is_set():
                    message = await queue.get()
                    if message is None:
                        return
                    yield _event(message)
            finally:
                listeners.discard(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    middleware = [Middleware(_Guard, token=token, loopback=loopback)]
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", asset),
            Route("/metrics", metrics),
            Route("/api/streams", streams),
            Route("/api/events", events),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    return app, stopping


def _first_reading(page: bytes, registry: RegistryLike) -> bytes:
    """The page with a plain table of the streams as they are now, for a reader without
    scripts (and for the first paint); the live cards replace it. Every name is escaped."""
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(cell))}</td>"
            for cell in (
                reading.name,
                reading.health.value,
                reading.snapshot.received,
                reading.snapshot.emitted,
                reading.snapshot.dropped,
            )
        )
        + "</tr>"
        for reading in read_streams(registry)
    )
    return page.replace(b"<!--FIRST-READING-->", rows.encode(), 1)


def _event(message: dict[str, Any]) -> str:
    return f"event: state\ndata: {json.dumps(message, allow_nan=False)}\n\n"
