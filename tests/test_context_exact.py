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
