"""Issue 12: the notebook card, stated exactly: its structure, texts, order, escaping, colours.

The card is parsed the way a browser reads it (tag and attribute names case-insensitive, CSS
declarations compared lower-cased, character references decoded), so these tests state what
a reader sees and what user CSS can hook (the ``pfrx-stream`` class), not source spelling.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from pfrx.metrics import Health, MetricsSnapshot
from pfrx.stream._card import MAX_REASONS, stream_card

Node = list[Any]  # [tag, {attr: value}, *children]; a child is a Node or a text


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: Node = ["#root", {}]
        self.stack: list[Node] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: (v or "").lower() if k == "style" else (v or "") for k, v in attrs}
        node: Node = [tag, values]
        self.stack[-1].append(node)
        self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1][0] == tag, f"</{tag}> closes <{self.stack[-1][0]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].append(data)


def parse(card: str) -> Node:
    tree = _Tree()
    tree.feed(card)
    tree.close()
    assert tree.stack == [tree.root], "unclosed tags"
    return tree.root


def snapshot(
    received: int = 0,
    emitted: int = 0,
    dropped: int = 0,
    errors: int = 0,
    drops: dict[str, int] | None = None,
) -> MetricsSnapshot:
    return MetricsSnapshot(
        timestamp=0.0,
        received=received,
        emitted=emitted,
        dropped=dropped,
        errors=errors,
        backpressure_events=0,
        processing_rate=0.0,
        input_rate=0.0,
        buffer_utilization=0.0,
        peak_buffer_utilization=0.0,
        buffered=0,
        avg_processing_time=0.0,
        max_processing_time=0.0,
        slow_events=0,
        error_rate=0.0,
        drop_rate=0.0,
        drops_by_reason=drops or {},
    )


COLOURS = {
    Health.HEALTHY: "#1a7f37",
    Health.DEGRADED: "#9a6700",
    Health.UNHEALTHY: "#cf222e",
}
TABLE = {"style": "border-collapse:collapse;margin-top:4px"}
TH = {"style": "padding:2px 10px"}
TD = {"style": "padding:2px 10px;text-align:right"}
REASON = {"style": "padding:1px 10px"}
COUNT = {"style": "padding:1px 10px;text-align:right"}


def totals_table(received: str, emitted: str, dropped: str, errors: str) -> Node:
    heads = [["th", TH, label] for label in ("received", "emitted", "dropped", "errors")]
    cells = [["td", TD, value] for value in (received, emitted, dropped, errors)]
    return ["table", TABLE, ["tr", {}, *heads], ["tr", {}, *cells]]


def drops_table(*rows: tuple[Any, str]) -> Node:
    head = [
        "tr",
        {},
        ["th", {"style": "padding:1px 10px;text-align:left"}, "drop reason"],
        ["th", {"style": "padding:1px 10px"}, "count"],
    ]
    body = [["tr", {}, ["td", REASON, reason], ["td", COUNT, count]] for reason, count in rows]
    return ["table", TABLE, head, *body]


def card_tree(name: str, state: str, health: Health, totals: Node, drops: Node) -> Node:
    colour = COLOURS[health]
    style = (
        "font-family:sans-serif;font-size:13px;border:1px solid #d0d7de;"
        f"border-left:6px solid {colour};border-radius:6px;padding:8px 12px;display:inline-block"
    )
    title = [
        "div",
        {},
        ["b", {}, "pfrx.Stream"],
        f" {name!r} \u00b7 {state} \u00b7 ",
        ["span", {"style": f"color:{colour};font-weight:bold"}, health.value],
    ]
    return ["#root", {}, ["div", {"class": "pfrx-stream", "style": style}, title, totals, drops]]


NO_DROPS = ["div", {"style": "margin-top:4px;color:#57606a"}, "no drops"]


@pytest.mark.parametrize("health", list(Health))
def test_a_card_without_drops_is_exactly_title_totals_and_no_drops(health: Health) -> None:
    card = stream_card("orders", "running", health, snapshot(1234, 1200, 0, 34))
    expected = card_tree(
        "orders",
        "running",
        health,
        totals_table("1,234", "1,200", "0", "34"),
        NO_DROPS,
    )
    assert parse(card) == expected


def test_reasons_are_listed_by_count_then_name_with_thousands_separated() -> None:
    # Insertion order is neither the count order nor the name order.
    drops = {"late": 2, "bad": 2, "full": 5000, "z-last": 1, "aa": 2}
    card = stream_card("s", "stopped", Health.DEGRADED, snapshot(9000, 3993, 5007, 0, drops))
    expected = card_tree(
        "s",
        "stopped",
        Health.DEGRADED,
        totals_table("9,000", "3,993", "5,007", "0"),
        drops_table(("full", "5,000"), ("aa", "2"), ("bad", "2"), ("late", "2"), ("z-last", "1")),
    )
    assert parse(card) == expected


def test_reasons_beyond_the_cap_are_summed_in_one_line() -> None:
    # 15 reasons: counts 15..1, so the 10 largest are listed and the 5 smallest summed.
    drops = {f"reason-{n:02d}": n for n in range(1, 16)}
    total = sum(drops.values())
    card = stream_card("many", "running", Health.UNHEALTHY, snapshot(total, 0, total, 0, drops))
    listed = [(f"reason-{n:02d}", str(n)) for n in range(15, 15 - MAX_REASONS, -1)]
    others = (["i", {}, "5 other reasons"], "15")  # 1+2+3+4+5
    expected = card_tree(
        "many",
        "running",
        Health.UNHEALTHY,
        totals_table("120", "0", "120", "0"),
        drops_table(*listed, others),
    )
    assert parse(card) == expected


def test_exactly_the_cap_of_reasons_has_no_summary_line() -> None:
    drops = {f"r{n}": 1 for n in range(MAX_REASONS)}
    card = stream_card("cap", "running", Health.HEALTHY, snapshot(10, 0, 10, 0, drops))
    assert "other reasons" not in card
    rows = [(f"r{n}", "1") for n in range(MAX_REASONS)]
    expected = card_tree(
        "cap",
        "running",
        Health.HEALTHY,
        totals_table("10", "0", "10", "0"),
        drops_table(*rows),
    )
    assert parse(card) == expected


def test_user_text_is_text_never_markup() -> None:
    name = '<script>alert("x")</script>'
    state = "<b>state</b>"
    reason = "<img src=x onerror=alert(1)> & 'q'"
    card = stream_card(name, state, Health.DEGRADED, snapshot(1, 0, 1, 0, {reason: 1}))
    expected = card_tree(
        name,
        state,
        Health.DEGRADED,
        totals_table("1", "0", "1", "0"),
        drops_table((reason, "1")),
    )
    assert parse(card) == expected
