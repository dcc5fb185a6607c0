"""The demo: the guide's FileSystem substrate end to end on a temporary directory.

Part 1 walks through a handful of requests and says who may do what, and why not. Part 2:
a synthetic workload (many users with mixed capabilities reading, writing and deleting
files) is sent into one `pfrx.Stream`:

    capability_filter -> FileEventFilter -> FileEventTransformer -> backpressure(strategy)
        -> process(FileStream)            real file I/O under a sandbox root (the consumer)
        -> process(EventSourcingStream)   writes and deletes committed to SQLite (WAL)

The consumer is slower than the producer, so backpressure acts. The stream's results feed
time windows (per-path activity) and session windows (per-user sessions). A live progress
line shows on a terminal; the report at the end balances the ledger: every intent sent is
accepted or refused, every accepted intent is emitted or dropped with a reason, every result
is in exactly one time window and one session, and every write or delete emitted is in the
event store. The exit status is 1 when the ledger does not balance.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

import reactivex
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler

from . import operators as pf
from ._model import Capability, Context, Dropped, Envelope, Reject
from .examples.eventstore import EventStore
from .examples.filesystem import (
    DeleteFile,
    FileActivitySummary,
    FileCap,
    FileEventFilter,
    FileEventTransformer,
    FileStream,
    ReadFile,
    SessionSummary,
    SessionWindow,
    TimeWindow,
    WriteFile,
    file_context,
    required_capability,
)
from .examples.patterns import EventSourcingStream
from .metrics import HealthThresholds, StreamMetrics
from .sources import envelopes
from .stream import Stream

STRATEGIES = ("drop_oldest", "drop_newest", "latest", "block", "adaptive")
SHARED_DOCS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (``python -m pfrx demo --help``)."""
    parser.add_argument("--intents", type=int, default=200_000, help="how many intents to send")
    parser.add_argument("--users", type=int, default=500, help="how many distinct users")
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="drop_oldest", help="backpressure strategy"
    )
    parser.add_argument("--buffer-size", type=int, default=10_000, help="backpressure buffer")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="producer rate limit, intents/s (0: flat out)"
    )
    parser.add_argument("--producers", type=int, default=2, help="producer threads")
    parser.add_argument("--window", type=float, default=1.0, help="time window span, seconds")
    parser.add_argument(
        "--session-gap", type=float, default=0.5, help="session window gap, seconds"
    )
    parser.add_argument("--seed", type=int, default=7, help="workload random seed")
    parser.add_argument("--keep-files", action="store_true", help="keep the sandbox files")
    parser.add_argument("--dir", default=None, help="work directory (default: a new temp dir)")


# -- part 1: who may read what, and why not --------------------------------------------------


def _required(event: tuple[str, str]) -> Capability:
    action, path = event
    return FileCap.capability(action, path)


def _annotate(event: tuple[str, str], context: Context) -> Reject | str:
    action, path = event
    if path.startswith("/system/") and action != "read":
        return Reject("system_directory_protected")
    return f"{context.user_id} {action}s {path}"


def walkthrough() -> bool:
    """A handful of requests, each decision explained; True when its ledger balances."""
    people = {
        "alice": Context("alice", "s1", [FileCap.read("/docs"), FileCap.write("/docs/alice")]),
        "bob": Context("bob", "s2", [FileCap.read("/docs/public")]),
        "root": Context("root", "s3", [FileCap.admin("/")]),
    }
    requests = [
        ("alice", ("read", "/docs/report.txt")),
        ("alice", ("write", "/docs/alice/notes.txt")),
        ("alice", ("write", "/docs/bob/notes.txt")),
        ("alice", ("read", "/docs/../etc/passwd")),
        ("bob", ("read", "/docs/public/readme.md")),
        ("bob", ("read", "/docs/publications/draft.md")),
        ("root", ("delete", "/tmp/cache")),
        ("root", ("write", "/system/kernel")),
    ]
    metrics = StreamMetrics(name="walkthrough")
    dropped: list[Dropped] = []
    source = reactivex.merge(*(envelopes([event], people[user]) for user, event in requests))
    passed: list[Envelope] = source.pipe(
        pf.capability_filter(_required, on_drop=dropped.append),
        pf.transform(_annotate, on_drop=dropped.append),
        pf.metrics_tap(metrics),
        ops.to_list(),
    ).run()
    print("allowed:")
    for envelope in passed:
        print(f"  {envelope.event}")
    print("refused:")
    for record in dropped:
        action, path = record.item.event
        user = record.item.context.user_id
        print(f"  {user} {action} {path}: {record.reason} (by {record.operator})")
    snap = metrics.snapshot()
    print(f"metrics: emitted={snap.emitted} health={metrics.health().value}")
    balanced = len(passed) + len(dropped) == len(requests)
    print(
        f"ledger: {len(requests)} received = {len(passed)} passed + {len(dropped)} dropped: "
        f"{'balanced' if balanced else 'NOT BALANCED'}"
    )
    return balanced


