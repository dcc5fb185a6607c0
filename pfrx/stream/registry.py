"""StreamRegistry: streams by name, and the process-wide `registry`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ._stream import Stream


class DuplicateStreamName(ValueError):
    """`StreamRegistry.register` was given a name that is already taken."""


class StreamRegistry:
    """Streams by name (the guide's ``PacketFlow.Registry.register_stream``).

    Thread-safe. A stream leaves the registry when it is closed (or fails).

    Example:
        >>> import pfrx
        >>> reg = pfrx.StreamRegistry()
        >>> s = pfrx.Stream(name="files")
        >>> reg.register("file_stream", s)
        >>> reg.lookup("file_stream") is s
        True
        >>> s.close()
        >>> "file_stream" in reg
        False
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, Stream] = {}

    def register(self, name: str, stream: Stream) -> None:
        """Register ``stream`` under ``name``.

        Raises:
            TypeError: ``name`` is not a non-empty str, or ``stream`` is not a Stream.
            DuplicateStreamName: ``name`` is taken.
            ValueError: ``stream`` is closed.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"a stream name must be a non-empty str, not {name!r}")
        if not isinstance(stream, Stream):
            raise TypeError(f"can only register a pfrx.Stream, not {type(stream).__name__}")
        with self._lock:
            if name in self._streams:
                raise DuplicateStreamName(
                    f"a stream is already registered as {name!r}: {self._streams[name]!r}"
                )
            if stream.closed:
                raise ValueError(f"cannot register {stream!r}: it is closed")
            self._streams[name] = stream
        stream.when_closed(lambda: self.discard(name, stream))

    def lookup(self, name: str) -> Stream:
        """The stream registered as ``name``.

        Raises:
            KeyError: no stream has that name (registered streams are listed).
        """
        with self._lock:
            stream = self._streams.get(name)
            if stream is None:
                known = ", ".join(sorted(self._streams)) or "none"
                raise KeyError(f"no stream registered as {name!r} (registered: {known})")
            return stream

    def get(self, name: str, default: Stream | None = None) -> Stream | None:
        """The stream registered as ``name``, else ``default``."""
        with self._lock:
            return self._streams.get(name, default)

    def unregister(self, name: str) -> Stream:
        """Remove ``name`` and return its stream (the stream keeps running).

        Raises:
            KeyError: no stream has that name.
        """
        with self._lock:
            try:
                return self._streams.pop(name)
            except KeyError:
                raise KeyError(f"no stream registered as {name!r}") from None

    def discard(self, name: str, stream: Stream) -> None:
        """Remove ``name`` if ``stream`` is what it names (a closing stream calls this)."""
        with self._lock:
            if self._streams.get(name) is stream:
                del self._streams[name]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        with self._lock:
            return sorted(self._streams)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._streams

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)


registry = StreamRegistry()
"""The process-wide `StreamRegistry`: streams by name."""
