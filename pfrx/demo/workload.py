"""The demo's workload: users with mixed capabilities, their intents, the sandbox's files."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

from .. import Context
from ..examples.filesystem import DeleteFile, FileCap, ReadFile, WriteFile, file_context

SHARED_DOCS = 64


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
    """The files the workload expects: shared documents, a public readme, a kernel."""
    for directory in ("shared", "public", "system", "home"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    for i in range(SHARED_DOCS):
        with open(os.path.join(root, "shared", f"doc{i}.txt"), "w") as f:
            f.write(f"shared document {i}\n")
    with open(os.path.join(root, "public", "readme.md"), "w") as f:
        f.write("# public\n")
    with open(os.path.join(root, "system", "kernel"), "w") as f:
        f.write("do not touch\n")
