"""The guide's flow control, transformation, filter and composed pipeline for files."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex.scheduler import TimeoutScheduler

from ... import Context, Envelope, Reject, Stream, connect, normalize_resource, stage
from ... import operators as pf
from ..._clock import clock_of
from .intents import MAX_CONTENT_BYTES, DeleteFile, ReadFile, WriteFile
from .stream import FileStream
from .windows import TimeWindow

__all__ = [
    "AdaptiveBackpressure",
    "FileBackpressure",
    "FileEventFilter",
    "FileEventTransformer",
    "FileProcessingPipeline",
]


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
