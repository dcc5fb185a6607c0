"""Part 2 of the demo, the reporting: what the run is about, what it showed, the ledger."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from .. import Health
from .load import THRESHOLDS, LoadResult, LoadSettings

#: Reasons a backpressure strategy gives for an item it loses to the overload.
OVERLOAD_REASONS = frozenset({"overflow", "overwritten", "shed"})

STRATEGY_EFFECT = {
    "drop_oldest": "when the buffer is full, the oldest waiting intent is dropped to make "
    "room (reason `overflow`): the freshest work survives",
    "drop_newest": "when the buffer is full, the incoming intent is dropped (reason "
    "`overflow`): what already waits survives",
    "latest": "at most one intent waits; each new one replaces it (reason `overwritten`)",
    "block": "when the buffer is full, the producers wait for room: nothing is lost, the "
    "producers slow down to the consumer's pace",
    "adaptive": "drop-oldest at the bound, plus a state machine that sheds the oldest "
    "intents (reason `shed`) while a sustained backlog lasts",
}

Print = Callable[[str], None]


def _paragraph(say: Print, text: str) -> None:
    for line in textwrap.wrap(text, width=94, initial_indent="  ", subsequent_indent="  "):
        say(line)


def explain_before(say: Print, settings: LoadSettings, n: int, users: int) -> None:
    """What the run is about to show, and why the overload (if any) is deliberate."""
    say(
        f"pfrx demo: {n:,} intents from {users} users, strategy {settings.strategy}, "
        f"buffer {settings.buffer_size:,}, {settings.producers} producer(s)"
        f"{f', rate {settings.rate:,.0f}/s' if settings.rate else ''}"
    )
    say("  pipeline: capability_filter -> FileEventFilter -> FileEventTransformer")
    say("            -> backpressure -> process(FileStream) -> process(EventSourcingStream)")
    _paragraph(say, f"backpressure {settings.strategy}: {STRATEGY_EFFECT[settings.strategy]}.")
    if settings.rate == 0 and settings.strategy != "block":
        _paragraph(
            say,
            "The overload is deliberate: the producers send flat out, while the consumer "
            "does real file I/O and an SQLite commit per intent, many times slower. Expect "
            "the buffer to fill, many intents to be dropped by backpressure (the longer the "
            "run, the more), and health to end 'degraded' or 'unhealthy'. The point is "
            "what does not happen: the stream does not stall or fail, and every lost intent "
            "is counted with its reason.",
        )
    elif settings.rate == 0:
        _paragraph(
            say,
            "The producers send flat out, faster than the consumer can go; with `block` "
            "they are held back instead of anything being dropped.",
        )
    else:
        _paragraph(
            say,
            f"The producers are held to {settings.rate:,.0f} intents/s: if the consumer "
            "keeps up, backpressure has little to do.",
        )


def _drop_rate(result: LoadResult) -> float:
    snap = result.snapshot
    return snap.recent_drop_rate if snap.recent_received > 0 else snap.drop_rate


def explain_after(say: Print, result: LoadResult, n: int, settings: LoadSettings) -> None:
    """What the run showed: how much the overload cost, and what the health means here."""
    tally = result.tally
    overload = sum(c for reason, c in tally.dropped.items() if reason in OVERLOAD_REASONS)
    policy = sum(tally.dropped.values()) - overload
    accepted = max(tally.accepted, 1)
    producer = n / max(result.produced, 1e-9)
    consumer = sum(tally.results.values()) / max(result.elapsed, 1e-9)
    say("what the run showed:")
    _paragraph(
        say,
        f"The producers sent {producer:,.0f} intents/s; the consumer emitted "
        f"{consumer:,.0f}/s. Backpressure dropped {overload:,} intents ({overload / accepted:.0%}"
        f" of those accepted) to keep the buffer bounded (peak {result.peak:.0%}); "
        f"{policy:,} more were refused on purpose: no capability, a protected directory, a "
        "missing file (the reasons above).",
    )
    rate = _drop_rate(result)
    health = result.health
    if health is Health.HEALTHY:
        verdict = "Health 'healthy': drops, errors and the buffer stayed under every threshold."
    else:
        threshold = (
            THRESHOLDS.unhealthy_drop_rate
            if health is Health.UNHEALTHY
            else THRESHOLDS.degraded_drop_rate
        )
        verdict = (
            f"Health '{health.value}': {rate:.0%} of the latest intents were dropped, over "
            f"this demo's threshold of {threshold:.0%} for '{health.value}' (degraded over "
            f"{THRESHOLDS.degraded_drop_rate:.0%}, unhealthy over "
            f"{THRESHOLDS.unhealthy_drop_rate:.0%}). Of all drops, {overload:,} were "
            f"backpressure shedding load and {policy:,} refusals the workload asks for on "
            "purpose. It means the stream sheds or refuses much of what arrives, and says "
            "so; not that it broke: nothing was lost silently (see the ledger)."
        )
    _paragraph(say, verdict)
    if overload:
        _paragraph(
            say,
            "For a run without overload drops: --rate below the consumer's pace "
            f"(e.g. --rate {max(int(consumer * 0.8), 1):,}) or --strategy block.",
        )


def print_outcomes(say: Print, result: LoadResult, n: int, settings: LoadSettings) -> None:
    """The numbers: outcomes, drops by reason, windows, metrics, health, throughput."""
    tally, snap = result.tally, result.snapshot
    refused = sum(tally.refused.values())
    say("outcomes:")
    say(f"  sent        {n:>10,}")
    say(f"  accepted    {tally.accepted:>10,}")
    say(f"  refused     {refused:>10,}  {dict(tally.refused) or ''}")
    for name, label in (
        ("FileReadEvent", "read"),
        ("FileWritten", "written"),
        ("FileDeleted", "deleted"),
    ):
        say(f"  {label:<11} {tally.results[name]:>10,}")
    say(f"  dropped     {sum(tally.dropped.values()):>10,}")
    say("drops by reason:")
    for reason, count in tally.dropped.most_common():
        say(f"  {reason:<28} {count:>9,}")
    say("windows:")
    say(
        f"  time ({settings.span:g}s)       {tally.windows:>6,} windows, "
        f"{tally.summaries:,} path summaries"
    )
    say(f"  session (gap {settings.gap:g}s) {tally.sessions:>6,} sessions")
    if tally.busiest:
        path, count = tally.busiest.most_common(1)[0]
        say(f"  busiest path: {path} ({count:,} operations)")
    say(
        f"metrics: received={snap.received:,} emitted={snap.emitted:,} dropped={snap.dropped:,} "
        f"backpressure_events={snap.backpressure_events:,} "
        f"peak_buffer={result.peak:.0%} errors={snap.errors:,}"
    )
    say(f"health: {result.health.value}")
    emitted = sum(tally.results.values())
    say(
        f"throughput: {n / result.elapsed:,.0f} intents/s overall ({result.elapsed:.1f}s), "
        f"producer {n / max(result.produced, 1e-9):,.0f}/s, "
        f"consumer emitted {emitted / result.elapsed:,.0f}/s"
    )


def ledger(say: Print, result: LoadResult, n: int) -> bool:
    """Every intent accounted for exactly once; True when it balances."""
    tally, snap = result.tally, result.snapshot
    refused = sum(tally.refused.values())
    dropped = sum(tally.dropped.values())
    emitted = sum(tally.results.values())
    writes_and_deletes = tally.results["FileWritten"] + tally.results["FileDeleted"]
    checks = [
        ("sent = accepted + refused", n == tally.accepted + refused),
        ("accepted = received", tally.accepted == snap.received),
        (
            "received = emitted + dropped + buffered",
            snap.received == snap.emitted + snap.dropped + snap.buffered,
        ),
        ("results seen = emitted", emitted == snap.emitted),
        ("drops seen = dropped", dropped == snap.dropped),
        ("time windows hold every result", tally.window_items == emitted),
        ("sessions hold every result", tally.session_items == emitted),
        ("store holds every write and delete", result.stored == writes_and_deletes),
    ]
    failed = [name for name, ok in checks if not ok]
    say(
        f"ledger: {n:,} sent = {tally.accepted:,} accepted + {refused:,} refused; "
        f"{snap.received:,} received = {snap.emitted:,} emitted + {snap.dropped:,} dropped "
        f"+ {snap.buffered:,} buffered; windows {tally.window_items:,}; "
        f"store {result.stored:,}: "
        f"{'balanced' if not failed else 'NOT BALANCED (' + '; '.join(failed) + ')'}"
    )
    return not failed
