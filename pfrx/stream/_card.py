"""The HTML card a notebook shows for a stream: health, totals, drops by reason.

Self-contained (inline styles, no script) and escaped throughout: stream names and drop
reasons are user-controlled text. It shows counts only, never payloads, contexts or tokens.
"""

from __future__ import annotations

from html import escape

from ..metrics import Health, MetricsSnapshot

_COLOURS = {
    Health.HEALTHY: "#1a7f37",
    Health.DEGRADED: "#9a6700",
    Health.UNHEALTHY: "#cf222e",
}
#: At most this many reasons are listed; the rest are summed in one line.
MAX_REASONS = 10


def stream_card(name: str, state: str, health: Health, snapshot: MetricsSnapshot) -> str:
    """The card as one HTML fragment."""
    colour = _COLOURS.get(health, "#57606a")
    totals = (
        ("received", snapshot.received),
        ("emitted", snapshot.emitted),
        ("dropped", snapshot.dropped),
        ("errors", snapshot.errors),
    )
    cells = "".join(
        f'<td style="padding:2px 10px;text-align:right">{value:,}</td>' for _, value in totals
    )
    heads = "".join(f'<th style="padding:2px 10px">{label}</th>' for label, _ in totals)
    reasons = sorted(snapshot.drops_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = "".join(
        f'<tr><td style="padding:1px 10px">{escape(reason)}</td>'
        f'<td style="padding:1px 10px;text-align:right">{count:,}</td></tr>'
        for reason, count in reasons[:MAX_REASONS]
    )
    rest = sum(count for _, count in reasons[MAX_REASONS:])
    if rest:
        others = len(reasons) - MAX_REASONS
        rows += (
            f'<tr><td style="padding:1px 10px"><i>{others:,} other reasons</i></td>'
            f'<td style="padding:1px 10px;text-align:right">{rest:,}</td></tr>'
        )
    drops = (
        '<table style="border-collapse:collapse;margin-top:4px">'
        '<tr><th style="padding:1px 10px;text-align:left">drop reason</th>'
        f'<th style="padding:1px 10px">count</th></tr>{rows}</table>'
        if rows
        else '<div style="margin-top:4px;color:#57606a">no drops</div>'
    )
    return (
        '<div class="pfrx-stream" style="font-family:sans-serif;font-size:13px;'
        f"border:1px solid #d0d7de;border-left:6px solid {colour};border-radius:6px;"
        'padding:8px 12px;display:inline-block">'
        f"<div><b>pfrx.Stream</b> {escape(repr(name))} &middot; {escape(state)} &middot; "
        f'<span style="color:{colour};font-weight:bold">{escape(health.value)}</span></div>'
        '<table style="border-collapse:collapse;margin-top:4px">'
        f"<tr>{heads}</tr><tr>{cells}</tr></table>{drops}</div>"
    )
