"""The demo: the guide's FileSystem substrate end to end on a temporary directory.

Part 1 (`pfrx.demo.tour`) walks through a handful of requests and says who
may do what, and why not. Part 2: a synthetic workload (`pfrx.demo.workload`: many
users with mixed capabilities reading, writing and deleting files) is sent into one
`pfrx.Stream` (`pfrx.demo.load`):

    capability_filter -> FileEventFilter -> FileEventTransformer -> backpressure(strategy)
        -> process(FileStream)            real file I/O under a sandbox root (the consumer)
        -> process(EventSourcingStream)   writes and deletes committed to SQLite (WAL)

The consumer is slower than the producers, on purpose, so backpressure acts; the run says
so before it starts and explains the outcome after (`pfrx.demo.report`). The
stream's results feed time windows (per-path activity) and session windows (per-user
sessions). Progress shows while the load runs (`pfrx.demo.progress`): a refreshing
line on a terminal, a plain line every ``--progress-every`` seconds otherwise. The report
balances the ledger: every intent sent is accepted or refused, every accepted intent is
emitted or dropped with a reason, every result is in exactly one time window and one
session, and every write or delete emitted is in the event store. The exit status is 1
when the ledger does not balance. ``--serve PORT`` keeps the live dashboard
(`pfrx.observe.serve`, extra ``web``) up while the demo runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from .. import DuplicateStreamName, Stream, registry
from ..examples.eventstore import EventStore
from .load import LoadSettings, build_stream, run_load
from .options import STRATEGIES, add_arguments
from .progress import Progress
from .report import explain_after, explain_before, ledger, print_outcomes
from .tour import walkthrough
from .workload import make_users, make_workload, populate

__all__ = [
    "STRATEGIES",
    "add_arguments",
    "make_users",
    "make_workload",
    "populate",
    "run_demo",
    "walkthrough",
]


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def _dashboard(port: int | None) -> Iterator[bool]:
    """The live dashboard on ``port`` while the block runs; yields False when unavailable."""
    if port is None:
        yield True
        return
    from ..cli import MissingExtra, import_extra

    try:
        observe = import_extra("pfrx.observe", "web", "demo --serve")
    except MissingExtra as missing:
        print(missing, file=sys.stderr)
        yield False
        return
    try:
        handle = observe.serve(port=port)
    except OSError as error:  # the port is taken, or not ours to bind
        print(f"pfrx demo --serve: cannot serve on port {port}: {error.strerror}", file=sys.stderr)
        yield False
        return
    _say(f"dashboard: {handle.url} (live while the demo runs)")
    try:
        yield True
    finally:
        handle.stop()
        _say("dashboard: stopped")


def _register(stream: Stream) -> None:
    """Make the stream visible to the dashboard (it leaves the registry when closed)."""
    for name in (stream.name, *(f"{stream.name}-{i}" for i in range(2, 100))):
        with contextlib.suppress(DuplicateStreamName):
            registry.register(name, stream)
            return


def _watch(out: Any, every: float, total: int) -> Callable[..., Callable[[], None]]:
    def watch(stream: Stream, sent: Callable[[], int]) -> Callable[[], None]:
        live = bool(getattr(out, "isatty", lambda: False)())
        return Progress(out, stream, total, sent, live=live, every=every).start().stop

    return watch


def run_demo(args: argparse.Namespace) -> int:
    """Run both parts with ``args`` (as parsed by `add_arguments`); the exit status."""
    n = getattr(args, "intents", 200_000)
    users_n = getattr(args, "users", 500)
    settings = LoadSettings(
        strategy=getattr(args, "strategy", "drop_oldest"),
        buffer_size=getattr(args, "buffer_size", 10_000),
        rate=getattr(args, "rate", 0.0),
        producers=getattr(args, "producers", 2),
        span=getattr(args, "window", 1.0),
        gap=getattr(args, "session_gap", 0.5),
    )
    work = getattr(args, "dir", None) or tempfile.mkdtemp(prefix="pfrx-demo-")
    root = os.path.join(work, "files")
    store_path = os.path.join(work, "events.db")
    if os.path.exists(store_path):
        print(f"refusing to reuse an existing event store: {store_path}", file=sys.stderr)
        return 2
    with _dashboard(getattr(args, "serve", None)) as available:
        if not available:
            return 2
        os.makedirs(root, exist_ok=True)
        populate(root)
        _say("== 1. who may read what, and why not")
        intro_balanced = walkthrough()
        _say("")
        _say("== 2. the substrate under load")
        explain_before(_say, settings, n, users_n)
        _say(f"  sandbox {root}")
        workload = make_workload(n, make_users(users_n), getattr(args, "seed", 7))
        store = EventStore(store_path)
        try:
            stream = build_stream(root, store, settings)
            _register(stream)
            watch = _watch(sys.stdout, getattr(args, "progress_every", 1.0), n)
            result = run_load(stream, store, workload, settings, watch)
        finally:
            store.close()
            if not getattr(args, "keep_files", False):
                shutil.rmtree(root, ignore_errors=True)
    print_outcomes(_say, result, n, settings)
    _say(f"event store: {store_path} ({result.stored:,} events, SQLite WAL, append-only)")
    explain_after(_say, result, n, settings)
    balanced = ledger(_say, result, n)
    return 0 if balanced and intro_balanced else 1