# -- part 2: the workload ----------------------------------------------------------------------


def make_users(count: int) -> list[Context]:
    """Users with mixed capabilities: admins, owners of a home, readers, guests."""
    users = []
    for i in range(count):
        name = f"u{i:04d}"
        kind = i % 10
        if kind == 0:
            caps = [FileCap.admin("/")]
        elif kind <= 5:
            caps = [
                FileCap.read("/shared"),
                FileCap.read("/public"),
                FileCap.admin(f"/home/{name}"),
            ]
        elif kind <= 8:
            caps = [FileCap.read("/shared"), FileCap.read("/public")]
        else:
            caps = [FileCap.read("/public")]
        users.append(file_context(name, f"session-{name}", caps))
    return users


def make_workload(n: int, users: Sequence[Context], seed: int) -> list[tuple[Any, Context]]:
    """``n`` intents: ~60 % reads, 30 % writes, 10 % deletes, some of them refused."""
    rng = random.Random(seed)
    rand = rng.random
    pick = rng.randrange
    m = len(users)
    workload: list[tuple[Any, Context]] = []
    append = workload.append
    for _ in range(n):
        ctx = users[pick(m)]
        me = ctx.user_id
        roll = rand()
        where = rand()
        if roll < 0.6:
            if where < 0.45:
                path = f"/shared/doc{pick(SHARED_DOCS)}.txt"
            elif where < 0.65:
                path = "/public/readme.md"
            elif where < 0.9:
                path = f"/home/{me}/f{pick(8)}.txt"
            elif where < 0.97:
                path = f"/home/{users[pick(m)].user_id}/f0.txt"
            else:
                path = "/home/../system/kernel"
            append((ReadFile(path, me), ctx))
        elif roll < 0.9:
            if where < 0.85:
                path = f"/home/{me}/f{pick(8)}.txt"
            elif where < 0.95:
                path = f"/shared/doc{pick(SHARED_DOCS)}.txt"
            else:
                path = "/system/kernel"
            append((WriteFile(path, f"{me} wrote {pick(1_000_000)}\n", me), ctx))
        else:
            path = f"/home/{me}/f{pick(8)}.txt" if where < 0.9 else "/system/kernel"
            append((DeleteFile(path, me), ctx))
    return workload


