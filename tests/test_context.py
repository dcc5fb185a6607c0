"""Context (who is acting) and Envelope (what flows), including the decision cache."""

from __future__ import annotations

import threading
from collections import OrderedDict

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pfrx
from pfrx import Capability, CapabilityFamily, Context, Envelope
from pfrx._model import context as context_module

FileCap = CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)


def test_context_fields_and_defaults() -> None:
    ctx = pfrx.Context("alice")
    assert ctx.user_id == "alice"
    assert ctx.session_id is None
    assert ctx.capabilities == ()
    assert dict(ctx.metadata) == {}
    full = Context("bob", "s1", [FileCap.read("/docs")], {"ip": "10.0.0.1"})
    assert full.session_id == "s1"
    assert full.capabilities == (FileCap.read("/docs"),)
    assert full.metadata["ip"] == "10.0.0.1"
    assert Context("c", capabilities=FileCap.read("/x")).capabilities == (FileCap.read("/x"),)
    assert Context("d", capabilities=(c for c in [FileCap.read("/y")])).capabilities == (
        FileCap.read("/y"),
    )


def test_context_validation() -> None:
    with pytest.raises(TypeError, match="'user_id' must be <class 'str'>"):
        Context(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'session_id' must be <class 'str'>"):
        Context("a", 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capabilities must be Capability instances"):
        Context("a", capabilities=["file.read"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="capabilities must be Capability instances, not str"):
        Context("a", capabilities="file.read")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metadata must be a mapping"):
        Context("a", metadata=[("k", "v")])  # type: ignore[arg-type]


def test_context_is_frozen_slotted_and_hashable() -> None:
    ctx = Context("alice", "s1", [FileCap.read("/docs")], {"tags": ["mutable", "list"]})
    assert attrs.has(Context)
    assert "__slots__" in Context.__dict__
    assert not hasattr(ctx, "__dict__")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.user_id = "mallory"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.capabilities = (FileCap.admin("/"),)  # type: ignore[misc]
    # hashable although the metadata holds an unhashable value
    same = Context("alice", "s1", [FileCap.read("/docs")], {"tags": ["mutable", "list"]})
    assert hash(ctx) == hash(same)
    assert ctx == same
    assert {ctx: 1}[same] == 1
    assert ctx != Context("alice", "s1", [FileCap.read("/docs")], {"tags": []})
    assert ctx != Context("alice", "s2", [FileCap.read("/docs")], {"tags": ["mutable", "list"]})


def test_metadata_is_stored_immutably() -> None:
    source = {"ip": "10.0.0.1", "role": "reader"}
    ctx = Context("alice", metadata=source)
    source["role"] = "admin"
    source["extra"] = "x"
    assert dict(ctx.metadata) == {"ip": "10.0.0.1", "role": "reader"}
    with pytest.raises(TypeError):
        ctx.metadata["role"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        del ctx.metadata["ip"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        ctx.metadata.update({"role": "admin"})  # type: ignore[attr-defined]
    assert Context("a", metadata=OrderedDict(k=1)).metadata["k"] == 1  # any mapping


def test_has_capability_any_held_capability_grants() -> None:
    ctx = Context("alice", "s1", [FileCap.read("/docs"), FileCap.write("/docs/alice")])
    assert ctx.has_capability(FileCap.read("/docs/report.txt"))
    assert ctx.has_capability(FileCap.write("/docs/alice/notes.txt"))
    assert not ctx.has_capability(FileCap.write("/docs/bob/notes.txt"))
    assert not ctx.has_capability(FileCap.read("/docs/../etc/passwd"))
    assert not ctx.has_capability(FileCap.delete("/docs/a"))
    assert not ctx.has_capability(Capability("mail", "read", "/docs/a"))
    assert not Context("nobody").has_capability(FileCap.read("/docs"))
    root = Context("root", capabilities=[FileCap.admin("/")])
    assert root.has_capability(FileCap.delete("/tmp/cache"))
    assert not root.has_capability(FileCap.read("*"))
    assert Context("any", capabilities=[FileCap.read()]).has_capability(FileCap.read("*"))


def test_has_all_and_with_capabilities() -> None:
    ctx = Context("alice", capabilities=[FileCap.read("/docs")])
    assert ctx.has_all([])
    assert ctx.has_all([FileCap.read("/docs/a"), FileCap.read("/docs/b")])
    assert not ctx.has_all([FileCap.read("/docs/a"), FileCap.write("/docs/b")])
    more = ctx.with_capabilities(FileCap.write("/docs"))
    assert more.has_capability(FileCap.write("/docs/b"))
    assert more.has_capability(FileCap.read("/docs/a"))  # the old grant survives
    assert more.capabilities == (FileCap.read("/docs"), FileCap.write("/docs"))
    assert not ctx.has_capability(FileCap.write("/docs/b"))  # the original is unchanged
    assert more.user_id == "alice"


def test_has_capability_rejects_non_capabilities_even_when_they_mimic_a_cached_one() -> None:
    ctx = Context("alice", capabilities=[FileCap.read("/docs")])
    granted = FileCap.read("/docs/a")
    assert ctx.has_capability(granted)  # now in the decision cache

    class Mimic:
        def __hash__(self) -> int:
            return hash(granted)

        def __eq__(self, other: object) -> bool:
            return True

    # Before the fix, the cache answered True for this object.
    with pytest.raises(TypeError, match="required must be a Capability, not Mimic"):
        ctx.has_capability(Mimic())  # type: ignore[arg-type]
    for bad in (None, "file.read:/docs/a", ("file", "read", "/docs/a")):
        with pytest.raises(TypeError, match="required must be a Capability"):
            ctx.has_capability(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="required must be a Capability"):
        ctx.has_capability([])  # type: ignore[arg-type]


def test_a_capability_subclass_cannot_borrow_a_cached_decision() -> None:
    ctx = Context("alice", capabilities=[FileCap.read("/docs")])
    assert ctx.has_capability(FileCap.read("/docs/a"))

    @attrs.frozen(slots=True, eq=False)
    class Sneaky(Capability):
        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash(FileCap.read("/docs/a"))

    assert not ctx.has_capability(Sneaky("file", "read", "/etc/passwd"))
    assert ctx.has_capability(Sneaky("file", "read", "/docs/b"))


def test_contexts_that_grant_differently_are_not_equal() -> None:
    # Capabilities carry their implications in equality, and so do contexts.
    family_made = Context("u", capabilities=[FileCap.admin("/")])
    bare = Context("u", capabilities=[Capability("file", "admin", "/")])
    assert family_made.capabilities != bare.capabilities
    assert family_made.has_capability(FileCap.read("/x"))
    assert not bare.has_capability(FileCap.read("/x"))
    assert family_made != bare
    assert hash(family_made) != hash(bare)
    assert family_made == Context("u", capabilities=[FileCap.admin("/")])


def test_coverage_cache_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context_module, "COVERAGE_CACHE_BYTES", 4096)
    ctx = Context("alice", capabilities=[FileCap.read("/docs")])
    for i in range(200):
        family = f"family-{i}-" + "x" * 100
        assert not ctx.has_capability(Capability(family, "read", "/docs/a"))
        assert ctx._coverages.used <= 4096
    assert ctx.has_capability(FileCap.read("/docs/0"))
    assert not ctx.has_capability(FileCap.read("/etc/0"))


def test_coverage_cache_memory_stays_flat_under_hostile_families() -> None:
    import tracemalloc

    ctx = Context("alice", capabilities=[FileCap.read("/docs")])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):  # 2,000 distinct 16 KB family names
            ctx.has_capability(Capability(f"{i}" + "f" * 16_000, "read", "/docs/a"))
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 32 MB went through; the cache keeps at most its bound (256 KiB) plus slack
    assert retained < context_module.COVERAGE_CACHE_BYTES + (1 << 20)


FAMILIES = [
    FileCap,
    CapabilityFamily("mail", actions=("read", "send"), implies={"send": ("read",)}),
    CapabilityFamily("file", actions=("read", "admin")),  # same name, no implications
]
RESOURCES = st.one_of(
    st.lists(st.sampled_from(["a", "b", "docs", "docs2", "..", ".", ""]), max_size=4).map(
        lambda s: "/" + "/".join(s)
    ),
    st.sampled_from(["*", "/", "", "rel", "/a\x00", "**"]),
)


@st.composite
def capabilities(draw: st.DrawFn) -> Capability:
    family = draw(st.sampled_from(FAMILIES))
    action = draw(st.sampled_from(family.actions))
    resource = draw(RESOURCES)
    if draw(st.booleans()):
        return family.capability(action, resource)
    return Capability(family.name, action, resource)  # bare


def _reference_grant(held: Capability, required: Capability) -> bool:
    """The contract's sentence for one held capability, written here independently of pfrx
    (normalisation by posixpath; ``None`` for what is never covered)."""
    import posixpath

    def normal(resource: str) -> str | None:
        if resource == "*":
            return "*"
        if not resource.startswith("/") or "\x00" in resource:
            return None
        path = posixpath.normpath(resource)
        return "/" + path.lstrip("/")  # normpath keeps a leading "//"

    if held.family != required.family:
        return False
    if required.action != held.action and required.action not in held.implies:
        return False
    h, r = normal(held.resource), normal(required.resource)
    if h is None or r is None:
        return False
    if h == "*":
        return True
    if r == "*":
        return False
    return h == "/" or r == h or r.startswith(h + "/")


@given(
    st.lists(capabilities(), max_size=10),
    st.lists(capabilities(), min_size=1, max_size=40),
    st.integers(min_value=300, max_value=3000),
)
def test_cached_decisions_equal_a_reference_oracle(
    held: list[Capability], questions: list[Capability], limit: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(context_module, "COVERAGE_CACHE_BYTES", limit)
        ctx = Context("u", capabilities=held)
        for _ in range(3):  # ask again: answers come from the cache or after it was cleared
            for required in questions:
                expected = any(_reference_grant(cap, required) for cap in held)
                assert ctx.has_capability(required) is expected
                assert any(cap.grants(required) for cap in held) is expected
                assert ctx._coverages.used <= limit
        assert ctx.has_all(questions) is all(
            any(_reference_grant(cap, q) for cap in held) for q in questions
        )


@pytest.mark.threads
def test_has_capability_from_many_threads_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context_module, "COVERAGE_CACHE_BYTES", 1024)
    ctx = Context("alice", capabilities=[FileCap.read("/docs"), FileCap.admin("/srv")])
    questions = [FileCap.read(f"/docs/{i}") for i in range(50)]
    questions += [FileCap.write(f"/srv/{i}") for i in range(50)]
    questions += [FileCap.read(f"/docs2/{i}") for i in range(50)]
    expected = [any(c.grants(q) for c in ctx.capabilities) for q in questions]
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        for round_ in range(20):
            for i in range(len(questions)):
                j = (i + offset + round_) % len(questions)
                if ctx.has_capability(questions[j]) is not expected[j]:
                    failures.append(questions[j].resource)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert expected.count(True) == 100


def test_envelope_fields_and_value_semantics() -> None:
    ctx = Context("alice")
    env = pfrx.Envelope({"path": "/docs"}, ctx, 12.5)
    assert env.event == {"path": "/docs"}
    assert env.context is ctx
    assert env.timestamp == 12.5
    assert attrs.has(Envelope)
    assert "__slots__" in Envelope.__dict__
    assert not hasattr(env, "__dict__")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        env.event = "other"  # type: ignore[misc]
    hashable = Envelope("a", ctx, 1.0)
    assert hash(hashable) == hash(Envelope("a", ctx, 1.0))
    assert hashable == Envelope("a", ctx, 1.0)
    assert hashable != Envelope("a", ctx, 2.0)
    moved = hashable.with_event("b")
    assert (moved.event, moved.context, moved.timestamp) == ("b", ctx, 1.0)
    assert hashable.event == "a"


def test_envelopes_transform_builds_are_genuine_frozen_envelopes() -> None:
    import weakref

    import reactivex

    from pfrx import operators as pf
    from pfrx.sources import batches

    ctx = Context("alice")
    source = [Envelope(n, ctx, float(n)) for n in range(3)]
    one: list[Envelope] = []
    reactivex.from_iterable(source).pipe(pf.transform(lambda e, c: e * 10)).subscribe(one.append)
    many: list[Envelope] = []
    batches(source, 2).pipe(pf.transform(lambda e, c: e * 10)).subscribe(many.append)
    for made in (one, many):
        assert [type(e) for e in made] == [Envelope] * 3
        assert made == [Envelope(n * 10, ctx, float(n)) for n in range(3)]
        assert hash(made[1]) == hash(Envelope(10, ctx, 1.0))
        assert weakref.ref(made[0])() is made[0]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            made[0].event = 1  # type: ignore[misc]
    assert [a.name for a in attrs.fields(Envelope)] == ["event", "context", "timestamp"]
