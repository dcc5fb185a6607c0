"""Issue 8: the guide's FileSystem stream shape, end to end, against a plain loop and RxPY.

200k events from 200 users over nested paths, each with a context holding path capabilities
(whole subtrees for some, single files for others, nothing for 10 % of users) ->
capability check (whole-segment path coverage) -> transform adding a metadata dict ->
count window of 100 -> per-window summary (reads and writes per path). Three
implementations, checked to agree by a checksum, timed interleaved (best and median):

- a plain Python loop (the ceiling);
- RxPY 6.1 built-ins: ``filter``, ``map``, ``buffer_with_count``, ``map``;
- pfrx: ``metrics_tap``, ``capability_filter``, ``transform``, ``window_count``, then the
  same summary ``map``.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import random
from collections import Counter
from collections.abc import Iterable

import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf

from ._table import Row, interleaved, peak_rss_mib

FileCap = pfrx.CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)
USERS = 200
WINDOW = 100


def _paths(rng: random.Random) -> list[str]:
    paths = []
    for user in range(USERS):
        for folder in range(3):
            for file in range(4):
                paths.append(f"/home/u{user}/d{folder}/sub{file % 2}/f{file}.txt")
    for team in range(10):
        for file in range(20):
            paths.append(f"/shared/team{team}/docs/f{file}.md")
    rng.shuffle(paths)
    return paths


def _context(user: int, rng: random.Random) -> pfrx.Context:
    if user % 10 == 0:
        return pfrx.Context(f"u{user}", f"s{user}")  # 10 % hold nothing
    caps = [FileCap.read(f"/home/u{user}"), FileCap.write(f"/home/u{user}/d0")]
    if user % 4 == 0:
        caps.append(FileCap.admin(f"/shared/team{user % 10}"))
    for _ in range(3):  # a few single files elsewhere
        caps.append(FileCap.read(f"/shared/team{rng.randrange(10)}/docs/f{rng.randrange(20)}.md"))
    return pfrx.Context(f"u{user}", f"s{user}", caps)


def workload(n: int, seed: int = 8) -> list[pfrx.Envelope]:
    rng = random.Random(seed)
    contexts = [_context(user, rng) for user in range(USERS)]
    paths = _paths(rng)
    own = {user: [p for p in paths if p.startswith(f"/home/u{user}/")] for user in range(USERS)}
    items = []
    for i in range(n):
        user = rng.randrange(USERS)
        path = rng.choice(own[user]) if rng.random() < 0.7 else rng.choice(paths)
        action = "write" if rng.random() < 0.3 else "read"
        items.append(pfrx.Envelope((action, path), contexts[user], float(i)))
    return items


# -- the shared pieces of work ---------------------------------------------------------------
def required(event: tuple[str, str]) -> pfrx.Capability:
    return FileCap.capability(event[0], event[1])


def add_metadata(event: tuple[str, str], context: pfrx.Context) -> tuple[str, str, dict[str, str]]:
    return (event[0], event[1], {"operation": event[0], "user": context.user_id})


def summarize(events: Iterable[tuple[str, str, dict[str, str]]]) -> dict[str, tuple[int, int]]:
    reads: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    for action, path, _ in events:
        (reads if action == "read" else writes)[path] += 1
    return {path: (reads[path], writes[path]) for path in reads.keys() | writes.keys()}


def checksum(summaries: list[dict[str, tuple[int, int]]]) -> str:
    digest = hashlib.sha256()
    for summary in summaries:
        digest.update(repr(sorted(summary.items())).encode())
    return digest.hexdigest()[:16]


# -- the three implementations ---------------------------------------------------------------
def plain_loop(items: list[pfrx.Envelope]) -> list[dict[str, tuple[int, int]]]:
    summaries = []
    window: list[tuple[str, str, dict[str, str]]] = []
    for envelope in items:
        event, context = envelope.event, envelope.context
        if not context.has_capability(required(event)):
            continue
        window.append(add_metadata(event, context))
        if len(window) == WINDOW:
            summaries.append(summarize(window))
            window = []
    if window:
        summaries.append(summarize(window))
    return summaries


def rxpy(items: list[pfrx.Envelope]) -> list[dict[str, tuple[int, int]]]:
    summaries: list[dict[str, tuple[int, int]]] = []
    reactivex.from_iterable(items).pipe(
        ops.filter(lambda e: e.context.has_capability(required(e.event))),
        ops.map(lambda e: pfrx.Envelope(add_metadata(e.event, e.context), e.context, e.timestamp)),
        ops.buffer_with_count(WINDOW),
        ops.map(lambda batch: summarize(e.event for e in batch)),
    ).subscribe(summaries.append)
    return summaries


def pfrx_pipeline(
    items: list[pfrx.Envelope], metrics: pfrx.StreamMetrics | None = None
) -> list[dict[str, tuple[int, int]]]:
    summaries: list[dict[str, tuple[int, int]]] = []
    dropped: list[pfrx.Dropped] = []
    metrics = metrics or pfrx.StreamMetrics()
    reactivex.from_iterable(items).pipe(
        pf.metrics_tap(metrics),
        pf.capability_filter(required, on_drop=dropped.append),
        pf.transform(add_metadata, on_drop=dropped.append),
        pf.window_count(WINDOW),
        ops.map(lambda window: summarize(window.events)),
    ).subscribe(summaries.append)
    kept = sum(sum(r + w for r, w in s.values()) for s in summaries)
    assert kept + len(dropped) == len(items), "ledger does not balance"
    return summaries


IMPLEMENTATIONS = {
    "plain loop": plain_loop,
    "RxPY built-ins": rxpy,
    "pfrx (metrics on)": pfrx_pipeline,
}


def _vm_kib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    raise LookupError(field)


def _rss_child(name: str, n: int) -> tuple[float, float]:
    """In a fresh process: build the workload, reset the kernel's peak-RSS mark (Linux
    ``clear_refs``), run once, and read the peak. Returns (RSS before, peak) in MiB."""
    items = workload(n)
    gc.collect()
    before = _vm_kib("VmRSS") / 1024
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return before, peak_rss_mib()  # no reset here: the peak may predate the run
    IMPLEMENTATIONS[name](items)
    return before, _vm_kib("VmHWM") / 1024


def peak_rss(name: str, n: int) -> tuple[float, float]:
    """RSS with the workload built, and the peak RSS while one implementation ran on it,
    in a fresh process (MiB)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        before, after = pool.apply(_rss_child, (name, n))
    return before, after


