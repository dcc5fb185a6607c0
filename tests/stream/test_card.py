"""Issue 16 (part): the notebook card of a stream is self-contained, escaped and payload-free."""

from __future__ import annotations

import re
from typing import Any

import reactivex

import pfrx
from pfrx import operators as pf
from pfrx.stream import Stream

HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_REASON = "<img src=x onerror=alert(1)>"
SECRET_EVENT = "TOP-SECRET-PAYLOAD"
SECRET_USER = "alice-secret-user"
CTX = pfrx.Context(SECRET_USER, "secret-session-id")


def judge(event: Any, context: pfrx.Context) -> Any:
    if event == SECRET_EVENT:
        return pfrx.Reject(HOSTILE_REASON)
    return event


def test_the_card_escapes_every_string_and_shows_no_payload_or_context() -> None:
    stream = Stream(pf.transform(judge), name=HOSTILE_NAME)
    stream.results.subscribe(lambda env: 1 / 0 if env.event == "boom" else None)
    for event in ("a", SECRET_EVENT, "boom", "b"):
        assert stream.send(event, CTX).ok
    card = stream._repr_html_()
    assert "<script" not in card and "<img" not in card and "onerror=alert(1)>" not in card
    assert "&lt;script&gt;" in card and "&lt;img src=x onerror=alert(1)&gt;" in card
    for secret in (SECRET_EVENT, SECRET_USER, "secret-session-id"):
        assert secret not in card
    cells = re.findall(r'text-align:right">([\d,]+)</td>', card)
    assert cells[:4] == ["4", "3", "1", "1"]  # received, emitted, dropped, errors
    assert "degraded" in card and "#9a6700" in card  # a quarter of the items dropped
    assert "<script" not in card.lower() and "javascript:" not in card.lower()


def test_the_card_colours_health_and_caps_the_reasons() -> None:
    healthy = Stream(name="fine")
    healthy.send(1, CTX)
    assert "#1a7f37" in healthy._repr_html_() and "no drops" in healthy._repr_html_()

    many = Stream(pf.transform(lambda e, c: pfrx.Reject(f"reason-{e}")), name="many")
    for i in range(15):
        many.send(i, CTX)
    card = many._repr_html_()
    assert card.count("reason-") == 10
    assert "5 other reasons" in card

    broken = Stream(reactivex.operators.map(lambda env: 1 / 0), name="broken")
    broken.send(1, CTX)
    card = broken._repr_html_()
    assert "unhealthy" in card and "#cf222e" in card and "failed" in card
