"""The guide's FileSystem domain on pfrx: intents, capabilities, a sandboxed file processor.

The Elixir guide's ``FileSystem.*`` modules, one Python name each (see
``docs/guide-mapping.md``):

- intents `ReadFile`, `WriteFile`, `DeleteFile`; ``FileCap``;
  `file_context` (``FileSystem.Contexts.FileContext.new``);
- `FileStream`, a processor for `pfrx.operators.process` doing real file I/O
  under a sandbox root: every path is capability-checked and can never leave the root;
- `FileWindowing` (``TimeWindow``, ``CountWindow``, ``SessionWindow``),
  `FileBackpressure` (``AdaptiveBackpressure``), `FileProcessingPipeline`,
  `FileEventTransformer`, `FileEventFilter`;
- `start_file_stream`: ``PacketFlow.Stream.start_link(FileSystem.FileStream, ...)``.

Paths in intents are POSIX paths *inside the sandbox* (``/docs/a.txt`` is
``<root>/docs/a.txt``); capabilities are checked on the normalised path.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler

from .. import operators as pf
from .._clock import Clock, clock_of
from .._model import (
    Capability,
    CapabilityFamily,
    Context,
    Envelope,
    Err,
    Ok,
    Reject,
    Window,
    normalize_resource,
)
from ..metrics import StreamMetrics
from ..stream import Stream, connect, stage

__all__ = [
    "MAX_CONTENT_BYTES",
    "CountWindow",
    "DeleteFile",
    "FileActivitySummary",
    "FileBackpressure",
    "FileCap",
    "FileContext",
    "FileDeleteEvent",
    "FileEventFilter",
    "FileEventTransformer",
    "FileProcessingPipeline",
    "FileReadEvent",
    "FileStream",
    "FileStreamConfig",
    "FileStreamState",
    "FileWindowing",
    "FileWriteEvent",
    "Intent",
    "ProcessingStats",
    "ReadFile",
    "Sandbox",
    "SandboxError",
    "SessionSummary",
    "SessionWindow",
    "TimeWindow",
    "WriteFile",
    "file_context",
    "required_capability",
    "start_file_stream",
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


# -- intents -----------------------------------------------------------------------------------


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
    """Intent: write ``content`` (str as UTF-8, or bytes) to ``path``."""

    path: str = attrs.field(validator=_path)
    content: str | bytes
    user_id: str
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=_metadata, hash=False)

    @classmethod
    def new(cls, path: str, content: str | bytes, user_id: str) -> WriteFile:
        return cls(path, content, user_id)

    operation = "write"

    @property
    def data(self) -> bytes:
        """The content as bytes."""
        return self.content.encode() if isinstance(self.content, str) else bytes(self.content)


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
    operation = getattr(type(intent), "operation", None)
    if operation is None or not isinstance(intent, ReadFile | WriteFile | DeleteFile):
        raise TypeError(f"not a file intent: {type(intent).__name__}")
    return FileCap.capability(operation, intent.path)


# -- events the FileStream emits ------------------------------------------------------------


@attrs.frozen(slots=True)
class FileReadEvent:
    """A file was read: ``content`` as bytes; ``duration`` of the I/O in seconds."""

    path: str
    content: bytes
    user_id: str
    timestamp: float
    duration: float = 0.0
    operation = "read"


@attrs.frozen(slots=True)
class FileWriteEvent:
    """A file was written with ``size`` bytes (``content``, kept for event sourcing)."""

    path: str
    size: int
    user_id: str
    timestamp: float
    duration: float = 0.0
    content: bytes = attrs.field(default=b"", repr=False)
    operation = "write"


@attrs.frozen(slots=True)
class FileDeleteEvent:
    """A file was deleted."""

    path: str
    user_id: str
    timestamp: float
    duration: float = 0.0
    operation = "delete"


# -- the sandbox -------------------------------------------------------------------------------


class SandboxError(Exception):
    """A path the sandbox refuses, or an I/O failure; ``reason`` is the drop reason."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{reason}: {path}" if path else reason)
        self.reason = reason
        self.path = path


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

_OS_REASONS = {
    errno.ENOENT: "not_found",
    errno.EISDIR: "is_a_directory",
    errno.ENOTDIR: "not_a_directory",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.ELOOP: "symlink_refused",
    errno.ENOTEMPTY: "directory_not_empty",
}


def _os_reason(error: OSError) -> str:
    return _OS_REASONS.get(error.errno or 0) or f"io_error: {error.strerror or error}"


