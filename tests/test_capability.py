"""Capability and CapabilityFamily, sentence by sentence from the contract's "Model"."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pfrx
from pfrx import Capability, CapabilityFamily

FileCap = CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)


def test_capability_fields_and_default_resource() -> None:
    cap = pfrx.Capability("file", "read", "/docs")
    assert (cap.family, cap.action, cap.resource) == ("file", "read", "/docs")
    assert Capability("file", "read").resource == "*"
    assert Capability(family="file", action="read", resource="/x") == cap.__class__(
        "file", "read", "/x"
    )


def test_capability_is_a_frozen_slotted_hashable_attrs_class() -> None:
    cap = Capability("file", "read", "/docs")
    assert attrs.has(Capability)
    assert "__slots__" in Capability.__dict__
    assert not hasattr(cap, "__dict__")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cap.resource = "/"  # type: ignore[misc]
    assert hash(cap) == hash(Capability("file", "read", "/docs"))
    assert {cap, Capability("file", "read", "/docs")} == {cap}


@pytest.mark.parametrize(
    ("args", "field"),
    [((1, "read"), "family"), (("file", None), "action"), (("file", "read", b"/"), "resource")],
)
def test_capability_fields_must_be_strings(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(TypeError, match=rf"Capability\.{field} must be a str"):
        Capability(*args)  # type: ignore[arg-type]


def test_family_factories_make_plain_capabilities() -> None:
    assert FileCap.read("/docs") == Capability("file", "read", "/docs")
    assert FileCap.write() == Capability("file", "write", "*")
    assert FileCap.capability("delete", "/tmp") == Capability("file", "delete", "/tmp")
    assert type(FileCap.admin("/")) is Capability


def test_an_unknown_action_raises() -> None:
    with pytest.raises(AttributeError, match="no action 'execute'"):
        FileCap.execute("/bin")  # type: ignore[operator]
    with pytest.raises(ValueError, match="no action 'execute'"):
        FileCap.capability("execute", "/bin")
    with pytest.raises(ValueError, match="no action"):
        FileCap.implied_actions("execute")


def test_grants_same_family_same_action_covering_resource() -> None:
    held = FileCap.read("/docs")
    assert held.grants(FileCap.read("/docs/a.txt"))
    assert held.grants(Capability("file", "read", "/docs"))
    assert not held.grants(FileCap.write("/docs/a.txt"))  # other action
    assert not held.grants(Capability("mail", "read", "/docs/a.txt"))  # other family
    assert not held.grants(FileCap.read("/docs2/a.txt"))  # resource not covered
    assert not FileCap.read("/docs/a").grants(FileCap.read("/docs"))  # a child never a parent


def test_grants_follows_implications_of_the_family() -> None:
    admin = FileCap.admin("/srv")
    for action in ("read", "write", "delete", "admin"):
        assert admin.grants(FileCap.capability(action, "/srv/x"))
        assert admin.grants(Capability("file", action, "/srv/x"))  # a bare required cap too
    assert not admin.grants(FileCap.read("/etc"))
    assert not FileCap.read("/").grants(FileCap.admin("/x"))  # implication is one-way
    assert not FileCap.write("/").grants(FileCap.read("/x"))


def test_a_bare_capability_implies_only_its_own_action() -> None:
    bare = Capability("file", "admin", "/")
    assert bare.implies == frozenset()
    assert bare.grants(Capability("file", "admin", "/x"))
    for action in ("read", "write", "delete"):
        assert not bare.grants(FileCap.capability(action, "/x"))
    # Different powers, different values: implications are part of equality and hash.
    assert bare != FileCap.admin("/")
    assert FileCap.admin("/").grants(FileCap.read("/x"))


def test_implication_is_transitive() -> None:
    chain = CapabilityFamily(
        "chain", actions=("a", "b", "c", "d", "e"), implies={"a": ("b",), "b": ("c",), "c": "d"}
    )
    assert chain.implied_actions("a") == frozenset({"b", "c", "d"})
    assert chain.implied_actions("c") == frozenset({"d"})
    assert chain.implied_actions("e") == frozenset()
    assert chain.a("/").grants(chain.d("/x"))
    assert not chain.a("/").grants(chain.e("/x"))
    assert not chain.d("/").grants(chain.a("/x"))


def test_implication_is_cycle_safe() -> None:
    ring = CapabilityFamily(
        "ring", actions=("a", "b", "c", "x"), implies={"a": ("b",), "b": ("c",), "c": ("a",)}
    )
    for action in "abc":
        assert ring.implied_actions(action) == frozenset("abc") - {action}
        for other in "abc":
            assert ring.capability(action, "/").grants(ring.capability(other, "/r"))
        assert not ring.capability(action, "/").grants(ring.x("/r"))
    selfish = CapabilityFamily("self", actions=("a",), implies={"a": ("a",)})
    assert selfish.implied_actions("a") == frozenset()
    assert selfish.a("/").grants(selfish.a("/x"))


@given(
    st.dictionaries(
        st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=4), max_size=6
    )
)
def test_implication_matches_reachability(graph: dict[str, list[str]]) -> None:
    family = CapabilityFamily("g", actions=tuple("abcdef"), implies=graph)
    for start in "abcdef":
        reached: set[str] = set()
        frontier = [start]
        while frontier:  # breadth-first reference
            node = frontier.pop()
            for nxt in graph.get(node, []):
                if nxt not in reached:
                    reached.add(nxt)
                    frontier.append(nxt)
        reached.discard(start)
        assert family.implied_actions(start) == frozenset(reached)
        for target in "abcdef":
            expected = target == start or target in reached
            assert family.capability(start, "/").grants(family.capability(target, "/x")) is (
                expected
            )


def test_two_families_sharing_a_name_do_not_affect_each_other() -> None:
    strict = CapabilityFamily("file", actions=("read", "admin"))
    loose = CapabilityFamily("file", actions=("read", "admin"), implies={"admin": ("read",)})
    assert not strict.admin("/").grants(strict.read("/x"))
    assert loose.admin("/").grants(loose.read("/x"))
    # defining `loose` changed nothing for `strict`, in either order
    assert not strict.admin("/").grants(loose.read("/x"))
    other = CapabilityFamily("file", actions=("execute",))
    assert other.execute("/").family == "file"
    with pytest.raises(AttributeError):
        strict.execute  # noqa: B018
    assert strict != loose


def test_family_validation() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        CapabilityFamily("f", actions=("a",), implies={"a": ("b",)})
    with pytest.raises(ValueError, match="unknown action"):
        CapabilityFamily("f", actions=("a",), implies={"z": ("a",)})
    with pytest.raises(TypeError, match="not a str"):
        CapabilityFamily("f", actions="read")
    with pytest.raises(TypeError, match="non-empty str"):
        CapabilityFamily("", actions=("a",))
    with pytest.raises(ValueError, match="identifier-like"):
        CapabilityFamily("f", actions=("not an identifier",))
    with pytest.raises(ValueError, match="clashes"):
        CapabilityFamily("f", actions=("capability",))
    with pytest.raises(ValueError, match="clashes"):
        CapabilityFamily("f", actions=("_private",))
    with pytest.raises(TypeError, match="mapping"):
        CapabilityFamily("f", actions=("a",), implies=[("a", "a")])  # type: ignore[arg-type]


def test_family_is_frozen_and_slotted_and_its_implications_are_read_only() -> None:
    assert "__slots__" in CapabilityFamily.__dict__
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        FileCap.name = "mail"  # type: ignore[misc]
    with pytest.raises(TypeError):
        FileCap.implies["read"] = ("admin",)  # type: ignore[index]
    assert FileCap.implies["admin"] == ("read", "write", "delete")
    assert FileCap.actions == ("read", "write", "delete", "admin")


def test_family_copies_its_inputs() -> None:
    implies = {"admin": ["read"]}
    family = CapabilityFamily("f", actions=["read", "admin"], implies=implies)
    implies["read"] = ["admin"]
    implies["admin"].append("admin")
    assert family.implied_actions("read") == frozenset()
    assert family.implied_actions("admin") == frozenset({"read"})


def test_implies_cannot_be_a_string_on_a_bare_capability() -> None:
    with pytest.raises(TypeError, match="not a str"):
        Capability("f", "a", implies="admin")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="implied action must be a str"):
        Capability("f", "a", implies=[1])  # type: ignore[list-item]


def test_grants_rejects_non_capabilities() -> None:
    held = FileCap.admin("/")
    for bad in (None, "file.read", ("file", "read", "/x"), object()):
        with pytest.raises(TypeError, match="required must be a Capability"):
            held.grants(bad)  # type: ignore[arg-type]


def test_normalized_resource() -> None:
    assert FileCap.read("/docs/../etc//").normalized_resource == "/etc"
    assert FileCap.read("relative").normalized_resource is None
    assert FileCap.read().normalized_resource == "*"
    # the raw resource is kept as given
    assert FileCap.read("/docs/../etc//").resource == "/docs/../etc//"


def test_repr_is_readable() -> None:
    assert (
        repr(FileCap.read("/docs")) == "Capability(family='file', action='read', resource='/docs')"
    )


def test_a_forged_implication_is_not_equal_to_the_family_capability() -> None:
    forged = Capability("file", "read", "/docs", implies={"write", "delete", "admin"})
    genuine = FileCap.read("/docs")
    assert forged.grants(FileCap.delete("/docs/a"))
    assert not genuine.grants(FileCap.delete("/docs/a"))
    assert forged != genuine
    assert hash(forged) != hash(genuine)
    assert genuine not in {forged}
    assert forged not in {genuine}
    assert "implies={'admin', 'delete', 'write'}" in repr(forged)
    assert repr(genuine) == "Capability(family='file', action='read', resource='/docs')"
    assert repr(FileCap.admin("/")) == (
        "Capability(family='file', action='admin', resource='/', "
        "implies={'delete', 'read', 'write'})"
    )
    # same carried implications: equal, whoever made them
    assert Capability("file", "admin", "/", implies={"read", "write", "delete"}) == FileCap.admin(
        "/"
    )


@pytest.mark.parametrize(
    "actions", [(), ("read", "read"), ("read", "write", "read")], ids=["empty", "dup", "dup3"]
)
def test_duplicate_or_empty_actions_raise_at_construction(actions: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"at least one action|listed twice"):
        CapabilityFamily("f", actions=actions)


def test_family_actions_are_real_methods_and_reuse_their_capabilities() -> None:
    family = CapabilityFamily("f", actions=("read", "write"))
    # a real attribute of the family's class: no __getattr__ closure per access
    assert "read" in type(family).__dict__
    assert family.read is family.read
    assert family.read("/a") is family.read("/a")
    assert family.capability("read", "/a") is family.read("/a")
    assert family.action("write") is family.write
    assert isinstance(family, CapabilityFamily)
    with pytest.raises(ValueError, match="no action 'nope'"):
        family.action("nope")


def test_a_family_survives_pickling() -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(FileCap))
    assert copy.admin("/x") == FileCap.admin("/x")
    assert copy.actions == FileCap.actions


def test_grants_agrees_with_a_reference_written_from_the_contract() -> None:
    # An independent oracle: the contract's sentence, in a few lines, on resources that are
    # already normal (normalisation itself is checked against posixpath in test_resources).
    def reference(
        held: tuple[str, str, frozenset[str], str], required: tuple[str, str, str]
    ) -> bool:
        h_family, h_action, h_implies, h_resource = held
        r_family, r_action, r_resource = required
        if h_family != r_family or not (r_action == h_action or r_action in h_implies):
            return False
        if h_resource == "*":
            return True
        if r_resource == "*":
            return False
        if h_resource == "/":
            return True
        return r_resource == h_resource or r_resource.startswith(h_resource + "/")

    resources = ["*", "/", "/docs", "/docs/a", "/docs2", "/docs/a/b", "/etc"]
    for family in (FileCap, CapabilityFamily("mail", actions=("read", "admin"))):
        for h_action in family.actions:
            for h_resource in resources:
                held = family.capability(h_action, h_resource)
                for r_action in ("read", "write", "admin"):
                    for r_resource in resources:
                        required = Capability("file", r_action, r_resource)
                        expected = reference(
                            (family.name, h_action, held.implies, h_resource),
                            ("file", r_action, r_resource),
                        )
                        assert held.grants(required) is expected, (held, required)
                        ctx = pfrx.Context("u", capabilities=[held])
                        assert ctx.has_capability(required) is expected, (held, required)


def test_the_family_capability_cache_is_bounded_by_bytes() -> None:
    import gc
    import tracemalloc

    from pfrx._model import capability as capability_module

    family = CapabilityFamily("mem", actions=("read",))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(3000):  # 3,000 distinct 16 KB paths
            family.read(f"/{i}/" + "x" * 16_000)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # the family's cache plus the shared normalisation cache, never 48 MB
    from pfrx._model import resources

    bound = capability_module.MADE_CACHE_BYTES + resources.NORMALIZE_CACHE_BYTES
    assert retained < bound + (1 << 20)
    assert family.read.cache.used <= capability_module.MADE_CACHE_BYTES  # type: ignore[attr-defined]


def test_the_action_key_cache_is_bounded_by_bytes() -> None:
    import gc
    import tracemalloc

    from pfrx._model import capability as capability_module

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):  # 2,000 distinct 16 KB family names: 32 MB went through
            capability_module.action_key(f"{i}" + "f" * 16_000, "read")
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < capability_module.ACTION_KEY_CACHE_BYTES + (1 << 18)
    # a key evicted and made again answers the same: keys carry their names
    key = capability_module.action_key("file", "read")
    assert (key.family, key.action) == ("file", "read")


def test_a_capability_survives_pickling_and_shares_its_action_key() -> None:
    import pickle

    cap = FileCap.admin("/srv")
    copy = pickle.loads(pickle.dumps(cap))
    assert copy == cap and hash(copy) == hash(cap)
    again = pickle.loads(pickle.dumps(cap))
    assert copy.action_key is again.action_key  # one shared key, however often unpickled
    assert (copy.action_key.family, copy.action_key.action) == ("file", "admin")
    assert pfrx.Context("u", capabilities=[copy]).has_capability(FileCap.delete("/srv/x"))
