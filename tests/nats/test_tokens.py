"""Signed contexts: round trip, tampering, canonical form, rotation, no secrets in errors."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pfrx
from pfrx.examples.filesystem import FileCap
from pfrx.nats import InvalidToken, load_keys, sign_context, verify_context

KEY = b"k" * 32
OTHER = b"o" * 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def context() -> pfrx.Context:
    return pfrx.Context(
        "alice", "s1", [FileCap.admin("/docs"), pfrx.Capability("x", "y")], {"team": "a", "n": 1}
    )


def test_round_trip_keeps_user_session_capabilities_and_implications() -> None:
    ctx = context()
    back = verify_context(sign_context(ctx, KEY), [KEY])
    assert back == ctx
    assert back.has_capability(FileCap.write("/docs/a.txt"))  # admin's implication travelled
    assert dict(back.metadata) == {"team": "a", "n": 1}


def test_token_is_two_unpadded_base64url_parts() -> None:
    token = sign_context(context(), KEY)
    payload, mac = token.split(".")
    assert "=" not in token
    assert len(base64.urlsafe_b64decode(mac + "==")) == 32
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded["user"] == "alice" and decoded["caps"][0][:3] == ["file", "admin", "/docs"]
    assert decoded["caps"][0][3] == ["delete", "read", "write"]


def test_tampered_payload_fails() -> None:
    payload, mac = sign_context(context(), KEY).split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded["user"] = "mallory"
    forged = b64(json.dumps(decoded, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(InvalidToken):
        verify_context(f"{forged}.{mac}", [KEY])


def test_non_canonical_spellings_fail_even_with_a_valid_mac() -> None:
    ctx = context()
    token = sign_context(ctx, KEY)
    payload, mac = token.split(".")
    with pytest.raises(InvalidToken):
        verify_context(f"{payload}=.{mac}", [KEY])  # padding
    with pytest.raises(InvalidToken):
        verify_context(f"{payload}.{mac}=", [KEY])
    # A payload with spaces, correctly MACed, is still refused: one spelling per context.
    import hashlib
    import hmac

    spaced = json.dumps(json.loads(base64.urlsafe_b64decode(payload + "==")), sort_keys=True)
    spaced_mac = b64(hmac.new(KEY, spaced.encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        verify_context(f"{b64(spaced.encode())}.{spaced_mac}", [KEY])


@pytest.mark.parametrize("token", [None, "", "abc", "a.b.c", "!!.??", b"\xff.\xff", 42])
def test_missing_or_malformed_tokens_fail(token: object) -> None:
    with pytest.raises(InvalidToken):
        verify_context(token, [KEY])


def test_rotation_signs_with_first_and_accepts_all() -> None:
    old = sign_context(context(), OTHER)
    new = sign_context(context(), [KEY, OTHER])
    assert verify_context(new, [KEY]) == context()
    assert verify_context(old, [KEY, OTHER]) == context()
    with pytest.raises(InvalidToken):
        verify_context(old, [KEY])  # the old key retired


def test_errors_never_hold_the_token_or_key() -> None:
    token = sign_context(context(), OTHER)
    with pytest.raises(InvalidToken) as caught:
        verify_context(token, [KEY])
    text = str(caught.value) + repr(caught.value)
    assert token not in text and token.split(".")[1] not in text
    assert KEY.decode() not in text and OTHER.decode() not in text


def test_unencodable_metadata_raises_type_error() -> None:
    with pytest.raises(TypeError):
        sign_context(pfrx.Context("a", metadata={"x": object()}), KEY)
    with pytest.raises(TypeError):
        sign_context(pfrx.Context("a", metadata={"x": float("nan")}), KEY)


def test_any_non_empty_key_signs() -> None:
    assert verify_context(sign_context(context(), b"short"), [b"short"]) == context()
    with pytest.raises(ValueError):
        sign_context(context(), b"")
    with pytest.raises(TypeError):
        sign_context(context(), "text")  # type: ignore[arg-type]


def test_load_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys"
    path.write_bytes(b"# comment\n" + KEY + b"\n\n" + OTHER + b"\n")
    assert load_keys(path) == [KEY, OTHER]
    path.write_bytes(b"# nothing\n")
    with pytest.raises(ValueError):
        load_keys(path)
    raw = bytes(range(256))  # not UTF-8: one binary key, newlines and all
    path.write_bytes(raw)
    assert load_keys(path) == [raw]
    with pytest.raises(OSError):
        load_keys(tmp_path / "missing")


text = st.text(max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@given(
    user=text,
    session=st.none() | text,
    caps=st.lists(st.tuples(st.sampled_from(["read", "write", "admin"]), text), max_size=4),
    metadata=st.dictionaries(text, json_values, max_size=3),
)
def test_any_context_round_trips_and_any_flipped_byte_fails(
    user: str, session: str | None, caps: list[tuple[str, str]], metadata: dict[str, object]
) -> None:
    ctx = pfrx.Context(user, session, [FileCap.capability(a, r) for a, r in caps], metadata)
    token = sign_context(ctx, KEY)
    assert verify_context(token, [OTHER, KEY]) == ctx
    assert sign_context(verify_context(token, [KEY]), KEY) == token
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(InvalidToken):
        verify_context(flipped, [KEY])