def run(quick: bool) -> list[Row]:
    n = 20_000 if quick else 200_000
    runs = 2 if quick else 5
    items = workload(n)
    reference = checksum(plain_loop(items))
    metrics = pfrx.StreamMetrics()
    for name, result in (("RxPY", rxpy(items)), ("pfrx", pfrx_pipeline(items, metrics))):
        assert checksum(result) == reference, f"{name} disagrees with the plain loop"
    snap = metrics.snapshot()
    times = interleaved(
        {
            "plain loop": lambda: plain_loop(items),
            "RxPY built-ins": lambda: rxpy(items),
            "pfrx (metrics on)": lambda: pfrx_pipeline(items),
        },
        runs,
    )
    loop_best = times["plain loop"][0]
    rows = [
        Row(
            "pipeline (issue 8)",
            f"{name}: events/s",
            f"{n / best:,.0f} best, {n / median:,.0f} median; {loop_best / best:.2f}x loop; "
            "peak RSS {1:.0f} MiB ({0:.0f} with the workload alone)".format(*peak_rss(name, n)),
        )
        for name, (best, median) in times.items()
    ]
    ratio = loop_best / times["pfrx (metrics on)"][0]
    rows.append(
        Row("pipeline (issue 8)", "pfrx vs plain loop", f"{ratio:.2f}x", ">= 0.70x", ratio >= 0.70)
    )
    rows.append(
        Row(
            "pipeline (issue 8)",
            "checksum (all three agree)",
            f"{reference}; {snap.received:,} in, {len(items) - snap.received} lost",
        )
    )
    return rows
