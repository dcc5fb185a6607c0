"""Issue 3: capability_filter -> transform -> metrics_tap over 200k envelopes.

The same work three ways, interleaved: a plain Python loop (the ceiling), RxPY built-ins
(``filter`` doing the same capability check, ``map``, ``do_action`` counting), and pfrx.
Also the cost of metrics_tap: the pfrx pipeline with and without it.
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


def pfrx_pipeline(items: list[pfrx.Envelope], tap: bool) -> int:
    metrics = pfrx.StreamMetrics()
    dropped: list[pfrx.Dropped] = []
    stages: list[Any] = [
        pf.capability_filter(required, on_drop=dropped.append),
        pf.transform(annotate, on_drop=dropped.append),
    ]
    if tap:
        stages.append(pf.metrics_tap(metrics))
    count = [0]

    def sink(_: Any) -> None:
        count[0] += 1

    reactivex.from_iterable(items).pipe(*stages).subscribe(sink)
    assert count[0] + len(dropped) == len(items)
    return count[0]


def run(quick: bool) -> list[Row]:
    n = 20_000 if quick else 200_000
    runs = 2 if quick else 5
    items = workload(n)
    expected = plain_loop(items)
    for check in (rxpy(items), pfrx_pipeline(items, True), pfrx_pipeline(items, False)):
        assert check == expected, "implementations disagree"
    results = interleaved(
        {
            "plain loop": lambda: plain_loop(items),
            "RxPY built-ins": lambda: rxpy(items),
            "pfrx (with metrics_tap)": lambda: pfrx_pipeline(items, True),
            "pfrx (no metrics_tap)": lambda: pfrx_pipeline(items, False),
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
    rows[-2] = Row(
        "operators",
        f"pfrx vs RxPY built-ins ({denied:.0%} denied: each a Dropped record)",
        f"{ratio:.2f}x",
        ">= 1.0x",
        ratio >= 1.0,
    )
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
