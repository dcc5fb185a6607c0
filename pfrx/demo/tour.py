"""Part 1 of the demo: a handful of requests, each decision explained."""

from __future__ import annotations

import reactivex
from reactivex import operators as ops

from .. import Capability, Context, Dropped, Envelope, Reject, StreamMetrics, envelopes
from .. import operators as pf
from ..examples.filesystem import FileCap


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
