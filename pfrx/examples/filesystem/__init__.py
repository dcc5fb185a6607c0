"""The guide's FileSystem domain on pfrx: intents, capabilities, a sandboxed file processor.

The Elixir guide's ``FileSystem.*`` modules, one Python name each (see
``docs/guide-mapping.md``), in one module per role:

- `pfrx.examples.filesystem.intents`: `ReadFile`, `WriteFile`,
  `DeleteFile`, ``FileCap``, `file_context`
  (``FileSystem.Contexts.FileContext.new``), `required_capability`;
- `pfrx.examples.filesystem.events`: the ``File*Event`` records the stream emits and
  the window summaries;
- `pfrx.examples.filesystem.sandbox`: `Sandbox`, file I/O confined to a root
  directory, walked one component at a time relative to its parent's descriptor with
  ``O_NOFOLLOW`` (no symbolic link is ever followed, so no swap can lead outside);
- `pfrx.examples.filesystem.stream`: `FileStream`, the processor for
  `pfrx.operators.process` (every path capability-checked, every failure an
  ``Err`` with a reason), and `start_file_stream`
  (``PacketFlow.Stream.start_link(FileSystem.FileStream, ...)``);
- `pfrx.examples.filesystem.windows`: `FileWindowing` (``TimeWindow``,
  ``CountWindow``, ``SessionWindow``);
- `pfrx.examples.filesystem.pipeline`: `FileBackpressure`
  (``AdaptiveBackpressure``), `FileEventTransformer`, `FileEventFilter`,
  `FileProcessingPipeline`.

Paths in intents are POSIX paths *inside the sandbox* (``/docs/a.txt`` is
``<root>/docs/a.txt``); capabilities are checked on the normalised path.
"""

from __future__ import annotations

from .events import (
    FileActivitySummary,
    FileDeleteEvent,
    FileReadEvent,
    FileWriteEvent,
    ProcessingStats,
    SessionSummary,
)
from .intents import (
    MAX_CONTENT_BYTES,
    DeleteFile,
    FileCap,
    FileContext,
    Intent,
    ReadFile,
    WriteFile,
    file_context,
    required_capability,
)
from .pipeline import (
    AdaptiveBackpressure,
    FileBackpressure,
    FileEventFilter,
    FileEventTransformer,
    FileProcessingPipeline,
)
from .sandbox import MAX_READ_BYTES, Sandbox, SandboxError
from .stream import FileStream, FileStreamConfig, FileStreamState, start_file_stream
from .windows import CountWindow, FileWindowing, SessionWindow, TimeWindow

__all__ = [
    "MAX_CONTENT_BYTES",
    "MAX_READ_BYTES",
    "AdaptiveBackpressure",
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
