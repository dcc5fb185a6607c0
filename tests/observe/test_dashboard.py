"""The dashboard in a real browser: Debian's chromium driven by Playwright's Python package.

The page must show every registered stream, update totals in place (no reload), show a
stream registered later, drop one that leaves, and mark health transitions. Screenshots go
to the test's temporary folder; the docs' picture (``docs/img/dashboard.png``) is taken by
:func:`test_docs_screenshot`.

Without a chromium the run fails in CI (``CI=true``) and says so loudly elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.observe import serve

from .conftest import ALLOWED, DENIED, MISSING_BROWSER, FileCap, get

CHROMIUM = os.environ.get("PFRX_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
WAIT_MS = 10_000


class BrowserMissingWarning(UserWarning):
    """The dashboard was not tested in a browser."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module, or None (loudly) when there is none."""
    if not os.path.exists(CHROMIUM):
        message = (
            f"NO CHROMIUM at {CHROMIUM}: the dashboard was NOT tested in a browser "
            "(apt-get install chromium, or set PFRX_CHROMIUM)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        MISSING_BROWSER.append(message)
        warnings.warn(message, BrowserMissingWarning, stacklevel=1)
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def served_without_browser(url: str) -> None:
    """What can be checked without a browser: the page and its assets are served."""
    status, _, body = get(url + "/")
    assert status == 200
    assert b"static/dashboard.js" in body
    assert get(url + "/static/dashboard.js")[0] == 200


def card(name: str) -> str:
    return f'.card[data-stream="{name}"]:not([data-leaving])'


def total(page: Any, name: str, field: str) -> str:
    return str(page.text_content(f'{card(name)} [data-field="{field}"]'))


def test_the_dashboard_follows_streams_live(
    browser: Any, registry: pfrx.StreamRegistry, tmp_path: Path
) -> None:
    alpha = pfrx.Stream(pf.transform(lambda e, c: pfrx.Reject("bad input") if e < 0 else e))
    beta = pfrx.Stream(pf.capability_filter(FileCap.read("/docs")))
    registry.register("alpha", alpha)
    registry.register("beta", beta)
    for i in range(3):
        alpha.send(i, ALLOWED)
    beta.send(0, ALLOWED)
    hostile = "<img src=x onerror=window.__pwned=1>&amp;"

    with serve(registry=registry, interval=0.2) as server:
        if browser is None:
            served_without_browser(server.url)
            return
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        page.wait_for_selector(card("alpha"), timeout=WAIT_MS)
        page.wait_for_selector(card("beta"), timeout=WAIT_MS)
        assert total(page, "alpha", "received") == "3"
        assert total(page, "alpha", "health") == "healthy"
        assert total(page, "beta", "emitted") == "1"
        page.evaluate("window.__sameDocument = 'yes'")
        page.screenshot(path=tmp_path / "1-two-streams.png")

        # More events: the totals change in place, without a reload.
        for i in range(5):
            alpha.send(i, ALLOWED)
        page.wait_for_function(
            "sel => document.querySelector(sel).textContent === '8'",
            arg=f'{card("alpha")} [data-field="received"]',
            timeout=WAIT_MS,
        )
        assert page.evaluate("window.__sameDocument") == "yes"

        # A stream registered later appears; one that is unregistered disappears.
        gamma = pfrx.Stream()
        registry.register("gamma", gamma)
        registry.register(hostile, pfrx.Stream())
        page.wait_for_selector(card("gamma"), timeout=WAIT_MS)
        registry.unregister("beta")
        page.wait_for_selector('.card[data-stream="beta"]', state="detached", timeout=WAIT_MS)
        page.screenshot(path=tmp_path / "2-gamma-in-beta-out.png")

        # A health transition is marked: the card's colour, a flash, a line in the log.
        for _ in range(10):
            alpha.send(-1, ALLOWED)
        page.wait_for_selector(f'{card("alpha")}[data-health="unhealthy"]', timeout=WAIT_MS)
        changed = total(page, "alpha", "changed")
        assert changed.startswith("was healthy")
        assert "bad input" in str(page.text_content(f'{card("alpha")} [data-field="reasons"]'))
        log = str(page.text_content("#transitions"))
        assert "alpha" in log
        assert "healthy → unhealthy" in log
        page.screenshot(path=tmp_path / "3-alpha-unhealthy.png")

        # User-controlled names are text, never markup.
        names = page.eval_on_selector_all(".card h3.name", "els => els.map(e => e.textContent)")
        assert hostile in names
        assert page.evaluate("window.__pwned === undefined")
        assert page.query_selector(".card img") is None
        assert page.evaluate("window.__sameDocument") == "yes"
        assert errors == []
        page.close()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "1-two-streams.png",
        "2-gamma-in-beta-out.png",
        "3-alpha-unhealthy.png",
    ]


