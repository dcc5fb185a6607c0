"""An append-only event store on SQLite (standard library), in WAL mode.

An event is *acknowledged* when `EventStore.append` returns: by then its transaction
has committed, so a process killed at any later instant loses nothing acknowledged. Updates
and deletes are refused by triggers: the log only grows. `EventStore.replay` reads the
events back in order to rebuild state.

A damaged database file (random bytes over its pages, a file that is not a database) is
reported as `EventStoreError`, when the store is opened or at the latest when the
damaged part is read; no raw ``sqlite3`` exception leaves the store.

Durability: ``synchronous="NORMAL"`` (the default) survives a killed process (the committed
WAL is in the operating system's hands); ``synchronous="FULL"`` also survives power loss, at
the price of an ``fsync`` per commit.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "events.db")
    >>> with EventStore(path) as store:
    ...     store.append("FileWritten", {"path": "/a.txt"})
    ...     [(e.sequence, e.type, e.data["path"]) for e in store.replay()]
    1
    [(1, 'FileWritten', '/a.txt')]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

import attrs

__all__ = ["AppendOnlyError", "EventStore", "EventStoreError", "StoredEvent"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    sequence    INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""

_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")


class EventStoreError(Exception):
    """The store could not do what was asked, or its file is damaged (the cause is chained)."""


class AppendOnlyError(EventStoreError):
    """Something tried to change or remove a stored event."""


def _failure(doing: str, error: Exception) -> EventStoreError:
    """The store's own error for a ``sqlite3`` (or decoding) failure, damage named as such."""
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.OperationalError | sqlite3.IntegrityError
    ):
        return EventStoreError(f"{doing}: the database file is damaged ({error})")
    if isinstance(error, ValueError):  # a stored event that is not the JSON written
        return EventStoreError(f"{doing}: the database file is damaged ({error})")
    return EventStoreError(f"{doing}: {error}")


def _recorded_at(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"recorded_at must be a number (seconds), not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"recorded_at must be finite, not {number}")
    return number


def _frozen_data(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(slots=True)
class StoredEvent:
    """One committed event: its ``sequence`` (1, 2, ...), ``type``, ``data`` and time."""

    sequence: int
    type: str
    data: Mapping[str, Any] = attrs.field(converter=_frozen_data, hash=False)
    recorded_at: float


class EventStore:
    """An append-only log of JSON events in one SQLite file (WAL mode).

    Thread-safe: appends and reads are serialized on one connection.

    Args:
        path: the database file (created with its directory's permissions).
        synchronous: ``"NORMAL"`` (survives a killed process) or ``"FULL"``/``"EXTRA"``
            (also survives power loss).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        mode = synchronous.upper() if isinstance(synchronous, str) else ""
        if mode not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {_SYNCHRONOUS}, not {synchronous!r}")
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            journal = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(journal).lower() != "wal":
                raise EventStoreError(f"{self.path}: WAL mode unavailable (got {journal})")
            self._db.execute(f"PRAGMA synchronous={mode}")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise _failure(f"cannot open event store {self.path}", error) from error
        self.synchronous = mode
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            # no path: this text can become a drop reason (``store_error: ...``)
            raise EventStoreError("the event store is closed")

    def append(self, type: str, data: Mapping[str, Any], recorded_at: float = 0.0) -> int:
        """Commit one event; return its sequence number once it is durable.

        Raises:
            TypeError: ``type`` is not a non-empty str, ``data`` is not JSON-serializable or
                ``recorded_at`` is not a number (an ``int`` or ``float``, not a ``bool``).
            ValueError: ``recorded_at`` is NaN or infinite.
            EventStoreError: the commit failed (nothing was stored).
        """
        return self.append_many([(type, data, recorded_at)])[0]

    def append_many(self, events: Iterable[tuple[str, Mapping[str, Any], float]]) -> list[int]:
        """Commit several events in one transaction (all or none); their sequence numbers.

        Each event is ``(type, data, recorded_at)``, checked as in `append` before
        anything is written.
        """
        rows = []
        for type_, data, recorded_at in events:
            if not isinstance(type_, str) or not type_:
                raise TypeError(f"event type must be a non-empty str, not {type_!r}")
            try:
                encoded = json.dumps(dict(data), separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as error:
                raise TypeError(f"event data must be JSON-serializable: {error}") from error
            rows.append((type_, encoded, _recorded_at(recorded_at)))
        if not rows:
            return []
        with self._lock:
            self._check_open()
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                sequences = [
                    int(
                        db.execute(
                            "INSERT INTO events (type, data, recorded_at) VALUES (?, ?, ?)", row
                        ).lastrowid
                        or 0
                    )
                    for row in rows
                ]
                db.execute("COMMIT")
            except sqlite3.Error as error:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise _failure("append failed", error) from error
        return sequences

    def replay(self, after: int = 0, *, batch: int = 1000) -> Iterator[StoredEvent]:
        """Every committed event with a sequence above ``after``, in order.

        Raises:
            EventStoreError: the store is closed, or a damaged part of the file was read.
        """
        last = after
        while True:
            with self._lock:
                self._check_open()
                try:
                    rows = self._db.execute(
                        "SELECT sequence, type, data, recorded_at FROM events "
                        "WHERE sequence > ? ORDER BY sequence LIMIT ?",
                        (last, batch),
                    ).fetchall()
                    events = [
                        StoredEvent(sequence, type_, json.loads(data), recorded_at)
                        for sequence, type_, data, recorded_at in rows
                    ]
                except (sqlite3.Error, ValueError, TypeError) as error:
                    raise _failure("replay failed", error) from error
            if not events:
                return
            yield from events
            last = events[-1].sequence

    def _scalar(self, sql: str, doing: str) -> int:
        with self._lock:
            self._check_open()
            try:
                value = self._db.execute(sql).fetchone()[0]
            except sqlite3.Error as error:
                raise _failure(doing, error) from error
        return int(value or 0)

    def count(self) -> int:
        """How many events are stored."""
        return self._scalar("SELECT count(*) FROM events", "count failed")

    def last_sequence(self) -> int:
        """The highest sequence stored (0 when empty)."""
        return self._scalar("SELECT max(sequence) FROM events", "last_sequence failed")

    def _execute(self, sql: str, *params: Any) -> None:
        """Run a statement (used to prove the log refuses changes)."""
        with self._lock:
            self._check_open()
            try:
                self._db.execute(sql, params)
            except sqlite3.IntegrityError as error:
                raise AppendOnlyError(str(error)) from error
            except sqlite3.DatabaseError as error:
                if "append-only" in str(error):
                    raise AppendOnlyError(str(error)) from error
                raise EventStoreError(str(error)) from error

    def close(self) -> None:
        """Checkpoint and close; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # a damaged file: closing still releases it; reads reported the damage
            finally:
                self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventStore({self.path!r}, synchronous={self.synchronous!r})"
