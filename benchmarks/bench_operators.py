"""capability_filter -> transform -> metrics_tap over 200k envelopes (36% denied).

The same work several ways, interleaved: a plain Python loop (the ceiling), RxPY built-ins
(``filter`` doing the same capability check, ``map``, ``do_action`` counting), and pfrx.
Each comparison with RxPY is of the same work:

- denials *kept*: pfrx with ``on_drop=list.append`` (one ``Dropped`` per denial) against RxPY
  whose ``filter`` predicate appends ``(envelope, reason)`` for each denial, which is what an
  RxPY user who must not lose denials silently writes;
- denials *counted*: pfrx reporting denials into a ``StreamMetrics`` (no ``on_drop``) against
  RxPY's ``filter`` discarding them.

The row across the two (pfrx keeping every denial against RxPY discarding them) is shown
too: it prices the records. Also the cost of metrics_tap: the pfrx pipeline with and
without it.
"""

from __future__ import annotations

import random
from typing import Any

import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf

from ._table import Row, interleaved

FileCap = pfrx.CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)


def workload(n: int, seed: int = 7, *, grant_all: bool = False) -> list[pfrx.Envelope]:
    rng = random.Random(seed)
    contexts = []
    for user in range(200):
        caps = [FileCap.read("/")] if grant_all else []
        if user % 10:  # 10 % of users hold nothing
            caps.append(FileCap.read(f"/home/u{user}"))
            caps.append(FileCap.write(f"/home/u{user}/notes/n{user % 7}.txt"))
            if user % 3 == 0:
                caps.append(FileCap.admin("/shared"))
        contexts.append(pfrx.Context(f"u{user}", f"s{user}", caps))
    envelopes = []
    for i in range(n):
        user = rng.randrange(200)
        owner = user if rng.random() < 0.8 else rng.randrange(200)
        root = "/shared" if rng.random() < 0.2 else f"/home/u{owner}"
        path = f"{root}/d{rng.randrange(5)}/f{rng.randrange(20)}.txt"
        envelopes.append(pfrx.Envelope(("read", path), contexts[user], float(i)))
    return envelopes


def required(event: tuple[str, str]) -> pfrx.Capability:
    return FileCap.capability(event[0], event[1])


def annotate(event: tuple[str, str], context: pfrx.Context) -> tuple[str, str, str]:
    return (event[0], event[1], context.user_id)


def plain_loop(items: list[pfrx.Envelope]) -> int:
    out = 0
    for envelope in items:
        if envelope.context.has_capability(required(envelope.event)):
            pfrx.Envelope(annotate(envelope.event, envelope.context), envelope.context, 0.0)
            out += 1
    return out


def rxpy(items: list[pfrx.Envelope]) -> int:
    count = [0]

    def bump(_: Any) -> None:
        count[0] += 1

    reactivex.from_iterable(items).pipe(
        ops.filter(lambda e: e.context.has_capability(required(e.event))),
        ops.map(lambda e: pfrx.Envelope(annotate(e.event, e.context), e.context, e.timestamp)),
        ops.do_action(bump),
    ).subscribe()
    return count[0]


def rxpy_keeping_denials(items: list[pfrx.Envelope]) -> int:
    """RxPY built-ins that keep every denial, as pfrx's ``on_drop=list.append`` does."""
    count = [0]
    denied: list[tuple[pfrx.Envelope, str]] = []
    keep = denied.append

    def allowed(e: pfrx.Envelope) -> bool:
        if e.context.has_capability(required(e.event)):
            return True
        keep((e, "insufficient_capabilities"))
        return False

    def bump(_: Any) -> None:
        count[0] += 1

    reactivex.from_iterable(items).pipe(
        ops.filter(allowed),
        ops.map(lambda e: pfrx.Envelope(annotate(e.event, e.context), e.context, e.timestamp)),
        ops.do_action(bump),
    ).subscribe()
    assert count[0] + len(denied) == len(items)
    return count[0]


