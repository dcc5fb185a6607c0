"""The guide's ``FileSystem.FileStream``: sandboxed file I/O as a processor for ``pf.process``."""

from __future__ import annotations

import os
from typing import Any

import attrs
from reactivex import abc
from reactivex.scheduler import TimeoutScheduler

from ... import Context, Err, Ok, Stream, StreamMetrics
from ... import operators as pf
from ..._clock import Clock, clock_of
from .events import FileDeleteEvent, FileReadEvent, FileWriteEvent
from .intents import DeleteFile, FileCap, ReadFile, WriteFile
from .sandbox import Sandbox, SandboxError, os_reason

__all__ = ["FileStream", "FileStreamConfig", "FileStreamState", "start_file_stream"]


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
    (``insufficient_capabilities`` otherwise); since the `Sandbox` follows no
    symbolic link, that path is the object touched.

    Every failure is ``Err(reason, state)`` with ``errors`` counted, so ``process`` drops
    the intent with that reason: a refusal (``invalid_path``, ``symlink_refused``,
    ``not_a_regular_file``, ``hard_link_refused``...), an OS error (``not_found``,
    ``is_a_directory``, ``io_error: <text>``...), content that is neither ``str`` nor
    ``bytes`` (``invalid_content``). No exception leaves `process_event`, and no
    reason holds a host path.

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
        path = event.path
        if not isinstance(path, str):  # only when the intent's validation was bypassed
            return self._fail("invalid_path", state)
        try:
            allowed = context.has_capability(FileCap.capability(kind.operation, path))
        except (TypeError, ValueError):
            return self._fail("invalid_path", state)
        if not allowed:
            return self._fail("insufficient_capabilities", state)
        try:
            return self._perform(kind, event, path, context, state)
        except SandboxError as error:
            return self._fail(error.reason, state)
        except OSError as error:  # defence in depth: the sandbox already converts these
            return self._fail(os_reason(error), state)

    def _perform(
        self, kind: type, event: Any, path: str, context: Context, state: FileStreamState
    ) -> Ok[FileStreamState] | Err[FileStreamState]:
        now = self._now
        sandbox = self.sandbox
        if kind is WriteFile:
            try:
                data = event.data
            except TypeError:
                return self._fail("invalid_content", state)
            started = now()
            size = sandbox.write(path, data)
            done = now()
            return Ok(
                FileStreamState(state.reads, state.writes + 1, state.deletes, state.errors),
                (FileWriteEvent(path, size, context.user_id, done, done - started, data),),
            )
        started = now()
        if kind is ReadFile:
            content = sandbox.read(path)
            done = now()
            return Ok(
                FileStreamState(state.reads + 1, state.writes, state.deletes, state.errors),
                (FileReadEvent(path, content, context.user_id, done, done - started),),
            )
        sandbox.delete(path)
        done = now()
        return Ok(
            FileStreamState(state.reads, state.writes, state.deletes + 1, state.errors),
            (FileDeleteEvent(path, context.user_id, done, done - started),),
        )


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
