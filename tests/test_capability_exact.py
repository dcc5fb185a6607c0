"""Issue 12: capabilities and families, stated exactly (messages, cache accounting, identity)."""

from __future__ import annotations

import pickle
import sys

import pytest

import pfrx
from pfrx._model import capability as cap_mod
from pfrx._model.resources import ENTRY_OVERHEAD

FileCap = pfrx.CapabilityFamily(
    "file", actions=("read", "write", "admin"), implies={"admin": ("read", "write")}
)


class Sneaky(str):
    """A str subclass: judged by its characters only."""


def test_bad_arguments_name_what_is_wrong() -> None:
    with pytest.raises(TypeError) as info:
        pfrx.Capability("file", "read", "/").grants("file:read")  # type: ignore[arg-type]
    assert str(info.value) == "required must be a Capability, not str"
    with pytest.raises(TypeError) as info:
        pfrx.Capability("file", "read", implies="write")  # type: ignore[arg-type]
    assert str(info.value) == "implies must be a collection of action names, not a str"
    with pytest.raises(TypeError) as info:
        pfrx.CapabilityFamily("f", actions="read")
    assert str(info.value) == "actions must be a collection of action names, not a str"
    with pytest.raises(TypeError) as info:
        pfrx.CapabilityFamily("f", actions=("read",), implies=[("read", "read")])  # type: ignore[arg-type]
    assert str(info.value) == "implies must be a mapping of action -> implied actions"


def test_unknown_action_lists_the_known_ones() -> None:
    expected = "family 'file' has no action 'delete'; known: read, write, admin"
    with pytest.raises(ValueError) as info:
        FileCap.capability("delete", "/x")
    assert str(info.value) == expected
    with pytest.raises(ValueError) as info:
        FileCap.action("delete")
    assert str(info.value) == expected
    with pytest.raises(AttributeError) as attr_info:
        FileCap.delete  # noqa: B018
    assert str(attr_info.value) == "family 'file' has no action 'delete'"


def test_private_lookups_fail_plainly() -> None:
    with pytest.raises(AttributeError) as info:
        FileCap._nothing  # noqa: B018
    assert str(info.value) == "_nothing"
    assert getattr(FileCap, "_nothing", "absent") == "absent"


def test_a_family_hashes_by_identity() -> None:
    twin = pfrx.CapabilityFamily("file", actions=("read", "write", "admin"))
    assert hash(FileCap) == id(FileCap)
    assert hash(twin) == id(twin)
    assert len({FileCap, twin}) == 2


def test_the_family_class_is_named_like_the_public_one() -> None:
    own = type(FileCap)
    assert own.__name__ == "CapabilityFamily"
    assert own.__qualname__ == "CapabilityFamily"
    assert own.__module__ == "pfrx._model.capability"
    # The family's own class holds its actions and nothing else.
    assert set(vars(own)) == {"__slots__", "__module__", "__doc__", "read", "write", "admin"}
    assert repr(FileCap).startswith("CapabilityFamily(name='file', ")


def test_action_factories_carry_their_family_action_and_doc() -> None:
    read = FileCap.read
    assert read.family is FileCap  # type: ignore[attr-defined]
    assert read.action == "read"  # type: ignore[attr-defined]
    assert read.__name__ == "read"
    assert read.__qualname__ == "read"
    assert read.__doc__ == "The capability to read ``resource`` in family 'file'."
    assert cap_mod.family_action(read) == (FileCap, "read")
    assert cap_mod.family_action(FileCap.admin) == (FileCap, "admin")


def test_family_action_accepts_only_the_familys_own_factory() -> None:
    def fake(resource: str = "*") -> pfrx.Capability:
        return FileCap.read(resource)

    fake.family = FileCap  # type: ignore[attr-defined]
    fake.action = "read"  # type: ignore[attr-defined]
    assert cap_mod.family_action(fake) is None
    fake.action = "delete"  # type: ignore[attr-defined]
    assert cap_mod.family_action(fake) is None
    fake.action = 3  # type: ignore[attr-defined]
    assert cap_mod.family_action(fake) is None
    assert cap_mod.family_action(lambda r: r) is None
    assert cap_mod.family_action(FileCap) is None
    assert cap_mod.family_action("read") is None

    class Holder:
        family = "file"
        action = "read"

    assert cap_mod.family_action(Holder()) is None


def test_a_str_subclass_resource_builds_a_full_capability() -> None:
    made = FileCap.admin(Sneaky("/docs//a"))
    assert type(made.resource) is str
    assert made == pfrx.Capability("file", "admin", "/docs//a", implies=("read", "write"))
    assert made.family == "file"
    assert made.action == "admin"
    assert made.resource == "/docs//a"
    assert made.implies == frozenset({"read", "write"})
    assert made.normalized_resource == "/docs/a"
    assert made.grants(FileCap.write("/docs/a/b"))
    # Not cached: a subclass never meets the cache.
    assert made is not FileCap.admin(Sneaky("/docs//a"))


def test_a_str_subclass_without_a_resource_argument_is_still_exact() -> None:
    made = FileCap.read(Sneaky("*"))
    assert made == FileCap.read()
    assert made.resource == "*"


def test_made_cache_accounts_resource_and_normal_form_bytes() -> None:
    fam = pfrx.CapabilityFamily("acct", actions=("get",))
    cache = fam.get.cache  # type: ignore[attr-defined]
    base = sys.getsizeof(pfrx.Capability("f", "a"))
    # Already normal: only the resource is pinned.
    fam.get("/a/b")
    assert cache.used == base + sys.getsizeof("/a/b") + ENTRY_OVERHEAD
    # Invalid (normal form None): only the resource.
    fam.get("relative")
    assert cache.used == 2 * (base + ENTRY_OVERHEAD) + sys.getsizeof("/a/b") + sys.getsizeof(
        "relative"
    )
    before = cache.used
    # A different normal form is pinned too.
    made = fam.get("/a//c/")
    assert made.normalized_resource == "/a/c"
    assert cache.used == before + base + sys.getsizeof("/a//c/") + sys.getsizeof("/a/c") + (
        ENTRY_OVERHEAD
    )
    assert fam.get("/a//c/") is made
    assert len(cache) == 3


def test_action_keys_are_shared_and_accounted() -> None:
    keys = cap_mod._action_keys
    keys.clear()
    first = cap_mod.action_key("fam", "act")
    assert cap_mod.action_key("fam", "act") is first
    assert (first.family, first.action) == ("fam", "act")
    assert repr(first) == "ActionKey('fam', 'act')"
    assert len(keys) == 1
    assert keys.used == sys.getsizeof("fam") + sys.getsizeof("act") + 120 + ENTRY_OVERHEAD
    assert pfrx.Capability("fam", "act").action_key is first
    assert pickle.loads(pickle.dumps(first)) is first


def test_closure_is_transitive_and_never_holds_the_action_itself() -> None:
    fam = pfrx.CapabilityFamily(
        "chain",
        actions=("a", "b", "c", "d"),
        implies={"a": "b", "b": ("c",), "c": ("a", "b"), "d": ()},
    )
    assert fam.implied_actions("a") == frozenset({"b", "c"})
    assert fam.implied_actions("b") == frozenset({"a", "c"})
    assert fam.implied_actions("d") == frozenset()
    assert fam.a("/").implies == frozenset({"b", "c"})
