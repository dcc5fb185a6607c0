"""What users ask of the file system: the intents, ``FileCap`` and the file context."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ... import Capability, CapabilityFamily, Context

__all__ = [
    "MAX_CONTENT_BYTES",
    "DeleteFile",
    "FileCap",
    "FileContext",
    "Intent",
    "ReadFile",
    "WriteFile",
    "file_context",
    "required_capability",
]

FileCap = CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)

#: The guide's ``validate_content`` limit: 1 MiB.
MAX_CONTENT_BYTES = 1024 * 1024

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _metadata(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None or value is _EMPTY:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise TypeError(f"metadata must be a mapping, not {type(value).__name__}")
    return MappingProxyType(dict(value))


def _path(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"path must be a str, not {type(value).__name__}")


def _content(_instance: Any, _attribute: Any, value: Any) -> None:
    # bytes(12345) is 12,345 NUL bytes and a bytearray can change after the check:
    # only the two immutable kinds are content.
    if not isinstance(value, str | bytes):
        raise TypeError(f"content must be str or bytes, not {type(value).__name__}")


@attrs.frozen(slots=True)
class ReadFile:
    """Intent: read the file at ``path`` (``FileSystem.Intents.ReadFile``)."""

    path: str = attrs.field(validator=_path)
    user_id: str
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=_metadata, hash=False)

    @classmethod
    def new(cls, path: str, user_id: str) -> ReadFile:
        return cls(path, user_id)

    operation = "read"


@attrs.frozen(slots=True)
class WriteFile:
    """Intent: write ``content`` (a ``str``, written as UTF-8, or ``bytes``) to ``path``.

    Raises:
        TypeError: ``path`` is not a ``str`` or ``content`` is neither ``str`` nor ``bytes``.
    """

    path: str = attrs.field(validator=_path)
    content: str | bytes = attrs.field(validator=_content)
    user_id: str
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=_metadata, hash=False)

    @classmethod
    def new(cls, path: str, content: str | bytes, user_id: str) -> WriteFile:
        return cls(path, content, user_id)

    operation = "write"

    @property
    def data(self) -> bytes:
        """The content as bytes.

        Raises:
            TypeError: the content is neither ``str`` nor ``bytes`` (only possible when the
                validation was bypassed, e.g. with ``object.__setattr__``).
        """
        content: object = self.content
        if isinstance(content, str):
            return content.encode("utf-8", "surrogatepass")
        if isinstance(content, bytes):
            return content
        raise TypeError(f"content must be str or bytes, not {type(content).__name__}")


@attrs.frozen(slots=True)
class DeleteFile:
    """Intent: delete the file at ``path``."""

    path: str = attrs.field(validator=_path)
    user_id: str
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=_metadata, hash=False)

    @classmethod
    def new(cls, path: str, user_id: str) -> DeleteFile:
        return cls(path, user_id)

    operation = "delete"


Intent = ReadFile | WriteFile | DeleteFile


def file_context(
    user_id: str,
    session_id: str | None = None,
    capabilities: Iterable[Capability] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Context:
    """The guide's ``FileSystem.Contexts.FileContext.new(user_id, session_id, caps)``."""
    return Context(user_id, session_id, tuple(capabilities), metadata)


class FileContext:
    """Namespace for the guide's ``FileContext.new``."""

    new = staticmethod(file_context)


def required_capability(intent: Any) -> Capability:
    """The capability an intent needs: ``FileCap.<operation>(intent.path)``.

    Raises:
        TypeError: ``intent`` is not a file intent (``capability_filter`` then denies it).
    """
    if not isinstance(intent, ReadFile | WriteFile | DeleteFile):
        raise TypeError(f"not a file intent: {type(intent).__name__}")
    return FileCap.capability(intent.operation, intent.path)