def pfrx_pipeline(items: list[pfrx.Envelope], tap: bool, *, keep: bool = True) -> int:
    """pfrx as the README teaches; ``keep``: every drop kept through ``on_drop``, else the
    denials counted into the metrics (``annotate`` never fails, so ``transform`` needs
    neither)."""
    metrics = pfrx.StreamMetrics()
    dropped: list[pfrx.Dropped] = []
    if keep:
        stages: list[Any] = [
            pf.capability_filter(required, on_drop=dropped.append),
            pf.transform(annotate, on_drop=dropped.append),
        ]
    else:
        stages = [pf.capability_filter(required, metrics=metrics), pf.transform(annotate)]
    if tap:
        stages.append(pf.metrics_tap(metrics))
    count = [0]

    def sink(_: Any) -> None:
        count[0] += 1

    reactivex.from_iterable(items).pipe(*stages).subscribe(sink)
    lost = len(dropped) if keep else metrics.snapshot().dropped
    assert count[0] + lost == len(items)
    return count[0]


def run(quick: bool) -> list[Row]:
    n = 20_000 if quick else 200_000
    runs = 2 if quick else 5
    items = workload(n)
    expected = plain_loop(items)
    checks = (
        rxpy(items),
        rxpy_keeping_denials(items),
        pfrx_pipeline(items, True),
        pfrx_pipeline(items, False),
        pfrx_pipeline(items, True, keep=False),
    )
    for check in checks:
        assert check == expected, "implementations disagree"
    results = interleaved(
        {
            "plain loop": lambda: plain_loop(items),
            "RxPY built-ins": lambda: rxpy(items),
            "RxPY built-ins keeping denials": lambda: rxpy_keeping_denials(items),
            "pfrx (with metrics_tap)": lambda: pfrx_pipeline(items, True),
            "pfrx (no metrics_tap)": lambda: pfrx_pipeline(items, False),
            "pfrx counting denials": lambda: pfrx_pipeline(items, True, keep=False),
        },
        runs,
    )
    loop_best = results["plain loop"][0]
    rx_best = results["RxPY built-ins"][0]
    rows = []
    for name, (best, median) in results.items():
        rows.append(
            Row(
                "operators",
                f"{name}: events/s",
                f"{n / best:,.0f} best, {n / median:,.0f} median; {loop_best / best:.2f}x loop",
            )
        )
    pf_best = results["pfrx (with metrics_tap)"][0]
    ratio = rx_best / pf_best
    rows.append(
        Row(
            "operators",
            "pfrx vs RxPY built-ins",
            f"{ratio:.2f}x",
            ">= 1.0x",
            ratio >= 1.0,
        )
    )
    # The same comparison when every event is granted: what the denial records cost.
    granted = workload(n, grant_all=True)
    assert rxpy(granted) == pfrx_pipeline(granted, True) == n
    both = interleaved(
        {"rx": lambda: rxpy(granted), "pfrx": lambda: pfrx_pipeline(granted, True)}, runs
    )
    granted_ratio = both["rx"][0] / both["pfrx"][0]
    rows.append(
        Row(
            "operators",
            "pfrx vs RxPY built-ins, every event granted",
            f"{granted_ratio:.2f}x",
            ">= 1.0x",
            granted_ratio >= 1.0,
        )
    )
    denied = 1 - expected / n
    kept = results["RxPY built-ins keeping denials"][0] / pf_best
    counted = rx_best / results["pfrx counting denials"][0]
    rows[-2:-1] = [
        Row(
            "operators",
            f"pfrx vs RxPY built-ins, {denied:.0%} denied, each denial kept "
            "(on_drop=list.append vs a filter appending (envelope, reason))",
            f"{kept:.2f}x",
            ">= 1.0x",
            kept >= 1.0,
        ),
        Row(
            "operators",
            f"pfrx vs RxPY built-ins, {denied:.0%} denied, denials counted "
            "(into StreamMetrics vs filter discarding them)",
            f"{counted:.2f}x",
            ">= 1.0x",
            counted >= 1.0,
        ),
        Row(
            "operators",
            f"pfrx keeping each denial vs RxPY discarding them ({denied:.0%} denied): "
            "the price of the records",
            f"{ratio:.2f}x",
        ),
    ]
    # A difference of two timings: measured on its own, with more rounds, to steady it.
    tapped = interleaved(
        {
            "with": lambda: pfrx_pipeline(items, True),
            "without": lambda: pfrx_pipeline(items, False),
        },
        runs * 2 + 1,
    )
    with_tap, bare = tapped["with"][0], tapped["without"][0]
    overhead = (with_tap - bare) / with_tap
    rows.append(
        Row(
            "operators",
            "metrics_tap share of pipeline",
            f"{overhead:.1%}",
            "<= 10%",
            overhead <= 0.10,
        )
    )
    return rows
