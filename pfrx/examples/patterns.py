"""The guide's "Common Patterns": event sourcing, CQRS and real-time analytics.

Each is a processor for `pfrx.operators.process` (the guide's ``defstream``):
``initial_state()`` and ``process_event(event, context, state) -> Ok | Err``.

- `EventSourcingStream` turns commands into domain events, commits each to an
  `EventStore` *before* applying or emitting it, and can
  rebuild its state by replaying the store.
- `CQRSStream` handles commands on the write side and answers queries from its read
  model.
- `AnalyticsStream` keeps running counts and emits a `FileAnalyticsEvent` per
  event.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
from reactivex import abc
from reactivex.scheduler import TimeoutScheduler

from .._clock import clock_of
from .._model import Context, Err, Ok
from .eventstore import EventStore, EventStoreError, StoredEvent
from .filesystem import (
    DeleteFile,
    FileDeleteEvent,
    FileReadEvent,
    FileWriteEvent,
    ReadFile,
    WriteFile,
)

__all__ = [
    "AnalyticsState",
    "AnalyticsStream",
    "CQRSStream",
    "CommandProcessed",
    "EventSourcingStream",
    "FileAnalyticsEvent",
    "FileDeleted",
    "FileProjection",
    "FileWritten",
    "QueryResult",
    "ReadModel",
]


# -- domain events ---------------------------------------------------------------------------


@attrs.frozen(slots=True)
class FileWritten:
    """Domain event: ``path`` now holds ``content``. ``sequence`` is its place in the store."""

    path: str
    content: bytes = attrs.field(repr=False)
    user_id: str
    timestamp: float
    sequence: int = 0
    operation = "write"


@attrs.frozen(slots=True)
class FileDeleted:
    """Domain event: ``path`` was removed."""

    path: str
    user_id: str
    timestamp: float
    sequence: int = 0
    operation = "delete"


DomainEvent = FileWritten | FileDeleted


def _to_record(event: DomainEvent) -> tuple[str, dict[str, Any], float]:
    if isinstance(event, FileWritten):
        data = {
            "path": event.path,
            "content": base64.b64encode(event.content).decode("ascii"),
            "user_id": event.user_id,
        }
        return "FileWritten", data, event.timestamp
    return "FileDeleted", {"path": event.path, "user_id": event.user_id}, event.timestamp


def from_stored(stored: StoredEvent) -> DomainEvent:
    """The domain event a stored record holds.

    Raises:
        ValueError: an event type this domain does not know.
    """
    data = stored.data
    if stored.type == "FileWritten":
        content = base64.b64decode(data["content"])
        return FileWritten(
            data["path"], content, data["user_id"], stored.recorded_at, stored.sequence
        )
    if stored.type == "FileDeleted":
        return FileDeleted(data["path"], data["user_id"], stored.recorded_at, stored.sequence)
    raise ValueError(f"unknown stored event type {stored.type!r} at {stored.sequence}")


class FileProjection:
    """The state an event-sourced file system rebuilds: path -> content, and a version.

    Mutable on purpose: it is applied to once per committed event, in sequence order.
    """

    __slots__ = ("files", "version")

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.version = 0

    def apply(self, event: DomainEvent) -> FileProjection:
        if isinstance(event, FileWritten):
            self.files[event.path] = event.content
        else:
            self.files.pop(event.path, None)
        self.version = max(self.version, event.sequence)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileProjection):
            return NotImplemented
        return self.files == other.files and self.version == other.version

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileProjection({len(self.files)} files, version {self.version})"


class EventSourcingStream:
    """The guide's ``EventSourcingStream``: intent -> domain event -> store -> state -> emit.

    The event is committed to ``store`` first; only then is it applied to the state and
    emitted (with its ``sequence``): an emitted event is an acknowledged one. A failed commit
    is ``Err("store_error: ...")`` and changes nothing.

    Commands are ``WriteFile`` and ``DeleteFile`` intents, and the facts a
    `FileStream` emits (``FileWriteEvent``,
    ``FileDeleteEvent``). Reads are not commands: ``Err("not_a_command")``, unless
    ``pass_queries`` is set, in which case they pass through unchanged and unrecorded.

    Args:
        store: where events are committed.
        scheduler: whose clock stamps events (default: system time).
        pass_queries: let reads through instead of refusing them.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        scheduler: abc.SchedulerBase | None = None,
        pass_queries: bool = False,
    ) -> None:
        self.store = store
        self.pass_queries = pass_queries
        self._now = clock_of(scheduler or TimeoutScheduler.singleton())

    def initial_state(self) -> FileProjection:
        return self.rebuild(self.store)

    @staticmethod
    def rebuild(store: EventStore) -> FileProjection:
        """Replay every stored event into a fresh projection."""
        projection = FileProjection()
        for stored in store.replay():
            projection.apply(from_stored(stored))
        return projection

    def intent_to_event(self, intent: Any, context: Context) -> DomainEvent | None:
        kind = type(intent)
        if kind is WriteFile:
            return FileWritten(intent.path, intent.data, context.user_id, self._now())
        if kind is DeleteFile:
            return FileDeleted(intent.path, context.user_id, self._now())
        if kind is FileWriteEvent:
            return FileWritten(intent.path, intent.content, intent.user_id, intent.timestamp)
        if kind is FileDeleteEvent:
            return FileDeleted(intent.path, intent.user_id, intent.timestamp)
        return None

    def process_event(
        self, event: Any, context: Context, state: FileProjection
    ) -> Ok[FileProjection] | Err[FileProjection]:
        domain_event = self.intent_to_event(event, context)
        if domain_event is None:
            if self.pass_queries and type(event) in (ReadFile, FileReadEvent):
                return Ok(state, (event,))
            return Err("not_a_command", state)
        try:
            sequence = self.store.append(*_to_record(domain_event))
        except EventStoreError as error:
            return Err(f"store_error: {error}", state)
        recorded = attrs.evolve(domain_event, sequence=sequence)
        return Ok(state.apply(recorded), (recorded,))


