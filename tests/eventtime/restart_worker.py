"""A process that windows a list of events, checkpoints once, and may be killed.

``python restart_worker.py INPUTS LEDGER CHECKPOINT [--checkpoint-at N] [--die-after M]
[--resume]``: feeds the events of INPUTS (JSON ``[[key, ts], ...]``) into a keyed
``window_time`` and a ``window_session`` (both event time, with allowed lateness), appending
every window and drop to LEDGER as one JSON line. With ``--checkpoint-at N`` it saves a
checkpoint (with the input offset and the ledger length as meta) before input N; with
``--die-after M`` it kills itself with SIGKILL M inputs later. ``--resume`` restores the
checkpoint, cuts the ledger back to what it held at the checkpoint and goes on from there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path
from typing import Any

from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import checkpoint
from pfrx import operators as pf

CTX = pfrx.Context("worker", "s1", metadata={"shard": 3})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs")
    parser.add_argument("ledger")
    parser.add_argument("checkpoint")
    parser.add_argument("--checkpoint-at", type=int, default=-1)
    parser.add_argument("--die-after", type=int, default=-1)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    events = json.loads(Path(args.inputs).read_text())
    ledger_path = Path(args.ledger)

    restore = None
    offset = 0
    if args.resume:
        restore = checkpoint.load(args.checkpoint)
        offset = restore.meta["offset"]
        kept = ledger_path.read_text().splitlines(keepends=True)[: restore.meta["ledger_lines"]]
        ledger_path.write_text("".join(kept))
    lines = len(ledger_path.read_text().splitlines()) if ledger_path.exists() else 0
    ledger = ledger_path.open("a")

    def record(entry: list[Any]) -> None:
        nonlocal lines
        ledger.write(json.dumps(entry) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())
        lines += 1

    def window(op: str) -> Any:
        return lambda w: record([op, w.key, w.start, w.end, [e[1] for e in w.events], w.revision])

    def drop(d: pfrx.Dropped) -> None:
        record([d.operator, d.item.event[1], d.reason])

    source: Subject[Any] = Subject()
    scheduler = TestScheduler()
    key = lambda env: env.event[0]  # noqa: E731
    ts = lambda env: env.event[1]  # noqa: E731
    with checkpoint.checkpointing(restore) as scope:
        source.pipe(
            pf.window_time(10, key=key, timestamp=ts, allowed_lateness=5, on_drop=drop)
        ).subscribe(window("time"), scheduler=scheduler)
        source.pipe(
            pf.window_session(4, key=key, timestamp=ts, allowed_lateness=6, on_drop=drop)
        ).subscribe(window("session"), scheduler=scheduler)

    for n in range(offset, len(events)):
        if n == args.checkpoint_at and not args.resume:
            checkpoint.save(scope.snapshot({"offset": n, "ledger_lines": lines}), args.checkpoint)
        if args.die_after >= 0 and n == args.checkpoint_at + args.die_after and not args.resume:
            os.kill(os.getpid(), signal.SIGKILL)
        k, t = events[n]
        source.on_next(pfrx.Envelope((k, t), CTX, 0.0))
    source.on_completed()
    ledger.close()


if __name__ == "__main__":
    main()