def test_the_token_login_link_opens_the_dashboard(
    browser: Any, registry: pfrx.StreamRegistry
) -> None:
    registry.register("private", pfrx.Stream())
    with serve(registry=registry, token="tok-123", interval=0.2) as server:
        if browser is None:
            served_without_browser_with_token = get(
                server.url + "/", {"Authorization": "Bearer tok-123"}
            )
            assert served_without_browser_with_token[0] == 200
            return
        context = browser.new_context()
        page = context.new_page()
        denied = page.goto(server.url + "/")
        assert denied is not None
        assert denied.status == 401
        page.goto(server.dashboard_url)
        page.wait_for_selector(card("private"), timeout=WAIT_MS)
        assert "tok-123" not in page.url
        assert "tok-123" not in page.content()
        context.close()


def test_docs_screenshot(browser: Any, registry: pfrx.StreamRegistry, tmp_path: Path) -> None:
    """A busy dashboard for docs/observe.md: three streams under traffic for a few seconds."""

    def parse(event: int, context: pfrx.Context) -> Any:
        return pfrx.Reject("malformed record") if event % 17 == 0 else event

    files = pfrx.Stream(
        pf.capability_filter(FileCap.read("/docs")), pf.transform(parse), name="files"
    )
    ingest = pfrx.Stream(
        pf.backpressure("drop_newest", buffer_size=300),
        pf.transform(lambda e, c: (time.sleep(0.003), e)[1]),
        name="ingest",
    )
    audit = pfrx.Stream(pf.transform(lambda e, c: e), name="audit")
    for name, stream in (("files", files), ("ingest", ingest), ("audit", audit)):
        registry.register(name, stream)
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            files.send(i, DENIED if i % 6 == 0 else ALLOWED)
            if i % 2 or (i // 500) % 2:  # ingest alternates calm and overloaded phases
                ingest.send(i, ALLOWED)
            if i % 3 == 0:
                audit.send(i, ALLOWED)
            time.sleep(0.0015)

    producer = threading.Thread(target=traffic, daemon=True)
    producer.start()
    try:
        with serve(registry=registry, interval=0.25, history=8.0) as server:
            if browser is None:
                served_without_browser(server.url)
                return
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.goto(server.url + "/")
            page.wait_for_selector(card("ingest"), timeout=WAIT_MS)
            page.wait_for_timeout(7_000)  # let the rolling charts fill their 8 s window
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=shot, full_page=True)
            page.close()
    finally:
        stop.set()
        producer.join(10)
        for stream in (files, ingest, audit):
            stream.close()
    assert shot.stat().st_size > 10_000
    # `make screenshots` refreshes the docs' copy; an ordinary run leaves the checkout clean.
    if os.environ.get("PFRX_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGE)


def test_demo_serve_shows_the_demo_live(browser: Any, tmp_path: Path) -> None:
    """``python -m pfrx demo --serve PORT`` (``make demo ARGS="--serve PORT"``) serves the
    dashboard of the demo's stream while the demo runs, and stops it at the end."""
    command = [
        sys.executable,
        "-m",
        "pfrx",
        "demo",
        "--serve",
        "0",
        "--intents",
        "6000",
        "--rate",
        "1500",
        "--dir",
        str(tmp_path / "demo"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    demo = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("dashboard: http"):
                announced.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert announced.wait(60), "".join(lines)
        url = next(line for line in lines if line.startswith("dashboard: http")).split()[1]
        assert url.startswith("http://127.0.0.1:")
        streams: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _, body = get(url + "/api/streams")
            assert status == 200
            streams = [s for s in json.loads(body) if s["metrics"]["received"] > 0]
            if streams:
                break
            time.sleep(0.1)
        assert streams, "the demo's stream never showed up"
        name = streams[0]["name"]
        assert f'pfrx_received_total{{stream="{name}"}}' in get(url + "/metrics")[2].decode()
        if browser is not None:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.goto(url + "/")
            page.wait_for_selector(card(name), timeout=WAIT_MS)
            first = total(page, name, "received")
            page.wait_for_function(
                "([sel, before]) => document.querySelector(sel).textContent !== before",
                arg=[f'{card(name)} [data-field="received"]', first],
                timeout=WAIT_MS,
            )
            page.screenshot(path=tmp_path / "demo-dashboard.png", full_page=True)
            page.close()
        assert demo.wait(120) == 0, "".join(lines)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        reader.join(10)
    output = "".join(lines)
    assert "dashboard: stopped" in output
    with pytest.raises(OSError):
        get(url + "/metrics")  # the dashboard ended with the demo
