"""Signed contexts: a `Context` as a token another process can verify.

A token is ``base64url(payload) + "." + base64url(mac)``, both unpadded, where ``payload`` is
the canonical JSON encoding (sorted keys, no spaces, UTF-8) of the user, the session, the
capabilities *with the implications they carry*, and the metadata, and ``mac`` is
HMAC-SHA256 of the payload bytes. A token that does not re-encode to exactly the same text
is invalid, so there is one spelling per context and nothing to smuggle in padding, key
order or whitespace.

Key rotation: a verifier accepts a list of keys and tries each; a signer signs with the
first. Keys and tokens are never logged, nor put in an exception's text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from typing import Any

from .._model import Capability, Context

__all__ = [
    "CONTEXT_HEADER",
    "InvalidToken",
    "load_keys",
    "sign_context",
    "verify_context",
]

#: The message header carrying a signed context.
CONTEXT_HEADER = "Pfrx-Context"

_VERSION = 1
#: Keys shorter than this are accepted but weak (HMAC takes any length); the worker warns.
MIN_KEY_BYTES = 16


class InvalidToken(ValueError):
    """A token that no key verifies (missing, malformed, tampered, or signed by an unknown key).

    The message never contains the token or a key."""


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise InvalidToken("token is not base64url") from error


def _payload(context: Context) -> dict[str, Any]:
    # Order kept as held, so a verified context equals the signed one.
    capabilities = [
        [c.family, c.action, c.resource, sorted(c.implies)] for c in context.capabilities
    ]
    metadata = dict(context.metadata)
    for key in metadata:
        if not isinstance(key, str):
            raise TypeError(
                f"context metadata keys must be str to be signed, not {type(key).__name__}"
            )
    return {
        "v": _VERSION,
        "user": context.user_id,
        "session": context.session_id,
        "caps": capabilities,
        "meta": metadata,
    }


def _check_key(key: Any) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"a signing key must be bytes, not {type(key).__name__}")
    if not key:
        raise ValueError("a signing key must not be empty")
    return bytes(key)


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def sign_context(context: Context, key: bytes | Sequence[bytes]) -> str:
    """The signed token of ``context`` (with ``key``, or the first of a list of keys).

    Raises:
        TypeError: ``context`` is not a `Context`, or its metadata is not
            JSON-encodable (keys must be str; values JSON values).
        ValueError: the key is empty.

    Example:
        >>> import pfrx
        >>> key = b"0123456789abcdef0123456789abcdef"
        >>> token = sign_context(pfrx.Context("alice", "s1"), key)
        >>> verify_context(token, [key]).user_id
        'alice'
    """
    if not isinstance(context, Context):
        raise TypeError(f"sign_context needs a pfrx.Context, not {type(context).__name__}")
    keys: list[Any] = [key] if isinstance(key, bytes | bytearray) else list(key)
    signing_key = _check_key(keys[0] if keys else None)
    try:
        payload = _canonical(_payload(context))
    except (TypeError, ValueError) as error:
        raise TypeError(f"context metadata is not JSON-encodable: {error}") from None
    return _b64(payload) + "." + _b64(_mac(signing_key, payload))


def _capability(entry: Any) -> Capability:
    if not (isinstance(entry, list) and len(entry) == 4):
        raise InvalidToken("token capability is malformed")
    family, action, resource, implies = entry
    if not all(isinstance(part, str) for part in (family, action, resource)):
        raise InvalidToken("token capability is malformed")
    if not isinstance(implies, list) or not all(isinstance(a, str) for a in implies):
        raise InvalidToken("token capability is malformed")
    return Capability(family, action, resource, implies=frozenset(implies))


def verify_context(token: Any, keys: Sequence[bytes]) -> Context:
    """The context a token carries, once one of ``keys`` verifies its MAC.

    Raises:
        InvalidToken: missing (``None``/empty), not ``payload.mac``, not canonical base64url
            or JSON, signed by no key in ``keys``, or not a context payload.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("token is not ASCII") from None
    if not isinstance(token, str) or not token:
        raise InvalidToken("token is missing")
    parts = token.split(".")
    if len(parts) != 2:
        raise InvalidToken("token is not payload.mac")
    payload_b64, mac_b64 = parts
    payload = _unb64(payload_b64)
    mac = _unb64(mac_b64)
    if _b64(payload) != payload_b64 or _b64(mac) != mac_b64:
        raise InvalidToken("token is not canonical base64url")
    if not any(hmac.compare_digest(_mac(bytes(key), payload), mac) for key in keys):
        raise InvalidToken("token signature does not verify")
    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken("token payload is not JSON") from None
    if not isinstance(decoded, dict) or decoded.get("v") != _VERSION:
        raise InvalidToken("token payload has an unknown version")
    try:
        if _canonical(decoded) != payload:
            raise InvalidToken("token payload is not canonical JSON")
    except (TypeError, ValueError):
        raise InvalidToken("token payload is not canonical JSON") from None
    if set(decoded) != {"v", "user", "session", "caps", "meta"}:
        raise InvalidToken("token payload has unexpected fields")
    user, session, caps, meta = (
        decoded["user"],
        decoded["session"],
        decoded["caps"],
        decoded["meta"],
    )
    if not isinstance(user, str) or not (session is None or isinstance(session, str)):
        raise InvalidToken("token user or session is malformed")
    if not isinstance(caps, list) or not isinstance(meta, dict):
        raise InvalidToken("token payload is malformed")
    return Context(user, session, tuple(_capability(entry) for entry in caps), meta)


def load_keys(path: str | os.PathLike[str]) -> list[bytes]:
    """The keys in a key file; the first signs, all verify.

    A text file holds one key per non-empty line not starting with ``#`` (each key is the
    line's UTF-8 bytes without surrounding whitespace, e.g. the output of
    ``openssl rand -hex 32``). A file that is not UTF-8 text is one raw binary key, as is.

    Raises:
        OSError: the file cannot be read (the caller prints one line).
        ValueError: the file holds no key.
    """
    with open(path, "rb") as handle:
        content = handle.read()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return [content]
    keys = [
        line.strip().encode("utf-8")
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not keys:
        raise ValueError(f"key file {os.fspath(path)!r} holds no key")
    return keys
