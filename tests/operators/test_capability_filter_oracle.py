"""Issue 12: capability_filter against a reference written here from the contract's wording.

The reference knows nothing of pfrx: it normalises POSIX paths and decides coverage by whole
segments, as CONTRACT.md states. Every requirement form, one item per ``on_next`` and in
batches, must pass exactly what it grants and drop the rest, once each, with the exact reason.
"""

from __future__ import annotations

from typing import Any

import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.testing.strategies import paths

FileCap = pfrx.CapabilityFamily(
    "file", actions=("read", "write", "admin"), implies={"admin": ("read", "write")}
)


def ref_normal(path: str) -> str | None:
    """The contract's normal form: ``//`` collapsed, ``.`` and ``..`` resolved, never above
    ``/``; ``*`` is itself; empty, relative or NUL-holding paths are invalid (None)."""
    if path == "*":
        return "*"
    if not path or "\0" in path or not path.startswith("/"):
        return None
    stack: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if stack:
                stack.pop()
            continue
        stack.append(segment)
    return "/" + "/".join(stack)


def ref_covers(held: str, required: str) -> bool:
    """A held resource covers itself and its descendants by whole segments; ``/`` every
    absolute path; ``*`` every path and ``*`` itself; an invalid path is never covered."""
    h, r = ref_normal(held), ref_normal(required)
    if h is None or r is None:
        return False
    if h == "*":
        return True
    if r == "*":
        return False
    if h == "/":
        return True
    return r == h or r.startswith(h + "/")


def ref_granted(held: list[tuple[str, str]], action: str, resource: str) -> bool:
    """``held`` as (action, resource) pairs of the file family, where admin implies read."""
    return any(
        (a == action or (a == "admin" and action in ("read", "write"))) and ref_covers(r, resource)
        for a, r in held
    )


FORMS = ["static", "resource", "computed"]


def build(form: str, required: str, **kwargs: Any) -> Any:
    if form == "static":
        return pf.capability_filter(FileCap.read(required), **kwargs)
    if form == "resource":
        return pf.capability_filter(FileCap.read, resource=lambda e: e[1], **kwargs)
    return pf.capability_filter(lambda e: FileCap.read(e[1]), **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    held=st.lists(
        st.tuples(st.sampled_from(["read", "write", "admin"]), paths(hostile=True)), max_size=3
    ),
    wanted=st.lists(paths(hostile=True), min_size=1, max_size=8),
    form=st.sampled_from(FORMS),
    batch=st.sampled_from([0, 1, 3]),
)
def test_every_form_passes_exactly_what_the_reference_grants(
    held: list[tuple[str, str]], wanted: list[str], form: str, batch: int
) -> None:
    ctx = pfrx.Context("alice", "s1", [FileCap.capability(a, r) for a, r in held])
    # The static form requires the first path for every item; the others each item's own.
    items = [pfrx.Envelope((n, path), ctx, 0.0) for n, path in enumerate(wanted)]
    required = wanted[0]
    expected = [
        item
        for item in items
        if ref_granted(held, "read", required if form == "static" else item.event[1])
    ]
    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics(TestScheduler())
    source = reactivex.from_iterable(items) if batch == 0 else pfrx.sources.batches(items, batch)
    out = source.pipe(
        build(form, required, on_drop=lost.append, metrics=metrics), ops.to_list()
    ).run()
    assert out == expected
    assert [d.item for d in lost] == [item for item in items if item not in expected]
    assert {d.reason for d in lost} <= {"insufficient_capabilities"}
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (
        len(items),
        len(expected),
        len(items) - len(expected),
    )
