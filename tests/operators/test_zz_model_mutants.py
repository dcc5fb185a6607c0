"""Issue 12: the model's surviving mutants (Capability families, Context, Dropped), each told
apart by a statement of behaviour, with the expected values written here."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx._model.resources import BoundedCache


def make_file_cap() -> pfrx.CapabilityFamily:
    # Built again for each test (see the fixture below): mutation testing switches a mutant
    # on per test run, so a family built at import would never meet it.
    return pfrx.CapabilityFamily(
        "file",
        actions=("read", "write", "delete", "admin"),
        implies={"admin": ("read", "write", "delete")},
    )


FileCap = make_file_cap()


@pytest.fixture(autouse=True)
def _a_family_built_in_each_test() -> None:
    global FileCap
    FileCap = make_file_cap()


class Path(str):
    """A str subclass: a family action never caches what it makes for one."""


# -- a family's action factories ---------------------------------------------------------------


@pytest.mark.parametrize("resource", ["/docs", Path("/docs")])
def test_a_family_action_makes_exactly_its_capability(resource: str) -> None:
    made = FileCap.admin(resource)
    assert type(made) is pfrx.Capability
    assert (made.family, made.action, made.resource) == ("file", "admin", "/docs")
    assert type(made.resource) is str
    assert made.implies == frozenset({"read", "write", "delete"})
    assert made == pfrx.Capability(
        "file", "admin", "/docs", implies=frozenset({"read", "write", "delete"})
    )
    read = FileCap.read(resource)
    assert (read.family, read.action, read.resource, read.implies) == (
        "file",
        "read",
        "/docs",
        frozenset(),
    )
    # What admin implies it grants, below its resource only.
    assert made.grants(pfrx.Capability("file", "delete", "/docs/a")) is True
    assert made.grants(pfrx.Capability("file", "delete", "/etc")) is False


def test_a_family_action_refuses_a_resource_that_is_not_a_str() -> None:
    for bad in (5, None, b"/docs"):
        with pytest.raises(TypeError):
            FileCap.read(bad)  # type: ignore[arg-type]


def test_a_family_action_says_what_it_makes() -> None:
    assert FileCap.read.__name__ == "read"
    assert FileCap.read.__doc__ == "The capability to read ``resource`` in family 'file'."
    assert FileCap.admin.__doc__ == "The capability to admin ``resource`` in family 'file'."


@pytest.mark.parametrize("batch", [0, 2])
def test_a_family_action_is_a_requirement_that_takes_resource(batch: int) -> None:
    # Only a family's own action factory may be given with resource=: the filter knows its
    # family and action from it.
    ctx = pfrx.Context("alice", "s1", [FileCap.write("/out")])
    items = [pfrx.Envelope({"path": p}, ctx, 0.0) for p in ("/out/a", "/in/a", "/out")]
    source = reactivex.from_iterable(items) if batch == 0 else pfrx.sources.batches(items, batch)
    lost: list[pfrx.Dropped] = []
    out = source.pipe(
        pf.capability_filter(FileCap.write, resource=lambda e: e["path"], on_drop=lost.append),
        ops.to_list(),
    ).run()
    assert out == [items[0], items[2]]
    assert [(d.item, d.reason) for d in lost] == [(items[1], "insufficient_capabilities")]


def test_a_familys_class_holds_its_actions_and_nothing_else() -> None:
    own = type(FileCap)
    assert own.__name__ == own.__qualname__ == "CapabilityFamily"
    assert own.__module__ == "pfrx._model.capability"
    assert isinstance(FileCap, pfrx.CapabilityFamily)
    assert repr(FileCap).startswith("CapabilityFamily(name='file', ")
    assert sorted(vars(own)) == sorted(
        ["__doc__", "__module__", "__slots__", "read", "write", "delete", "admin"]
    )


# -- Context: coverage compiled once per (family, action), and remembered -----------------------


class Counting(pfrx.Context):
    """A Context that counts how often its coverage is worked out."""

    __slots__ = ()
    asked: ClassVar[list[tuple[str, str]]] = []

    def coverage(self, family: str, action: str) -> Any:
        Counting.asked.append((family, action))
        return super().coverage(family, action)


def test_coverage_is_worked_out_once_per_family_action() -> None:
    Counting.asked = []
    ctx = Counting("alice", "s1", [FileCap.read("/docs"), FileCap.write("/out")])
    read = pfrx.Capability("file", "read", "/docs/a")
    for _ in range(3):
        assert ctx.has_capability(read) is True
        assert ctx.has_capability(pfrx.Capability("file", "read", "/etc")) is False
        assert ctx.covered(read.action_key, "/docs/b") is True
        assert ctx.allows("file", "write", "/out/x") is True
    assert Counting.asked == [("file", "read"), ("file", "write")]
    # What was worked out is what compiled_coverage answers from then on.
    assert ctx.compiled_coverage(read.action_key) == (frozenset({"/docs"}), ("/docs/",))
    assert ctx.compiled_coverage(pfrx.Capability("file", "write").action_key) == (
        frozenset({"/out"}),
        ("/out/",),
    )
    assert ctx.compiled_coverage(pfrx.Capability("file", "delete").action_key) is None


def test_a_compiled_entry_counts_at_least_the_bytes_it_pins() -> None:
    ctx = pfrx.Context("alice", "s1", [FileCap.read("/docs"), FileCap.read("/srv/data")])
    assert ctx.has_capability(pfrx.Capability("file", "read", "/docs/a")) is True
    key = pfrx.Capability("file", "read").action_key
    exact, prefixes = ctx.compiled_coverage(key)
    assert (exact, prefixes) == (frozenset({"/docs", "/srv/data"}), ("/docs/", "/srv/data/"))
    # The entry pins its key (and the key its two names) and the (exact, prefixes) pair with
    # what it holds; the cache adds its own per-entry overhead on top, measured here.
    pinned = (
        sys.getsizeof(key)
        + sys.getsizeof(key.family)
        + sys.getsizeof(key.action)
        + sys.getsizeof((exact, prefixes))
        + sys.getsizeof(exact)
        + sys.getsizeof(prefixes)
        + sum(sys.getsizeof(p) for p in prefixes)
    )
    empty: BoundedCache[str, str] = BoundedCache(1 << 10)
    empty.put("k", "v", 0)
    assert ctx._coverages.used - empty.used >= pinned


def test_a_capability_subclass_is_judged_by_its_fields_and_an_exact_one_from_the_cache() -> None:
    class Tagged(pfrx.Capability):
        __slots__ = ()

    Counting.asked = []
    ctx = Counting("alice", "s1", [FileCap.read("/docs")])
    for _ in range(2):
        assert ctx.has_capability(pfrx.Capability("file", "read", "/docs/a")) is True
    assert Counting.asked == [("file", "read")]  # once: then from the cache
    for _ in range(2):
        assert ctx.has_capability(Tagged("file", "read", "/docs/a")) is True
        assert ctx.has_capability(Tagged("file", "read", "/etc")) is False
    # A subclass is worked out from its own fields each time, never from the cache.
    assert Counting.asked == [("file", "read")] * 5


# -- Dropped ----------------------------------------------------------------------------------


def test_a_dropped_record_names_an_attribute_it_lacks_exactly() -> None:
    record = pfrx.Dropped("item", "late", "window_time", 1.0)
    assert record.windows == ()
    with pytest.raises(AttributeError) as caught:
        record.nope  # noqa: B018
    assert str(caught.value) == "'Dropped' object has no attribute 'nope'"


# -- window_session passes its name on --------------------------------------------------------


def test_window_session_reports_under_the_name_it_is_given() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    lost: list[pfrx.Dropped] = []
    ctx = pfrx.Context("alice", "s1")
    items = [pfrx.Envelope(1, ctx, 0.0)]
    source = reactivex.from_iterable(items).pipe(
        ops.concat(reactivex.throw(RuntimeError("upstream")))
    )
    errors: list[Exception] = []
    source.pipe(
        pf.window_session(5.0, name="sessions", on_drop=lost.append, metrics=metrics)
    ).subscribe(on_error=errors.append, scheduler=scheduler)
    scheduler.advance_to(1.0)
    assert [str(e) for e in errors] == ["upstream"]
    assert [(d.item, d.reason, d.operator) for d in lost] == [
        (items[0], "upstream_error", "sessions")
    ]
    assert [o.name for o in metrics.snapshot().operators] == ["sessions"]
