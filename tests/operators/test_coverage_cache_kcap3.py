"""Issue 12: what one compiled coverage costs a context's cache, to the byte, and the boundary
at which the cache starts over (capability_filter reads these compiled coverages per event)."""

from __future__ import annotations

import sys

import pytest

import pfrx
from pfrx._model import context as context_module
from pfrx._model.resources import ENTRY_OVERHEAD

Doc = pfrx.CapabilityFamily("doc", actions=("read", "edit"))


def key_of(capability: pfrx.Capability) -> object:
    # Asked per test: the shared key of a (family, action) is interned in a bounded cache,
    # which other tests may have made start over since import (then a new key stands).
    return capability.action_key


def holder() -> pfrx.Context:
    return pfrx.Context("alice", "s1", [Doc.read("/docs"), Doc.edit("/docs")])


def entry_cost(ctx: pfrx.Context, family: str, action: str) -> int:
    # The (exact, prefixes) pair with what it holds, the key object (a two-slot object,
    # counted as 64 bytes) and its two names, plus the cache's own per-entry overhead.
    coverage = ctx.coverage(family, action)
    return coverage.size() + sys.getsizeof(family) + sys.getsizeof(action) + 64 + ENTRY_OVERHEAD


def test_one_compiled_coverage_costs_its_pair_its_key_and_the_entry() -> None:
    ctx = holder()
    assert ctx.compiled_coverage(key_of(Doc.read("/a"))) is None
    assert ctx.has_capability(Doc.read("/docs/a")) is True
    assert ctx.compiled_coverage(key_of(Doc.read("/a"))) == (frozenset({"/docs"}), ("/docs/",))
    assert ctx._coverages.used == entry_cost(ctx, "doc", "read")


@pytest.mark.parametrize(("spare", "both_kept"), [(0, True), (-1, False)])
def test_the_cache_starts_over_exactly_when_an_entry_would_not_fit(
    monkeypatch: pytest.MonkeyPatch, spare: int, both_kept: bool
) -> None:
    cost = entry_cost(holder(), "doc", "read")
    assert entry_cost(holder(), "doc", "edit") == cost  # same sizes: "read", "edit", "/docs"
    monkeypatch.setattr(context_module, "COVERAGE_CACHE_BYTES", 2 * cost + spare)
    ctx = holder()
    assert ctx.has_capability(Doc.read("/docs/a")) is True
    assert ctx.has_capability(Doc.edit("/docs/a")) is True
    assert ctx.compiled_coverage(key_of(Doc.edit("/a"))) is not None
    assert (ctx.compiled_coverage(key_of(Doc.read("/a"))) is not None) is both_kept
    assert ctx._coverages.used == (2 * cost if both_kept else cost)
