"""The event store: append-only, WAL, acknowledged only after commit, survives a kill."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pfrx
from pfrx import operators as pf
from pfrx.examples.eventstore import AppendOnlyError, EventStore, EventStoreError
from pfrx.examples.filesystem import DeleteFile, FileCap, ReadFile, WriteFile, file_context
from pfrx.examples.patterns import EventSourcingStream, FileDeleted, FileWritten

ADMIN = file_context("root", "s", [FileCap.admin("/")])


def test_append_and_replay_in_order(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.db") as store:
        assert store.append("A", {"n": 1}, 1.5) == 1
        assert store.append_many([("B", {"n": 2}, 2.0), ("C", {"n": 3}, 3.0)]) == [2, 3]
        assert store.append_many([]) == []
        events = list(store.replay())
        assert [(e.sequence, e.type, e.data["n"], e.recorded_at) for e in events] == [
            (1, "A", 1, 1.5),
            (2, "B", 2, 2.0),
            (3, "C", 3, 3.0),
        ]
        assert [e.sequence for e in store.replay(after=1, batch=1)] == [2, 3]
        assert store.count() == 3 and store.last_sequence() == 3
        assert store.synchronous == "NORMAL"


def test_the_log_is_append_only(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.db") as store:
        store.append("A", {"n": 1})
        with pytest.raises(AppendOnlyError, match="append-only"):
            store._execute("UPDATE events SET type = 'X'")
        with pytest.raises(AppendOnlyError, match="append-only"):
            store._execute("DELETE FROM events")
        assert [e.type for e in store.replay()] == ["A"]


def test_wal_mode_and_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EventStore(path, synchronous="full") as store:
        assert store.synchronous == "FULL"
        row = store._db.execute("PRAGMA journal_mode").fetchone()
        assert row[0] == "wal"
        with pytest.raises(TypeError, match="JSON"):
            store.append("A", {"x": object()})
        with pytest.raises(TypeError, match="non-empty str"):
            store.append("", {})
        assert store.count() == 0
    with pytest.raises(ValueError, match="synchronous"):
        EventStore(path, synchronous="OFF")
    store = EventStore(path)
    store.close()
    store.close()
    with pytest.raises(EventStoreError, match="closed"):
        store.append("A", {})
    with pytest.raises(EventStoreError):
        EventStore(tmp_path / "no" / "such" / "dir.db")


def test_event_sourcing_stream_commits_before_emitting_and_rebuilds(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = EventStore(path)
    processor = EventSourcingStream(store)
    stream = pfrx.Stream(pf.process(processor), name="es")
    seen: list[object] = []
    lost: list[pfrx.Dropped] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    stream.dropped.subscribe(lost.append)
    stream.send(WriteFile("/a", "one", "root"), ADMIN)
    stream.send(WriteFile("/b", b"two", "root"), ADMIN)
    stream.send(ReadFile("/a", "root"), ADMIN)
    stream.send(DeleteFile("/a", "root"), ADMIN)
    stream.close()
    assert [type(e).__name__ for e in seen] == ["FileWritten", "FileWritten", "FileDeleted"]
    assert [e.sequence for e in seen] == [1, 2, 3]  # type: ignore[attr-defined]
    assert [d.reason for d in lost] == ["not_a_command"]
    rebuilt = EventSourcingStream.rebuild(store)
    assert rebuilt.files == {"/b": b"two"} and rebuilt.version == 3
    # a new processor on the same store starts from the replayed state
    assert EventSourcingStream(store).initial_state() == rebuilt
    store.close()


def test_a_failed_commit_changes_nothing(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "e.db")
    processor = EventSourcingStream(store)
    state = processor.initial_state()
    store.close()
    outcome = processor.process_event(WriteFile("/a", "x", "root"), ADMIN, state)
    assert isinstance(outcome, pfrx.Err) and outcome.reason.startswith("store_error")
    assert str(tmp_path) not in outcome.reason  # a drop reason never holds a host path
    assert state.files == {} and state.version == 0


def test_reads_can_pass_through(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.db") as store:
        processor = EventSourcingStream(store, pass_queries=True)
        outcome = processor.process_event(ReadFile("/a", "u"), ADMIN, processor.initial_state())
        assert isinstance(outcome, pfrx.Ok) and outcome.effects == (ReadFile("/a", "u"),)
        assert store.count() == 0


CHILD = textwrap.dedent(
    """
    import sys
    import pfrx
    from pfrx import operators as pf
    from pfrx.examples.eventstore import EventStore
    from pfrx.examples.filesystem import FileCap, WriteFile, file_context
    from pfrx.examples.patterns import EventSourcingStream

    store = EventStore(sys.argv[1])
    stream = pfrx.Stream(pf.process(EventSourcingStream(store)), name="child")
    ctx = file_context("writer", "s", [FileCap.write("/")])

    def acknowledge(envelope):
        event = envelope.event
        sys.stdout.write(f"{event.sequence} {event.path}\\n")
        sys.stdout.flush()

    stream.results.subscribe(acknowledge)
    i = 0
    while True:  # until killed
        stream.send(WriteFile(f"/f{i}", f"content {i}", "writer"), ctx)
        i += 1
    """
)


@pytest.mark.slow
def test_a_killed_process_loses_no_acknowledged_event(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    acknowledged: dict[int, str] = {}
    try:
        for line in child.stdout:
            sequence, written = line.split()
            acknowledged[int(sequence)] = written
            if len(acknowledged) >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # mid-stream, no chance to clean up
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 300

    with EventStore(path) as store:
        stored = {e.sequence: e for e in store.replay()}
        # every acknowledged event is there, with what was acknowledged
        for sequence, written in acknowledged.items():
            assert stored[sequence].data["path"] == written
        # the log has no holes: 1..n
        assert sorted(stored) == list(range(1, len(stored) + 1))
        rebuilt = EventSourcingStream.rebuild(store)
    assert rebuilt.version == len(stored) >= len(acknowledged)
    for sequence, written in acknowledged.items():
        number = int(written[2:])
        assert rebuilt.files[written] == f"content {number}".encode()
        assert isinstance(sequence, int)


def test_domain_events_round_trip_through_the_store(tmp_path: Path) -> None:
    from pfrx.examples.patterns import _to_record, from_stored

    with EventStore(tmp_path / "e.db") as store:
        written = FileWritten("/a", b"\x00\xffbin", "u", 1.0)
        deleted = FileDeleted("/a", "u", 2.0)
        for event in (written, deleted):
            store.append(*_to_record(event))
        back = [from_stored(e) for e in store.replay()]
        assert back == [
            FileWritten("/a", b"\x00\xffbin", "u", 1.0, 1),
            FileDeleted("/a", "u", 2.0, 2),
        ]
        store.append("Mystery", {})
        (mystery,) = store.replay(after=2)
        with pytest.raises(ValueError, match="unknown stored event type"):
            from_stored(mystery)


def _damage(path: Path, offset: int, size: int, seed: int = 1) -> None:
    noise = random.Random(seed).randbytes(size)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(noise)


def _filled(path: Path, events: int = 2000) -> None:
    rows = [("FileWritten", {"path": f"/f{i}", "n": i}, float(i)) for i in range(events)]
    with EventStore(path) as store:
        store.append_many(rows)
    # closing the last connection folds the WAL into the main file, so the damage below
    # hits the events themselves
    assert not os.path.exists(f"{path}-wal") or os.path.getsize(f"{path}-wal") == 0


def test_random_bytes_in_the_middle_of_the_file_are_an_event_store_error(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    _filled(path)
    size = path.stat().st_size
    assert size > 64 * 1024
    _damage(path, size // 2 - 8192, 16384)

    def open_and_replay() -> None:  # the damage shows on open, or at the latest on replay
        with EventStore(path) as store:
            list(store.replay())

    with pytest.raises(EventStoreError, match="damaged") as damaged:
        open_and_replay()
    assert not isinstance(damaged.value, sqlite3.Error)


def test_a_damaged_header_is_an_event_store_error_on_open(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    _filled(path, 10)
    _damage(path, 0, 100)
    with pytest.raises(EventStoreError, match=r"damaged|not a database"):
        EventStore(path)


def test_a_file_that_is_not_a_database_is_an_event_store_error(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    path.write_bytes(random.Random(2).randbytes(8192))
    with pytest.raises(EventStoreError):
        EventStore(path)


def test_every_read_of_a_damaged_store_is_an_event_store_error(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    _filled(path)
    store = EventStore(path)
    size = path.stat().st_size
    _damage(path, size // 2 - 8192, 16384)  # while it is open
    with pytest.raises(EventStoreError, match="damaged"):
        list(store.replay())
    for read in (store.count, store.last_sequence):
        # a read that misses the damaged pages may still answer; any failure is the store's
        outcome: int | EventStoreError
        try:
            outcome = read()
        except EventStoreError as error:
            outcome = error
        assert isinstance(outcome, EventStoreError) or outcome >= 0
    store.close()


def test_recorded_at_must_be_a_number(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.db") as store:
        for bad in ("abc", None, "1.5", object(), True):
            with pytest.raises(TypeError, match="recorded_at"):
                store.append("A", {}, bad)  # type: ignore[arg-type]
        for bad_number in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match="recorded_at"):
                store.append("A", {}, bad_number)
        assert store.append("A", {}, 3) == 1
        assert [e.recorded_at for e in store.replay()] == [3.0]
        assert store.count() == 1
