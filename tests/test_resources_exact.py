"""Issue 12: resources, stated exactly: messages, the bounded caches' byte accounting, identity."""

from __future__ import annotations

import sys

import attrs
import pytest

import pfrx
from pfrx._model import resources
from pfrx._model.resources import ENTRY_OVERHEAD, BoundedCache, Coverage, exact_str, slot_setter


class _Loud(str):
    pass


def test_exact_str_names_the_field_and_the_type() -> None:
    with pytest.raises(TypeError) as caught:
        exact_str(3, "Capability.family")
    assert str(caught.value) == "Capability.family must be a str, not int"
    with pytest.raises(TypeError) as caught:
        pfrx.Capability("file", None)  # type: ignore[arg-type]
    assert str(caught.value) == "Capability.action must be a str, not NoneType"
    with pytest.raises(TypeError) as caught:
        pfrx.normalize_resource(b"/docs")  # type: ignore[arg-type]
    assert str(caught.value) == "resource must be a str, not bytes"
    loud = _Loud("/docs")
    assert type(exact_str(loud, "x")) is str
    assert exact_str(loud, "x") == "/docs"
    plain = "".join(["/do", "cs"])
    assert exact_str(plain, "x") is plain


def test_a_bounded_cache_counts_bytes_and_keeps_an_entry_that_exactly_fits() -> None:
    cache: BoundedCache[str, int] = BoundedCache(200)
    assert (cache.used, len(cache), cache.limit) == (0, 0, 200)
    cache.put("a", 1, 200 - ENTRY_OVERHEAD)  # exactly the limit: kept
    assert (cache.used, len(cache), cache.get("a")) == (200, 1, 1)
    cache.clear()
    assert (cache.used, len(cache), cache.get("a")) == (0, 0, None)
    cache.put("big", 2, 200 - ENTRY_OVERHEAD + 1)  # never worth a whole cache
    assert (cache.used, len(cache)) == (0, 0)


def test_a_bounded_cache_starts_over_only_when_an_entry_would_not_fit() -> None:
    cache: BoundedCache[str, int] = BoundedCache(200)
    cache.put("a", 1, 36)  # 100
    cache.put("b", 2, 36)  # 200: exactly full, both kept
    assert (cache.used, len(cache)) == (200, 2)
    cache.put("c", 3, 1)  # 65 more would not fit: start over with "c" alone
    assert (cache.used, len(cache)) == (65, 1)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, 3)


def test_normalize_resource_remembers_each_resource_once_with_its_bytes() -> None:
    cache = resources._normalized
    cache.clear()
    resource = "".join(["/a//", "b/"])
    assert pfrx.normalize_resource(resource) == "/a/b"
    one = sys.getsizeof(resource) + sys.getsizeof("/a/b") + ENTRY_OVERHEAD
    assert (cache.used, len(cache)) == (one, 1)
    assert pfrx.normalize_resource(resource) == "/a/b"  # answered from the cache
    assert (cache.used, len(cache)) == (one, 1)
    assert cache.get(resource) == "/a/b"
    # Already normal: the resource itself is the answer and only it is counted.
    normal = "".join(["/x/", "y"])
    assert pfrx.normalize_resource(normal) is normal
    two = one + sys.getsizeof(normal) + ENTRY_OVERHEAD
    assert cache.used == two
    # Never covered: only the resource is counted.
    relative = "".join(["rel", "/x"])
    assert pfrx.normalize_resource(relative) is None
    assert cache.used == two + sys.getsizeof(relative) + ENTRY_OVERHEAD
    assert pfrx.normalize_resource(relative) is None
    assert cache.used == two + sys.getsizeof(relative) + ENTRY_OVERHEAD
    assert len(cache) == 3


def test_a_str_subclass_resource_is_normalised_by_its_characters() -> None:
    assert pfrx.normalize_resource(_Loud("/a/./b/")) == "/a/b"
    assert type(pfrx.normalize_resource(_Loud("/a"))) is str


def test_coverage_size_counts_its_sets_and_prefixes() -> None:
    cover = Coverage(("/docs", "/srv/data", None))
    assert cover.exact == frozenset({"/docs", "/srv/data"})
    assert cover.prefixes == ("/docs/", "/srv/data/")
    assert cover.size() == (
        sys.getsizeof(cover.exact)
        + sys.getsizeof(cover.prefixes)
        + sys.getsizeof("/docs/")
        + sys.getsizeof("/srv/data/")
        + 64
    )
    empty = Coverage(())
    assert empty.empty
    assert empty.size() == sys.getsizeof(frozenset()) + sys.getsizeof(()) + 64


def test_slot_setter_fills_a_frozen_slot() -> None:
    @attrs.frozen(slots=True)
    class Pair:
        left: int
        right: int

    set_left = slot_setter(Pair, "left")
    set_right = slot_setter(Pair, "right")
    pair = object.__new__(Pair)
    set_left(pair, 1)
    set_right(pair, 2)
    assert pair == Pair(1, 2)


def test_the_root_is_already_normal() -> None:
    cache = resources._normalized
    cache.clear()
    # A str subclass's characters are copied into a new "/" object, not the shared one:
    # being already normal, that copy is the answer and the only string counted.
    assert pfrx.normalize_resource(_Loud("/")) == "/"
    assert cache.used == sys.getsizeof("/") + ENTRY_OVERHEAD
    assert pfrx.normalize_resource("/") == "/"
