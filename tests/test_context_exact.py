"""Issue 12: ``Context.allows`` answers for the family, the action and the resource asked."""

from __future__ import annotations

import pytest

import pfrx

HELD = (
    pfrx.Capability("file", "read", "/docs"),
    pfrx.Capability("db", "write", "/orders"),
)
CTX = pfrx.Context("alice", capabilities=HELD)


def norm(family: str, action: str, resource: str) -> str | None:
    return pfrx.Capability(family, action, resource).normalized_resource


@pytest.mark.parametrize(
    ("family", "action", "resource", "granted"),
    [
        ("file", "read", "/docs/a.txt", True),
        ("file", "read", "/docs", True),
        ("db", "write", "/orders/7", True),
        ("file", "read", "/etc/passwd", False),  # resource outside what is held
        ("file", "write", "/docs/a.txt", False),  # action not held in that family
        ("db", "read", "/orders/7", False),  # action held only in another family
        ("db", "read", "/docs/a.txt", False),  # family and action of another grant
        ("file", "write", "/orders/7", False),
    ],
)
def test_allows_is_has_capability_for_a_normalised_resource(
    family: str, action: str, resource: str, granted: bool
) -> None:
    assert CTX.allows(family, action, norm(family, action, resource)) is granted
    assert CTX.has_capability(pfrx.Capability(family, action, resource)) is granted


def test_an_invalid_resource_is_never_allowed() -> None:
    # ``None`` is what normalisation makes of an invalid resource.
    assert CTX.allows("file", "read", None) is False


def test_a_context_without_capabilities_allows_nothing() -> None:
    empty = pfrx.Context("bob")
    assert empty.allows("file", "read", norm("file", "read", "/docs/a.txt")) is False


# -- construction and questions, stated exactly -------------------------------------------------


class _SubCap(pfrx.Capability):
    """A Capability subclass: judged by its fields, never through the cache."""

    __slots__ = ()


def test_bad_capabilities_and_metadata_are_named_exactly() -> None:
    with pytest.raises(TypeError) as caught:
        pfrx.Context("alice", capabilities=[HELD[0], "file:read"])  # type: ignore[list-item]
    assert str(caught.value) == "capabilities must be Capability instances, not str"
    with pytest.raises(TypeError) as caught:
        pfrx.Context("alice", metadata=[("k", "v")])  # type: ignore[arg-type]
    assert str(caught.value) == "metadata must be a mapping, not list"
    with pytest.raises(TypeError) as caught:
        CTX.coverage("file", None)  # type: ignore[arg-type]
    assert str(caught.value) == "family and action must be str"
    with pytest.raises(TypeError) as caught:
        CTX.coverage(b"file", "read")  # type: ignore[arg-type]
    assert str(caught.value) == "family and action must be str"
    with pytest.raises(TypeError) as caught:
        CTX.has_capability("file:read")  # type: ignore[arg-type]
    assert str(caught.value) == "required must be a Capability, not str"


def test_one_capability_is_held_as_a_one_tuple_and_metadata_is_a_copy() -> None:
    meta = {"team": "a"}
    ctx = pfrx.Context("alice", "s1", HELD[0], meta)
    meta["team"] = "b"
    assert ctx.capabilities == (HELD[0],)
    assert dict(ctx.metadata) == {"team": "a"}
    assert dict(pfrx.Context("bob").metadata) == {}
    with pytest.raises(TypeError):
        ctx.metadata["team"] = "c"  # type: ignore[index]
    # Metadata is in equality, not in the hash.
    other = pfrx.Context("alice", "s1", HELD[0], {"team": "z"})
    assert ctx != other
    assert hash(ctx) == hash(other)


def test_with_capabilities_keeps_the_old_grants_and_adds_in_order() -> None:
    extra = pfrx.Capability("db", "read", "/orders")
    more = CTX.with_capabilities(extra)
    assert more.capabilities == (*HELD, extra)
    assert (more.user_id, more.session_id) == (CTX.user_id, CTX.session_id)
    assert more.has_capability(pfrx.Capability("file", "read", "/docs/a"))
    assert more.has_capability(pfrx.Capability("db", "read", "/orders/1"))
    assert not CTX.has_capability(pfrx.Capability("db", "read", "/orders/1"))


def test_has_all_needs_every_capability() -> None:
    inside = pfrx.Capability("file", "read", "/docs/a")
    outside = pfrx.Capability("file", "read", "/etc")
    assert CTX.has_all([inside, pfrx.Capability("db", "write", "/orders/1")]) is True
    assert CTX.has_all([inside, outside]) is False
    assert CTX.has_all([outside, inside]) is False
    assert CTX.has_all([]) is True


def test_a_capability_subclass_is_judged_by_its_fields() -> None:
    assert CTX.has_capability(_SubCap("file", "read", "/docs/x")) is True
    assert CTX.has_capability(_SubCap("file", "read", "/docs2")) is False
    assert CTX.has_capability(_SubCap("file", "write", "/docs/x")) is False
    assert CTX.has_capability(_SubCap("db", "write", "/orders")) is True


def test_coverage_takes_implied_actions_and_only_the_asked_family() -> None:
    admin = pfrx.Capability("file", "admin", "/srv", implies=("read",))
    ctx = pfrx.Context("carol", capabilities=(admin, pfrx.Capability("db", "read", "/x")))
    cover = ctx.coverage("file", "read")
    assert cover.exact == frozenset({"/srv"})
    assert cover.prefixes == ("/srv/",)
    assert ctx.coverage("file", "write").empty
    assert ctx.coverage("db", "read").exact == frozenset({"/x"})
    assert ctx.allows("file", "read", "/srv/a") is True
    assert ctx.allows("file", "read", "/srv") is True
    assert ctx.allows("file", "read", "/srvx") is False
    assert ctx.allows("file", "write", "/srv/a") is False
    # Asked twice (the second answer from the compiled cache), the same.
    assert ctx.allows("file", "read", "/srv/a") is True
    assert ctx.allows("file", "read", None) is False


def test_an_envelope_keeps_its_fields_and_swaps_only_the_event() -> None:
    env = pfrx.Envelope("e", CTX, 2.5)
    assert (env.event, env.context, env.timestamp) == ("e", CTX, 2.5)
    other = env.with_event("f")
    assert (other.event, other.context, other.timestamp) == ("f", CTX, 2.5)
    assert env.event == "e"