def populate(root: str) -> None:
    for directory in ("shared", "public", "system", "home"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    for i in range(SHARED_DOCS):
        with open(os.path.join(root, "shared", f"doc{i}.txt"), "w") as f:
            f.write(f"shared document {i}\n")
    with open(os.path.join(root, "public", "readme.md"), "w") as f:
        f.write("# public\n")
    with open(os.path.join(root, "system", "kernel"), "w") as f:
        f.write("do not touch\n")


# -- running -----------------------------------------------------------------------------------


class _Tally:
    """What the demo's subscribers saw (each updated from one thread at a time)."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.windows = 0
        self.window_items = 0
        self.summaries = 0
        self.sessions = 0
        self.session_items = 0
        self.busiest: Counter[str] = Counter()
        self.sent = 0
        self.accepted = 0
        self.lock = threading.Lock()

    def on_result(self, envelope: Envelope) -> None:
        self.results[type(envelope.event).__name__] += 1

    def on_drop(self, record: Dropped) -> None:
        self.dropped[record.reason] += 1

    def on_window(self, summaries: tuple[FileActivitySummary, ...]) -> None:
        self.windows += 1
        self.summaries += len(summaries)
        for s in summaries:
            count = s.read_count + s.write_count + s.delete_count
            self.window_items += count
            self.busiest[s.path] += count

    def on_session(self, session: SessionSummary) -> None:
        self.sessions += 1
        self.session_items += session.events


def _progress(
    out: TextIO, stream: Stream, tally: _Tally, total: int, stop: threading.Event, start: float
) -> None:
    last_emitted, last_time = 0, start
    while not stop.wait(0.25):
        snap = stream.metrics()
        now = time.perf_counter()
        rate = (snap.emitted - last_emitted) / max(now - last_time, 1e-9)
        last_emitted, last_time = snap.emitted, now
        out.write(
            f"\r  sent {tally.sent:>8,}/{total:,}  out {rate:>9,.0f} ev/s  "
            f"buffer {snap.buffered:>6,} ({snap.buffer_utilization:4.0%})  "
            f"drops {snap.dropped:>8,}  health {stream.health().value:<9}"
        )
        out.flush()
    out.write("\r" + " " * 100 + "\r")
    out.flush()


def _produce(
    stream: Stream, items: Sequence[tuple[Any, Context]], rate: float, tally: _Tally
) -> None:
    send = stream.send
    accepted = 0
    refused: Counter[str] = Counter()
    started = time.perf_counter()
    for i, (intent, ctx) in enumerate(items):
        result = send(intent, ctx)
        if result.ok:
            accepted += 1
        else:
            refused[result.reason or "?"] += 1
        if (i & 255) == 255:
            with tally.lock:
                tally.sent += 256
            if rate > 0:
                ahead = (i + 1) / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
    with tally.lock:
        tally.sent += len(items) % 256
        tally.accepted += accepted
        tally.refused.update(refused)


def run_demo(args: argparse.Namespace) -> int:
    n = getattr(args, "intents", 200_000)
    users_n = max(1, getattr(args, "users", 500))
    strategy = getattr(args, "strategy", "drop_oldest")
    buffer_size = getattr(args, "buffer_size", 10_000)
    rate = getattr(args, "rate", 0.0)
    producers = max(1, getattr(args, "producers", 2))
    span = getattr(args, "window", 1.0)
    gap = getattr(args, "session_gap", 0.5)
    seed = getattr(args, "seed", 7)
    keep_files = getattr(args, "keep_files", False)
    work = getattr(args, "dir", None) or tempfile.mkdtemp(prefix="pfrx-demo-")
    root = os.path.join(work, "files")
    store_path = os.path.join(work, "events.db")
    os.makedirs(root, exist_ok=True)
    if os.path.exists(store_path):
        print(f"refusing to reuse an existing event store: {store_path}", file=sys.stderr)
        return 2
    populate(root)
    out = sys.stdout
    live = out.isatty()

    print("== 1. who may read what, and why not")
    intro_balanced = walkthrough()
    print()
    print("== 2. the substrate under load")
    print(
        f"pfrx demo: {n:,} intents from {users_n} users, strategy {strategy}, "
        f"buffer {buffer_size:,}, {producers} producer(s)"
        f"{f', rate {rate:,.0f}/s' if rate else ''}"
    )
    print(f"  sandbox {root}")
    users = make_users(users_n)
    workload = make_workload(n, users, seed)

    store = EventStore(store_path)
    metrics = StreamMetrics(
        name="filesystem",
        thresholds=HealthThresholds(degraded_drop_rate=0.25, unhealthy_drop_rate=0.75),
    )
    stream = Stream(
        pf.capability_filter(required_capability),
        FileEventFilter(allowed="/", protected="/system"),
        FileEventTransformer(),
        pf.backpressure(strategy, buffer_size=buffer_size),
        pf.process(FileStream(root), name="file_stream"),
        pf.process(EventSourcingStream(store, pass_queries=True), name="event_store"),
        name="filesystem",
        metrics=metrics,
    )
    tally = _Tally()
    stream.dropped.subscribe(tally.on_drop)
    stream.results.subscribe(tally.on_result)
    windows_done = threading.Event()
    sessions_done = threading.Event()
    # One timer thread for every window timer (the default would start a thread per timer).
    timers = EventLoopScheduler()
    stream.results.pipe(TimeWindow(span, scheduler=timers)).subscribe(
        tally.on_window, lambda e: windows_done.set(), windows_done.set
    )
    stream.results.pipe(SessionWindow(gap, max_duration=5 * gap, scheduler=timers)).subscribe(
        tally.on_session, lambda e: sessions_done.set(), sessions_done.set
    )

    started = time.perf_counter()
    stop = threading.Event()
    ticker = None
    if live:
        ticker = threading.Thread(
            target=_progress, args=(out, stream, tally, n, stop, started), daemon=True
        )
        ticker.start()
    slices = [workload[i::producers] for i in range(producers)]
    threads = [
        threading.Thread(target=_produce, args=(stream, part, rate / producers, tally))
        for part in slices
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    produced = time.perf_counter() - started
    stream.close()
    stream.join()
    windows_done.wait(10.0)
    sessions_done.wait(10.0)
    elapsed = time.perf_counter() - started
    stop.set()
    if ticker is not None:
        ticker.join()

    timers.dispose()
    snap = stream.metrics()
    health = stream.health()
    drain = snap.info.get("backpressure.drain") or {}
    peak = drain.get("peak_buffered", 0) / buffer_size if isinstance(drain, dict) else 0.0
    stored = store.count()
    store.close()
    if not keep_files:
        shutil.rmtree(root, ignore_errors=True)

    emitted = sum(tally.results.values())
    writes_and_deletes = tally.results["FileWritten"] + tally.results["FileDeleted"]
    refused = sum(tally.refused.values())
    dropped = sum(tally.dropped.values())

    print("outcomes:")
    print(f"  sent        {n:>10,}")
    print(f"  accepted    {tally.accepted:>10,}")
    print(f"  refused     {refused:>10,}  {dict(tally.refused) or ''}")
    for name, label in (
        ("FileReadEvent", "read"),
        ("FileWritten", "written"),
        ("FileDeleted", "deleted"),
    ):
        print(f"  {label:<11} {tally.results[name]:>10,}")
    print(f"  dropped     {dropped:>10,}")
    print("drops by reason:")
    for reason, count in tally.dropped.most_common():
        print(f"  {reason:<28} {count:>9,}")
    print("windows:")
    print(
        f"  time ({span:g}s)       {tally.windows:>6,} windows, {tally.summaries:,} path summaries"
    )
    print(f"  session (gap {gap:g}s) {tally.sessions:>6,} sessions")
    if tally.busiest:
        path, count = tally.busiest.most_common(1)[0]
        print(f"  busiest path: {path} ({count:,} operations)")
    print(
        f"metrics: received={snap.received:,} emitted={snap.emitted:,} dropped={snap.dropped:,} "
        f"backpressure_events={snap.backpressure_events:,} "
        f"peak_buffer={peak:.0%} errors={snap.errors:,}"
    )
    print(f"health: {health.value}")
    print(
        f"throughput: {n / elapsed:,.0f} intents/s overall ({elapsed:.1f}s), producer "
        f"{n / max(produced, 1e-9):,.0f}/s, consumer emitted {emitted / elapsed:,.0f}/s"
    )
    print(f"event store: {store_path} ({stored:,} events, SQLite WAL, append-only)")

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
        ("store holds every write and delete", stored == writes_and_deletes),
    ]
    failed = [name for name, ok in checks if not ok]
    balanced = not failed
    print(
        f"ledger: {n:,} sent = {tally.accepted:,} accepted + {refused:,} refused; "
        f"{snap.received:,} received = {snap.emitted:,} emitted + {snap.dropped:,} dropped "
        f"+ {snap.buffered:,} buffered; windows {tally.window_items:,}; store {stored:,}: "
        f"{'balanced' if balanced else 'NOT BALANCED (' + '; '.join(failed) + ')'}"
    )
    return 0 if balanced and intro_balanced else 1