class Sandbox:
    """File I/O confined to ``root``: no path, ``..`` or symlink leads outside it.

    A path is normalised as a resource (``//``, ``.``, ``..`` resolved, never above ``/``),
    joined under the root, then resolved with `os.path.realpath`; a result outside the
    root (a symlink pointing out) is refused with ``path_escapes_root``. Files are opened
    with ``O_NOFOLLOW``, so a final component swapped for a symlink after the check is
    refused (``symlink_refused``). Deletion unlinks the name itself (a symlink inside the
    root is removed, never its target).

    Args:
        root: an existing directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        real = os.path.realpath(os.fspath(root))
        if not os.path.isdir(real):
            raise ValueError(f"sandbox root must be an existing directory: {root!r}")
        self.root = real
        self._prefix = real.rstrip(os.sep) + os.sep

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._prefix)

    def _joined(self, path: str) -> str:
        normalized = normalize_resource(path) if isinstance(path, str) else None
        if normalized is None or normalized == "*":
            raise SandboxError("invalid_path", str(path))
        return os.path.join(self.root, normalized.lstrip("/"))

    def resolve(self, path: str) -> str:
        """The real host path for ``path``.

        Raises:
            SandboxError: ``invalid_path`` or ``path_escapes_root``.
        """
        real = os.path.realpath(self._joined(path))
        if not self._inside(real):
            raise SandboxError("path_escapes_root", path)
        return real

    def read(self, path: str) -> bytes:
        """The content of the file at ``path``."""
        real = self.resolve(path)
        try:
            fd = os.open(real, _READ_FLAGS)
        except OSError as error:
            raise SandboxError(_os_reason(error), path) from error
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as error:
            raise SandboxError(_os_reason(error), path) from error
        finally:
            os.close(fd)

    def write(self, path: str, data: bytes) -> int:
        """Write ``data`` to ``path`` (parents created inside the root); bytes written."""
        real = self.resolve(path)
        if real == self.root:
            raise SandboxError("is_a_directory", path)
        try:
            parent = os.path.dirname(real)
            if not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
            fd = os.open(real, _WRITE_FLAGS, 0o644)
        except OSError as error:
            raise SandboxError(_os_reason(error), path) from error
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            return len(data)
        except OSError as error:
            raise SandboxError(_os_reason(error), path) from error
        finally:
            os.close(fd)

    def delete(self, path: str) -> None:
        """Remove the file (or symlink) named ``path``."""
        joined = self._joined(path)
        parent = os.path.realpath(os.path.dirname(joined))
        target = os.path.join(parent, os.path.basename(joined))
        if not self._inside(parent) or target.rstrip(os.sep) == self.root or joined == self.root:
            raise SandboxError("path_escapes_root", path)
        try:
            os.unlink(target)
        except OSError as error:
            raise SandboxError(_os_reason(error), path) from error


# -- the FileStream processor -------------------------------------------------------------------


@attrs.frozen(slots=True)
class FileStreamState:
    """The guide's ``state.metrics``: reads, writes, deletes and errors so far."""

    reads: int = 0
    writes: int = 0
    deletes: int = 0
    errors: int = 0


@attrs.frozen(slots=True)
class FileStreamConfig:
    """The guide's ``@stream_config`` (durations in seconds: 5000 ms is 5.0)."""

    backpressure_strategy: str = "drop_oldest"
    window_size: int = 1000
    processing_timeout: float = 5.0
    buffer_size: int = 10_000
    batch_size: int = 100


