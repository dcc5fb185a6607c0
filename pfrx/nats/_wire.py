"""The wire format of ``CONTRACT.md``: bodies, headers, JSON values and derived message ids."""

from __future__ import annotations

import base64
import datetime
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._model import Envelope, Window

MSG_ID = "Nats-Msg-Id"
SOURCE_ID = "Pfrx-Source-Id"


class MalformedBody(ValueError):
    """An input body that is not JSON ``{"event": <JSON value>}``."""


def decode_input(data: bytes) -> Any:
    """The event of an input body ``{"event": <JSON value>}``."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise MalformedBody("body is not JSON") from None
    if not isinstance(body, dict) or "event" not in body:
        raise MalformedBody('body is not {"event": ...}')
    return body["event"]


def encode_input(event: Any) -> bytes:
    return json.dumps({"event": event}, separators=(",", ":")).encode()


def to_jsonable(value: Any) -> Any:
    """A JSON value for a pipeline's output: attrs records become objects with their type's
    name under ``"type"``, windows ``{"key", "start", "end", "events"}``, bytes UTF-8 text
    (or ``{"base64": ...}``).

    Raises:
        TypeError: a value with no JSON form.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError("a non-finite float has no JSON form")
        return value
    if isinstance(value, Envelope):
        return to_jsonable(value.event)
    if isinstance(value, Window):
        return {
            "key": to_jsonable(value.key),
            "start": to_jsonable(value.start),
            "end": to_jsonable(value.end),
            "events": [to_jsonable(item) for item in value.items],
        }
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"a mapping key {type(key).__name__} has no JSON form")
            out[key] = to_jsonable(item)
        return out
    if isinstance(value, frozenset | set):
        return sorted((to_jsonable(item) for item in value), key=repr)
    if isinstance(value, Sequence):
        return [to_jsonable(item) for item in value]
    if attrs.has(type(value)):
        fields = {
            field.name: to_jsonable(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if not field.name.startswith("_")
        }
        return {"type": type(value).__name__, **fields}
    raise TypeError(f"{type(value).__name__} has no JSON form")


_PLAIN = (dict, list, str, int, float, bool, type(None))


def encode_result(value: Any) -> bytes:
    """``{"event": ...}`` for an output (an envelope's event, a window, a value)."""
    event = value.event if type(value) is Envelope else value
    if type(event) in _PLAIN:
        # Plain JSON values (the common case) go straight to the encoder; anything it
        # cannot take (a record inside a dict...) takes the general path.
        try:
            return json.dumps(
                {"event": event}, separators=(",", ":"), allow_nan=False, default=to_jsonable
            ).encode()
        except ValueError:
            pass
    return json.dumps(
        {"event": to_jsonable(value)}, separators=(",", ":"), allow_nan=False
    ).encode()


def encode_drop(reason: str, operator: str, source_id: str) -> bytes:
    return json.dumps(
        {"reason": reason, "operator": operator, "source_id": source_id}, separators=(",", ":")
    ).encode()


def output_msg_id(source_ids: Sequence[str], kind: str, ordinal: int) -> str:
    """The ``Nats-Msg-Id`` of an output: a function of its source ids (and its rank among
    the outputs of the same sources), so a redelivered input yields the same ids again."""
    if len(source_ids) == 1:
        base = source_ids[0]
    else:
        base = "w" + hashlib.sha256(",".join(source_ids).encode()).hexdigest()[:40]
    return f"{base}/{kind}{ordinal}"