# -- CQRS --------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class ReadModel:
    """The CQRS read side: path -> content, and how many commands built it."""

    files: Mapping[str, bytes] = attrs.field(factory=lambda: MappingProxyType({}))
    version: int = 0


@attrs.frozen(slots=True)
class CommandProcessed:
    """A command was applied; ``version`` is the read model's version after it."""

    command: str
    path: str
    user_id: str
    version: int


@attrs.frozen(slots=True)
class QueryResult:
    """The answer to a read: ``content`` is ``None`` when the path is unknown."""

    path: str
    content: bytes | None
    version: int

    @property
    def found(self) -> bool:
        return self.content is not None


class CQRSStream:
    """The guide's ``CQRSStream``: ``WriteFile``/``DeleteFile`` are commands that change the
    read model; ``ReadFile`` is a query answered from it without changing it. Anything else
    is ``Err("unknown_message")``."""

    def initial_state(self) -> ReadModel:
        return ReadModel()

    def process_event(
        self, event: Any, context: Context, state: ReadModel
    ) -> Ok[ReadModel] | Err[ReadModel]:
        kind = type(event)
        if kind is WriteFile:
            files = {**state.files, event.path: event.data}
            new = ReadModel(MappingProxyType(files), state.version + 1)
            return Ok(
                new, (CommandProcessed("write_file", event.path, context.user_id, new.version),)
            )
        if kind is DeleteFile:
            files = {k: v for k, v in state.files.items() if k != event.path}
            new = ReadModel(MappingProxyType(files), state.version + 1)
            return Ok(
                new, (CommandProcessed("delete_file", event.path, context.user_id, new.version),)
            )
        if kind is ReadFile:
            return Ok(state, (QueryResult(event.path, state.files.get(event.path), state.version),))
        return Err("unknown_message", state)


# -- analytics ---------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class AnalyticsState:
    """Running counts: total, by operation and by user."""

    total: int = 0
    by_operation: Mapping[str, int] = attrs.field(factory=lambda: MappingProxyType({}))
    by_user: Mapping[str, int] = attrs.field(factory=lambda: MappingProxyType({}))


@attrs.frozen(slots=True)
class FileAnalyticsEvent:
    """The guide's ``%FileAnalyticsEvent{}``: one per event, with the counts after it."""

    operation: str
    user_id: str
    timestamp: float
    metrics: AnalyticsState


def _bump(counts: Mapping[str, int], key: str) -> Mapping[str, int]:
    return MappingProxyType({**counts, key: counts.get(key, 0) + 1})


class AnalyticsStream:
    """The guide's ``AnalyticsStream``: counts reads, writes and deletes (intents or the
    ``File*Event`` facts) per operation and per user, and emits a
    `FileAnalyticsEvent` for each. An event with no file operation is
    ``Err("unknown_operation")``."""

    def __init__(self, *, scheduler: abc.SchedulerBase | None = None) -> None:
        self._now = clock_of(scheduler or TimeoutScheduler.singleton())

    def initial_state(self) -> AnalyticsState:
        return AnalyticsState()

    @staticmethod
    def get_operation_type(event: Any) -> str | None:
        operation = getattr(type(event), "operation", None)
        return operation if operation in ("read", "write", "delete") else None

    def process_event(
        self, event: Any, context: Context, state: AnalyticsState
    ) -> Ok[AnalyticsState] | Err[AnalyticsState]:
        operation = self.get_operation_type(event)
        if operation is None:
            return Err("unknown_operation", state)
        metrics = AnalyticsState(
            state.total + 1,
            _bump(state.by_operation, operation),
            _bump(state.by_user, context.user_id),
        )
        return Ok(metrics, (FileAnalyticsEvent(operation, context.user_id, self._now(), metrics),))