class FileStream:
    """The guide's ``FileSystem.FileStream``: a processor for ``pf.process``.

    ``ReadFile`` reads the file and emits a `FileReadEvent`; ``WriteFile`` writes it
    and emits a `FileWriteEvent`; ``DeleteFile`` deletes and emits a
    `FileDeleteEvent`. Each first checks the context for ``FileCap.<op>(path)``
    (``insufficient_capabilities`` otherwise). A refusal or I/O failure is
    ``Err(reason, state)`` with ``errors`` counted, so ``process`` drops the intent with that
    reason (``not_found``, ``path_escapes_root``, ``symlink_refused``...).

    Args:
        root: the sandbox directory.
        scheduler: whose clock stamps events and times the I/O (default: system time).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, scheduler: abc.SchedulerBase | None = None
    ) -> None:
        self.sandbox = Sandbox(root)
        self._now: Clock = clock_of(scheduler or TimeoutScheduler.singleton())

    def initial_state(self) -> FileStreamState:
        return FileStreamState()

    def _fail(self, reason: str, state: FileStreamState) -> Err[FileStreamState]:
        return Err(reason, attrs.evolve(state, errors=state.errors + 1))

    def process_event(
        self, event: Any, context: Context, state: FileStreamState
    ) -> Ok[FileStreamState] | Err[FileStreamState]:
        kind = type(event)
        if kind is not ReadFile and kind is not WriteFile and kind is not DeleteFile:
            return self._fail("unknown_intent", state)
        if not context.has_capability(FileCap.capability(kind.operation, event.path)):
            return self._fail("insufficient_capabilities", state)
        now = self._now
        started = now()
        sandbox = self.sandbox
        try:
            if kind is ReadFile:
                content = sandbox.read(event.path)
                done = now()
                return Ok(
                    FileStreamState(state.reads + 1, state.writes, state.deletes, state.errors),
                    (FileReadEvent(event.path, content, context.user_id, done, done - started),),
                )
            if kind is WriteFile:
                data = event.data
                size = sandbox.write(event.path, data)
                done = now()
                return Ok(
                    FileStreamState(state.reads, state.writes + 1, state.deletes, state.errors),
                    (
                        FileWriteEvent(
                            event.path, size, context.user_id, done, done - started, data
                        ),
                    ),
                )
            sandbox.delete(event.path)
            done = now()
            return Ok(
                FileStreamState(state.reads, state.writes, state.deletes + 1, state.errors),
                (FileDeleteEvent(event.path, context.user_id, done, done - started),),
            )
        except SandboxError as error:
            return self._fail(error.reason, state)


def start_file_stream(
    root: str | os.PathLike[str],
    *,
    name: str = "file_stream",
    scheduler: abc.SchedulerBase | None = None,
    metrics: StreamMetrics | None = None,
    **config: Any,
) -> Stream:
    """``PacketFlow.Stream.start_link(FileSystem.FileStream, ...)``: a running file stream.

    ``config`` overrides `FileStreamConfig` fields. The stream is
    ``backpressure(strategy, buffer_size, batch_size)`` then ``process(FileStream(root),
    processing_timeout)``; results are the ``File*Event`` records (as envelopes).
    """
    settings = FileStreamConfig(**config)
    return Stream(
        pf.backpressure(
            settings.backpressure_strategy,
            buffer_size=settings.buffer_size,
            batch_size=settings.batch_size,
        ),
        pf.process(
            FileStream(root, scheduler=scheduler),
            processing_timeout=settings.processing_timeout,
            name="file_stream",
        ),
        name=name,
        scheduler=scheduler,
        metrics=metrics,
    )


# -- windows ------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class FileActivitySummary:
    """What happened to one path in one time window."""

    path: str
    read_count: int
    write_count: int
    delete_count: int
    timestamp: float


@attrs.frozen(slots=True)
class ProcessingStats:
    """One count window: how many events and their average I/O time."""

    total_events: int
    avg_processing_time: float
    timestamp: float


@attrs.frozen(slots=True)
class SessionSummary:
    """One user session: its key, bounds and counts by operation."""

    key: Any
    start: float
    end: float
    events: int
    reads: int
    writes: int
    deletes: int


def _operation(event: Any) -> str | None:
    operation = getattr(type(event), "operation", None)
    return operation if isinstance(operation, str) else None


class TimeWindow:
    """``FileWindowing.TimeWindow``: per-path activity in tumbling time windows.

    Used as an operator on envelopes of intents or ``File*Event`` records; emits one tuple of
    `FileActivitySummary` (sorted by path) per non-empty window.
    """

    window_type = "time"
    window_size = 60.0  # seconds: the guide's 60000 ms

    def __init__(
        self, span: float | timedelta | None = None, *, scheduler: abc.SchedulerBase | None = None
    ) -> None:
        self.span = span if span is not None else self.window_size
        self.scheduler = scheduler

    def process_window(
        self, events: Iterable[Any], timestamp: float = 0.0
    ) -> tuple[FileActivitySummary, ...]:
        counts: dict[str, list[int]] = {}
        for event in events:
            row = counts.setdefault(event.path, [0, 0, 0])
            operation = _operation(event)
            if operation == "read":
                row[0] += 1
            elif operation == "write":
                row[1] += 1
            elif operation == "delete":
                row[2] += 1
        return tuple(
            FileActivitySummary(path, r, w, d, timestamp)
            for path, (r, w, d) in sorted(counts.items())
        )

    def __call__(self, source: Observable[Envelope]) -> Observable[tuple[FileActivitySummary, ...]]:
        def summarize(window: Window) -> tuple[FileActivitySummary, ...]:
            return self.process_window(window.events, window.end)

        return source.pipe(
            pf.window_time(self.span, scheduler=self.scheduler),
            ops.map(summarize),
        )


class CountWindow:
    """``FileWindowing.CountWindow``: `ProcessingStats` every ``size`` events."""

    window_type = "count"
    window_size = 100

    def __init__(self, size: int | None = None) -> None:
        self.size = size if size is not None else self.window_size

    def process_window(self, events: Sequence[Any], timestamp: float = 0.0) -> ProcessingStats:
        durations = [d for d in (getattr(e, "duration", None) for e in events) if d is not None]
        average = sum(durations) / len(durations) if durations else 0.0
        return ProcessingStats(len(events), average, timestamp)

    def __call__(self, source: Observable[Envelope]) -> Observable[ProcessingStats]:
        def summarize(window: Window) -> ProcessingStats:
            stamp = window.items[-1].timestamp if window.items else 0.0
            return self.process_window(window.events, stamp)

        return source.pipe(
            pf.window_count(self.size),
            ops.map(summarize),
        )


class SessionWindow:
    """Session windows per user (the guide's ``@window_type :session``).

    A session closes after ``gap`` without an event of its user (or ``max_duration`` after
    its first); each emits a `SessionSummary`.
    """

    window_type = "session"
    window_size = 3600.0  # seconds: the guide's 3600000 ms

    def __init__(
        self,
        gap: float | timedelta | None = None,
        *,
        max_duration: float | timedelta | None = None,
        key: Callable[[Envelope], Any] | None = None,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.gap = gap if gap is not None else self.window_size
        self.max_duration = max_duration
        self.key = key or (lambda envelope: envelope.context.user_id)
        self.scheduler = scheduler

    def process_window(self, window: Window) -> SessionSummary:
        reads = writes = deletes = 0
        for event in window.events:
            operation = _operation(event)
            if operation == "read":
                reads += 1
            elif operation == "write":
                writes += 1
            elif operation == "delete":
                deletes += 1
        return SessionSummary(
            window.key, window.start, window.end, len(window), reads, writes, deletes
        )

    def __call__(self, source: Observable[Envelope]) -> Observable[SessionSummary]:
        return source.pipe(
            pf.window_session(
                self.gap,
                key=self.key,
                max_duration=self.max_duration,
                scheduler=self.scheduler,
            ),
            ops.map(self.process_window),
        )


class FileWindowing:
    """Namespace for the guide's ``FileSystem.FileWindowing``."""

    TimeWindow = TimeWindow
    CountWindow = CountWindow
    SessionWindow = SessionWindow


# -- backpressure -------------------------------------------------------------------------------


class AdaptiveBackpressure:
    """``FileBackpressure.AdaptiveBackpressure``: ``pf.backpressure("adaptive", ...)``.

    The guide's ``handle_backpressure`` clauses are the adaptive strategy's state machine in
    ``pf.backpressure`` (see ``operators/backpressure.md``); the guide's
    ``calculate_adaptive_rate`` is `calculate_adaptive_rate`.
    """

    strategy = "adaptive"
    max_buffer_size = 10_000
    min_processing_rate = 100.0

    def __init__(
        self,
        *,
        buffer_size: int | None = None,
        batch_size: int = 100,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.buffer_size = buffer_size if buffer_size is not None else self.max_buffer_size
        self.batch_size = batch_size
        self.scheduler = scheduler

    @classmethod
    def calculate_adaptive_rate(cls, processing_rate: float, buffer_count: int) -> float:
        """The guide's rate rule: 80 % of the current rate (at least the minimum), then
        10 % less when the buffer is over 80 % full, else 10 % more."""
        target = max(processing_rate * 0.8, cls.min_processing_rate)
        if buffer_count > cls.max_buffer_size * 0.8:
            return target * 0.9
        return target * 1.1

    def __call__(self, source: Observable[Envelope]) -> Observable[Envelope]:
        operator = pf.backpressure(
            self.strategy,
            buffer_size=self.buffer_size,
            batch_size=self.batch_size,
            scheduler=self.scheduler,
        )
        result: Observable[Envelope] = operator(source)
        return result


class FileBackpressure:
    """Namespace for the guide's ``FileSystem.FileBackpressure``."""

    AdaptiveBackpressure = AdaptiveBackpressure


# -- transformations and filters ----------------------------------------------------------------


class FileEventTransformer:
    """``FileSystem.StreamTransformations.FileEventTransformer`` as a ``pf.transform``.

    Adds ``{"operation": ..., "timestamp": ...}`` to each intent's metadata; a ``WriteFile``
    over 1 MiB is rejected with ``content_too_large``.
    """

    def __init__(
        self,
        *,
        max_content_bytes: int = MAX_CONTENT_BYTES,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.max_content_bytes = max_content_bytes
        self._now = clock_of(scheduler or TimeoutScheduler.singleton())

    def validate_content(self, content: str | bytes) -> Reject | None:
        size = len(content.encode()) if isinstance(content, str) else len(content)
        return Reject("content_too_large") if size > self.max_content_bytes else None

    def transform_event(self, event: Any, context: Context) -> Any:
        kind = type(event)
        if kind is WriteFile:
            rejected = self.validate_content(event.content)
            if rejected is not None:
                return rejected
        elif kind is not ReadFile and kind is not DeleteFile:
            return Reject("unknown_intent")
        metadata = {**event.metadata, "operation": kind.operation, "timestamp": self._now()}
        return attrs.evolve(event, metadata=metadata)

    def __call__(self, source: Observable[Envelope]) -> Observable[Envelope]:
        return pf.transform(self.transform_event, name="file_event_transformer")(source)


class FileEventFilter:
    """``FileSystem.StreamFilters.FileEventFilter`` as a ``pf.transform`` that rejects.

    Reads pass only under ``allowed`` (default ``/allowed``, whole segments, after
    normalisation: ``/allowed/../etc`` is not under it): ``access_denied`` otherwise.
    Writes and deletes under ``protected`` (default ``/system``) are rejected with
    ``system_directory_protected``.
    """

    def __init__(self, *, allowed: str = "/allowed", protected: str = "/system") -> None:
        self.allowed = allowed
        self.protected = protected

    @staticmethod
    def _under(path: str, directory: str) -> bool:
        normalized = normalize_resource(path)
        root = normalize_resource(directory)
        if normalized is None or root is None or normalized == "*":
            return False
        return root == "/" or normalized == root or normalized.startswith(root + "/")

    def filter_event(self, event: Any, context: Context) -> Any:
        kind = type(event)
        if kind is ReadFile:
            return event if self._under(event.path, self.allowed) else Reject("access_denied")
        if kind is WriteFile or kind is DeleteFile:
            if normalize_resource(event.path) is None:
                return Reject("invalid_path")
            if self._under(event.path, self.protected):
                return Reject("system_directory_protected")
            return event
        return Reject("unknown_intent")

    def __call__(self, source: Observable[Envelope]) -> Observable[Envelope]:
        return pf.transform(self.filter_event, name="file_event_filter")(source)


# -- composition --------------------------------------------------------------------------------


class FileProcessingPipeline:
    """The guide's ``defcompose FileProcessingPipeline``: FileStream, TimeWindow, Adaptive.

    The guide lists ``[FileStream, TimeWindow, AdaptiveBackpressure]``; flow control belongs
    in front of the slow stage, so the stages run as adaptive backpressure, then the file
    stream, then the time window. Each is a named `pfrx.stage`, so an error names the
    stage it came from.

    - `start` runs the stages as one `pfrx.Stream`;
    - `start_connected` runs each stage as its own stream, chained with
      `pfrx.connect`, as the guide's ``init`` starts one process per stream.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        span: float | timedelta = 60.0,
        buffer_size: int = AdaptiveBackpressure.max_buffer_size,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.root = root
        self.span = span
        self.buffer_size = buffer_size
        self.scheduler = scheduler

    def stages(self) -> list[tuple[str, Callable[[Observable[Any]], Observable[Any]]]]:
        return [
            ("adaptive_backpressure", AdaptiveBackpressure(buffer_size=self.buffer_size)),
            ("file_stream", pf.process(FileStream(self.root, scheduler=self.scheduler))),
            ("time_window", TimeWindow(self.span)),
        ]

    def operators(self) -> list[Callable[[Observable[Any]], Observable[Any]]]:
        """The pipeline as a reusable operator sequence (one `pfrx.stage` each)."""
        return [stage(name, operator) for name, operator in self.stages()]

    def start(self, name: str = "file_processing_pipeline") -> Stream:
        return Stream(*self.operators(), name=name, scheduler=self.scheduler)

    def start_connected(self, name: str = "file_processing_pipeline") -> list[Stream]:
        """One stream per stage, each feeding the next; send into the first."""
        streams = [
            Stream(operator, name=f"{name}.{stage_name}", scheduler=self.scheduler)
            for stage_name, operator in self.stages()
        ]
        for upstream, downstream in itertools.pairwise(streams):
            connect(upstream, downstream)
        return streams


def envelopes_of(
    intents: Iterable[Intent], context: Context, scheduler: abc.SchedulerBase | None = None
) -> Observable[Envelope]:
    """Intents as envelopes with ``context`` (a thin alias of `pfrx.envelopes`)."""
    from ..sources import envelopes

    return envelopes(intents, context, scheduler)
